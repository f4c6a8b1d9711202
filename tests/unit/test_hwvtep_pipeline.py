"""The native hardware VTEP's forwarding, checked by sending frames through
a fake switch built from the pipeline's flows (where a frame goes, not
what the flows say).

Switch vtep1: port bm1 (ofport 1) untagged in ls1 (VNI 5001), port bm2
(ofport 2) VLAN 100 in ls1 and VLAN 200 in ls2 (VNI 5002). The VXLAN port
is 4000. Service nodes 10.0.0.1 and 10.0.0.2; VM A (on 10.0.0.11) in ls1.
"""
from devices.hwvtep import macs as macmod, pipeline as pl

from .fakevtep import Switch

VX, SN1, SN2, HV1, HV2 = 4000, '10.0.0.1', '10.0.0.2', '10.0.0.11', \
    '10.0.0.12'
BCAST = 'ff:ff:ff:ff:ff:ff'
VM_A, SRV, OTHER = '02:00:00:00:00:0a', '02:00:00:00:00:05', \
    '02:00:00:00:00:77'
ME = {'name': 'vtep1', 'ports': {'bm1': 1, 'bm2': 2}, 'vx': VX,
      'fabric': None}


def config(mode='service_node'):
    return {'lss': {'ls1': {'vni': 5001, 'mode': mode},
                    'ls2': {'vni': 5002, 'mode': mode}},
            'bindings': {('bm1', 0): 'ls1', ('bm2', 100): 'ls1',
                         ('bm2', 200): 'ls2'},
            'ucast_remote': {('ls1', VM_A): HV1},
            'mcast_remote': {('ls1', 'unknown-dst'): [SN2, SN1]}}


def switch(cfg=None, macs=None, live=None, bfd_ports=None, ports_live=None,
           member=ME, members=(ME,)):
    flows, groups = pl.member_pipeline(member, list(members), cfg or config(),
                                       macs or {}, live, bfd_ports)
    return Switch(flows, groups, ports_live)


def test_broadcast_from_a_server_goes_to_the_other_binding_and_one_service_node():
    out, punted = switch().send(1, BCAST)
    assert out == [(2, (100,), 5001, None), (VX, (), 5001, SN1)]
    assert punted        # the source is new: the switch learns it


def test_broadcast_from_a_tunnel_reaches_local_bindings_only():
    out, _ = switch().send(VX, BCAST, tunnel_id=5001)
    assert out == [(1, (), 5001, None), (2, (100,), 5001, None)]


def test_unknown_vni_from_a_tunnel_is_dropped():
    assert switch().send(VX, BCAST, tunnel_id=7777) == ([], False)


def test_unicast_to_a_remote_mac_is_tunnelled_to_its_locator_only():
    out, _ = switch().send(1, VM_A)
    assert out == [(VX, (), 5001, HV1)]


def test_split_horizon_remote_mac_from_a_tunnel_is_dropped():
    assert switch().send(VX, VM_A, tunnel_id=5001)[0] == []


def test_vlans_keep_tenants_apart():
    out, _ = switch().send(2, BCAST, vlans=(200,))
    assert out == []                 # ls2 has no other binding, no locator
    out, _ = switch().send(2, BCAST, vlans=(300,))
    assert out == []                 # unbound VLAN: dropped
    out, _ = switch().send(VX, BCAST, tunnel_id=5002)
    assert out == [(2, (200,), 5002, None)]


def test_a_learned_mac_gets_unicast_and_is_not_asked_about_again():
    macs = {('ls1', SRV): macmod.Entry('vtep1', 'bm2', 100)}
    sw = switch(macs=macs)
    assert sw.send(VX, SRV, tunnel_id=5001)[0] == [(2, (100,), 5001, None)]
    assert sw.send(1, SRV)[0] == [(2, (100,), 5001, None)]
    out, punted = sw.send(2, VM_A, eth_src=SRV, vlans=(100,))
    assert out == [(VX, (), 5001, HV1)] and not punted
    # the same MAC on another binding is news (it moved): asked again
    assert sw.send(1, VM_A, eth_src=SRV)[1]


def test_learned_mac_outranks_a_remote_entry_for_it():
    macs = {('ls1', VM_A): macmod.Entry('vtep1', 'bm1', 0)}
    assert switch(macs=macs).send(2, VM_A, vlans=(100,))[0] == [
        (1, (), 5001, None)]


def test_source_node_mode_replicates_to_every_locator():
    out, _ = switch(config('source_node')).send(1, BCAST)
    assert out == [(2, (100,), 5001, None), (VX, (), 5001, SN1),
                   (VX, (), 5001, SN2)]


def test_the_data_plane_fails_over_to_a_live_service_node():
    bfd = {SN1: 11, SN2: 12}
    sw = switch(bfd_ports=bfd, ports_live={1, 2, VX, 12})
    assert sw.send(1, BCAST)[0] == [(2, (100,), 5001, None),
                                    (12, (), 5001, None)]
    # none live (e.g. BFD not up yet): still flood to the first one
    sw = switch(bfd_ports=bfd, ports_live={1, 2, VX})
    assert sw.send(1, BCAST)[0] == [(2, (100,), 5001, None),
                                    (VX, (), 5001, SN1)]
    # frames from a service node arrive on its BFD port
    assert switch(bfd_ports=bfd).send(12, BCAST, tunnel_id=5001)[0] == [
        (1, (), 5001, None), (2, (100,), 5001, None)]


def test_a_member_without_bfd_follows_what_bfd_says_elsewhere():
    out, _ = switch(live={SN1: False, SN2: True}).send(1, BCAST)
    assert (VX, (), 5001, SN2) in out and (VX, (), 5001, SN1) not in out


# -- a Virtual Chassis Fabric pod: the server dual-homed to leaf1 (port
#    leaf1p1, ofport 3) and leaf2 (leaf2p1, ofport 5), bm2 on leaf2p2
LEAF1 = {'name': 'leaf1', 'ports': {'leaf1p1': 3}, 'vx': VX, 'fabric': 9}
LEAF2 = {'name': 'leaf2', 'ports': {'leaf2p1': 5, 'leaf2p2': 6}, 'vx': VX,
         'fabric': 9}
POD = (LEAF1, LEAF2)


def pod_config():
    return {'lss': {'ls1': {'vni': 5001, 'mode': 'service_node'}},
            'bindings': {('leaf1p1', 0): 'ls1', ('leaf2p1', 0): 'ls1',
                         ('leaf2p2', 0): 'ls1'},
            'ucast_remote': {('ls1', VM_A): HV1},
            'mcast_remote': {('ls1', 'unknown-dst'): [SN1]}}


def pod_switch(member, macs):
    return switch(pod_config(), macs, member=member, members=POD)


def test_pod_member_delivers_a_tunnelled_frame_only_if_the_mac_is_its_own():
    macs = {('ls1', SRV): macmod.Entry('leaf2', 'leaf2p1', 0)}
    assert pod_switch(LEAF1, macs).send(VX, SRV, tunnel_id=5001)[0] == []
    assert pod_switch(LEAF2, macs).send(VX, SRV, tunnel_id=5001)[0] == [
        (5, (), 5001, None)]


def test_pod_internal_frames_carry_the_vni_in_two_tags():
    macs = {('ls1', SRV): macmod.Entry('leaf2', 'leaf2p1', 0)}
    out, _ = pod_switch(LEAF1, macs).send(3, SRV, eth_src=OTHER)
    hi, lo = 5001 >> 12, 5001 & 0xfff
    assert out == [(9, (hi, lo), 5001, None)]
    # leaf2 takes it off the pod fabric and delivers it to its binding
    out, _ = pod_switch(LEAF2, macs).send(9, SRV, vlans=(hi, lo))
    assert out == [(5, (), 5001, None)]


def test_pod_broadcast_goes_to_the_other_members_once_and_one_service_node():
    out, _ = pod_switch(LEAF2, {}).send(6, BCAST)
    assert out == [(5, (), 5001, None), (9, (1, 0x389), 5001, None),
                   (VX, (), 5001, SN1)]
    # a pod copy is delivered locally, never sent to a tunnel again
    out, _ = pod_switch(LEAF1, {}).send(9, BCAST, vlans=(1, 0x389))
    assert out == [(3, (), 5001, None)]


def test_binding_ids_are_stable_and_reversible():
    assert pl.split_binding(pl.binding_id(17, 100)) == (17, 100)
    assert pl.binding_id(1, 0) != 0


def test_binding_counters_come_from_classify_and_egress_flows():
    from devices.hwvtep import counters
    secs, _ = pl.sections(ME, [ME], config())
    stat_of = counters.stat_map(secs, {1: 'bm1', 2: 'bm2'})
    assert sorted(set(stat_of.values())) == [
        (('bm1', 0), 'from'), (('bm1', 0), 'to'),
        (('bm2', 100), 'from'), (('bm2', 100), 'to'),
        (('bm2', 200), 'from'), (('bm2', 200), 'to')]
    from_bm1 = next(c for c, v in stat_of.items() if v == (('bm1', 0),
                                                            'from'))
    banked = {}
    counters.bank(banked, stat_of[from_bm1], 5, 500)     # replaced flow
    totals = counters.totals(banked, [(stat_of, {from_bm1: (2, 200)})])
    assert totals[('bm1', 0)] == {'packets_from_local': 7,
                                  'bytes_from_local': 700}


def test_a_pod_vni_below_4096_still_travels_in_two_tags():
    """VNI 100: the outer tag is VID 0, which is still a tag (not
    untagged): the other member takes it off the fabric all the same."""
    cfg = pod_config()
    cfg['lss']['ls1']['vni'] = 100
    macs = {('ls1', SRV): macmod.Entry('leaf2', 'leaf2p1', 0)}
    out, _ = switch(cfg, macs, member=LEAF1, members=POD).send(3, SRV,
                                                               eth_src=OTHER)
    assert out == [(9, (0, 100), 100, None)]
    out, _ = switch(cfg, macs, member=LEAF2, members=POD).send(
        9, SRV, vlans=(0, 100))
    assert out == [(5, (), 100, None)]
    # an untagged frame on the fabric port is nobody's
    assert switch(cfg, macs, member=LEAF2, members=POD).send(
        9, SRV)[0] == []


def test_two_vlans_of_one_port_in_one_logical_switch_reach_each_other():
    """bm2 VLAN 100 and VLAN 300 both in ls1: a frame between them goes
    back out of the port it came in on, with the other tag."""
    cfg = config()
    cfg['bindings'][('bm2', 300)] = 'ls1'
    macs = {('ls1', SRV): macmod.Entry('vtep1', 'bm2', 300)}
    out, _ = switch(cfg, macs).send(2, SRV, eth_src=OTHER, vlans=(100,))
    assert out == [(2, (300,), 5001, None)]
    out, _ = switch(cfg).send(2, BCAST, vlans=(100,))
    assert (2, (300,), 5001, None) in out and \
        (2, (100,), 5001, None) not in out


def test_a_multicast_source_is_never_sent_to_be_learned():
    assert not switch().send(1, BCAST, eth_src='01:00:5e:00:00:01')[1]


def test_flooding_groups_are_numbered_apart_from_vnis():
    cfg = config()
    cfg['mcast_remote'][('ls1', '01:00:5e:00:00:fb')] = [SN1]
    gids = pl.group_ids(cfg)
    assert gids[('ls1', 'unknown-dst')] == 5001
    assert gids[('ls2', 'unknown-dst')] == 5002
    assert gids[('ls1', '01:00:5e:00:00:fb')] >= 1 << 24
    assert len(set(gids.values())) == len(gids)


def test_counters_survive_a_lost_channel_and_a_restarted_bridge():
    from devices.hwvtep import counters
    stat = (('bm1', 0), 'from')
    stat_of = {11: stat, 12: (('bm1', 0), 'to')}
    # the device's channel came back, the bridge did not restart: 11 goes
    # on counting, 12 is gone (restarted from nothing: banked)
    counts, bank = counters.carried_over(stat_of, {11: (5, 50), 12: (3, 30)},
                                         {11: (7, 70), 99: (1, 1)})
    assert counts == {11: (7, 70)} and bank == [((('bm1', 0), 'to'), 3, 30)]
    # a flow whose counter went backwards restarted: what it had is banked
    _, bank = counters.carried_over(stat_of, {11: (5, 50)}, {11: (1, 10)})
    assert bank == [(stat, 5, 50)]
