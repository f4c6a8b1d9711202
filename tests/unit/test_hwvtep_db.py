"""The native VTEP's view of its hardware_vtep database (what the NVC asks
of it) and what it writes back, on fake rows."""
from types import SimpleNamespace as Row

from devices.hwvtep import report
from devices.hwvtep.vtepdb import BFD_CONFIG_LOCAL, config_of, remote_ips

SN1, SN2, HV1 = '10.0.0.1', '10.0.0.2', '10.0.0.11'


class Table:
    def __init__(self, *rows):
        self.rows = {i: r for i, r in enumerate(rows)}


def loc(ip, encap='vxlan_over_ipv4'):
    return Row(dst_ip=ip, encapsulation_type=encap, tunnel_key=[])


def tables():
    ls1 = Row(name='ls1', tunnel_key=[5001], replication_mode=[])
    ls2 = Row(name='ls2', tunnel_key=[], replication_mode=['source_node'])
    other = Row(name='other', tunnel_key=[9], replication_mode=[])
    bm1 = Row(name='bm1', vlan_bindings={0: ls1})
    bm2 = Row(name='bm2', vlan_bindings={100: ls1, 200: ls2})
    tun = Row(remote=loc(SN1), bfd_params={'enable': 'true'},
              bfd_config_remote={'bfd_dst_ip': '169.254.1.1'})
    ps = Row(name='vtep1', ports=[bm1, bm2], tunnels=[tun])
    return {
        'Physical_Switch': Table(ps, Row(name='vtep9', ports=[], tunnels=[])),
        'Ucast_Macs_Remote': Table(
            Row(MAC='02:00:00:00:00:0A', logical_switch=ls1,
                locator=loc(HV1)),
            Row(MAC='02:00:00:00:00:0b', logical_switch=other,
                locator=loc(HV1))),
        'Mcast_Macs_Remote': Table(
            Row(MAC='unknown-dst', logical_switch=ls1,
                locator_set=Row(locators=[loc(SN2), loc(SN1)])))}


def test_the_switch_sees_its_bindings_and_what_it_must_forward():
    c = config_of(tables(), 'vtep1')
    assert c['bindings'] == {('bm1', 0): 'ls1', ('bm2', 100): 'ls1',
                             ('bm2', 200): 'ls2'}
    # a logical switch without a VNI is seen (its binding is a fault)
    assert c['lss'] == {'ls1': {'vni': 5001, 'mode': 'service_node'},
                        'ls2': {'vni': None, 'mode': 'source_node'}}
    # only its own logical switches; MACs lower case; locators in order
    assert c['ucast_remote'] == {('ls1', '02:00:00:00:00:0a'): HV1}
    assert c['mcast_remote'] == {('ls1', 'unknown-dst'): [SN1, SN2]}
    assert c['bfd'] == {SN1: {'enable': 'true'}}
    assert remote_ips(c) == {HV1, SN1, SN2}


def test_an_unknown_switch_asks_for_nothing():
    c = config_of(tables(), 'nothere')
    assert c['bindings'] == {} and c['ucast_remote'] == {}


def test_what_the_switch_reports():
    c = config_of(tables(), 'vtep1')
    layout = {'ps': 'vtep1', 'tunnel_ip': '10.0.0.31',
              'mgmt_ip': '198.18.0.9', 'age': 300,
              'members': [{'name': 'vtep1', 'ports': {'bm1': 1, 'bm2': 2},
                           'vx': 4000, 'fabric': None,
                           'descriptions': {'bm1': 'to bm1'}}]}
    rows = report.switch_rows(
        layout, c, {('ls1', '02:00:00:00:00:33'), ('gone', 'x')},
        {'bm1': True, 'bm2': False}, {SN1: {'forwarding': 'true'}},
        {('bm1', 0): {'packets_from_local': 7}}, full=True)
    assert rows['ps']['tunnel_ips'] == ['10.0.0.31']
    assert rows['ps']['switch_fault_status'] == ['mac_table_exhaustion']
    assert rows['ports']['bm1']['other_config']['link_state'] == 'up'
    assert rows['ports']['bm2']['other_config']['link_state'] == 'down'
    # bm2 VLAN 200 binds a logical switch without a VNI
    assert rows['ports']['bm2']['port_fault_status'] == ['invalid_vlan_map']
    assert rows['ports']['bm1']['port_fault_status'] == []
    assert rows['ucast_local'] == {('ls1', '02:00:00:00:00:33')}
    assert rows['mcast_local'] == {'ls1'}
    assert rows['tunnels'][SN1]['bfd_status'] == {'enabled': 'true',
                                                  'forwarding': 'true'}
    assert rows['tunnels'][SN2]['bfd_status'] == {}     # no BFD there
    assert rows['stats'][('bm1', 0)]['packets_from_local'] == 7
    assert rows['stats'][('bm2', 100)]['bytes_to_local'] == 0
    assert ('bm2', 200) not in rows['stats']
    assert BFD_CONFIG_LOCAL['bfd_dst_ip'] == '169.254.1.0'


def test_rows_the_switch_cannot_use_are_left_out():
    t = tables()
    ls1 = t['Ucast_Macs_Remote'].rows[0].logical_switch
    t['Ucast_Macs_Remote'] = Table(
        Row(MAC='not-a-mac', logical_switch=ls1, locator=loc(HV1)),
        Row(MAC='02:00:00:00:00:0c', logical_switch=ls1,
            locator=loc('fe80::1')),
        Row(MAC='02:00:00:00:00:0d', logical_switch=ls1, locator=loc(HV1)))
    t['Mcast_Macs_Remote'].rows[1] = Row(
        MAC='02:00:00:00:00:0e', logical_switch=ls1,       # not multicast
        locator_set=Row(locators=[loc(SN1)]))
    cfg = config_of(t, 'vtep1')
    assert cfg['ucast_remote'] == {('ls1', '02:00:00:00:00:0d'): HV1}
    assert list(cfg['mcast_remote']) == [('ls1', 'unknown-dst')]


def test_a_vni_beyond_24_bits_is_no_vni():
    t = tables()
    t['Physical_Switch'].rows[0].ports[0].vlan_bindings[0].tunnel_key = \
        [1 << 24]
    cfg = config_of(t, 'vtep1')
    assert cfg['lss']['ls1']['vni'] is None
