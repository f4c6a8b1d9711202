"""Core and the hardware VTEP sessions: one session per hardware VTEP, its
want is vtep_intent on a fresh snapshot, its local MACs become observed
state, and every change asks every session to reconcile. Sessions are
faked (no OVSDB)."""
import collections
import threading
import types

import pytest

from controllers import core as core_mod

MAC1, MAC9 = '02:00:00:00:00:01', '02:00:00:00:00:99'
PLAN = {'nodes': {
    'sn1': {'role': 'service_node', 'index': 1, 'tunnel_ip': '1.0.0.1/24',
            'mgmt_ip': '198.18.0.11/16', 'intfs': []},
    'hv1': {'role': 'hypervisor', 'index': 11, 'tunnel_ip': '1.0.0.11/24',
            'mgmt_ip': '198.18.0.21/16',
            'intfs': [{'name': 'hv1-vm1', 'peer': 'vm1', 'ofport': 2,
                       'kind': 'vm'}]},
    'vtep1': {'role': 'hw_vtep', 'index': 31, 'tunnel_ip': '1.0.0.31/24',
              'mgmt_ip': '198.18.0.31/16',
              'intfs': [{'name': 'bm1', 'peer': 'srv1', 'ofport': 2,
                         'kind': 'physical'}]},
    'vm1': {'role': 'vm', 'mac': MAC1, 'ip': '10.1.0.11/24',
            'intfs': [{'name': 'vm1-eth0', 'peer': 'hv1'}]}}}


class FakeSession:
    def __init__(self, name, db, want_fn, on_local_macs):
        self.name, self.db = name, db
        self.want_fn, self.on_local_macs = want_fn, on_local_macs
        self.requests = 0

    def start(self):
        return self

    def request(self):
        self.requests += 1

    def status(self):
        return {'name': self.name, 'database': self.db, 'connected': True}


class FakeFollower:
    def __init__(self, remotes, **kwargs):
        self.remotes, self.kwargs = remotes, kwargs
        self.done = []

    def transact(self, node, build, timeout=None):
        self.done.append(node)

    def start(self):
        return self

    def sessions(self):
        return {'nodes': {}, 'loop_restarts': 0}


@pytest.fixture
def core(monkeypatch):
    monkeypatch.setattr(core_mod.hwvtep, 'VtepSession', FakeSession)
    monkeypatch.setattr(core_mod.nodedb, 'NodeFollower', FakeFollower)
    c = core_mod.Core(PLAN)
    ls = c.store.create_ls({'name': 'web', 'vni': 5001})
    c.store.attach(ls['id'], {'attachment': 'vm1'})
    c.store.connect_gateway({'ls_id': ls['id'], 'gateway': 'vtep1',
                             'port': 'bm1', 'vlan': 0})
    return c


def test_a_vtep_without_a_session_is_listed_as_not_connected(core):
    [st] = core.status()['hardware_vteps']
    assert (st['name'], st['database'], st['connected']) == (
        'vtep1', 'tcp:198.18.0.31:6640', False)


def test_one_session_per_hardware_vtep_wanting_the_intent(core):
    core.start_monitors()
    session = core.vtep_sessions['vtep1']
    assert session.db == 'tcp:198.18.0.31:6640'
    want = session.want_fn({})
    assert want['logical_switches'] == {'web': {'vni': 5001,
                                                'mode': 'service_node'}}
    assert want['bindings'] == {('bm1', 0): 'web'}
    assert want['ucast_remote'] == {('web', MAC1): '1.0.0.11'}
    assert set(want['bfd']) == {'1.0.0.1'}
    assert core.status()['hardware_vteps'] == [session.status()]


def test_changes_ask_every_session_and_local_macs_are_observed(core):
    core.start_monitors()
    session = core.vtep_sessions['vtep1']
    core.on_change()
    assert session.requests == 1
    session.on_local_macs({(5001, MAC9)})      # the VTEP learned a server
    assert core.observed['vtep_macs'] == {(5001, MAC9): 'vtep1'}
    assert session.requests == 2
    session.on_local_macs(set())               # it aged out
    assert core.observed['vtep_macs'] == {}


def test_bfd_state_comes_from_the_edges_ovsdb_replicas(core):
    core.start_monitors()
    f = core.follower
    assert f.remotes == {'hv1': 'tcp:198.18.0.21:6640',
                         'sn1': 'tcp:198.18.0.11:6640'}
    assert f.kwargs['bfd_nodes'] == {'hv1'}
    assert f.kwargs['hypervisors'] == {'hv1'}
    on_bfd = f.kwargs['on_bfd']
    on_bfd('hv1', {'sn1': True})
    assert core.observed['dead'] == set()
    on_bfd('hv1', {'sn1': False})             # the only reporter sees it go
    assert core.observed['dead'] == {'sn1'}


def test_bfd_status_of_tunnel_ports_only():
    from controllers import nodedb
    rows = [{'name': 'vxsn1', 'bfd_status': {'forwarding': 'true',
                                             'state': 'up'}},
            {'name': 'vxsn2', 'bfd_status': {'forwarding': 'false'}},
            {'name': 'vxhv2', 'bfd_status': {}},       # no BFD there
            {'name': 'hv1-vm1', 'bfd_status': {'forwarding': 'true'}}]
    assert nodedb.bfd_of(rows) == {'sn1': True, 'sn2': False}


def test_switch_sessions_are_counted_for_status():
    core = object.__new__(core_mod.Core)
    core.switches, core.errors, core.follower = {}, [], None
    core.lock = threading.RLock()
    core.refused = {'count': 0, 'last': collections.deque(maxlen=2)}
    core.hw_vteps = lambda: []
    core.switch_event('hv1', 'connected')
    core.switch_event('hv1', 'pass', 5, 1, 1, full=True)
    core.switch_event('hv1', 'pass', 0, 0, 0)
    core.switch_event('hv1', 'gone')
    core.switch_event('hv1', 'connected')
    s = core.status()['switches']['hv1']
    assert (s['connected'], s['connects'], s['passes']) == (True, 2, 2)
    assert (s['flows_added'], s['flows_deleted'], s['group_mods']) == \
        (5, 1, 1)
    # the last pass over the whole switch is kept apart: a takeover's cost
    assert (s['last_full_pass']['flows_added'],
            s['last_full_pass']['flows_deleted']) == (5, 1)
    # refused OpenFlow TLS sessions: counted, the last ones kept, named
    core.store = types.SimpleNamespace(nodes={'hv1': {'mgmt_ip':
                                                      '198.18.0.12'}})
    for _ in range(3):
        core.tls_refused('198.18.0.12', 'certificate signature failure')
    core.tls_refused('198.18.0.99', 'no TLS')
    refused = core.status()['openflow_tls_refused']
    assert refused['count'] == 4
    assert [(r['address'], r['node'], r['reason']) for r in
            refused['last']] == [
        ('198.18.0.12', 'hv1', 'certificate signature failure'),
        ('198.18.0.99', None, 'no TLS')]
    assert s['last_pass']['flows_added'] == 0
