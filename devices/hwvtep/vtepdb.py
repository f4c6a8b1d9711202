"""The switch's own hardware_vtep database, as the switch sees it.

Reads (written by the NVC, the controller): Logical_Switch (name,
tunnel_key, replication_mode), Physical_Port.vlan_bindings of this
Physical_Switch, Ucast_Macs_Remote, Mcast_Macs_Remote, Physical_Locator(_Set),
Tunnel.bfd_params and bfd_config_remote.
Writes (the switch's columns, vtep(5)): Global.switches, Physical_Switch
(name, description, management_ips, tunnel_ips, tunnels,
switch_fault_status, other_config), Physical_Port (name, description,
port_fault_status, other_config, vlan_stats -> Logical_Binding_Stats),
Ucast_Macs_Local, Mcast_Macs_Local (unknown-dst -> this switch), Tunnel
(local, remote, bfd_config_local, bfd_status): one Tunnel per remote
locator the switch tunnels to.
"""
import ipaddress
import logging
import re

from . import idl as idlmod
from .idl import get, opt

LOG = logging.getLogger('hwvtep.db')
SCHEMA = '/usr/share/openvswitch/vtep.ovsschema'
TABLES = {t: None for t in (
    'Global', 'Physical_Switch', 'Physical_Port', 'Logical_Switch',
    'Ucast_Macs_Local', 'Ucast_Macs_Remote', 'Mcast_Macs_Local',
    'Mcast_Macs_Remote', 'Physical_Locator', 'Physical_Locator_Set',
    'Tunnel', 'Logical_Binding_Stats')}
VXLAN = 'vxlan_over_ipv4'
UNKNOWN_DST = 'unknown-dst'
# vtep(5) defaults, which OVS's BFD also uses: received BFD packets are
# expected with these destination addresses
BFD_CONFIG_LOCAL = {'bfd_dst_mac': '00:23:20:00:00:01',
                    'bfd_dst_ip': '169.254.1.0'}


def _rows(tables, name):
    return list(tables[name].rows.values())


def find_ps(tables, ps_name):
    return next((r for r in _rows(tables, 'Physical_Switch')
                 if r.name == ps_name), None)


MAC_RE = re.compile(r'^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$')
VNI_MAX = (1 << 24) - 1


def _ipv4(text):
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def _ips(locator_set):
    return sorted((loc.dst_ip for loc in locator_set.locators
                   if loc.encapsulation_type == VXLAN and _ipv4(loc.dst_ip)),
                  key=ipaddress.IPv4Address)


def _vni(ls):
    """A logical switch's VNI, or None (none yet, or not a 24-bit one:
    its bindings are reported invalid_vlan_map)."""
    key = opt(ls.tunnel_key)
    return key if key is not None and 0 < key <= VNI_MAX else None


def config_of(tables, ps_name):
    """What the NVC asks of this switch: {'lss', 'bindings',
    'ucast_remote', 'mcast_remote', 'bfd', 'bfd_remote'} (the shape
    devices.hwvtep.pipeline takes, plus each remote locator's BFD
    parameters by IP). Only logical switches bound on this switch count;
    rows the switch cannot use (a MAC that is none, a locator that is not
    an IPv4 address) are left out and logged once."""
    ps = find_ps(tables, ps_name)
    bindings, lss = {}, {}
    for port in (ps.ports if ps else []):
        for vlan, ls in port.vlan_bindings.items():
            bindings[(port.name, vlan)] = ls.name
            lss[ls.name] = {'vni': _vni(ls),
                            'mode': opt(ls.replication_mode) or
                            'service_node'}
    ucast = {}
    for r in _rows(tables, 'Ucast_Macs_Remote'):
        if r.logical_switch and r.logical_switch.name in lss and \
                r.locator.encapsulation_type == VXLAN:
            if not (MAC_RE.match(r.MAC) and _ipv4(r.locator.dst_ip)):
                _unusable('Ucast_Macs_Remote', r.MAC, r.locator.dst_ip)
                continue
            ucast[(r.logical_switch.name, r.MAC.lower())] = r.locator.dst_ip
    mcast = {}
    for r in _rows(tables, 'Mcast_Macs_Remote'):
        if r.logical_switch and r.logical_switch.name in lss:
            if r.MAC != UNKNOWN_DST and not (MAC_RE.match(r.MAC) and
                                             int(r.MAC[:2], 16) & 1):
                _unusable('Mcast_Macs_Remote', r.MAC, 'not multicast')
                continue
            mac = r.MAC if r.MAC == UNKNOWN_DST else r.MAC.lower()
            mcast[(r.logical_switch.name, mac)] = _ips(r.locator_set)
    bfd, bfd_remote = {}, {}
    for t in (ps.tunnels if ps else []):
        if not _ipv4(t.remote.dst_ip):
            continue
        bfd[t.remote.dst_ip] = dict(t.bfd_params)
        bfd_remote[t.remote.dst_ip] = dict(t.bfd_config_remote)
    return {'lss': lss, 'bindings': bindings, 'ucast_remote': ucast,
            'mcast_remote': mcast, 'bfd': bfd, 'bfd_remote': bfd_remote}


_warned = set()


def _unusable(table, *what):
    if (table,) + what not in _warned:
        _warned.add((table,) + what)
        LOG.warning('%s row %s ignored: not usable by this switch', table,
                    ' '.join(map(str, what)))


def remote_ips(config):
    """Every remote locator this switch tunnels to: one Tunnel row each."""
    ips = set(config['ucast_remote'].values())
    for v in config['mcast_remote'].values():
        ips.update(v)
    return ips


class VtepDb(idlmod.Replica):
    """The replica of the switch's database and the writer of its rows."""

    def __init__(self, remote, ps_name):
        super().__init__(remote, SCHEMA, TABLES, f'{ps_name} hardware_vtep')
        self.ps_name = ps_name

    def config(self):
        return config_of(self.idl.tables, self.ps_name)

    def sync(self, want):
        """Bring the switch's rows to `want` (devices.hwvtep.report) in one
        transaction; -> True if one was started."""
        if not self.writer.may_start():
            return False
        return self.writer.start(lambda txn: _Build(self.idl, txn,
                                                   want).run())


def _locator_key(r):
    """A Physical_Locator's (dst_ip, encapsulation); None: it carries a
    tunnel key (not one this switch uses)."""
    return None if r.tunnel_key else (r.dst_ip, r.encapsulation_type)


def _local_mac_key(r):
    """A Ucast_Macs_Local row's (logical switch uuid, MAC, locator IP)."""
    return (r.logical_switch.uuid if r.logical_switch else None,
            r.MAC.lower(), r.locator.dst_ip if r.locator else None)


class _Build:
    """One transaction's worth of changes to the switch's rows."""

    def __init__(self, idl, txn, want):
        self.idl, self.t, self.txn, self.want = idl, idl.tables, txn, want
        self.changed = False
        self._own = self._own_set = self._stats_by_port = None
        self.locators = {key: r for r, key in idlmod.cached(
            idl, 'Physical_Locator', _locator_key) if key is not None}

    def run(self):
        ps = self._switch()
        self._ports(ps)
        lss = {name: r for r, name in idlmod.cached(
            self.idl, 'Logical_Switch', lambda r: r.name)}
        self._ucast_local(lss)
        self._mcast_local(lss)
        self._tunnels(ps)
        return self.changed

    def _set(self, row, column, value):
        if get(row, column) != value:
            setattr(row, column, value)
            self.changed = True

    def _insert(self, table):
        self.changed = True
        return self.txn.insert(self.t[table])

    def locator(self, ip):
        loc = self.locators.get((ip, VXLAN))
        if loc is None:
            loc = self._insert('Physical_Locator')
            loc.encapsulation_type, loc.dst_ip = VXLAN, ip
            self.locators[(ip, VXLAN)] = loc
        return loc

    def own(self):
        if self._own is None:
            self._own = self.locator(self.want['ps']['tunnel_ips'][0])
        return self._own

    def own_set(self):
        """The locator set {this switch} (sets are immutable: reuse one)."""
        if self._own_set is None:
            own = self.own()
            self._own_set = next(
                (s for s in _rows(self.t, 'Physical_Locator_Set')
                 if [loc.uuid for loc in s.locators] == [own.uuid]), None)
            if self._own_set is None:
                self._own_set = self._insert('Physical_Locator_Set')
                self._own_set.locators = [own]
        return self._own_set

    def _switch(self):
        want = self.want['ps']
        ps = find_ps(self.t, want['name'])
        if ps is None:
            ps = self._insert('Physical_Switch')
            ps.name = want['name']
            glob = next(iter(_rows(self.t, 'Global')), None)
            if glob is None:
                glob = self._insert('Global')
                glob.switches = [ps]
            else:
                glob.switches = list(glob.switches) + [ps]
        for col in ('description', 'tunnel_ips', 'management_ips',
                    'switch_fault_status', 'other_config'):
            self._set(ps, col, want[col])
        return ps

    def _ports(self, ps):
        have = {p.name: p for p in get(ps, 'ports', [])}
        rows = []
        for name, want in sorted(self.want['ports'].items()):
            port = have.get(name)
            if port is None:
                port = self._insert('Physical_Port')
                port.name = name
            for col in ('description', 'port_fault_status', 'other_config'):
                self._set(port, col, want[col])
            self._stats(port, name)
            rows.append(port)
        if sorted(p.uuid for p in rows) != \
                sorted(p.uuid for p in get(ps, 'ports', [])):
            ps.ports = rows
            self.changed = True

    def _stats(self, port, name):
        if self._stats_by_port is None:
            self._stats_by_port = {}
            for (pp, vlan), c in self.want['stats'].items():
                self._stats_by_port.setdefault(pp, {})[vlan] = c
        want = self._stats_by_port.get(name, {})
        have = dict(get(port, 'vlan_stats', {}))
        out = {}
        for vlan, counters in sorted(want.items()):
            row = have.get(vlan) or self._insert('Logical_Binding_Stats')
            for col, value in counters.items():
                self._set(row, col, value)
            out[vlan] = row
        if {v: r.uuid for v, r in out.items()} != \
                {v: r.uuid for v, r in have.items()}:
            port.vlan_stats = out
            self.changed = True

    def _ucast_local(self, lss):
        have = {}
        name_of = {r.uuid: name for name, r in lss.items()}
        for r, (ls_uuid, mac, dst_ip) in idlmod.cached(
                self.idl, 'Ucast_Macs_Local', _local_mac_key):
            key = (name_of.get(ls_uuid), mac)
            if key in have or key not in self.want['ucast_local'] or \
                    dst_ip != self.want['ps']['tunnel_ips'][0]:
                r.delete()
                self.changed = True
            else:
                have[key] = r
        for ls, mac in sorted(self.want['ucast_local'] - set(have)):
            if ls not in lss:
                continue
            row = self._insert('Ucast_Macs_Local')
            row.MAC, row.logical_switch, row.locator = mac, lss[ls], \
                self.own()

    def _mcast_local(self, lss):
        have = set()
        for r in _rows(self.t, 'Mcast_Macs_Local'):
            ls = r.logical_switch.name if r.logical_switch else None
            if r.MAC != UNKNOWN_DST or ls not in self.want['mcast_local'] \
                    or ls in have:
                r.delete()
                self.changed = True
            else:
                have.add(ls)
        for ls in sorted(self.want['mcast_local'] - have):
            if ls in lss:
                row = self._insert('Mcast_Macs_Local')
                row.MAC, row.logical_switch = UNKNOWN_DST, lss[ls]
                row.locator_set = self.own_set()

    def _tunnels(self, ps):
        have = {t.remote.dst_ip: t for t in get(ps, 'tunnels', [])}
        rows = []
        for ip, want in sorted(self.want['tunnels'].items()):
            tun = have.get(ip)
            if tun is None:
                tun = self._insert('Tunnel')
                tun.local, tun.remote = self.own(), self.locator(ip)
            self._set(tun, 'bfd_config_local', BFD_CONFIG_LOCAL)
            self._set(tun, 'bfd_status', want['bfd_status'])
            rows.append(tun)
        if sorted(t.uuid for t in rows) != \
                sorted(t.uuid for t in get(ps, 'tunnels', [])):
            ps.tunnels = rows
            self.changed = True
