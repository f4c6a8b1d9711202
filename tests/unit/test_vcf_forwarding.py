"""The VCF pod's static forwarding, checked by sending frames through a fake
fabric built from the flows topologies.vcf computes."""
import pytest

from topologies import builders, expand, vcf

from .fakefabric import FakeFabric

BCAST = 'ff:ff:ff:ff:ff:ff'


@pytest.fixture
def pod():
    plan = expand.expand(builders.vcf(spines=3, leaves=3, hypervisors=4,
                                      vms=0))
    members = {n: vcf.member_flows(plan, n) for n, p in plan['nodes'].items()
               if p['role'] in ('spine', 'leaf')}
    return plan, FakeFabric(plan, members)


def vteps(plan):
    return [n for n, p in plan['nodes'].items() if 'tunnel_mac' in p]


def send_from(plan, fab, src, dst_mac):
    return fab.send(src, plan['nodes'][src]['uplink'], dst_mac)


def test_unicast_reaches_only_its_vtep_over_every_spine(pod):
    plan, fab = pod
    hv2 = plan['nodes']['hv2']
    paths = send_from(plan, fab, 'hv1', hv2['tunnel_mac'])
    assert len(paths) == 3                 # one alternative per spine (ECMP)
    for delivered in paths:
        assert delivered == [('hv2', hv2['uplink'])]


def test_broadcast_reaches_every_other_vtep_exactly_once(pod):
    plan, fab = pod
    for src in vteps(plan):
        (delivered,) = send_from(plan, fab, src, BCAST)
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


def test_pod_vtep_hangs_off_the_master_spine(pod):
    plan, fab = pod
    vtep = plan['nodes']['vtep1']
    assert vtep['uplink'] == 'spine1'
    paths = send_from(plan, fab, 'hv2', vtep['tunnel_mac'])
    assert paths == [[('vtep1', 'spine1')]]


def test_server_ports_are_cross_connected_to_the_pod_vtep(pod):
    plan, fab = pod
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
