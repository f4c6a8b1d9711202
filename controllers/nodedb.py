"""The controller follows every hypervisor's own OVSDB: one persistent
python-ovs IDL replica each (Interface: name, ofport, external_ids), all
driven by one thread and one ovs.poller loop.

A hypervisor announces what plugs into it as NSX and OVN hypervisors do:
a VM's port carries external_ids:iface-id (the attachment its logical port
is bound by) and attached-mac. After each change of a node's replica the
follower hands the node's whole set of VIFs to `on_vifs(node, vifs)`,
vifs = {iface-id: {'ofport', 'mac', 'interface'}}: the controller binds a
logical port where its VIF appears, without waiting for an API call.
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


def _idl(remote):
    helper = ovs.db.idl.SchemaHelper(location=SCHEMA)
    helper.register_columns('Interface', ['name', 'ofport', 'external_ids'])
    idl = ovs.db.idl.Idl(remote, helper)
    idl._session.reconnect.set_backoff(100, MAX_BACKOFF_MS)
    return idl


class NodeFollower:
    def __init__(self, remotes, on_vifs):
        """remotes: {node: OVSDB remote}."""
        self.remotes, self.on_vifs = dict(remotes), on_vifs
        self.idls, self.seen, self.last = {}, {}, {}
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
                 'external_ids': dict(r.external_ids)}
                for r in idl.tables['Interface'].rows.values()]
        vifs = vifs_of(rows)
        if vifs == self.last.get(node):
            return
        self.last[node] = vifs
        try:
            self.on_vifs(node, vifs)
        except Exception:
            LOG.exception('%s: VIF change not handled', node)
