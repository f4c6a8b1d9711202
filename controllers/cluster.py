"""One node of the controller cluster (#13, docs/cluster.md): its share of
the replicated configuration, its membership and the device assignment,
all kept in etcd (one member per controller node).

- Configuration: every write (controllers.writes: an op and its args) is
  appended to etcd under LOG; etcd commits it only with a majority, and its
  revision orders it. Every node applies the log in revision order to its
  own Store, so every node gives every write the same answer and holds the
  same state. The node that took an API write answers with what its own
  Store said once it applied that entry.
- Membership: each node keeps MEMBERS/<node> alive on a lease of lease_s;
  a node that stops (or is cut off) loses its key when the lease runs out.
- Assignment: ASSIGNMENT holds {device: [active, standby]}; any node that
  sees the members change computes assign.assign() from the members and
  the assignment it read, and writes it if it differs, on the condition
  that nobody wrote it since (the same inputs give the same answer on every
  node, so two nodes racing write the same thing). Its etcd revision is the
  OpenFlow generation id of the master role requests.
- A node that has not reached etcd for lease_s is cut off: it refuses
  writes (503, saying so) and says that its reads may be stale.

The decisions are the pure functions here and in controllers.assign; the
Replica is the thin driver around an etcd3gw client.
"""
import base64
import json
import logging
import math
import threading
import time
import uuid

from . import assign, writes
from .model import ApiError

LOG = logging.getLogger('nsx.cluster')

PREFIX = '/nsx/'
LOG_PREFIX = PREFIX + 'log/'
MEMBERS = PREFIX + 'members/'
ASSIGNMENT = PREFIX + 'assignment'
RESULTS_KEPT = 4096


def _encode(text):
    """A key or value as etcd's JSON gateway takes it (base64)."""
    return base64.b64encode(text.encode()).decode()


def prefix_end(prefix):
    """The end of etcd's range of keys that start with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def entry(op, args, node):
    """A log entry's value: the write and who took it."""
    if op not in writes.OPS:
        raise ValueError(f'op: {op!r} is not a write; one of '
                         f"{', '.join(sorted(writes.OPS))}")
    return json.dumps({'op': op, 'args': list(args), 'node': node},
                      sort_keys=True)


def key_of(meta):
    """A key-value's key as text (etcd3gw gives bytes)."""
    k = meta['key']
    return k.decode() if isinstance(k, bytes) else k


def decode(kvs):
    """[(revision, op, args)] from etcd key-values of the log (create
    revision order)."""
    out = []
    for value, meta in kvs:
        e = json.loads(value)
        out.append((int(meta['create_revision']), e['op'], e['args']))
    return sorted(out, key=lambda t: t[0])


def cut_off(last_ok, now, lease_s):
    """Seconds this node has been cut off from etcd's majority (no
    successful round trip for a lease), or 0.0."""
    if last_ok is None:
        return 0.0
    gone = now - last_ok
    return gone if gone >= lease_s else 0.0


def roles_from(value):
    """{device: assign.Roles} from the ASSIGNMENT value (JSON)."""
    if not value:
        return {}
    return {d: assign.Roles(*r) for d, r in json.loads(value).items()}


def roles_value(roles):
    return json.dumps({d: list(r) for d, r in sorted(roles.items())},
                      sort_keys=True)


def next_roles(devices, members, current):
    """The assignment to write, or None when `current` is already it."""
    want = assign.assign(devices, members, current)
    return None if want == current else want


def taken_early(devices, alive, roles, node):
    """{device: Roles} that `node` may drive at once, before etcd confirms
    a new assignment: the devices whose active is not among the `alive`
    nodes and whose standby `node` is (assign.assign's own promotion), as
    the next assignment will have them. The OpenFlow generation stays the
    current one: the switch takes a master request of an equal generation,
    and refuses it once a newer assignment was asserted there."""
    if node not in alive:
        return {}
    want = assign.assign(devices, alive, roles)
    return {d: r for d, r in want.items()
            if r.active == node and d in roles and
            roles[d].active != node and roles[d].standby == node}


def still_early(early, roles, dead):
    """What stays taken early ({device: Roles}) once a new assignment
    `roles` is read: a device it names a dead node active for (written
    before that death was known), and nothing else."""
    return {d: r for d, r in early.items()
            if d in roles and roles[d].active in dead}


def given_back(early, roles, peer):
    """The devices taken early that go back to `peer`, answering again,
    because the assignment `roles` still names it their active node."""
    return sorted(d for d in early
                  if d in roles and roles[d].active == peer)


def idempotent_put(key, value):
    """A transaction that puts `key` only if it does not exist yet, else
    reads it: sent again after a timeout, it commits the write at most
    once, and says at which revision (see revision_of)."""
    k = _encode(key)
    return {'compare': [{'key': k, 'result': 'EQUAL', 'target': 'CREATE',
                         'create_revision': 0}],
            'success': [{'request_put': {'key': k, 'value': _encode(value)}}],
            'failure': [{'request_range': {'key': k}}]}


def revision_of(resp):
    """The revision that created the key of an idempotent_put, from its
    response (etcd's JSON omits a false 'succeeded')."""
    if resp.get('succeeded'):
        return int(resp['header']['revision'])
    kvs = resp['responses'][0]['response_range'].get('kvs', [])
    if not kvs:
        raise RuntimeError('the key is neither new nor there')
    return int(kvs[0]['create_revision'])


def mine(roles, node):
    """{device: 'active' | 'standby'} of `node` in `roles`."""
    out = {}
    for d, r in roles.items():
        if r.active == node:
            out[d] = 'active'
        elif r.standby == node:
            out[d] = 'standby'
    return out


class Unavailable(ApiError):
    """503: the write was not committed (`unsure`: it may have been; the
    client must look before it sends it again)."""

    def __init__(self, node, why, unsure=False):
        then = ('It may still be committed: GET what it changes (or GET '
                '/cluster for the applied revision) before sending it '
                'again' if unsure else 'Nothing was changed; send the write '
                'to another controller node (GET /cluster lists them) or '
                'retry when this one is back with the majority')
        super().__init__(503, 'cluster', f'controller node {node} cannot '
                         f'commit writes now: {why}. {then}')


class Replica:
    """This node's share of the cluster (see the module's doc).

    `connect()` -> a new etcd3gw client (one per thread that uses one);
    `store`: this node's Store; `devices`: the devices to assign;
    `on_applied(entries)`: after log entries were applied (the core
    reconciles); `on_roles(old, new, generation)`: the assignment
    changed."""

    # the first assignment waits this long for every expected node (so
    # that devices spread over all of them, not all on the first one up)
    FIRST_WAIT_S = 15.0

    def __init__(self, node, connect, store, devices, on_applied,
                 on_roles, lease_s=2, info=None, commit_timeout_s=3.0,
                 expected=0, clock=time.monotonic, watcher=None,
                 attempt_s=0.2):
        self.node, self.connect, self.store = node, connect, store
        self.devices = sorted(devices)
        self.on_applied, self.on_roles = on_applied, on_roles
        self.lease_s, self.info = lease_s, info or {}
        self.commit_timeout_s = commit_timeout_s
        # one etcd round trip of a write: sent again (idempotent_put)
        # after this, e.g. when the leader it went to died with it
        self.attempt_s = attempt_s
        # watcher(peer, host, port, on_dead, on_back) -> a started
        # liveness.Watcher (None: no peer watching, as in unit tests)
        self.watcher, self.watchers = watcher, {}
        self.clock = clock
        self.expected, self.born = expected, clock()
        self.applied = 0                 # last log revision applied here
        self.complete = 0     # every change up to this revision is known
        self.results = {}                # revision -> (ok, result)
        self.members = []                # live members, sorted
        self.member_info = {}            # member -> (its info, lease id)
        self.dead = set()                # peers whose process is gone
        # devices this node drives before etcd confirms it (taken_early)
        self.early = {}
        self.roles, self.generation = {}, 0
        self.assigned_at = None      # epoch this node took its assignment
        self._roles_mod = 0              # ASSIGNMENT's mod revision
        self.last_ok = None              # last etcd round trip that worked
        self.leader = None
        self.cond = threading.Condition()
        self.apply_lock = threading.Lock()
        self._members_lock = threading.Lock()
        self._writers = None
        self._stop = threading.Event()
        self._members_changed = threading.Event()
        self.counts = {'appended': 0, 'applied': 0, 'refused_cut_off': 0,
                       'assignments_written': 0, 'watch_restarts': 0,
                       'leases_revoked': 0, 'taken_early': 0,
                       'write_retries': 0, 'log_reads': 0}

    # -- start ----------------------------------------------------------
    def start(self, timeout=60, follow=True):
        """Join: catch up with the log (so this node answers like the
        others), announce the membership, then follow (threads; without
        `follow`, a test calls catch_up() itself). Raises when etcd does
        not answer within `timeout`."""
        deadline = self.clock() + timeout
        client = self.connect()
        while True:
            try:
                self.catch_up(client)
                break
            except Exception as exc:           # etcd not up yet
                if self.clock() > deadline:
                    raise RuntimeError(f'etcd did not answer within '
                                       f'{timeout} s: {exc}') from exc
                time.sleep(0.2)
        self._writers = threading.local()    # a client per API thread
        if not follow:
            return self
        for target, name in ((self._keep_membership, 'etcd-lease'),
                             (self._follow, 'etcd-follow'),
                             (self._follow_members, 'etcd-members')):
            threading.Thread(target=target, name=name, daemon=True).start()
        return self

    def stop(self):
        self._stop.set()
        with self.cond:
            watchers = list(self.watchers.values())
        for w in watchers:
            w.stop()

    def active_of(self, device):
        """The node that drives `device` as this node sees it: the one
        the assignment names, or this node for a device it took early."""
        return self.role_of(device)[0]

    def role_of(self, device):
        """(the node that drives `device`, the generation id to assert it
        with), read together: a new assignment read in between must not
        pair the old owner with the new generation."""
        with self.cond:
            r = self.early.get(device) or self.roles.get(device)
            return (r and r.active), self.generation

    def effective(self):
        """The assignment with what this node took early on top."""
        return {**self.roles, **self.early}

    def assignment(self):
        """{device: {'active', 'standby'}} this node acts on (effective),
        read under the lock (for the API's map)."""
        with self.cond:
            eff = self.effective()
        return {d: {'active': r.active, 'standby': r.standby}
                for d, r in sorted(eff.items())}

    # -- writes ---------------------------------------------------------
    def submit(self, op, *args):
        """Commit a write through the cluster -> this node's Store's answer
        once it applied it (or raises its ApiError); 503 (Unavailable)
        when this node cannot reach a majority."""
        gone = cut_off(self.last_ok, self.clock(), self.lease_s)
        if gone:
            self.counts['refused_cut_off'] += 1
            raise Unavailable(self.node, f'it has not reached the cluster\'s '
                              f'majority for {gone:.1f} s (cut off)')
        key = f'{LOG_PREFIX}{self.node}-{uuid.uuid4().hex}'
        value = entry(op, args, self.node)
        deadline = time.monotonic() + self.commit_timeout_s
        while True:
            try:
                rev = self._put(key, value)
                break
            except Exception as exc:
                # e.g. the etcd leader died with the proposal: etcd drops
                # it and would answer only after its own request timeout
                # (seconds); the same transaction again commits it once
                if time.monotonic() >= deadline or self.stale_for():
                    raise Unavailable(
                        self.node, 'etcd did not confirm the write '
                        f'({type(exc).__name__}: {exc})',
                        unsure=True) from None
                self.counts['write_retries'] += 1
                time.sleep(0.02)
        self.counts['appended'] += 1
        with self.cond:
            while self.applied < rev:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable(self.node, f'the write was committed '
                                      f'(revision {rev}) but this node has '
                                      'not applied it yet', unsure=True)
                self.cond.wait(left)
            ok, result = self.results.get(rev, (True, None))
        if not ok:
            raise result
        return result

    def _put(self, key, value):
        writer = getattr(self._writers, 'client', None)
        if writer is None:
            writer = self._writers.client = self.connect(self.attempt_s)
        rev = revision_of(writer.transaction(idempotent_put(key, value)))
        self._ok()
        return rev

    def _ok(self):
        self.last_ok = self.clock()

    # -- the log --------------------------------------------------------
    def catch_up(self, client):
        """Apply every log entry newer than what was applied (a range read,
        linearizable: only a node with the majority gets it). The log is
        read only if etcd's revision passed what this node knows whole
        (`complete`): etcd reads every entry of the log to answer, and
        the watch usually delivered everything already."""
        head = int(client.post(client.get_url('/kv/range'), json={
            'key': _encode(ASSIGNMENT), 'count_only': True})[
                'header']['revision'])
        before = self.applied
        if head > self.complete:
            kvs = client.get(LOG_PREFIX, metadata=True,
                             range_end=prefix_end(LOG_PREFIX),
                             sort_order='ascend', sort_target='create',
                             min_create_revision=self.applied + 1)
            self._apply(decode(kvs))
            self.counts['log_reads'] += 1
            with self.cond:
                self.complete = max(self.complete, head)
        self._ok()
        self._read_members(client)
        return self.applied > before     # found what no watch delivered

    def _apply(self, entries):
        if not entries:
            return
        with self.apply_lock:
            done = []
            for rev, op, args in entries:
                if rev <= self.applied:
                    continue
                try:
                    res = (True, writes.apply(self.store, op, *args))
                except ApiError as exc:
                    res = (False, exc)
                except Exception as exc:        # a bug, not a refusal
                    LOG.exception('log entry %d (%s) failed', rev, op)
                    res = (False, ApiError(500, 'cluster', f'{exc}'))
                with self.cond:
                    self.results[rev] = res
                    self.applied = rev
                    while len(self.results) > RESULTS_KEPT:
                        self.results.pop(next(iter(self.results)))
                    self.cond.notify_all()
                done.append((rev, op))
            self.counts['applied'] += len(done)
        if done:
            self.on_applied(done)

    def _follow(self):
        """Watch everything under PREFIX from the next revision; the
        watch is the fast path, a read every lease_s/4 the safety net (a
        watch on a member that died or was cut off just stops). The watch
        is made again when its stream ends, when two catch-ups in a row
        found entries it had not delivered (a stream that stopped without
        ending), or when the reads have failed for a lease (cut off), not
        at the first failed read: reads fail while
        etcd elects a leader, and a new watch (a TLS session, a stream)
        would hold up the first writes the new leader commits."""
        while not self._stop.is_set():
            client = self.connect()
            try:
                events, cancel = client.watch_prefix(
                    PREFIX, start_revision=self.applied + 1)
            except Exception as exc:
                LOG.info('watch not started: %s', exc)
                self._stop.wait(self.lease_s / 4)
                continue
            stop_reader = threading.Event()
            threading.Thread(target=self._read_events,
                             args=(events, stop_reader), daemon=True,
                             name='etcd-watch').start()
            failing_since, missed = None, 0
            while not self._stop.is_set() and not stop_reader.is_set():
                self._stop.wait(self.lease_s / 4)
                try:
                    # twice in a row: the stream stopped delivering
                    missed = missed + 1 if self.catch_up(client) else 0
                    failing_since = None
                    if missed >= 2:
                        break
                except Exception as exc:
                    LOG.debug('catch-up failed: %s', exc)
                    failing_since = failing_since or self.clock()
                    if self.clock() - failing_since >= self.lease_s:
                        break
            cancel()
            stop_reader.set()
            self.counts['watch_restarts'] += 1
            self._stop.wait(self.lease_s / 8)    # not in a tight loop

    def _read_events(self, events, done):
        try:
            for ev in events:
                kv = ev['kv']
                key = key_of(kv)
                if key.startswith(LOG_PREFIX) and ev.get('type') != 'DELETE':
                    value = kv['value']
                    self._apply(decode([(value, kv)]))
                elif key.startswith(MEMBERS) or key == ASSIGNMENT:
                    # read by their own thread: the log's entries behind
                    # this one are not held up by its round trips
                    self._members_changed.set()
                # the watch delivers every change in order from where it
                # started (after what was applied): known whole up to here
                with self.cond:
                    self.complete = max(self.complete,
                                        int(kv.get('mod_revision', 0)))
                if done.is_set():
                    return
        except Exception as exc:
            LOG.info('watch ended: %s', exc)
        finally:
            done.set()

    # -- membership and assignment --------------------------------------
    def _follow_members(self):
        """Read the members and the assignment when the watch saw them
        change."""
        client = None
        while not self._stop.is_set():
            if not self._members_changed.wait(1.0):
                continue
            self._members_changed.clear()
            try:
                client = client or self.connect()
                self._read_members(client)
            except Exception as exc:      # the catch-up reads them again
                LOG.info('members not read: %s', exc)
                client = None

    def _keep_membership(self):
        client = self.connect()
        lease, every, failing, was_cut = None, self.lease_s / 4, False, False
        ttl = max(1, int(math.ceil(self.lease_s)))   # etcd: whole seconds
        while not self._stop.is_set():
            try:
                if lease is None or lease.refresh() <= 0:
                    lease = client.lease(ttl)
                    client.put(MEMBERS + self.node,
                               json.dumps(self.info, sort_keys=True),
                               lease=lease)
                    LOG.info('member %s announced (lease %d s)', self.node,
                             self.lease_s)
                self._ok()
                failing = False
            except Exception as exc:
                if not failing:
                    LOG.warning('membership lease not renewed: %s: %s',
                                type(exc).__name__, exc)
                failing = True
                lease = None if lease is not None and cut_off(
                    self.last_ok, self.clock(), self.lease_s) else lease
            cut = bool(self.stale_for())
            if cut != was_cut:        # the core asks its roles again
                LOG.warning('%s %s the cluster\'s majority', self.node,
                            'cut off from' if cut else 'back with')
                was_cut = cut
                self.on_roles(self.roles, self.roles, self.generation)
            self._stop.wait(every)

    def _read_members(self, client):
        with self._members_lock:     # the watch and the catch-up: in turn
            self._read_members_now(client)

    def _read_members_now(self, client):
        kvs = client.get(MEMBERS, metadata=True,
                         range_end=prefix_end(MEMBERS))
        found = {}
        for value, m in kvs:
            found[key_of(m)[len(MEMBERS):]] = (json.loads(value or '{}'),
                                         int(m.get('lease', 0)))
        members = sorted(found)
        got = client.get(ASSIGNMENT, metadata=True)
        value, mod = (got[0][0], int(got[0][1]['mod_revision'])) if got \
            else (None, 0)
        current = roles_from(value)
        self._ok()
        with self.cond:
            self.members = members
            self.member_info = found
            # two threads read: never go back to an older assignment
            old, changed = self.effective(), mod > self._roles_mod
            if changed:
                self.roles, self.generation = current, mod
                self._roles_mod = mod
                self.assigned_at = time.time()
                self.early = still_early(self.early, current, self.dead)
                new = self.effective()
        self._watch(found)
        if changed:
            self.on_roles(old, new, mod)
        want = next_roles(self.devices, members, current) if members \
            and (current or len(members) >= self.expected or
                 self.clock() - self.born > self.FIRST_WAIT_S) else None
        if want is not None:
            self._write_roles(client, want, mod)

    def _write_roles(self, client, want, mod):
        key = _encode(ASSIGNMENT)
        resp = client.transaction({
            'compare': [{'key': key, 'result': 'EQUAL', 'target': 'MOD',
                         'mod_revision': mod}],
            'success': [{'request_put': {'key': key, 'value': _encode(
                roles_value(want))}}],
            'failure': []})
        if resp.get('succeeded'):
            self.counts['assignments_written'] += 1
            LOG.info('assignment written: %s', ', '.join(
                f'{d} {r.active}/{r.standby}' for d, r in sorted(
                    want.items())))

    # -- peers' liveness (controllers.liveness) -------------------------
    def _watch(self, found):
        """A liveness watcher for every member that gives its peer port."""
        if self.watcher is None:
            return
        for peer, (info, _lease) in found.items():
            if peer == self.node or peer in self.watchers or \
                    not info.get('peer'):
                continue
            host, port = info['peer'].rsplit(':', 1)
            w = self.watcher(peer, host, int(port), self.peer_gone,
                             self.peer_back)
            with self.cond:
                self.watchers[peer] = w

    def peer_back(self, peer):
        """`peer` answers again (restarted before the assignment moved its
        devices, e.g. when its lease could not be revoked without a
        majority): give back what was taken early from it, as the
        assignment still names it."""
        with self.cond:
            self.dead.discard(peer)
            old = self.effective()
            back = given_back(self.early, self.roles, peer)
            for d in back:
                del self.early[d]
            new = self.effective()
        if back:
            LOG.info('%s is back: %s left to it (the assignment names it)',
                     peer, ', '.join(sorted(back)))
            self.on_roles(old, new, self.generation)

    def peer_gone(self, peer):
        """`peer`'s process is gone (its connection ended and its port
        refuses): take over at once the devices it was active for and
        this node is standby of (taken_early), then revoke its membership
        so that the cluster writes the assignment that says so, now
        rather than when its lease runs out."""
        with self.cond:
            self.dead.add(peer)
            info = self.member_info.get(peer)
            if info is None or self.stale_for():
                return          # not a member; or cut off: cannot tell
            alive = [m for m in self.members if m not in self.dead]
            old = self.effective()
            early = taken_early(self.devices, alive, old, self.node)
            self.early.update(early)
            new = self.effective()
            self.counts['taken_early'] += len(early)
        if early:
            LOG.info('%s is gone: driving %s at once (its standby), '
                     'before the assignment says so', peer,
                     ', '.join(sorted(early)))
            self.on_roles(old, new, self.generation)
        threading.Thread(target=self._revoke, args=(peer,),
                         name='revoke', daemon=True).start()

    def _revoke(self, peer):
        """Revoke a dead peer's lease (again until etcd takes it, e.g.
        once it has a leader again when the dead node led it), then write
        the assignment without it. The lease is read each time from its
        membership key: a node that lost a lease took another one (seen:
        the one read earlier was "not found")."""
        client = self.connect(self.attempt_s)
        while not self._stop.is_set():
            with self.cond:
                if peer not in self.dead or peer not in self.members or \
                        self.stale_for():
                    return          # back, its lease ran out, or cut off
            try:
                got = client.get(MEMBERS + peer, metadata=True)
                if not got:                 # gone already
                    self._read_members(client)
                    return
                client.post(client.get_url('/kv/lease/revoke'),
                            json={'ID': int(got[0][1].get('lease', 0))})
            except Exception as exc:
                LOG.debug('lease of %s not revoked (yet): %s', peer, exc)
                self._stop.wait(0.05)
                continue
            self.counts['leases_revoked'] += 1
            LOG.info('member %s gone: its lease revoked', peer)
            try:
                self._read_members(client)     # and the assignment
            except Exception as exc:
                LOG.info('members not read after the revocation: %s', exc)
            return

    # -- what the API shows ---------------------------------------------
    def stale_for(self):
        return cut_off(self.last_ok, self.clock(), self.lease_s)

    def status(self):
        with self.cond:
            roles = dict(self.roles)
            out = {'node': self.node, 'members': list(self.members),
                   'applied_revision': self.applied,
                   'assignment_generation': self.generation,
                   'assigned_at': self.assigned_at,
                   'lease_s': self.lease_s,
                   'cut_off_s': round(self.stale_for(), 3),
                   'taken_early': sorted(self.early),
                   'peers_gone': sorted(self.dead),
                   'counts': dict(self.counts)}
        out['assignment'] = {d: {'active': r.active, 'standby': r.standby}
                             for d, r in sorted(roles.items())}
        out['mine'] = mine(roles, self.node)
        return out
