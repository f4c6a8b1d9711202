"""A member of the switch (the node's own bridge on a Clos VTEP, a leaf's
on a VCF pod): its OpenFlow channel and its Open_vSwitch database, and
what the device knows of it.

The Open_vSwitch database: what the device reads and writes there besides
OpenFlow.

Reads: Interface (name, ofport, link_state, bfd_status) of the BFD tunnels
and of the member's fabric uplinks (a member without a live uplink cannot
carry the pod's BFD sessions). Writes: one VXLAN port per service node the
member runs BFD to (`bfd<8 hex digits of the IP>` on the member's bridge,
remote_ip=the service node, key=flow, bfd:* from Tunnel.bfd_params and
bfd_config_remote), deleting those no longer wanted. Nothing else.
"""
import ipaddress

from . import idl as idlmod
from .ofconn import OFConn

SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'
TABLES = {'Open_vSwitch': ['bridges'], 'Bridge': ['name', 'ports'],
          'Port': ['name', 'interfaces'],
          'Interface': ['name', 'type', 'options', 'bfd', 'bfd_status',
                        'ofport', 'link_state']}
PREFIX = 'bfd'


def port_name(ip):
    return PREFIX + '%08x' % int(ipaddress.IPv4Address(ip))


def ip_of(name):
    return str(ipaddress.IPv4Address(int(name[len(PREFIX):], 16)))


def is_bfd_port(name):
    tail = name[len(PREFIX):]
    return name.startswith(PREFIX) and len(tail) == 8 and \
        all(c in '0123456789abcdef' for c in tail)


class MemberDb(idlmod.Replica):
    def __init__(self, remote, bridge, name):
        super().__init__(remote, SCHEMA, TABLES, f'{name} Open_vSwitch')
        self.bridge, self.name = bridge, name

    def _interfaces(self):
        return {i.name: i for i in
                self.idl.tables['Interface'].rows.values()}

    def bfd_ports(self):
        """{service node ip: ofport} of this member's BFD tunnels that OVS
        has numbered."""
        out = {}
        for name, i in self._interfaces().items():
            ofport = idlmod.opt(i.ofport)
            if is_bfd_port(name) and ofport and ofport > 0:
                out[ip_of(name)] = ofport
        return out

    def bfd_config(self):
        """{service node ip: Interface bfd:* options} of the BFD tunnels."""
        return {ip_of(n): dict(i.bfd)
                for n, i in self._interfaces().items() if is_bfd_port(n)}

    def bfd_status(self):
        """{service node ip: Interface bfd_status} of the BFD tunnels."""
        return {ip_of(n): dict(i.bfd_status)
                for n, i in self._interfaces().items() if is_bfd_port(n)}

    def links_up(self, names):
        """How many of these interfaces have carrier."""
        intfs = self._interfaces()
        return sum(1 for n in names if n in intfs and
                   idlmod.opt(intfs[n].link_state) == 'up')

    def set_bfd(self, want):
        """want: {ip: bfd options}; -> True if a transaction started."""
        if not self.writer.may_start():
            return False
        return self.writer.start(lambda txn: self._build(txn, want))

    def _build(self, txn, want):
        bridge = next((b for b in self.idl.tables['Bridge'].rows.values()
                       if b.name == self.bridge), None)
        if bridge is None:
            return False
        changed, keep = False, []
        for port in bridge.ports:
            if not is_bfd_port(port.name):
                keep.append(port)
                continue
            ip = ip_of(port.name)
            if ip not in want:
                changed = True
                continue
            keep.append(port)
            for intf in port.interfaces:
                if dict(intf.bfd) != want[ip]:
                    intf.bfd = want[ip]
                    changed = True
        have = {ip_of(p.name) for p in bridge.ports if is_bfd_port(p.name)}
        for ip in sorted(set(want) - have):
            intf = txn.insert(self.idl.tables['Interface'])
            intf.name, intf.type = port_name(ip), 'vxlan'
            intf.options = {'remote_ip': ip, 'key': 'flow'}
            intf.bfd = want[ip]
            port = txn.insert(self.idl.tables['Port'])
            port.name, port.interfaces = port_name(ip), [intf]
            keep.append(port)
            changed = True
        if changed:
            bridge.ports = keep
        return changed


class Member:
    """One bridge the device programs (a Clos VTEP's own, or a VCF leaf's)
    and what the device knows of it."""

    def __init__(self, layout, device):
        self.layout, self.name = layout, layout['name']
        self.of = OFConn(self.name, layout['of_socket'], device)
        self.db = MemberDb(layout['ovsdb'], layout['bridge'],
                                  self.name)
        self.port_of = {ofport: pp for pp, ofport in layout['ports'].items()}
        self.want = {}          # section key -> {cookie: flow}
        self.groups = []        # desired groups
        self.installed = None   # cookies on the bridge (None: not read yet)
        self.sent_groups = {}   # group id -> group, as installed
        self.dump = None        # flows being read after a connect
        self.carrier = {}       # port -> up?
        self.stat_of = {}       # cookie -> ((port, vlan), 'from' | 'to')
        self.counts = {}        # cookie -> (packets, bytes), as last read
        self.count_parts = None  # a statistics reply being read
        self.resync_after = 0.0  # no re-read before (after errors)
        self.bfd_want = {}      # BFD tunnels this member should run
        self.bfd_ports_seen = {}  # BFD tunnels numbered, as last computed
        self.stale_groups = []  # installed groups no longer wanted
        self.found = []         # learned flows read back after a connect

    def ready(self):
        return self.of.ready and self.installed is not None
