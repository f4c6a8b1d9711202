"""The VCF pod's static forwarding, checked by sending frames through a fake
fabric built from the flows topologies.vcf computes."""
import pytest

from topologies import builders, expand, vcf

from .fakefabric import FakeFabric

BCAST = 'ff:ff:ff:ff:ff:ff'


def make_pod(device):
    plan = expand.expand(builders.vcf(spines=3, leaves=3, hypervisors=4,
                                      vms=0, vtep_device=device))
    members = {n: vcf.member_flows(plan, n) for n, p in plan['nodes'].items()
               if p['role'] in ('spine', 'leaf')}
    return plan, FakeFabric(plan, members)


@pytest.fixture
def pod():
    """The native pod VTEP: on leaf1 and leaf2, which have servers."""
    return make_pod('native')


@pytest.fixture
def emulated():
    """OVS's emulator as the pod VTEP, hanging off spine1."""
    return make_pod('ovs-vtep')


def vteps(plan):
    """Who should get a broadcast: every VTEP's own cable (a pod VTEP
    member's instance for the native pod)."""
    out = []
    for n, p in plan['nodes'].items():
        if p.get('pod'):
            out += [f'{n}@{m}' for m in p['members']]
        elif 'tunnel_mac' in p:
            out.append(n)
    return out


def send_from(plan, fab, src, dst_mac):
    return fab.send(src, plan['nodes'][src]['uplink'], dst_mac)


def test_unicast_reaches_only_its_vtep_over_every_spine(pod):
    plan, fab = pod
    hv2 = plan['nodes']['hv2']
    paths = send_from(plan, fab, 'hv1', hv2['tunnel_mac'])
    assert len(paths) == 3                 # one alternative per spine (ECMP)
    for delivered in paths:
        assert delivered == [('hv2', hv2['uplink'])]


def send_any(plan, fab, src, dst_mac, tagged=False):
    if '@' in src:
        return fab.send(src, 'up', dst_mac, tagged=tagged)
    return send_from(plan, fab, src, dst_mac)


@pytest.mark.parametrize('which', ['pod', 'emulated'])
def test_broadcast_reaches_every_other_vtep_exactly_once(which, request):
    plan, fab = request.getfixturevalue(which)
    for src in vteps(plan):
        (delivered,) = send_any(plan, fab, src, BCAST)
        got = sorted(n for n, _ in delivered)
        assert got == sorted(v for v in vteps(plan) if v != src), src


def test_a_dead_spine_is_skipped(pod):
    plan, fab = pod
    fab.fail_node('spine2')
    paths = send_from(plan, fab, 'hv1', plan['nodes']['hv2']['tunnel_mac'])
    assert len(paths) == 2
    assert all(p == [('hv2', 'leaf2')] for p in paths)
    (delivered,) = send_from(plan, fab, 'hv3', BCAST)
    assert sorted(n for n, _ in delivered) == sorted(
        v for v in vteps(plan) if v != 'hv3')


def test_emulated_pod_vtep_hangs_off_the_master_spine(emulated):
    plan, fab = emulated
    vtep = plan['nodes']['vtep1']
    assert vtep['uplink'] == 'spine1'
    paths = send_from(plan, fab, 'hv2', vtep['tunnel_mac'])
    assert paths == [[('vtep1', 'spine1')]]


def test_emulated_server_ports_are_cross_connected_to_it(emulated):
    plan, fab = emulated
    # bm1 is dual-homed: each of its links reaches the pod VTEP, and only it
    for intf in ('eth0', 'eth1'):
        (delivered,) = fab.send('bm1', intf, BCAST)
        assert len(delivered) == 1 and delivered[0][0] == 'vtep1'
    fab.fail_node('leaf1')
    assert fab.send('bm1', 'eth0', BCAST) == [[]]
    (delivered,) = fab.send('bm1', 'eth1', BCAST)
    assert delivered == [('vtep1', 'leaf2p1')]


def test_unknown_destinations_are_dropped(pod):
    plan, fab = pod
    assert send_from(plan, fab, 'hv1', '02:99:99:99:99:99') == [[]]


def members_reached(paths):
    return [sorted(n for n, _ in p) for p in paths]


def test_frames_for_the_pod_vtep_reach_every_member_once(pod):
    """From a hypervisor on a member (hv1, leaf1) or not (hv3, leaf3), over
    either spine: each member's instance gets one copy, nobody else."""
    plan, fab = pod
    mac = plan['nodes']['vtep1']['tunnel_mac']
    want = ['vtep1@leaf1', 'vtep1@leaf2']
    for hv in ('hv1', 'hv3'):
        assert set(map(tuple, members_reached(send_from(plan, fab, hv, mac)))
                   ) == {tuple(want)}, hv


def test_the_pod_vtep_survives_any_one_spine_or_leaf(pod):
    plan, fab = pod
    mac = plan['nodes']['vtep1']['tunnel_mac']
    fab.fail_node('spine1')
    assert members_reached(send_from(plan, fab, 'hv3', mac)) == [
        ['vtep1@leaf1', 'vtep1@leaf2']]
    plan, fab = make_pod('native')
    fab.fail_node('leaf1')
    assert members_reached(send_from(plan, fab, 'hv3', mac)) == [
        ['vtep1@leaf2']]


def test_pod_internal_frames_go_member_to_member_only(pod):
    plan, fab = pod
    (delivered,) = fab.send('vtep1#leaf1', 'pod', '02:00:00:02:00:99',
                            tagged=True)
    assert delivered == [('vtep1#leaf2', 'pod')]
    # a hypervisor cannot inject the pod's internal header
    (delivered,) = fab.send('hv1', plan['nodes']['hv1']['uplink'], BCAST,
                            tagged=True)
    assert delivered == []
