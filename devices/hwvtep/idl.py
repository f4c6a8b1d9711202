"""OVSDB sessions for the device: the python `ovs` IDL (an in-memory
replica kept up to date by the server's pushed updates) and non-blocking
transactions, inside the device's single ovs.poller loop.

Facts this relies on (python-ovs 3.1, measured here):
- a standalone ovsdb-server keeps no history: after a reconnect the IDL
  reloads every row and rows deleted meanwhile produce no event, so the
  device rebuilds from the replica whenever `change_seqno` moves;
- a transaction is built and committed between two `run()` calls; it ends
  TRY_AGAIN when the session is down or drops mid-commit (retry once the
  replica changed, not in a spin);
- `addvalue()`/`setkey()` on a row inserted in the same transaction is lost:
  assign whole columns.
"""
import logging
import sys
import time

# ovs/poller.py imports eventlet only to ask whether `select` is monkey
# patched; nothing is patched. Blocking the import keeps eventlet (and its
# deprecation warning) out of the device.
sys.modules.setdefault('eventlet', None)

import ovs.db.idl      # noqa: E402
import ovs.poller      # noqa: E402

LOG = logging.getLogger('hwvtep.idl')
Transaction = ovs.db.idl.Transaction


def session(remote, schema, tables, max_backoff_ms=1000):
    """An IDL on `remote` replicating {table: [columns] or None (all)}."""
    helper = ovs.db.idl.SchemaHelper(location=schema)
    for table, cols in tables.items():
        if cols:
            helper.register_columns(table, cols)
        else:
            helper.register_table(table)
    idl = _Idl(remote, helper)
    idl._session.reconnect.set_backoff(100, max_backoff_ms)
    return idl


class _Idl(ovs.db.idl.Idl):
    """Notes which tables the server's updates touched, and forgets what
    was read from a row (`cached`) when the server changes it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.touched = set()
        self.row_cache = {}          # table -> {uuid: value read from it}

    def notify(self, event, row, updates=None):
        self.touched.add(row._table.name)
        self.row_cache.get(row._table.name, {}).pop(row.uuid, None)


def cached(idl, table, read):
    """[(row, read(row))] for every row of `table`, read(row) remembered
    until the server changes that row. Reading a column of a python-ovs
    row converts its datum on each access (~10 us): a transaction built
    from every row of a large table paid that per row and column each
    time (5 ms for 50 local MACs, growing with the table), a lookup
    instead. A row the replica dropped without a notice (a reload) is
    dropped from the memo too."""
    rows = idl.tables[table].rows
    memo = idl.row_cache.setdefault(table, {})
    if len(memo) > len(rows):
        for uuid in [u for u in memo if u not in rows]:
            del memo[uuid]
    out = []
    for uuid, row in rows.items():
        value = memo.get(uuid, memo)             # the memo: not read yet
        if value is memo:
            value = memo[uuid] = read(row)
        out.append((row, value))
    return out


def connected(idl):
    """The replica is live (connected and monitoring)."""
    return idl._session.is_connected() and \
        idl.state == idl.IDL_S_MONITORING


class Writer:
    """One transaction in flight at a time. `start(build, done)` builds and
    commits; `poll()` after every idl.run() returns its final status once,
    and gives it to `done(status)` if given (so a caller records what it
    wrote only once the database took it).
    After a failure the next start waits until the replica changed (what
    it was built from, at the start), or RETRY_S passed."""
    RETRY_S = 1.0

    def __init__(self, idl, name):
        self.idl, self.name = idl, name
        self.txn, self.blocked_at, self.built_at = None, None, None
        self.retry_at, self.started_at = None, None
        self.done = None

    def busy(self):
        return self.txn is not None

    def may_start(self):
        return self.txn is None and connected(self.idl) and (
            self.blocked_at != self.idl.change_seqno or
            self.retry_at is None or time.monotonic() >= self.retry_at)

    def start(self, build, done=None):
        """build(txn) fills the transaction; -> False if it did nothing."""
        txn = Transaction(self.idl)
        self.built_at = self.idl.change_seqno
        try:
            wanted = build(txn)
        except BaseException:
            txn.abort()
            raise
        if not wanted:
            txn.abort()
            return False
        self.txn, self.done = txn, done
        self.started_at = time.monotonic()
        self.poll()
        return True

    def poll(self):
        if self.txn is None:
            return None
        status = self.txn.commit()
        if status == Transaction.INCOMPLETE:
            return None
        txn, self.txn = self.txn, None
        done, self.done = self.done, None
        LOG.debug('%s: transaction %s in %.1f ms', self.name, status,
                  (time.monotonic() - self.started_at) * 1000)
        if status not in (Transaction.SUCCESS, Transaction.UNCHANGED):
            self.blocked_at = self.built_at
            self.retry_at = time.monotonic() + self.RETRY_S
            error = txn.get_error()
            if status != Transaction.TRY_AGAIN:
                # e.g. another client deleted a row this one referenced:
                # retried once the replica has the change
                LOG.warning('%s: transaction %s (retried): %s', self.name,
                            status, error)
        else:
            self.blocked_at = None
        if done is not None:
            done(status)
        return status

    def wait(self, poller):
        if self.txn is not None:
            self.txn.wait(poller)

    def retry_due(self):
        """When a failed transaction may be tried again (None: not
        waiting for that)."""
        return self.retry_at if self.blocked_at is not None and \
            self.retry_at is not None else None

    def retry_now(self):
        """True once when a failed transaction may be tried again."""
        due = self.retry_due()
        if due is None or time.monotonic() < due:
            return False
        self.retry_at = None
        return True


def get(row, column, default=None):
    """A column of a row, also of one inserted by the current transaction
    (whose unset columns raise AttributeError)."""
    try:
        return getattr(row, column)
    except AttributeError:
        return default


class Replica:
    """One database the device follows and writes: its IDL replica and a
    Writer, driven by the device's loop (run, wait)."""

    def __init__(self, remote, schema, tables, name):
        self.idl = session(remote, schema, tables)
        self.writer = Writer(self.idl, name)
        self.seen = 0

    def run(self):
        self.idl.run()
        self.writer.poll()

    def wait(self, poller):
        self.idl.wait(poller)
        self.writer.wait(poller)
        due = self.writer.retry_due()
        if due is not None:
            poller.timer_wait(max(0, int((due - time.monotonic()) * 1000)))

    def changed(self):
        """The tables that changed since the last call (empty: none; {'*'}:
        the replica was reloaded)."""
        if self.idl.change_seqno == self.seen:
            return set()
        self.seen = self.idl.change_seqno
        touched, self.idl.touched = self.idl.touched or {'*'}, set()
        return touched

    def ready(self):
        return connected(self.idl)


def opt(value):
    """An optional OVSDB column's value (a list of 0 or 1) or None."""
    return value[0] if value else None
