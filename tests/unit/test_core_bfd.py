"""When BFD goes on: once tunnels are made and every transport datapath is
connected and read, whichever comes last. A cluster node makes its
devices' tunnels when it gets them, often after their switches connected:
BFD must still go on then (CI saw a cluster lab whose BFD never did)."""
import threading

import pytest

from controllers import core as core_mod

PLAN = {'nodes': {
    'sn1': {'role': 'service_node', 'index': 1, 'tunnel_ip': '1.0.0.1/24',
            'mgmt_ip': '198.18.0.11/16', 'intfs': []},
    'hv1': {'role': 'hypervisor', 'index': 11, 'tunnel_ip': '1.0.0.11/24',
            'mgmt_ip': '198.18.0.21/16', 'intfs': []}}}


class Job:
    def __init__(self, result):
        self.result = result

    def wait(self, timeout=None):
        return self.result


class FakeFollower:
    def __init__(self, remotes, **kwargs):
        self.submitted = []

    def start(self):
        return self

    def submit(self, node, build):
        self.submitted.append(node)
        return Job((1, [f'vx{node}']))


@pytest.fixture
def core(monkeypatch):
    monkeypatch.setattr(core_mod.nodedb, 'NodeFollower', FakeFollower)
    c = core_mod.Core(PLAN)
    c.enabled = threading.Event()
    c.enable_bfd = c.enabled.set
    return c


def dpids(core, *nodes):
    return {core.store.nodes[n]['dpid'] for n in nodes}


def test_tunnels_first_then_every_datapath_ready(core):
    core.reconcile_tunnels()
    assert not core.enabled.wait(0.2)        # no datapath yet
    core.datapaths_ready(dpids(core, 'hv1'))
    assert not core.enabled.wait(0.2)        # sn1's not yet
    core.datapaths_ready(dpids(core, 'hv1', 'sn1'))
    assert core.enabled.wait(2)


def test_every_datapath_ready_then_tunnels(core):
    core.datapaths_ready(dpids(core, 'hv1', 'sn1'))
    assert not core.enabled.wait(0.2)        # nothing pending
    core.reconcile_tunnels(only=['hv1'])     # a cluster node got hv1
    assert core.enabled.wait(2)
    assert core.bfd_pending == {'hv1': ['vxhv1']}   # (enable_bfd faked)


def test_a_datapath_gone_holds_it_back(core):
    core.datapaths_ready(dpids(core, 'hv1', 'sn1'))
    core.datapaths_ready(dpids(core, 'hv1'))           # sn1 disconnected
    core.reconcile_tunnels()
    assert not core.enabled.wait(0.3)
