"""OVSDB driver for hardware VTEPs (the `hardware_vtep` schema, vtep(5)):
one persistent python-ovs IDL session per VTEP database, over its
management address (ssl:MGMT_IP:6640; tcp: in a lab without TLS).

    apply_ops(txn, ...)    controllers.vtepplan operations -> rows of one
                           transaction
    VtepSession            the session: its own thread and ovs.poller loop

Reads (COLUMNS): Physical_Switch (name, ports, tunnels), Physical_Port
(name, vlan_bindings), Logical_Switch, Ucast_Macs_Local and
Mcast_Macs_Local (which logical switches the switch's own rows still
reference; Ucast_Macs_Local also goes to the controller: figure 15, step
6), Ucast_Macs_Remote, Mcast_Macs_Remote, Physical_Locator(_Set), Tunnel
(remote, bfd_params).
Writes what the NVC owns: Logical_Switch (tunnel_key, replication_mode),
Physical_Port vlan_bindings, Ucast_Macs_Remote, Mcast_Macs_Remote
unknown-dst (with its Physical_Locator_Set and Physical_Locators), and
Tunnel bfd_params. The switch writes the rest (its Tunnel rows, bfd_status,
the *_Local tables).
"""
import logging
import os
import select
import sys
import threading
import time

# ovs/poller.py imports eventlet only to ask whether select is monkey
# patched, and the import prints a deprecation warning: keep it out of that
# one import, then let anyone else import eventlet as usual.
_HAD_EVENTLET = 'eventlet' in sys.modules
sys.modules.setdefault('eventlet', None)
import ovs.db.idl      # noqa: E402
import ovs.poller      # noqa: E402
if not _HAD_EVENTLET:
    sys.modules.pop('eventlet', None)

from .vtepplan import (ENCAP, UNKNOWN_DST, physical_switch, plan,
                       read_have, rows)

LOG = logging.getLogger('nsx.hwvtep')

VTEP_SCHEMA = '/usr/share/openvswitch/vtep.ovsschema'
MAX_BACKOFF_MS = 1000            # reconnect at most 1 s after a loss

# what the session replicates (and nothing else)
COLUMNS = {
    'Physical_Switch': ['name', 'ports', 'tunnels'],
    'Physical_Port': ['name', 'vlan_bindings'],
    'Logical_Switch': ['name', 'tunnel_key', 'replication_mode'],
    'Ucast_Macs_Local': ['MAC', 'logical_switch'],
    'Mcast_Macs_Local': ['MAC', 'logical_switch'],
    'Ucast_Macs_Remote': ['MAC', 'logical_switch', 'locator'],
    'Mcast_Macs_Remote': ['MAC', 'logical_switch', 'locator_set'],
    'Physical_Locator': ['encapsulation_type', 'dst_ip', 'tunnel_key'],
    'Physical_Locator_Set': ['locators'],
    'Tunnel': ['remote', 'bfd_params', 'bfd_status'],
}


# -- plan() operations -> one IDL transaction --------------------------------

class _Writer:
    """Applies plan() operations to the rows of an open transaction.

    python-ovs rules followed here: whole columns are assigned (addvalue()
    and setkey() on a row inserted in the same transaction are lost);
    optional columns are lists; references are Row objects; a new
    Physical_Locator or Physical_Locator_Set is referenced in the same
    transaction (or the server collects it); an existing locator with the
    same (encapsulation_type, dst_ip) is reused (it is an index)."""

    def __init__(self, txn, tables, ps):
        self.txn, self.tables = txn, tables
        self.ls = {r.name: r for r in rows(tables, 'Logical_Switch')}
        switch = physical_switch(tables, ps)
        self.ports = {p.name: p for p in filter(None, switch.ports)} \
            if switch is not None else {}
        self.tunnels = [t for t in filter(None, switch.tunnels)
                        if t.remote is not None] \
            if switch is not None else []
        self.locators = {r.dst_ip: r for r in rows(tables,
                                                    'Physical_Locator')
                         if r.encapsulation_type == ENCAP and
                         not r.tunnel_key}
        self.ucast, self.mcast = {}, {}
        for r in rows(tables, 'Ucast_Macs_Remote'):
            if r.logical_switch is not None:
                self.ucast.setdefault((r.logical_switch.name, r.MAC),
                                      []).append(r)
        for r in rows(tables, 'Mcast_Macs_Remote'):
            if r.logical_switch is not None and r.MAC == UNKNOWN_DST:
                self.mcast.setdefault(r.logical_switch.name, []).append(r)

    def _insert(self, table):
        return self.txn.insert(self.tables[table])

    def locator(self, ip):
        loc = self.locators.get(ip)
        if loc is None:
            loc = self.locators[ip] = self._insert('Physical_Locator')
            loc.encapsulation_type = ENCAP
            loc.dst_ip = ip
        return loc

    def add_ls(self, ls, vni, mode):
        row = self.ls[ls] = self._insert('Logical_Switch')
        row.name = ls
        self.set_ls(ls, vni, mode)

    def set_ls(self, ls, vni, mode):
        row = self.ls[ls]
        row.tunnel_key = [vni]
        row.replication_mode = [mode]

    def del_ls(self, ls):
        self.ls.pop(ls).delete()

    def bind(self, port, vlan, ls):
        row = self.ports[port]
        bindings = dict(row.vlan_bindings)
        bindings[vlan] = self.ls[ls]
        row.vlan_bindings = bindings

    def unbind(self, port, vlan):
        row = self.ports[port]
        bindings = dict(row.vlan_bindings)
        bindings.pop(vlan, None)
        row.vlan_bindings = bindings

    def add_ucast(self, ls, mac, ip):
        if self.ucast.get((ls, mac)):         # a row without a locator
            return self.set_ucast(ls, mac, ip)
        row = self._insert('Ucast_Macs_Remote')
        row.MAC = mac
        row.logical_switch = self.ls[ls]
        row.locator = self.locator(ip)
        self.ucast[(ls, mac)] = [row]

    def set_ucast(self, ls, mac, ip):
        first, *extra = self.ucast[(ls, mac)]
        first.locator = self.locator(ip)
        for row in extra:
            row.delete()

    def del_ucast(self, ls, mac):
        for row in self.ucast.pop((ls, mac), []):
            row.delete()

    def set_mcast(self, ls, ips):
        locators = self._insert('Physical_Locator_Set')
        locators.locators = [self.locator(ip) for ip in ips]
        rows = self.mcast.get(ls) or [self._insert('Mcast_Macs_Remote')]
        first, *extra = rows
        first.MAC = UNKNOWN_DST
        first.logical_switch = self.ls[ls]
        first.locator_set = locators
        for row in extra:
            row.delete()
        self.mcast[ls] = [first]

    def del_mcast(self, ls):
        for row in self.mcast.pop(ls, []):
            row.delete()

    def set_bfd(self, ip, params):
        for tunnel in self.tunnels:
            if tunnel.remote.dst_ip == ip:
                tunnel.bfd_params = dict(params)


def apply_ops(txn, tables, ps, ops):
    """Turn plan() operations into row changes of the open transaction
    `txn` (ovs.db.idl.Transaction) on `tables` (idl.tables); `ps` names the
    physical switch whose ports are bound. Writes the tables listed in the
    module docstring."""
    writer = _Writer(txn, tables, ps)
    for op in ops:
        getattr(writer, op[0])(*op[1:])


# -- the session -------------------------------------------------------------

class _MergingPoll:
    """poll(2) for ovs.poller (select() stops at fd 1024). Registering one
    fd twice must OR the events, as ovs' own emulation does (plain
    select.poll keeps the last mask only)."""

    def __init__(self):
        self._poll, self._masks = select.poll(), {}

    def register(self, fd, events):
        fd = fd if isinstance(fd, int) else fd.fileno()
        self._masks[fd] = self._masks.get(fd, 0) | events
        self._poll.register(fd, self._masks[fd])

    def poll(self, timeout):
        return self._poll.poll(timeout)


ovs.poller.SelectPoll = _MergingPoll


def make_idl(db):
    """An IDL on `db` replicating COLUMNS, that retries at most
    MAX_BACKOFF_MS after a failure (python-ovs backs off up to 8 s)."""
    helper = ovs.db.idl.SchemaHelper(location=VTEP_SCHEMA)
    for table, columns in COLUMNS.items():
        helper.register_columns(table, columns)
    idl = ovs.db.idl.Idl(db, helper)
    idl._session.reconnect.set_backoff(MAX_BACKOFF_MS, MAX_BACKOFF_MS)
    return idl


def failure_level(status, moved):
    """How loud a failed transaction is: TRY_AGAIN is OVSDB's ordinary
    "someone changed what you read" (INFO); any other failure while the
    database changed under it (another writer's update arrived before the
    answer: e.g. a locator the plan referenced was garbage-collected
    meanwhile, a referential integrity error) is that same race, retried
    on the new state (WARNING); a failure on an unchanged database is the
    controller's own mistake (ERROR)."""
    if status == ovs.db.idl.Transaction.TRY_AGAIN:
        return logging.INFO
    return logging.WARNING if moved else logging.ERROR


class VtepSession:
    """One hardware VTEP's database, followed and written through one
    persistent IDL session, in its own thread.

    Whenever the replica changes, `have` is rebuilt from it (never from
    deltas: a standalone ovsdb-server re-sends everything after a reconnect,
    and a row deleted meanwhile gives no event), `on_local_macs({(vni,
    mac)})` is called when Ucast_Macs_Local changed, and a reconcile runs:
    plan(want_fn(have), have) committed as ONE non-blocking transaction. A
    reconcile is pending when the replica changed or request() was called
    (want_fn() is called again only then). A transaction that ends in
    TRY_AGAIN is retried once the replica moves; one that ends in an error
    also after the next request(). Should the database keep undoing a
    commit (the same operations committed MAX_REPEATS times in a row,
    unasked), that is logged at ERROR and left until the next request().
    A want_fn() that returns None means "not ours to write" (a controller
    node that is not the VTEP's active one): the session only reads.
    Status: status(); an exception is logged and the loop goes on.

        s = VtepSession('vtep1', 'tcp:198.18.0.31:6640', want_fn,
                        on_local_macs).start()
        s.request(); s.status(); s.stop()
    """

    MAX_REPEATS = 3      # the same ops committed again without a request

    def __init__(self, name, db, want_fn, on_local_macs=lambda macs: None):
        self.name, self.db = name, db
        self.want_fn, self.on_local_macs = want_fn, on_local_macs
        self.idl = make_idl(db)
        self._lock = threading.Lock()   # _requested, _status, _wake_w
        self._requested = True          # want_fn() due (and at first)
        self._stopped = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._thread = None
        self._seen = 0                  # change_seqno last read (0: none)
        self._have, self._macs, self._want = None, None, None
        self._shown = None
        self._dirty = False             # the replica changed since plan()
        self._txn = None                # (txn, started, ops, seqno)
        self._retry = None              # (status, seqno) of a failed txn
        self._last_ops = None           # of the last successful txn
        self._repeats = 0               # ... committed again, unasked
        self._stuck = False             # someone undoes our writes
        self._connected, self._ever = False, False
        self._status = {'name': name, 'database': db, 'connected': False,
                        'since': time.time(), 'reconnects': 0,
                        'last_error': None, 'last_commit': None,
                        'pending_ops': None,
                        'counts': {'logical_switches': 0, 'bindings': 0,
                                   'local_macs': 0, 'remote_macs': 0}}

    # -- other threads ------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f'vtep-{self.name}')
        self._thread.start()
        return self

    def request(self):
        """Ask for a reconcile with a fresh want_fn() (any thread)."""
        with self._lock:
            self._requested = True
        self._wake()

    def stop(self, timeout=5.0):
        self._stopped = True
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout)

    def status(self):
        """name, database, connected, since (epoch s of the last change of
        `connected`), reconnects, last_error, last_commit ({'status', 'ms',
        'ops', 'at'}), pending_ops (what the last comparison of the
        database with the controller's want found to change: 0 when the
        VTEP holds exactly what the controller wants; None before the
        first), counts (logical_switches, bindings, local_macs,
        remote_macs)."""
        with self._lock:
            return {k: dict(v) if isinstance(v, dict) else v
                    for k, v in self._status.items()}

    def tables(self):
        """What the switch's database holds now, as the last read of the
        replica found it (vtepplan.read_have; not to be changed), or None
        before the first."""
        with self._lock:
            return self._shown

    def _wake(self):
        with self._lock:
            if self._wake_w is None:          # stopped: the pipe is closed
                return
            try:
                os.write(self._wake_w, b'x')
            except BlockingIOError:           # already awake
                pass

    def _set_status(self, **kw):
        with self._lock:
            self._status.update(kw)

    # -- the session's thread -----------------------------------------------
    def _loop(self):
        LOG.info('%s: following %s', self.name, self.db)
        while not self._stopped:
            try:
                self._run_once()
            except Exception as exc:           # keep going; log the bug
                LOG.exception('%s: session loop failed', self.name)
                self._set_status(last_error=f'{type(exc).__name__}: {exc}')
                if self.idl.txn is not None:
                    self.idl.txn.abort()
                self._txn = None
                time.sleep(0.1)               # never a hot loop
            try:
                self._block()
            except Exception:
                LOG.exception('%s: poll failed', self.name)
                time.sleep(0.1)
        self.idl.close()
        with self._lock:
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_w = None
        LOG.info('%s: session stopped', self.name)

    def _block(self):
        poller = ovs.poller.Poller()
        self.idl.wait(poller)
        if self._txn is not None:
            self._txn[0].wait(poller)
        poller.fd_wait(self._wake_r, ovs.poller.POLLIN)
        poller.block()

    def _run_once(self):
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
        self.idl.run()
        self._finish_txn()
        self._follow_connection()
        if self.idl.change_seqno != self._seen:
            self._seen = self.idl.change_seqno
            self._read_replica()
        if self._may_reconcile():
            self._reconcile()

    def _follow_connection(self):
        """Log a lost session once per loss; count reconnects."""
        idl = self.idl
        up = idl.state == idl.IDL_S_MONITORING and \
            idl._session.is_connected()
        if up == self._connected:
            return
        self._connected = up
        with self._lock:
            self._status.update(connected=up, since=time.time())
            if up and self._ever:
                self._status['reconnects'] += 1
            if not up:
                self._status['last_error'] = 'session lost'
        if up:
            LOG.info('%s: connected to %s%s', self.name, self.db,
                     ' again' if self._ever else '')
            self._ever = True
            self.request()                # the database may have changed
        else:
            LOG.warning('%s: session to %s lost; reconnecting', self.name,
                      self.db)

    def _read_replica(self):
        """Rebuild `have` and the local MACs from the whole replica."""
        tables = self.idl.tables
        before = (self._have or {}).get('bfd_running')
        self._have = read_have(tables, self.name)
        with self._lock:          # replaced whole at each read, never changed
            self._shown = self._have
        if self._have['bfd_running'] != before:
            with self._lock:
                self._requested = True        # the want depends on it
        self._dirty = True
        macs = self._have['local_macs']
        self._set_status(counts={
            'logical_switches': len(self._have['logical_switches']),
            'bindings': len(self._have['bindings']),
            'local_macs': len(macs),
            'remote_macs': len(self._have['ucast_remote'])})
        if macs != self._macs:
            self._macs = macs
            with self._lock:
                self._requested = True        # our own want depends on them
            try:
                self.on_local_macs(set(macs))
            except Exception:
                LOG.exception('%s: local MAC callback failed', self.name)

    def _may_reconcile(self):
        idl = self.idl
        if not self._connected or self._txn is not None or \
                self._have is None:
            return False
        with self._lock:
            requested = self._requested
        if self._stuck and not requested:
            return False
        if self._retry is not None:
            status, seqno = self._retry
            moved = idl.change_seqno != seqno
            if not moved and not (requested and
                                  status != ovs.db.idl.Transaction.TRY_AGAIN):
                return False                  # wait: never spin on it
            self._retry = None
        return self._dirty or requested

    def _reconcile(self):
        """plan(want, have) -> one transaction, committed without
        blocking (_finish_txn follows it)."""
        with self._lock:
            requested, self._requested = self._requested, False
        if requested or self._want is None:
            try:
                self._want = self.want_fn(self._have)
            except Exception:
                with self._lock:
                    self._requested = True    # again at the next wake-up
                raise
        self._dirty = False
        if requested:
            self._repeats, self._stuck = 0, False
        if self._want is None:        # not ours to write (a cluster's
            self._set_status(pending_ops=None)   # standby): read only
            return
        ops = plan(self._want, self._have)
        self._set_status(pending_ops=len(ops))
        if ops and ops == self._last_ops and \
                self._repeats >= self.MAX_REPEATS:
            self._stuck = True                # a fight: stop until asked
            LOG.error('%s: the database keeps undoing %s...; waiting for '
                      'the next change', self.name, ops[:3])
            self._set_status(last_error=f'does not converge: {ops[:3]}')
            return
        if not ops:
            return
        idl = self.idl
        txn = ovs.db.idl.Transaction(idl)
        try:
            apply_ops(txn, idl.tables, self.name, ops)
        except Exception:
            txn.abort()
            raise
        txn.add_comment(f'nsx-l2gw-lab controller: {len(ops)} op(s)')
        self._txn = (txn, time.monotonic(), ops, idl.change_seqno)
        LOG.debug('%s: committing %s', self.name, ops)
        self._finish_txn()

    def _finish_txn(self):
        if self._txn is None:
            return
        txn, started, ops, seqno = self._txn
        n = len(ops)
        status = txn.commit()
        if status == txn.INCOMPLETE:
            return
        self._txn = None
        ms = round((time.monotonic() - started) * 1000, 1)
        commit = {'status': status, 'ms': ms, 'ops': n, 'at': time.time()}
        if status in (txn.SUCCESS, txn.UNCHANGED):
            self._repeats = self._repeats + 1 if ops == self._last_ops \
                else 0
            self._last_ops = ops
            LOG.info('%s: %d hardware_vtep change(s) committed in %.0f ms',
                     self.name, n, ms)
            self._set_status(last_commit=commit)
            return
        error = txn.get_error() or status
        self._retry, self._last_ops = (status, seqno), None
        self._dirty = True
        moved = self.idl.change_seqno != seqno
        LOG.log(failure_level(status, moved), '%s: transaction of %d op(s): '
                '%s%s', self.name, n, error, '; the database changed while '
                'it was in flight: planned again on the new state' if moved
                else '')
        self._set_status(last_commit=commit,
                         last_error=f'transaction: {error}')
