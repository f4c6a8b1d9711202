"""The controller follows every hypervisor's and software gateway's own
OVSDB: one persistent python-ovs IDL replica each (Interface: name,
ofport, external_ids), all driven by one thread and one ovs.poller loop.

A hypervisor announces what plugs into it as NSX and OVN hypervisors do:
a VM's port carries external_ids:iface-id (the attachment its logical port
is bound by) and attached-mac. After each change of a node's replica the
follower hands the node's whole set of VIFs to `on_vifs(node, vifs)`,
vifs = {iface-id: {'ofport', 'mac', 'interface'}}: the controller binds a
logical port where its VIF appears, without waiting for an API call.

A software gateway's agent publishes, while it is active, the physical MACs
it learned on a cable (devices.gwagent.learning): the cable's Interface
external_ids:l2gw-macs = "VLAN/MAC ...". After each change the follower
hands the gateway's whole set {(cable, vlan, mac)} to
`on_macs(node, macs)`; a gateway whose OVSDB session is lost (powered off)
reports the empty set: what it published may be stale.

A software gateway's agent also publishes its role on each physical
segment (devices.gwagent: br-<segment> external_ids:l2gw-state, 'active',
'standby' or 'down'); the follower keeps the last of each
(`gateway_states()`, for the lab's map), and forgets a gateway's when its
session is lost.

For the edges whose BFD view the controller follows (topologies.liveness.
reporters), the follower also hands over, after each change, the state of
their tunnels' BFD sessions: `on_bfd(node, {peer: forwarding?})` (tunnel
vx<peer>, Interface bfd_status); a session that has no status yet is left
out.

The same sessions carry the controller's writes to those databases
(tunnel ports, BFD, CFM IDs: controllers.tunnels builds them):
`transact(node, build)` runs build(tables, txn) in the follower's thread
on the node's replica once it is current, commits, and waits for the
outcome (one transaction per call; a conflict is rebuilt and retried).
"""
import logging
import os
import sys
import threading
import time

_HAD_EVENTLET = 'eventlet' in sys.modules
sys.modules.setdefault('eventlet', None)       # see controllers/hwvtep.py
import ovs.db.idl      # noqa: E402
import ovs.poller      # noqa: E402
if not _HAD_EVENTLET:
    sys.modules.pop('eventlet', None)

from .model import MAC_RE  # noqa: E402

LOG = logging.getLogger('nsx.nodedb')
SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'
MAX_BACKOFF_MS = 1000
MACS_KEY = 'l2gw-macs'
STATE_KEY = 'l2gw-state'
COLUMNS = {'Interface': ['name', 'ofport', 'external_ids', 'bfd_status',
                         'type', 'options', 'ofport_request', 'bfd',
                         'cfm_mpid', 'other_config'],
           'Port': ['name', 'interfaces'],
           'Bridge': ['name', 'ports', 'external_ids']}
RETRIES = 5                      # a transaction that conflicted, rebuilt


def vifs_of(rows):
    """Interface rows (dicts: name, ofport, external_ids) -> {iface-id:
    {'ofport', 'mac', 'interface'}} for the ports that carry an iface-id
    and have an OpenFlow port number (a port OVS could not open has -1)."""
    out = {}
    for r in rows:
        ids = r.get('external_ids') or {}
        vif = ids.get('iface-id')
        ofport = r.get('ofport')
        ofport = ofport[0] if isinstance(ofport, list) and ofport else ofport
        if not vif or not isinstance(ofport, int) or ofport <= 0:
            continue
        out[vif] = {'ofport': ofport, 'mac': ids.get('attached-mac'),
                    'interface': r.get('name')}
    return out


def gateway_states_of(bridges):
    """Bridge rows (dicts: name, external_ids) -> {segment: the role a
    software gateway's agent published on br-<segment>}."""
    return {b['name'][3:]: (b.get('external_ids') or {})[STATE_KEY]
            for b in bridges if b['name'].startswith('br-') and
            STATE_KEY in (b.get('external_ids') or {})}


def gateway_macs_of(rows):
    """Interface rows (dicts: name, external_ids) -> {(cable, vlan, mac)}
    that the gateway published; malformed items are skipped."""
    out = set()
    for r in rows:
        for item in ((r.get('external_ids') or {}).get(MACS_KEY) or
                     '').split():
            vlan, _, mac = item.partition('/')
            mac = mac.lower()
            if vlan.isdigit() and int(vlan) <= 4095 and MAC_RE.match(mac):
                out.add((r.get('name'), int(vlan), mac))
    return out


def bfd_of(rows):
    """Interface rows (dicts: name, bfd_status) -> {peer: forwarding?} for
    the tunnel ports vx<peer> whose BFD reports a status."""
    out = {}
    for r in rows:
        name, status = r.get('name') or '', r.get('bfd_status') or {}
        if name.startswith('vx') and status:
            out[name[2:]] = status.get('forwarding') == 'true'
    return out


def _idl(remote):
    helper = ovs.db.idl.SchemaHelper(location=SCHEMA)
    for table, columns in COLUMNS.items():
        helper.register_columns(table, columns)
    idl = ovs.db.idl.Idl(remote, helper)
    idl._session.reconnect.set_backoff(100, MAX_BACKOFF_MS)
    return idl


class _Job:
    """One transaction asked of the follower's thread."""

    def __init__(self, node, build):
        self.node, self.build = node, build
        self.txn, self.tries = None, 0
        self.result, self.error = None, None
        self.done = threading.Event()

    def finish(self, error=None):
        self.error = error
        self.done.set()

    def wait(self, timeout):
        """-> build's result; RuntimeError if the transaction failed or
        did not end within `timeout` seconds."""
        if not self.done.wait(timeout):
            raise RuntimeError(f'{self.node}: OVSDB transaction not done '
                               f'within {timeout:.0f} s')
        if self.error:
            raise RuntimeError(f'{self.node}: {self.error}')
        return self.result


class NodeFollower:
    def __init__(self, remotes, on_vifs=None, gateways=(), on_macs=None,
                 bfd_nodes=(), on_bfd=None, hypervisors=None):
        """remotes: {node: OVSDB remote}; the nodes in `hypervisors` (all
        but the gateways if None) report their VIFs to on_vifs; those in
        `gateways` are software gateways (their learned MACs go to
        on_macs); those in `bfd_nodes` report their tunnels' BFD state to
        on_bfd. Any of them takes transactions (transact)."""
        self.remotes, self.on_vifs = dict(remotes), on_vifs
        self.gateways, self.on_macs = set(gateways), on_macs
        self.bfd_nodes, self.on_bfd = set(bfd_nodes), on_bfd
        self.hypervisors = set(self.remotes) - self.gateways \
            if hypervisors is None else set(hypervisors)
        self.idls, self.seen, self.last, self.last_bfd = {}, {}, {}, {}
        self.states = {}         # gateway -> {segment: role it published}
        self._states_lock = threading.Lock()
        self.up = {}
        self.session = {}          # node -> {connected, since, reconnects}
        self.restarts = 0          # the loop failed and was started again
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._thread = None
        self._jobs_lock = threading.Lock()
        self._queued, self._active = [], []

    def submit(self, node, build):
        """Ask for one transaction on `node`'s database: build(tables,
        txn) -> a result (tables: the replica's tables; write through
        txn.insert and the rows' attributes, setkey, addvalue...). -> a
        job; job.wait(timeout) -> the result."""
        job = _Job(node, build)
        if node not in self.remotes:
            job.finish(f'not followed (OVSDB of {node} unknown)')
            return job
        with self._jobs_lock:
            self._queued.append(job)
        os.write(self._wake_w, b'x')
        return job

    def transact(self, node, build, timeout=20.0):
        return self.submit(node, build).wait(timeout)

    def start(self):
        self._thread = threading.Thread(target=self._supervise,
                                        daemon=True, name='node-ovsdb')
        self._thread.start()
        return self

    def stop(self, timeout=5.0):
        self._stop.set()
        os.write(self._wake_w, b'x')
        if self._thread:
            self._thread.join(timeout)

    def vifs(self, node):
        """The last set of VIFs seen on `node` (None: not read yet)."""
        return self.last.get(node)

    def sessions(self):
        """{node: {'connected', 'since' (Unix time of the last change),
        'reconnects'}} of the OVSDB sessions (each reconnects by itself,
        backing off up to MAX_BACKOFF_MS), and the loop's restarts."""
        return {'nodes': {n: {k: s[k] for k in ('connected', 'since',
                                                'reconnects')}
                          for n, s in sorted(self.session.items())},
                'loop_restarts': self.restarts}

    def gateway_states(self):
        """{software gateway: {segment: 'active' | 'standby' | 'down'}} as
        each last published it; a gateway whose session is lost is left
        out (what it said may be stale)."""
        with self._states_lock:
            return {n: dict(s) for n, s in sorted(self.states.items())}

    def _supervise(self):
        """The loop, started again (and logged) if it ever fails: the
        sessions and their replicas are kept."""
        while not self._stop.is_set():
            try:
                self._loop()
            except Exception:
                self.restarts += 1
                LOG.exception('OVSDB follower loop failed (restart %d)',
                              self.restarts)
                self._stop.wait(0.5)

    def _note(self, node, up):
        s = self.session.setdefault(node, {'connected': False, 'since': None,
                                           'reconnects': 0, 'ever': False})
        if up != s['connected']:
            s.update(connected=up, since=time.time())
            if up:
                if s['ever']:
                    s['reconnects'] += 1
                    LOG.info('%s: OVSDB session back (reconnect %d)', node,
                             s['reconnects'])
                s['ever'] = True
            else:
                LOG.warning('%s: OVSDB session lost; reconnecting', node)

    def _loop(self):
        if not self.idls:
            self.idls = {n: _idl(r) for n, r in self.remotes.items()}
        while not self._stop.is_set():
            try:
                os.read(self._wake_r, 4096)
            except BlockingIOError:
                pass
            for node, idl in self.idls.items():
                try:
                    idl.run()
                except Exception:                # one node must not stop all
                    LOG.exception('%s: OVSDB replica failed', node)
                    continue
                up = idl._session.is_connected()
                if idl.change_seqno != self.seen.get(node):
                    self.seen[node] = idl.change_seqno
                    self._changed(node, idl)
                # after the changes: a session lost in the same run makes
                # what the rows still say stale
                if node in self.gateways and not up and self.up.get(node):
                    self._deliver(node, set())
                    with self._states_lock:
                        self.states.pop(node, None)
                self.up[node] = up
                self._note(node, up)
            self._run_jobs()
            poller = ovs.poller.Poller()
            for idl in self.idls.values():
                idl.wait(poller)
            for job in self._active:
                if job.txn is not None:
                    job.txn.wait(poller)
                else:
                    poller.timer_wait(50)      # replica not current yet
            poller.fd_wait(self._wake_r, ovs.poller.POLLIN)
            poller.block()
        for idl in self.idls.values():
            idl.close()
        with self._jobs_lock:
            jobs, self._queued = self._active + self._queued, []
        for job in jobs:
            job.finish('the follower stopped')

    def _run_jobs(self):
        """Start queued transactions on replicas that are current, and
        collect the outcome of those in flight."""
        T = ovs.db.idl.Transaction
        with self._jobs_lock:
            jobs, self._queued = self._active + self._queued, []
        self._active = []
        for job in jobs:
            idl = self.idls[job.node]
            if job.txn is None:
                if not (idl._session.is_connected() and
                        idl.state == idl.IDL_S_MONITORING):
                    self._active.append(job)         # not current yet
                    continue
                job.txn = T(idl)
                try:
                    job.result = job.build(idl.tables, job.txn)
                except Exception as exc:
                    job.txn.abort()
                    LOG.exception('%s: transaction not built', job.node)
                    job.finish(f'transaction not built: {exc}')
                    continue
            status = job.txn.commit()
            if status == T.INCOMPLETE:
                self._active.append(job)
            elif status == T.TRY_AGAIN and job.tries < RETRIES:
                job.txn, job.tries = None, job.tries + 1
                self._active.append(job)             # rebuilt next round
            elif status in (T.SUCCESS, T.UNCHANGED):
                job.finish()
            else:
                job.finish(f'transaction {T.status_to_string(status)}: '
                           f'{job.txn.get_error()}')

    def _changed(self, node, idl):
        rows = [{'name': r.name, 'ofport': r.ofport,
                 'external_ids': dict(r.external_ids),
                 'bfd_status': dict(r.bfd_status)}
                for r in idl.tables['Interface'].rows.values()]
        if node in self.gateways and not idl._session.is_connected():
            pass                  # what the rows say is stale (see _loop)
        elif node in self.gateways:
            self._deliver(node, gateway_macs_of(rows))
            states = gateway_states_of(
                [{'name': b.name, 'external_ids': dict(b.external_ids)}
                 for b in idl.tables['Bridge'].rows.values()])
            with self._states_lock:
                self.states[node] = states
        elif node in self.hypervisors:
            self._deliver(node, vifs_of(rows))
        if node in self.bfd_nodes and self.on_bfd:
            bfd = bfd_of(rows)
            if bfd != self.last_bfd.get(node):
                self.last_bfd[node] = bfd
                try:
                    self.on_bfd(node, bfd)
                except Exception:
                    LOG.exception('%s: BFD change not handled', node)

    def _deliver(self, node, value):
        if value == self.last.get(node):
            return
        self.last[node] = value
        try:
            if node in self.gateways:
                if self.on_macs:
                    self.on_macs(node, value)
            else:
                self.on_vifs(node, value)
        except Exception:
            LOG.exception('%s: change not handled', node)
