"""A software gateway learns the physical MACs on its cable and publishes
them while active; the controller reads that report and places each MAC
behind the gateway, in the logical switch its (cable, VLAN) is bound to."""
import copy

from controllers import intent, nodedb
from devices.gwagent import learning as ln

SRV, VM = '02:00:00:0a:00:01', '02:00:00:01:00:11'


def _frame(src, vlan=0):
    tag = b'\x81\x00' + vlan.to_bytes(2, 'big') if vlan else b''
    return b'\xff' * 6 + bytes.fromhex(src.replace(':', '')) + tag + \
        b'\x08\x06' + b'\0' * 28


def test_both_states_learn_only_an_active_gateway_forwards():
    def shape(flows):
        return sorted((f['table'], tuple(sorted(f['match'].items())),
                       tuple(f['actions']), f['goto']) for f in flows)
    assert shape(ln.state_flows(False)) == [
        (ln.SEGMENT, (('in_port', ln.CABLE),), (), ln.LEARN)]
    assert shape(ln.state_flows(True)) == [
        (ln.SEGMENT, (('in_port', ln.CABLE),), (), ln.LEARN),
        (ln.SEGMENT, (('in_port', ln.PATCH),), (('output', ln.CABLE),), None),
        (ln.FORWARD, (), (('output', ln.PATCH),), None)]
    # an unknown source goes to the agent and on
    (miss,) = ln.base_flows()
    assert (miss['table'], miss['actions'], miss['goto']) == (
        ln.LEARN, [('controller',)], ln.FORWARD)


def test_a_learned_mac_is_a_flow_that_ages_and_says_so():
    f = ln.learned_flow(100, SRV, age=30)
    assert f['match'] == {'in_port': ln.CABLE, 'vlan_vid': 100,
                          'eth_src': SRV}
    assert (f['table'], f['goto'], f['idle'], f['notify']) == (
        ln.LEARN, ln.FORWARD, 30, True)


def test_the_source_of_untagged_and_tagged_frames():
    assert ln.frame_source(_frame(SRV)) == (0, SRV)
    assert ln.frame_source(_frame(SRV, 100)) == (100, SRV)
    assert ln.frame_source(b'\0' * 13) is None
    assert ln.frame_source(_frame(SRV, 100)[:16]) is None


def test_the_report_leaves_vm_macs_out_and_is_bounded():
    learned = {(0, SRV), (100, SRV), (0, VM)}
    assert ln.report(learned, [(VM, 0)]) == f'0/{SRV} 100/{SRV}'
    assert ln.report(learned, [(VM, 0)], limit=1) == f'0/{SRV}'
    assert ln.report(set()) == ''


def test_the_controller_reads_what_the_agent_writes():
    value = ln.report({(0, SRV), (100, VM)})
    rows = [{'name': 'seg1', 'external_ids': {ln.REPORT_KEY: value}},
            {'name': 'vxsn1', 'external_ids': {}},
            {'name': 'seg2', 'external_ids': {
                ln.REPORT_KEY: '5000/02:00:00:00:00:01 x/y 7/zz:00 '
                               f'7/{SRV.upper()}'}}]
    assert ln.REPORT_KEY == nodedb.MACS_KEY
    assert nodedb.gateway_macs_of(rows) == {
        ('seg1', 0, SRV), ('seg1', 100, VM), ('seg2', 7, SRV)}


DESIRED = {'logical_switches': [{'id': 1, 'vni': 5001},
                                {'id': 2, 'vni': 5002}],
           'gateway_connections': [
               {'gateway': 'gw1', 'port': 'seg1', 'vlan': None, 'ls_id': 1},
               {'gateway': 'gw1', 'port': 'seg1', 'vlan': 100, 'ls_id': 2},
               {'gateway': 'gw2', 'port': 'seg1', 'vlan': None, 'ls_id': 1}]}


def test_a_reported_mac_lands_in_the_switch_its_cable_and_vlan_bind():
    raw = {('seg1', 0, SRV), ('seg1', 100, VM), ('seg1', 200, SRV),
           ('seg9', 0, SRV)}
    assert intent.gateway_macs(DESIRED, 'gw1', raw) == {
        (5001, SRV), (5002, VM)}
    assert intent.gateway_macs(DESIRED, 'gw2', raw) == {(5001, SRV)}
    none = copy.deepcopy(DESIRED)
    none['gateway_connections'] = []
    assert intent.gateway_macs(none, 'gw1', raw) == set()


def test_a_mac_moves_to_the_gateway_that_reports_it_after_a_takeover():
    owners = intent.merge_vtep_macs({}, set(), 'gw1', {(5001, SRV)})
    assert owners == {(5001, SRV): 'gw1'}
    # gw2 takes over and reports it while gw1's report is still there
    owners = intent.merge_vtep_macs(owners, set(), 'gw2', {(5001, SRV)},
                                    {'gw1': {(5001, SRV)}})
    assert owners == {(5001, SRV): 'gw2'}
    # gw1 stands down (reports nothing): gw2 keeps it
    owners = intent.merge_vtep_macs(owners, {(5001, SRV)}, 'gw1', set(),
                                    {'gw2': {(5001, SRV)}})
    assert owners == {(5001, SRV): 'gw2'}


PLAN = {'nodes': {
    'sn1': {'role': 'service_node', 'index': 1, 'tunnel_ip': '1.0.0.1/24',
            'mgmt_ip': '198.18.0.11/16', 'intfs': []},
    'hv1': {'role': 'hypervisor', 'index': 11, 'tunnel_ip': '1.0.0.11/24',
            'mgmt_ip': '198.18.0.21/16',
            'intfs': [{'name': 'hv1-vm1', 'peer': 'vm1', 'ofport': 2,
                       'kind': 'vm'}]},
    'gw1': {'role': 'sw_gateway', 'index': 21, 'tunnel_ip': '1.0.0.21/24',
            'mgmt_ip': '198.18.0.41/16',
            'intfs': [{'name': 'seg1', 'peer': 'seg', 'ofport': 3,
                       'kind': 'physical'}]},
    'vm1': {'role': 'vm', 'mac': VM, 'ip': '10.1.0.11/24',
            'intfs': [{'name': 'vm1-eth0', 'peer': 'hv1'}]}}}


def test_a_hypervisor_sends_to_a_reported_server_through_its_gateway():
    from controllers import core as core_mod
    core = core_mod.Core(PLAN)
    ls = core.store.create_ls({'name': 'web', 'vni': 5001})
    core.store.attach(ls['id'], {'attachment': 'vm1'})
    conn = core.store.connect_gateway({'ls_id': ls['id'], 'gateway': 'gw1',
                                       'port': 'seg1', 'vlan': 0})
    core.gateway_macs_changed('gw1', {('seg1', 0, SRV), ('seg1', 7, VM)})
    assert core.learned_macs() == {'gw1': [(5001, SRV)]}

    def to_server():
        flows, _ = intent.device_intent(core.store.desired(), 'hv1',
                                        core.observed)
        return [f['actions'] for f in flows if f['table'] == 1 and
                f['match'].get('eth_dst') == SRV and
                f['match'].get('metadata') == 0]
    gw_tunnel = intent.tunnel_port(core.store.nodes, 'gw1')
    assert to_server() == [[('output', gw_tunnel)]]
    # the connection goes: the report no longer maps to a switch
    core.store.disconnect_gateway(conn['id'])
    core.on_api_change()
    assert core.learned_macs() == {} and to_server() == []
