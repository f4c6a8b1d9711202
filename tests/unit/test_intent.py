"""The controller's flows, checked by forwarding frames through a fake
switch: where a frame goes, not what the flow text says (Faucet-style).
Lab: the figure 9-10 layout; VM1, VM2 on HV1 and VM3 on HV2 in logical
switch 1 (VNI 5001); VM4 on HV2 in logical switch 2 (VNI 5002); HV3 has no
member of logical switch 1."""
import pytest

from controllers import intent, model

from .fakeofswitch import forward
from .provisioned import store_for

BCAST = 'ff:ff:ff:ff:ff:ff'
NODES = {'sn1': {'role': 'service_node', 'tunnel_ip': '1.0.0.1', 'index': 1},
         'sn2': {'role': 'service_node', 'tunnel_ip': '1.0.0.2', 'index': 2},
         'hv1': {'role': 'hypervisor', 'tunnel_ip': '1.0.0.11', 'index': 11},
         'hv2': {'role': 'hypervisor', 'tunnel_ip': '1.0.0.12', 'index': 12},
         'hv3': {'role': 'hypervisor', 'tunnel_ip': '1.0.0.13', 'index': 13},
         'gw1': {'role': 'sw_gateway', 'tunnel_ip': '1.0.0.21', 'index': 21,
                 'ports': {'seg1': 2}}}
SERVER_S = '02:00:00:00:00:53'
VMS = {'vm1': ('hv1', 2, '02:00:00:00:00:01'),
       'vm2': ('hv1', 3, '02:00:00:00:00:02'),
       'vm3': ('hv2', 2, '02:00:00:00:00:03'),
       'vm4': ('hv2', 3, '02:00:00:00:00:04'),
       'vm5': ('hv3', 2, '02:00:00:00:00:05')}


def tun(peer):
    return intent.tunnel_port(NODES, peer)


@pytest.fixture
def store():
    inv = {vm: {'transport_node': hv, 'ofport': p, 'mac': mac}
           for vm, (hv, p, mac) in VMS.items()}
    s = model.Store(inventory=inv, nodes=NODES)
    ls1 = s.create_ls({'name': 'ls1', 'vni': 5001})
    ls2 = s.create_ls({'name': 'ls2', 'vni': 5002})
    for vm in ('vm1', 'vm2', 'vm3'):
        s.attach(ls1['id'], {'attachment': vm})
    for vm in ('vm4', 'vm5'):
        s.attach(ls2['id'], {'attachment': vm})
    s.connect_gateway({'ls_id': ls1['id'], 'gateway': 'gw1', 'port': 'seg1',
                       'vlan': 100})
    return s


def at(store, node, pkt, live=None):
    flows, groups = intent.device_intent(store.desired(), node)
    return forward(flows, groups, pkt, live)


def test_arp_from_vm1_reaches_vm2_locally_and_one_service_node(store):
    out = at(store, 'hv1', {'in_port': 2, 'eth_dst': BCAST})
    assert out == [(3, 5001), (tun('sn1'), 5001)]


def test_service_node_replicates_only_to_members(store):
    out = at(store, 'sn1', {'in_port': tun('hv1'), 'tunnel_id': 5001,
                            'eth_dst': BCAST})
    # HV2 and the gateway; not HV3 (no member), not back to HV1
    assert out == [(tun('hv2'), 5001), (tun('gw1'), 5001)]


def test_gateway_floods_a_tunnelled_arp_onto_its_vlan(store):
    out = at(store, 'gw1', {'in_port': tun('sn1'), 'tunnel_id': 5001,
                            'eth_dst': BCAST})
    assert out == [(2, 'vlan100')]


def test_gateway_tunnels_the_reply_straight_to_hv1(store):
    # figure 11: server S answers VM1; the gateway knows VM1's VTEP
    out = at(store, 'gw1', {'in_port': 2, 'vlan': 100,
                            'eth_dst': VMS['vm1'][2]})
    assert out == [(tun('hv1'), 5001)]
    assert at(store, 'gw1', {'in_port': 2, 'vlan': 200,
                             'eth_dst': VMS['vm1'][2]}) == []
    assert at(store, 'gw1', {'in_port': 2, 'eth_dst': BCAST}) == []


def test_broadcast_from_the_physical_side_goes_to_a_service_node(store):
    out = at(store, 'gw1', {'in_port': 2, 'vlan': 100, 'eth_dst': BCAST})
    assert out == [(tun('sn1'), 5001)]


def test_flood_from_a_tunnel_stays_local_and_in_its_vni(store):
    out = at(store, 'hv2', {'in_port': tun('sn1'), 'tunnel_id': 5001,
                            'eth_dst': BCAST})
    assert out == [(2, 5001)]                   # VM3 only, never VM4


def test_known_remote_mac_goes_straight_to_its_vtep(store):
    out = at(store, 'hv2', {'in_port': 2, 'eth_dst': VMS['vm1'][2]})
    assert out == [(tun('hv1'), 5001)]
    out = at(store, 'hv1', {'in_port': tun('hv2'), 'tunnel_id': 5001,
                            'eth_dst': VMS['vm1'][2]})
    assert out == [(2, 5001)]


def test_split_horizon_never_sends_tunnel_traffic_back_into_tunnels(store):
    out = at(store, 'hv1', {'in_port': tun('sn1'), 'tunnel_id': 5001,
                            'eth_dst': VMS['vm3'][2]})
    assert out == []


def test_a_peer_delivers_only_the_vnis_it_carries(store):
    """hv3 carries only VNI 5002; gw1 only 5001: frames they tunnel with
    another VNI are dropped at hv2's ingress (a forged or buggy VTEP
    cannot inject into a tenant it is no member of); members and service
    nodes still deliver."""
    for vm in ('vm3', 'vm4'):
        mac = VMS[vm][2]
        vni = 5001 if vm == 'vm3' else 5002
        for peer, want in (('hv1', vni == 5001), ('gw1', vni == 5001),
                           ('hv3', vni == 5002), ('sn1', True),
                           ('sn2', True)):
            for dst in (mac, BCAST):
                out = at(store, 'hv2', {'in_port': tun(peer),
                                        'tunnel_id': vni, 'eth_dst': dst})
                assert bool(out) == want, (peer, vni, dst, out)
                assert all(v == vni for _, v in out)
    # a VNI nobody here carries, from a service node: nowhere
    assert at(store, 'hv2', {'in_port': tun('sn1'), 'tunnel_id': 7777,
                             'eth_dst': BCAST}) == []


def test_logical_switches_are_isolated(store):
    out = at(store, 'hv2', {'in_port': 3, 'eth_dst': VMS['vm3'][2]})
    assert (2, 5002) not in out and all(v == 5002 for _, v in out)


def test_dead_service_node_fails_over_in_the_data_plane(store):
    flows, groups = intent.device_intent(store.desired(), 'hv1')
    live = {tun('sn2'), 2, 3}
    out = forward(flows, groups, {'in_port': 2, 'eth_dst': BCAST}, live)
    assert out == [(3, 5001), (tun('sn2'), 5001)]


def test_source_node_replication_sends_to_every_member_vtep(store):
    ls1 = store.list_ls()[0]
    store.update_ls(ls1['id'], {'replication_mode': 'source_node'})
    out = at(store, 'hv1', {'in_port': 2, 'eth_dst': BCAST})
    assert out == [(3, 5001), (tun('hv2'), 5001), (tun('gw1'), 5001)]


def test_hypervisor_without_members_gets_no_flood_flows(store):
    flows, _ = intent.device_intent(store.desired(), 'hv3')
    assert not any(f['match'].get('tunnel_id') == 5001 for f in flows)


def test_tunnels_carry_bfd_only_towards_service_nodes(store):
    t = intent.tunnels(store.desired(), 'hv1')
    assert {p for p, x in t.items() if x['bfd']} == {'sn1', 'sn2'}
    assert 'sn2' not in intent.tunnels(store.desired(), 'sn1')


def test_hardware_vtep_intent(store):
    nodes = dict(NODES, vtep1={'role': 'hw_vtep', 'tunnel_ip': '1.0.0.31',
                               'index': 31, 'ports': {'bm1': 2}})
    store.nodes = nodes
    ls1 = store.list_ls()[0]
    store.connect_gateway({'ls_id': ls1['id'], 'gateway': 'vtep1',
                           'port': 'bm1', 'vlan': 0})
    want = intent.vtep_intent(store.desired(), 'vtep1')
    assert want['logical_switches'] == {'ls1': {'vni': 5001,
                                                'mode': 'service_node'}}
    assert want['bindings'] == {('bm1', 0): 'ls1'}
    assert want['ucast_remote'] == {('ls1', VMS['vm1'][2]): '1.0.0.11',
                                    ('ls1', VMS['vm2'][2]): '1.0.0.11',
                                    ('ls1', VMS['vm3'][2]): '1.0.0.12'}
    assert want['mcast_remote'] == {'ls1': ['1.0.0.1', '1.0.0.2']}
    # the VTEP runs BFD to every service node (it picks a healthy one)
    bfd = {'enable': 'true', 'min_rx': '100', 'min_tx': '100'}
    assert want['bfd'] == {'1.0.0.1': bfd, '1.0.0.2': bfd}
    # a dead service node leaves unknown-dst (BFD to it stays on: it may
    # come back); source_node: every member
    dead = intent.vtep_intent(store.desired(), 'vtep1', {'dead': {'sn1'}})
    assert dead['mcast_remote'] == {'ls1': ['1.0.0.2']}
    assert dead['bfd'] == want['bfd']
    # ... unless the VTEP runs BFD to it itself: then it picks
    picks = intent.vtep_intent(store.desired(), 'vtep1', {
        'dead': {'sn1'}, 'bfd_running': {'1.0.0.1', '1.0.0.2'}})
    assert picks['mcast_remote'] == {'ls1': ['1.0.0.1', '1.0.0.2']}
    store.update_ls(ls1['id'], {'replication_mode': 'source_node'})
    src = intent.vtep_intent(store.desired(), 'vtep1')
    assert src['logical_switches']['ls1']['mode'] == 'source_node'
    assert src['mcast_remote'] == {'ls1': ['1.0.0.11', '1.0.0.12',
                                           '1.0.0.21']}


def test_hardware_vtep_without_bindings_wants_no_rows_but_bfd(store):
    store.nodes = dict(NODES, vtep1={'role': 'hw_vtep', 'tunnel_ip':
                                     '1.0.0.31', 'index': 31, 'ports': {}})
    want = intent.vtep_intent(store.desired(), 'vtep1')
    assert (want['logical_switches'], want['bindings'],
            want['ucast_remote'], want['mcast_remote']) == ({}, {}, {}, {})
    assert set(want['bfd']) == {'1.0.0.1', '1.0.0.2'}


def test_macs_a_vtep_learned_are_installed_on_hypervisors(store):
    store.nodes = dict(NODES, vtep1={'role': 'hw_vtep', 'tunnel_ip':
                                     '1.0.0.31', 'index': 31, 'ports': {}})
    mac5 = '02:00:00:00:00:55'
    observed = {'vtep_macs': {(5001, mac5): 'vtep1'}}
    flows, groups = intent.device_intent(store.desired(), 'hv1', observed)
    out = forward(flows, groups, {'in_port': 2, 'eth_dst': mac5})
    assert out == [(intent.tunnel_port(store.nodes, 'vtep1'), 5001)]


def test_a_service_node_is_dead_when_most_reporters_see_it_down():
    live = {('hv1', 'sn1'): False, ('hv2', 'sn1'): False,
            ('hv3', 'sn1'): True, ('hv1', 'sn2'): False,
            ('hv2', 'sn2'): True, ('hv3', 'sn2'): True}
    assert intent.dead_service_nodes(NODES, live) == {'sn1'}
    assert intent.dead_service_nodes(NODES, {}) == set()


def test_tunnel_changes_add_missing_fix_changed_and_drop_extra():
    from controllers import tunnels
    want = [{'name': 'vxsn1', 'port': 1001, 'remote_ip': '1.0.0.1',
             'bfd': True},
            {'name': 'vxhv2', 'port': 1012, 'remote_ip': '1.0.0.12',
             'bfd': False}]
    have = {'vxsn1': {'remote_ip': '1.0.0.2', 'ofport': 1001, 'bfd': True},
            'vxhv2': {'remote_ip': '1.0.0.12', 'ofport': 1012, 'bfd': True},
            'vxold': {'remote_ip': '1.0.0.9', 'ofport': 1009, 'bfd': False}}
    add, delete, bfd = tunnels.plan_changes(want, have)
    assert (add, delete) == (['vxsn1'], ['vxsn1', 'vxold'])
    assert bfd == ['vxhv2', 'vxsn1']     # BFD off on hv2, on for new sn1


def test_a_mac_moves_to_the_vtep_that_newly_learned_it():
    from controllers.intent import merge_vtep_macs
    key = (5001, '02:00:00:02:00:20')
    owners = merge_vtep_macs({}, set(), 'vtep1', {key})
    assert owners == {key: 'vtep1'}
    # the server's bond fails over: vtep2 learns it, vtep1 still lists it
    owners = merge_vtep_macs(owners, set(), 'vtep2', {key})
    assert owners == {key: 'vtep2'}
    # vtep1 reports again (another MAC changed) with the stale entry: it
    # must not take the server back
    other = (5001, '02:00:00:02:00:21')
    owners = merge_vtep_macs(owners, {key}, 'vtep1', {key, other})
    assert owners == {key: 'vtep2', other: 'vtep1'}
    # vtep1's stale entry ages out: vtep2 keeps it
    owners = merge_vtep_macs(owners, {key, other}, 'vtep1', {other})
    assert owners == {key: 'vtep2', other: 'vtep1'}
    # vtep2 loses it: gone
    assert merge_vtep_macs(owners, {key}, 'vtep2', set()) == {
        other: 'vtep1'}


def test_a_mac_goes_to_a_vtep_that_still_reports_it():
    """The active leaf of a dual-homed server fails again: its standby
    switch learned the server the first time and still lists it (a port
    that never lost carrier keeps its MACs until they age)."""
    from controllers.intent import merge_vtep_macs
    key = (5001, '02:00:00:02:00:20')
    reported = {'vtep1': {key}, 'vtep2': {key}}
    owners = {key: 'vtep1'}        # the server came back to vtep1
    owners = merge_vtep_macs(owners, {key}, 'vtep1', set(), reported)
    assert owners == {key: 'vtep2'}


def test_a_declared_vm_port_wins_over_a_stale_vtep_entry(store):
    """P2V: the server's MAC now belongs to VM3's port on HV2, while the
    hardware VTEP still lists it as local until it ages out."""
    store.nodes = dict(NODES, vtep1={'role': 'hw_vtep', 'tunnel_ip':
                                     '1.0.0.31', 'index': 31, 'ports': {}})
    mac3 = VMS['vm3'][2]
    observed = {'vtep_macs': {(5001, mac3): 'vtep1'}}
    flows, groups = intent.device_intent(store.desired(), 'hv1', observed)
    out = forward(flows, groups, {'in_port': 2, 'eth_dst': mac3})
    assert out == [(tun('hv2'), 5001)]
    # on HV2 itself the MAC is local: no flow sends it to the VTEP
    flows, _ = intent.device_intent(store.desired(), 'hv2', observed)
    to_vtep = ('output', intent.tunnel_port(store.nodes, 'vtep1'))
    assert not [f for f in flows if f['match'].get('eth_dst') == mac3
                and to_vtep in f['actions']]


@pytest.mark.parametrize('lab,narrowed', [('clos', False), ('vcf', False),
                                          ('clos', True), ('vcf', True)])
def test_a_pass_over_the_touched_sections_ends_where_a_full_one_does(
        lab, narrowed):
    """Sections recomputed after a change (changed_sections) bring every
    node to exactly the flows a full recomputation gives: a VM moved, a
    port detached, a MAC a hardware VTEP or a software gateway learned.
    `narrowed`: each node computes only the keys that concern it
    (split_keys, node_keys: the controller's passes)."""
    from controllers import intent
    from controllers.ofdriver import cookie, diff_sections, slot
    from topologies import expand, labs
    plan = expand.expand(labs.resolve(lab))
    st = store_for(plan)
    observed = {'vtep_macs': {}, 'dead': set()}
    edges = sorted(n for n, p in st.nodes.items() if p['role'] != 'hw_vtep')
    ctx = intent.context(st.desired(), observed)
    sent, installed = {}, {}
    for n in edges:
        secs, _ = intent.node_sections(ctx, n)
        sent[n] = {k: {cookie(f): slot(f) for f in fl}
                   for k, fl in secs.items() if fl}
        installed[n] = set().union(*sent[n].values())
    vms = sorted(st.inventory)
    hvs = sorted(n for n, p in st.nodes.items() if p['role'] == 'hypervisor')
    vni = st.list_ls()[0]['vni']
    gws = [n for n, p in st.nodes.items() if p['role'] in ('hw_vtep',
                                                          'sw_gateway')]

    def move():
        where = st.inventory[vms[0]]['transport_node']
        st.locate(vms[0], next(h for h in hvs if h != where), 300)

    def detach():
        st.detach(st.list_ports()[-1]['id'])

    def learned():
        observed['vtep_macs'] = {(vni, f'02:99:00:00:00:0{i}'): g
                                 for i, g in enumerate(sorted(gws))}
    def firewall():
        st.create_group({'name': 'g', 'vms': [vms[1]]})
        st.create_rule({'name': 'r', 'priority': 5, 'action': 'drop',
                        'protocol': 'udp', 'destination': {'group': 'g'}})

    def firewall_changed():
        st.update_rule(st.list_rules()[0]['id'], {
            'name': 'r', 'priority': 5, 'action': 'allow',
            'protocol': 'tcp', 'port': 22, 'destination': {'group': 'g'}})

    def member_moved():                  # the group's address moves
        move()
        st.update_group(st.list_groups()[0]['id'],
                        {'name': 'g', 'vms': [vms[0], vms[1]]})

    for change in (move, detach, learned, move, firewall, firewall_changed,
                   member_moved):
        change()
        after = intent.context(st.desired(), observed)
        keys = intent.changed_sections(ctx, after)
        assert keys is not None and keys, change.__name__   # not a full pass
        split = intent.split_keys(after, keys)
        for n in edges:
            mine = intent.node_keys(split, n, keys, sent[n]) if narrowed \
                else keys
            secs, _ = intent.node_sections(after, n, mine)
            diff_sections(secs, sent[n], installed[n])
            full, _ = intent.device_intent(st.desired(), n, observed)
            assert installed[n] == {cookie(f) for f in full}, (
                change.__name__, n)
        ctx = after


def test_stuck_bfd_sessions_are_refreshed_at_most_every_so_often():
    down = {('hv1', 'sn1'): 100.0, ('hv2', 'sn1'): 104.0}
    # hv1's has been down 5 s (> 3 s): refresh it; hv2's only 1 s
    assert intent.stuck_bfd(down, {}, 105.0, 3.0, 10.0) == [('hv1', 'sn1')]
    # refreshed at 105: not again before max(10, 2 * 3) s have passed
    done = {('hv1', 'sn1'): 105.0}
    assert intent.stuck_bfd(down, done, 110.0, 3.0, 10.0) == [('hv2', 'sn1')]
    assert intent.stuck_bfd(down, done, 115.5, 3.0, 10.0) == [
        ('hv1', 'sn1'), ('hv2', 'sn1')]
    # a long stuck interval stretches the wait: 2 * 8 s
    assert intent.stuck_bfd(down, done, 118.0, 8.0, 10.0) == [('hv2', 'sn1')]
    assert intent.stuck_bfd({}, {}, 1e9, 3.0, 10.0) == []


def test_a_node_computes_only_the_firewall_sections_of_its_own_ports():
    from controllers import intent
    ctx = {'owner': {(5001, 'a'): 'hv1', (5001, 'b'): 'hv2',
                     (5001, 'c'): 'gw1'}}
    keys = {('dfw', 5001, 'a'), ('dfw', 5001, 'b'), ('dfw', 5001, 'gone'),
            ('mac', 5001, 'a'), ('flood', 5001)}
    split = intent.split_keys(ctx, keys)
    assert split == ({('mac', 5001, 'a'), ('flood', 5001)},
                     {'hv1': {('dfw', 5001, 'a')},
                      'hv2': {('dfw', 5001, 'b')}})
    common = {('mac', 5001, 'a'), ('flood', 5001)}
    assert intent.node_keys(split, 'hv1', keys, {}) == \
        common | {('dfw', 5001, 'a')}
    # hv3 held the section of a port that left, and one not changed
    had = {('dfw', 5001, 'gone'): {}, ('dfw', 5001, 'z'): {},
           ('mac', 5001, 'q'): {}}
    assert intent.node_keys(split, 'hv3', keys, had) == \
        common | {('dfw', 5001, 'gone')}
    assert intent.node_keys(split, 'sn1', keys, {}) == common


def test_a_pass_takes_the_switches_whose_own_ports_changed_first():
    from controllers import intent
    switches = [(3, 'hv3'), (1, 'hv1'), (2, 'hv2'), (9, 'sn1')]
    split = ({('flood', 5001)}, {'hv3': {('dfw', 5001, 'c')},
                                 'hv2': {('dfw', 5001, 'b')}})
    assert intent.pass_order(split, switches) == [2, 3, 1, 9]
    assert intent.pass_order(None, switches) == [1, 2, 3, 9]
