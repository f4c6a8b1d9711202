"""The native hardware VTEP of a Virtual Chassis Fabric pod: one switch
(vtep1) on the leaves that have servers (leaf1, leaf2 in vcf-small)."""
import pytest

from scenarios import harness
from topologies import labs

from .test_hwvtep import ping, set_links, until, vtep_ctl


@pytest.fixture(scope='module')
def vcf(tmp_path_factory):
    env = harness.ControlledLab(labs.resolve('vcf'), print,
                                str(tmp_path_factory.mktemp('vcf')))
    with env as lab:
        yield lab


def test_vcf_pod_vtep_is_one_switch_on_its_members(vcf):
    assert vtep_ctl(vcf, 'vtep1', 'list-ports', 'vtep1').split() == [
        'leaf1p1', 'leaf2p1', 'leaf2p2']
    assert 'leaf1,leaf2' in vtep_ctl(vcf, 'vtep1', 'list', 'Physical_Switch')
    # the first frames may wait for neighbours to resolve on every hop
    assert until(lambda: ping(vcf, 'bm2', 'vm1', 1), 10)
    assert until(lambda: ping(vcf, 'bm2', 'bm1', 1), 10)


@pytest.mark.parametrize('member', ['spine1', 'leaf1'])
def test_vcf_loses_no_connected_server_with_a_member(vcf, member):
    """bm2 (on leaf2 only) keeps reaching vm5 (hv2, on leaf2) whichever
    spine or leaf fails; bm1 (on both leaves) too, over its other leg."""
    set_links(vcf, member, 'down')
    try:
        assert until(lambda: ping(vcf, 'bm2', 'vm5', 1), 5)
        assert until(lambda: ping(vcf, 'bm1', 'vm5', 1), 5)
    finally:
        set_links(vcf, member, 'up')
    assert until(lambda: ping(vcf, 'bm1', 'vm1', 1), 20)
