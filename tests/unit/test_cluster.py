"""controllers/cluster.py over an in-memory etcd (fakeetcd): writes taken
by different nodes are applied in the log's order by every node, which end
equal and give every write the same answer; a node cut off from the
majority refuses writes (503, saying why) and appends nothing; the
assignment waits for the expected nodes, is written once, and follows the
members; and the pure decisions (cut_off, next_roles, mine, decode)."""
import json
import time

import pytest

from controllers import assign, cluster
from controllers.model import ApiError

from .fakeetcd import FakeEtcd
from .test_writes import dump, store

DEVICES = ['gw1', 'hv1', 'hv2']


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def replica(etcd, node, clock, applied=None, roles=None, expected=3):
    r = cluster.Replica(
        node, etcd.client, store(), DEVICES,
        lambda entries: (applied if applied is not None else []).extend(
            entries),
        lambda old, new, gen: (roles if roles is not None else []).append(
            (old, new, gen)),
        lease_s=2, expected=expected, clock=clock, commit_timeout_s=0.01)
    return r.start(follow=False)


def sync(etcd, *replicas):
    for r in replicas:
        r.catch_up(etcd.client())


def submit_applied(etcd, r, others, op, *args):
    """submit() waits until its own node applied the entry: the test is
    the follower here, catching up while the submit waits."""
    import threading
    out = {}

    def run():
        try:
            out['result'] = r.submit(op, *args)
        except ApiError as exc:
            out['error'] = exc
    t = threading.Thread(target=run)
    t.start()
    while t.is_alive():
        sync(etcd, r)
        t.join(0.005)
    sync(etcd, *others)
    if 'error' in out:
        raise out['error']
    return out['result']


def test_writes_through_two_nodes_end_equal_with_the_same_answers():
    etcd, clock = FakeEtcd(), Clock()
    a, b = replica(etcd, 'ctl1', clock), replica(etcd, 'ctl2', clock)
    a.commit_timeout_s = b.commit_timeout_s = 5
    web = submit_applied(etcd, a, [b], 'create_ls',
                         {'name': 'web', 'vni': 5001,
                          'subnet': '10.1.0.0/24'})
    assert web['name'] == 'web'
    port = submit_applied(etcd, b, [a], 'attach', web['id'],
                          {'attachment': 'vm1'})
    assert port['attachment'] == 'vm1'
    with pytest.raises(ApiError) as err:        # refused, on both nodes
        submit_applied(etcd, b, [a], 'create_ls', {'name': 'web',
                                                   'vni': 5009})
    assert err.value.status == 409 and err.value.field == 'name'
    assert a.applied == b.applied == etcd.revision
    assert dump(a.store) == dump(b.store)
    # a node that starts late replays the whole log to the same state
    c = replica(etcd, 'ctl3', clock)
    assert dump(c.store) == dump(a.store)
    assert a.results[a.applied][0] is False     # the refusal, remembered


def test_a_node_cut_off_refuses_writes_and_appends_nothing():
    etcd, clock = FakeEtcd(), Clock()
    a = replica(etcd, 'ctl1', clock)
    a._ok()
    puts = etcd.puts
    clock.t += 2.5                    # no round trip for more than a lease
    assert a.stale_for() == pytest.approx(2.5)
    with pytest.raises(ApiError) as err:
        a.submit('create_ls', {'name': 'web', 'vni': 5001})
    e = err.value
    assert e.status == 503 and e.field == 'cluster'
    assert 'ctl1' in e.message and 'cut off' in e.message and \
        'Nothing was changed' in e.message
    assert etcd.puts == puts and a.counts['refused_cut_off'] == 1
    assert a.status()['cut_off_s'] == pytest.approx(2.5)


def test_a_write_etcd_does_not_commit_is_a_503():
    etcd, clock = FakeEtcd(), Clock()
    a = replica(etcd, 'ctl1', clock)
    etcd.down = True                  # the client's timeout, before the
    with pytest.raises(ApiError) as err:   # lease says so
        a.submit('create_ls', {'name': 'web', 'vni': 5001})
    assert err.value.status == 503
    assert 'etcd did not confirm the write' in err.value.message
    assert 'It may still be committed: GET' in err.value.message
    assert a.applied == 0


def announce(etcd, node):
    lease = etcd.lease(2)
    etcd.put(cluster.MEMBERS + node, '{}', lease=lease)
    return lease.id


def test_the_first_assignment_waits_for_every_expected_node():
    etcd, clock = FakeEtcd(), Clock()
    roles = []
    a = replica(etcd, 'ctl1', clock, roles=roles)
    announce(etcd, 'ctl1')
    sync(etcd, a)
    assert a.roles == {} and etcd.get(cluster.ASSIGNMENT) == []
    clock.t += a.FIRST_WAIT_S + 1     # ... or long enough
    sync(etcd, a)
    sync(etcd, a)                     # the write is read back
    assert {r.active for r in a.roles.values()} == {'ctl1'}
    assert roles[-1][2] == a.generation > 0


def test_the_assignment_follows_the_members_and_is_written_once():
    etcd, clock = FakeEtcd(), Clock()
    roles = {n: [] for n in ('ctl1', 'ctl2', 'ctl3')}
    reps = {n: replica(etcd, n, clock, roles=roles[n]) for n in roles}
    leases = {n: announce(etcd, n) for n in reps}
    sync(etcd, *reps.values())        # all three compute the same answer
    assert sum(r.counts['assignments_written'] for r in reps.values()) == 1
    sync(etcd, *reps.values())
    views = [r.roles for r in reps.values()]
    assert views[0] == views[1] == views[2] and sorted(views[0]) == DEVICES
    spread = [r.active for r in views[0].values()]
    assert sorted(spread) == ['ctl1', 'ctl2', 'ctl3']
    written = etcd.puts
    sync(etcd, *reps.values())        # nothing changed: nothing written
    assert etcd.puts == written
    # the active node of hv1 dies: its standby takes it, a new standby
    hv1 = views[0]['hv1']
    etcd.expire(leases[hv1.active])
    alive = [n for n in reps if n != hv1.active]
    sync(etcd, *(reps[n] for n in alive))
    sync(etcd, *(reps[n] for n in alive))
    now = reps[alive[0]].roles['hv1']
    assert now.active == hv1.standby and now.standby not in (
        hv1.active, None), now
    old, new, gen = roles[hv1.standby][-1]
    assert old['hv1'].active == hv1.active and new['hv1'] == now
    assert gen == reps[alive[0]].generation
    assert cluster.mine(new, hv1.standby)['hv1'] == 'active'


def test_pure_decisions():
    assert cluster.cut_off(None, 50.0, 2) == 0.0          # never reached
    assert cluster.cut_off(10.0, 11.9, 2) == 0.0
    assert cluster.cut_off(10.0, 12.5, 2) == 2.5
    roles = assign.assign(DEVICES, ['ctl1', 'ctl2'])
    assert cluster.next_roles(DEVICES, ['ctl1', 'ctl2'], roles) is None
    assert cluster.roles_from(cluster.roles_value(roles)) == roles
    moved = cluster.next_roles(DEVICES, ['ctl2'], roles)
    assert {r.active for r in moved.values()} == {'ctl2'}
    assert cluster.prefix_end('/nsx/log/') == '/nsx/log0'
    kvs = [(json.dumps({'op': 'detach', 'args': [2], 'node': 'x'}),
            {'create_revision': '9'}),
           (cluster.entry('create_ls', [{'name': 'a', 'vni': 1}], 'x'),
            {'create_revision': '4'})]
    assert cluster.decode(kvs) == [
        (4, 'create_ls', [{'name': 'a', 'vni': 1}]), (9, 'detach', [2])]
    with pytest.raises(ValueError, match="op: 'drop' is not a write"):
        cluster.entry('drop', [], 'x')


def test_the_standby_takes_its_dead_actives_early_and_only_those():
    roles = {'gw1': assign.Roles('ctl1', 'ctl2'),
             'hv1': assign.Roles('ctl1', 'ctl3'),
             'hv2': assign.Roles('ctl3', 'ctl2')}
    alive = ['ctl2', 'ctl3']
    assert cluster.taken_early(DEVICES, alive, roles, 'ctl2') == {
        'gw1': assign.Roles('ctl2', 'ctl3')}
    assert cluster.taken_early(DEVICES, alive, roles, 'ctl3') == {
        'hv1': assign.Roles('ctl3', 'ctl2')}
    # both of a device's nodes gone: the third waits for the assignment
    both = {'gw1': assign.Roles('ctl1', 'ctl2')}
    assert cluster.taken_early(['gw1'], ['ctl3'], both, 'ctl3') == {}
    assert cluster.taken_early(DEVICES, ['ctl3'], roles, 'ctl2') == {}


def test_a_write_sent_again_commits_once():
    etcd = FakeEtcd()
    txn = cluster.idempotent_put('/nsx/log/a', 'x')
    first = cluster.revision_of(etcd.transaction(txn))
    again = cluster.revision_of(etcd.transaction(txn))
    assert again == first and etcd.puts == 1
    with pytest.raises(RuntimeError, match='neither new nor there'):
        cluster.revision_of({'responses': [{'response_range': {}}]})


class Flaky(FakeEtcd):
    """Commits the first transaction but loses its answer (the client's
    timeout), as when the leader it went to died."""

    def __init__(self):
        super().__init__()
        self.lose = 1

    def transaction(self, txn):
        out = super().transaction(txn)
        if self.lose:
            self.lose -= 1
            raise TimeoutError('read timed out')
        return out


def test_a_write_whose_answer_was_lost_is_applied_once():
    etcd, clock = Flaky(), Clock()
    a = replica(etcd, 'ctl1', clock)
    a.commit_timeout_s = 5
    web = submit_applied(etcd, a, [], 'create_ls',
                         {'name': 'web', 'vni': 5001})
    assert web['name'] == 'web' and a.counts['write_retries'] == 1
    assert len(a.store.list_ls()) == 1 and etcd.puts == 1


def test_a_dead_peer_s_devices_are_driven_by_their_standby_at_once():
    nodes = ['ctl1', 'ctl2', 'ctl3']
    roles = assign.assign(DEVICES, nodes)          # as written at start
    dev, standby = next((d, r.standby) for d, r in sorted(roles.items())
                        if r.active == 'ctl1')
    etcd, clock = FakeEtcd(), Clock()
    calls = []
    a = replica(etcd, standby, clock, roles=calls, expected=1)
    leases = {n: announce(etcd, n) for n in nodes}
    etcd.put(cluster.ASSIGNMENT, cluster.roles_value(roles))
    sync(etcd, a)
    gen = a.generation
    assert a.roles == roles and a.active_of(dev) == 'ctl1'
    a.peer_gone('ctl1')
    assert a.active_of(dev) == standby
    assert a.counts['taken_early'] == sum(
        r.active == 'ctl1' and r.standby == standby for r in roles.values())
    # (the revocation's thread may already have written the next one)
    old, new, g = next(c for c in calls if c[2] == gen and
                       c[1][dev].active == standby)
    assert old[dev].active == 'ctl1'       # told at the same generation
    for _ in range(200):                   # the revocation's thread
        if leases['ctl1'] not in etcd.leases:
            break
        time.sleep(0.01)
    assert leases['ctl1'] not in etcd.leases
    sync(etcd, a)                          # the assignment without ctl1
    assert a.generation > gen and a.status()['taken_early'] == []
    assert a.roles[dev].active == standby and all(
        r.active != 'ctl1' for r in a.roles.values())


def test_a_node_cut_off_takes_nothing_early():
    etcd, clock = FakeEtcd(), Clock()
    a = replica(etcd, 'ctl2', clock, expected=1)
    for n in ('ctl1', 'ctl2'):
        announce(etcd, n)
    etcd.put(cluster.ASSIGNMENT, cluster.roles_value({
        'gw1': assign.Roles('ctl1', 'ctl2')}))
    sync(etcd, a)
    clock.t += 5                         # no round trip for a lease
    a.peer_gone('ctl1')
    assert a.active_of('gw1') == 'ctl1' and a.counts['taken_early'] == 0


def test_members_carry_their_lease_for_a_revocation():
    etcd, clock = FakeEtcd(), Clock()
    a = replica(etcd, 'ctl1', clock)
    lease = announce(etcd, 'ctl2')
    sync(etcd, a)
    assert a.member_info['ctl2'] == ({}, lease)


def test_an_older_assignment_read_late_is_not_taken():
    etcd, clock = FakeEtcd(), Clock()
    roles = []
    a = replica(etcd, 'ctl1', clock, roles=roles, expected=1)
    announce(etcd, 'ctl1')
    sync(etcd, a)
    sync(etcd, a)
    gen = a.generation
    a._roles_mod += 10              # as if a newer one had been read
    sync(etcd, a)
    assert a.generation == gen and len(roles) == 1


def test_the_log_is_read_again_only_when_etcd_moved_past_what_is_known():
    etcd, clock = FakeEtcd(), Clock()
    a = replica(etcd, 'ctl1', clock)
    reads = a.counts['log_reads']
    sync(etcd, a)
    assert a.counts['log_reads'] == reads      # nothing new: no scan
    etcd.put(cluster.LOG_PREFIX + 'x', cluster.entry(
        'create_ls', [{'name': 'web', 'vni': 5001}], 'ctl2'))
    sync(etcd, a)
    assert a.counts['log_reads'] == reads + 1 and a.store.list_ls()
    # what the watch delivered is known: no scan for it
    etcd.put(cluster.LOG_PREFIX + 'y', cluster.entry(
        'create_ls', [{'name': 'db', 'vni': 5002}], 'ctl2'))
    value, meta = etcd.get(cluster.LOG_PREFIX + 'y', metadata=True)[0]
    import threading
    a._read_events([{'kv': dict(meta, value=value)}], threading.Event())
    assert len(a.store.list_ls()) == 2
    sync(etcd, a)
    assert a.counts['log_reads'] == reads + 1


def test_a_peer_back_before_the_assignment_moved_gets_its_devices_back():
    nodes = ['ctl1', 'ctl2', 'ctl3']
    roles = assign.assign(DEVICES, nodes)
    dev, standby = next((d, r.standby) for d, r in sorted(roles.items())
                        if r.active == 'ctl1')
    etcd, clock = FakeEtcd(), Clock()
    calls = []
    a = replica(etcd, standby, clock, roles=calls, expected=1)
    for n in nodes:
        announce(etcd, n)
    etcd.put(cluster.ASSIGNMENT, cluster.roles_value(roles))
    sync(etcd, a)
    etcd.down = True          # no majority: the lease cannot be revoked
    a.peer_gone('ctl1')
    assert a.active_of(dev) == standby
    a.peer_back('ctl1')       # restarted, and the assignment still names it
    assert a.active_of(dev) == 'ctl1' and a.status()['taken_early'] == []
    old, new, gen = calls[-1]
    assert old[dev].active == standby and new[dev].active == 'ctl1'
    assert a.role_of(dev) == ('ctl1', a.generation)


def test_what_stays_taken_early_and_what_goes_back():
    early = {'gw1': assign.Roles('ctl2', 'ctl3'),
             'hv1': assign.Roles('ctl2', 'ctl3')}
    roles = {'gw1': assign.Roles('ctl1', 'ctl2'),      # written before
             'hv1': assign.Roles('ctl2', 'ctl3')}      # knew of it
    assert cluster.still_early(early, roles, {'ctl1'}) == {
        'gw1': early['gw1']}
    assert cluster.still_early(early, {}, {'ctl1'}) == {}
    assert cluster.given_back(early, roles, 'ctl1') == ['gw1']
    assert cluster.given_back(early, roles, 'ctl3') == []
