"""A device's tables as the controller reads them (controllers.tables):
the flows the controller itself would install on clos-small's hv1, made
into OpenFlow flow-mod objects, read back as a switch's flow statistics
(os-ken's objects, through the app's own conversion) and named; port
counters; a hardware VTEP's database replica; the API endpoint."""
import types

import pytest
from fastapi.testclient import TestClient
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controllers import api, app, intent, labmap, ofdriver, tables
from topologies import expand, labs

from .provisioned import store_for

DP = types.SimpleNamespace(ofproto=ofproto_v1_3,
                           ofproto_parser=ofproto_v1_3_parser)


@pytest.fixture(scope='module')
def clos():
    plan = expand.expand(labs.resolve('clos-small'))
    return plan, store_for(plan)


def stats_of(plan, st, node, packets=7):
    """hv1's intended flows as its switch would report them (os-ken's
    OFPFlowStats built from the flow mods the controller sends)."""
    ctx = intent.context(st.desired(), {'vtep_macs': {}, 'dead': set()})
    sections, _groups = intent.node_sections(ctx, node)
    out = []
    for flows in sections.values():
        for f in flows:
            fm = ofdriver.flow_mod(DP, f)
            out.append(app._flow_row(ofproto_v1_3_parser.OFPFlowStats(
                table_id=fm.table_id, priority=fm.priority, match=fm.match,
                instructions=fm.instructions, packet_count=packets,
                byte_count=packets * 100, cookie=fm.cookie)))
    return out


def test_flows_are_named_like_the_lab_cli_names_them(clos):
    plan, st = clos
    raw = stats_of(plan, st, 'hv1')
    known = tables.known_names(plan, st.list_ls())
    rows = tables.flows(plan, 'hv1', raw, known)
    assert len(rows) == len(raw) > 5
    texts = [r['flow'] for r in rows]
    vm1 = plan['nodes']['vm1']
    port = next(i['ofport'] for i in plan['nodes']['hv1']['intfs']
                if i['peer'] == 'vm1')
    assert any('metadata=0x1/0xff' in t for t in texts), texts
    # the VM's port and MAC, its VNI and the tunnels named
    assert any(f'in_port={port}(vm1)' in t and 'tunnel_id:5001(ls1)' in t
               for t in texts), texts
    assert any(f"dl_dst={vm1['mac']}(vm1)" in t and
               f'output:{port}(vm1)' in t for t in texts), texts
    assert any('(tunnel->hv2)' in t for t in texts), texts
    assert all(r['packets'] == 7 and r['bytes'] == 700 for r in rows)
    # table order, highest priority first
    keys = [(r['table'], -r['priority']) for r in rows]
    assert keys == sorted(keys)


def test_firewall_flows_read_back_in_ovs_ofctl_words():
    """The distributed firewall's Nicira actions (ct, ct_clear,
    resubmit) and ct_state matches, as a switch reports them."""
    plan = expand.expand(labs.resolve('clos-small'))
    st = store_for(plan)
    st.create_rule({'name': 'r', 'priority': 5, 'action': 'drop',
                    'applied_to': 'ls1'})
    raw = stats_of(plan, st, 'hv3')
    texts = [r['flow'] for r in tables.flows(
        plan, 'hv3', raw, tables.known_names(plan, st.list_ls()))]
    port = next(i['ofport'] for i in plan['nodes']['hv3']['intfs']
                if i['peer'] == 'vm3')
    assert any(f'in_port={port}(vm3),ct_state=+est+trk' in t and
               t.endswith('actions=resubmit:1') for t in texts), texts
    assert any(f'actions=ct(commit,zone={port}),output:{port}(vm3)' in t
               for t in texts), texts
    assert any(f'actions=ct_clear,ct(zone={port},table=3)' in t
               for t in texts), texts
    assert any('ct_state=+new-est+trk' in t and t.endswith('actions=drop')
               for t in texts), texts


def test_mac_table_says_where_each_mac_goes(clos):
    plan, st = clos
    raw = stats_of(plan, st, 'hv1')
    macs = tables.mac_table(plan, 'hv1', raw,
                            tables.known_names(plan, st.list_ls()))
    by_host = {m['host']: m for m in macs}
    assert by_host['vm1']['to'] == ['vm1']
    assert by_host['vm1']['ls'] == 'ls1' and by_host['vm1']['vni'] == 5001
    vm5_hv = next(p['transport_node'] for p in st.list_ports()
                  if p['attachment'] == 'vm5')
    assert by_host['vm5']['to'] == [f'tunnel->{vm5_hv}']
    # split-horizon drops (metadata 1, no output) are not MAC entries
    assert len(macs) == len({(m['vni'], m['mac']) for m in macs})


def test_flow_text_in_ovs_ofctl_spelling():
    f = {'table': 0, 'priority': 100, 'match': {'dl_dst': 'aa', 'in_port': 2},
         'actions': ['SET_FIELD: {tunnel_id:5001}', 'GOTO_TABLE:1',
                     {'WRITE_ACTIONS': ['OUTPUT:3']}]}
    assert tables.flow_text(f) == (
        'table=0, priority=100,in_port=2,dl_dst=aa actions=set_field:'
        '{tunnel_id:5001},goto_table:1,write_actions(output:3)')
    assert tables.flow_text({'table': 1, 'priority': 90, 'match': {},
                             'actions': []}).endswith('actions=drop')


def test_port_counters_named_after_what_is_cabled(clos):
    plan, _st = clos
    port = next(i['ofport'] for i in plan['nodes']['hv1']['intfs']
                if i['peer'] == 'vm1')
    tun = intent.tunnel_port(plan['nodes'], 'hv2')
    raw = [{'port': tables.OFPP_LOCAL, 'rx_packets': 0, 'tx_packets': 0,
            'rx_dropped': 0, 'tx_dropped': 0, 'rx_errors': 0,
            'tx_errors': 0},
           {'port': tun, 'rx_packets': 5, 'tx_packets': 6,
            'rx_dropped': tables.UNAVAILABLE, 'tx_dropped': 1,
            'rx_errors': 0, 'tx_errors': 0},
           {'port': port, 'rx_packets': 10, 'tx_packets': 11,
            'rx_dropped': 0, 'tx_dropped': 0, 'rx_errors': 2,
            'tx_errors': 0}]
    rows = tables.port_counters(plan, 'hv1', raw)
    assert [(r['port'], r['name']) for r in rows] == [
        (port, 'vm1'), (tun, 'tunnel->hv2'), ('LOCAL', 'br-int')]
    assert rows[0]['rx_errors'] == 2 and rows[1]['tx_dropped'] == 1
    assert rows[1]['rx_dropped'] is None        # not kept there
    lines = labmap.counters_text({'hv1': rows})
    # a port that carried nothing is left out
    assert len(lines) == 3 and 'br-int' not in '\n'.join(lines)
    assert 'tunnel->hv2' in lines[2] and ' 6 ' in lines[2]
    assert lines[2].split()[2:] == ['5', '6', '-', '1', '0', '0']


def test_a_hardware_vteps_database_named(clos):
    plan, _st = clos
    ip = {n: p['tunnel_ip'].split('/')[0] for n, p in plan['nodes'].items()
          if p.get('tunnel_ip')}
    mac = plan['nodes']['vm1']['mac']
    have = {'logical_switches': {'ls1': {'vni': 5001, 'mode': 'source_node'}},
            'bindings': {('bm1', 0): 'ls1'},
            'local_macs': {(5001, plan['nodes']['bm1']['mac'])},
            'ucast_remote': {('ls1', mac): ip['hv1']},
            'mcast_remote': {'ls1': [ip['sn1'], ip['sn2']]},
            'bfd_running': {ip['sn1'], ip['sn2']},
            'bfd_state': {ip['sn1']: 'up', ip['sn2']: 'down'}}
    t = tables.vtep(plan, 'vtep1', have)
    assert t['bindings'] == [{'port': 'bm1', 'vlan': 0, 'ls': 'ls1',
                              'vni': 5001}]
    assert {(m['host'], tuple(m['to'])) for m in t['macs']} == {
        ('bm1', ('local',)), ('vm1', ('hv1',))}
    assert t['flooding'] == [{'ls': 'ls1', 'to': ['sn1', 'sn2']}]
    assert [(b['peer'], b['state']) for b in t['bfd']] == [
        ('sn1', 'up'), ('sn2', 'down')]
    text = '\n'.join(tables.text(t))
    assert 'sn2 (' in text and 'down' in text and 'bm1 VLAN 0 <-> ls1' in text


def test_api_tables_endpoint(clos):
    plan, st = clos
    raw = {'flows': stats_of(plan, st, 'hv1'), 'ports': []}
    answers = {'hv1': tables.openflow(plan, 'hv1', raw, st.list_ls())}
    client = TestClient(api.create_app(
        st, lab_map=lambda: labmap.build(plan, {
            'logical_switches': st.list_ls(), 'ports': st.list_ports(),
            'gateway_connections': st.list_connections()}),
        node_tables=answers.get,
        port_counters=lambda: {'hv1': []}))
    r = client.get('/api/v1/transport-nodes/hv1/tables')
    assert r.status_code == 200 and r.json()['flows']
    r = client.get('/api/v1/transport-nodes/hv2/tables')   # no answer
    assert r.status_code == 503
    assert r.json()['error']['field'] == 'name'
    assert 'no session' in r.json()['error']['message']
    r = client.get('/api/v1/transport-nodes/nope/tables')
    assert r.status_code == 404 and 'GET /transport-nodes' in r.text
    assert 'counters' not in client.get('/api/v1/map').json()
    assert client.get('/api/v1/map?counters=true').json()['counters'] == {
        'hv1': []}
