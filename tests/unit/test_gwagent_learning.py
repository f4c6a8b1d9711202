"""A software gateway learns the physical MACs on its cable and publishes
them while active; the controller reads that report and places each MAC
behind the gateway, in the logical switch its (cable, VLAN) is bound to."""
import copy

from controllers import intent, nodedb
from devices.gwagent import learning as ln

SRV, VM = '02:00:00:0a:00:01', '02:00:00:01:00:11'


def _frame(src, vlan=0, ethertype=b'\x08\x06'):
    tag = b'\x81\x00' + vlan.to_bytes(2, 'big') if vlan else b''
    return b'\xff' * 6 + bytes.fromhex(src.replace(':', '')) + tag + \
        ethertype + b'\0' * 28


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
    assert ln.frame_source(_frame(SRV, 0, ln.CFM)) is None    # a CCM
    assert ln.frame_source(_frame(SRV, 100, ln.CFM)) is None
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
    'gw2': {'role': 'sw_gateway', 'index': 22, 'tunnel_ip': '1.0.0.22/24',
            'mgmt_ip': '198.18.0.42/16',
            'intfs': [{'name': 'seg1', 'peer': 'seg', 'ofport': 3,
                       'kind': 'physical'},
                      {'name': 'lab2', 'peer': 'other', 'ofport': 4,
                       'kind': 'physical'}]},
    'vm1': {'role': 'vm', 'mac': VM, 'ip': '10.1.0.11/24',
            'intfs': [{'name': 'vm1-eth0', 'peer': 'hv1'}]}}}


def test_a_hypervisor_sends_to_a_reported_server_through_its_gateway():
    """... and to the other gateway of that segment, which drops it while
    standing by and forwards it the moment it takes over: the controller
    re-points nothing at a takeover."""
    from controllers import core as core_mod
    core = core_mod.Core(PLAN)
    ls = core.store.create_ls({'name': 'web', 'vni': 5001})
    core.store.attach(ls['id'], {'attachment': 'vm1'})
    conn = core.store.connect_gateway({'ls_id': ls['id'], 'gateway': 'gw1',
                                       'port': 'seg1', 'vlan': 0})
    core.store.connect_gateway({'ls_id': ls['id'], 'gateway': 'gw2',
                                'port': 'seg1', 'vlan': 0})
    core.gateway_macs_changed('gw1', {('seg1', 0, SRV), ('seg1', 7, VM)})
    assert core.learned_macs() == {'gw1': [(5001, SRV)]}

    def to_server(node='hv1'):
        flows, _ = intent.device_intent(core.store.desired(), node,
                                        core.observed)
        return [f['actions'] for f in flows if f['table'] == 1 and
                f['match'].get('eth_dst') == SRV and
                f['match'].get('metadata') == 0]
    t1, t2 = (intent.tunnel_port(core.store.nodes, g) for g in ('gw1', 'gw2'))
    assert to_server() == [[('output', t1), ('output', t2)]]
    assert to_server('gw2') == []        # its own segment: to its cable
    # gw2 takes over and reports it: gw2 first now
    core.gateway_macs_changed('gw2', {('seg1', 0, SRV)})
    assert core.learned_macs() == {'gw2': [(5001, SRV)]}
    assert to_server() == [[('output', t2), ('output', t1)]]
    core.gateway_macs_changed('gw2', set())
    assert to_server() == [[('output', t1), ('output', t2)]]
    # gw1's connection goes: its report no longer maps to a switch
    core.store.disconnect_gateway(conn['id'])
    core.on_api_change()
    assert core.learned_macs() == {} and to_server() == []


def test_the_gateways_of_one_segment_form_a_group():
    from controllers import core as core_mod
    _, nodes = core_mod.inventory_from_plan(PLAN)
    desired = {'nodes': nodes,
               'logical_switches': [{'id': 1, 'vni': 5001},
                                    {'id': 2, 'vni': 5002}],
               'gateway_connections': [
                   {'gateway': 'gw2', 'port': 'seg1', 'vlan': 0, 'ls_id': 1},
                   {'gateway': 'gw1', 'port': 'seg1', 'vlan': 0, 'ls_id': 1},
                   {'gateway': 'gw2', 'port': 'lab2', 'vlan': 0, 'ls_id': 2},
                   {'gateway': 'gw1', 'port': 'seg1', 'vlan': 7,
                    'ls_id': 2}]}
    assert intent.gateway_group(desired, 'gw2', 5001) == ['gw2', 'gw1']
    assert intent.gateway_group(desired, 'gw1', 5001) == ['gw1', 'gw2']
    # 5002 is bridged on two different segments: no group
    assert intent.gateway_group(desired, 'gw1', 5002) == ['gw1']
    assert intent.gateway_group(desired, 'gw2', 5002) == ['gw2']
    assert intent.gateway_group(desired, 'hv1', 5001) == []


def _link_msg(index, flags, kind=16):
    from devices.gwagent import carrier
    body = carrier.IFINFO.pack(0, 1, index, flags, 0) + b'\0' * 8   # attrs
    return carrier.NLMSG_HDR.pack(16 + len(body), kind, 0, 0, 0) + body


def test_link_messages_from_the_kernel():
    from devices.gwagent import carrier as c
    up, admin_up_no_carrier = c.IFF_UP | c.IFF_LOWER_UP, c.IFF_UP
    data = _link_msg(7, up) + _link_msg(8, admin_up_no_carrier) + \
        _link_msg(9, 0) + _link_msg(7, up, kind=c.RTM_DELLINK)
    assert c.parse(data) == [(7, True), (8, False), (9, False), (7, False)]
    assert c.parse(b'') == [] and c.parse(b'\x05\0\0\0') == []
    # a message claiming more than the datagram holds ends the parse
    assert c.parse(_link_msg(7, up)[:-4]) == []


def test_the_kernel_says_a_cable_is_gone_before_ovs_and_back_only_with_it():
    """The agent counts a kernel loss at once, a kernel return only once
    OVS's port status agrees (a claim needs a port the data plane uses)."""
    from devices.gwagent.agent import Agent
    a = Agent.__new__(Agent)
    a.cable, a.carrier, a.ovs_carrier, a.kernel_up = 'seg1', None, None, None
    a.log = lambda msg: None
    a.macs = __import__('devices.hwvtep.macs', fromlist=['x']).MacTable()
    a._set_carrier(True, 'port description')
    assert a.carrier is True
    a._kernel_link(False)                    # cut: known at once
    assert a.carrier is False
    a._kernel_link(True)                     # back in the kernel...
    assert a.carrier is True                 # OVS never saw it go
    a._kernel_link(False)
    a._set_carrier(False, 'port status')     # OVS catches up
    a._kernel_link(True)
    assert a.carrier is False                # ... not until OVS says so
    a._set_carrier(True, 'port status')
    assert a.carrier is True
