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

For the edges whose BFD view the controller follows (topologies.liveness.
reporters), the follower also hands over, after each change, the state of
their tunnels' BFD sessions: `on_bfd(node, {peer: forwarding?})` (tunnel
vx<peer>, Interface bfd_status); a session that has no status yet is left
out.
"""
import logging
import os
import sys
import threading

_HAD_EVENTLET = 'eventlet' in sys.modules
sys.modules.setdefault('eventlet', None)       # see controllers/hwvtep.py
import ovs.db.idl      # noqa: E402
import ovs.poller      # noqa: E402
if not _HAD_EVENTLET:
    sys.modules.pop('eventlet', None)

LOG = logging.getLogger('nsx.nodedb')
SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'
MAX_BACKOFF_MS = 1000
MACS_KEY = 'l2gw-macs'


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


def gateway_macs_of(rows):
    """Interface rows (dicts: name, external_ids) -> {(cable, vlan, mac)}
    that the gateway published; malformed items are skipped."""
    out = set()
    for r in rows:
        for item in ((r.get('external_ids') or {}).get(MACS_KEY) or
                     '').split():
            vlan, _, mac = item.partition('/')
            parts = mac.split(':')
            if not vlan.isdigit() or int(vlan) > 4095 or len(parts) != 6 \
                    or not all(len(x) == 2 and all(
                        c in '0123456789abcdef' for c in x.lower())
                        for x in parts):
                continue
            out.add((r.get('name'), int(vlan), mac.lower()))
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
    helper.register_columns('Interface', ['name', 'ofport', 'external_ids',
                                          'bfd_status'])
    idl = ovs.db.idl.Idl(remote, helper)
    idl._session.reconnect.set_backoff(100, MAX_BACKOFF_MS)
    return idl


class NodeFollower:
    def __init__(self, remotes, on_vifs, gateways=(), on_macs=None,
                 bfd_nodes=(), on_bfd=None):
        """remotes: {node: OVSDB remote}; the nodes in `gateways` are
        software gateways (their learned MACs go to on_macs), the others
        hypervisors (their VIFs go to on_vifs); those in `bfd_nodes` also
        report their tunnels' BFD state to on_bfd."""
        self.remotes, self.on_vifs = dict(remotes), on_vifs
        self.gateways, self.on_macs = set(gateways), on_macs
        self.bfd_nodes, self.on_bfd = set(bfd_nodes), on_bfd
        self.idls, self.seen, self.last, self.last_bfd = {}, {}, {}, {}
        self.up = {}
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='node-ovsdb')
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

    def _loop(self):
        self.idls = {n: _idl(r) for n, r in self.remotes.items()}
        while not self._stop.is_set():
            for node, idl in self.idls.items():
                try:
                    idl.run()
                except Exception:                # one node must not stop all
                    LOG.exception('%s: OVSDB replica failed', node)
                    continue
                up = idl._session.is_connected()
                if node in self.gateways and not up and self.up.get(node):
                    self._deliver(node, set())       # what it said is stale
                self.up[node] = up
                if idl.change_seqno != self.seen.get(node):
                    self.seen[node] = idl.change_seqno
                    self._changed(node, idl)
            poller = ovs.poller.Poller()
            for idl in self.idls.values():
                idl.wait(poller)
            poller.fd_wait(self._wake_r, ovs.poller.POLLIN)
            poller.block()
        for idl in self.idls.values():
            idl.close()

    def _changed(self, node, idl):
        rows = [{'name': r.name, 'ofport': r.ofport,
                 'external_ids': dict(r.external_ids),
                 'bfd_status': dict(r.bfd_status)}
                for r in idl.tables['Interface'].rows.values()]
        self._deliver(node, gateway_macs_of(rows) if node in self.gateways
                      else vifs_of(rows))
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
