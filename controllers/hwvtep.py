"""Thin OVSDB driver for hardware VTEPs (the `hardware_vtep` schema) over
their management address, with vtep-ctl; plus a monitor of
Ucast_Macs_Local (pushed updates, no polling).

Reads: Logical_Switch, Physical_Port bindings, Ucast_Macs_Remote,
Mcast_Macs_Remote, Ucast_Macs_Local. Writes: the first four, to match
`intent.vtep_intent` (adds what is missing, removes what is left over).
"""
import subprocess

from .ovsdbmon import Monitor


def _ctl(db, *args, timeout=20):
    res = subprocess.run(['vtep-ctl', f'--db={db}', f'--timeout={timeout}',
                          *args], capture_output=True, text=True,
                         timeout=timeout + 5)
    if res.returncode != 0:
        raise RuntimeError(f'vtep-ctl {db} {args[:3]}: {res.stderr.strip()}')
    return res.stdout


def current(db, ps):
    """The VTEP's present state, in the shape of intent.vtep_intent()."""
    lss = {}
    for name in _ctl(db, 'list-ls').split():
        key = _ctl(db, 'get', 'Logical_Switch', name, 'tunnel_key').strip()
        lss[name] = int(key) if key.isdigit() else None
    bindings = {}
    for port in _ctl(db, 'list-ports', ps).split():
        for line in _ctl(db, 'list-bindings', ps, port).splitlines():
            vlan, ls = line.split()
            bindings[(port, int(vlan))] = ls
    ucast, mcast = {}, {}
    for ls in lss:
        section = None
        for line in _ctl(db, 'list-remote-macs', ls).splitlines():
            line = line.strip()
            if line.startswith('ucast-mac-remote'):
                section = 'u'
            elif line.startswith('mcast-mac-remote'):
                section = 'm'
            elif line and '->' in line:
                mac, loc = (x.strip() for x in line.split('->'))
                ip = loc.split('/')[-1]
                if section == 'u':
                    ucast[(ls, mac)] = ip
                elif mac == 'unknown-dst':
                    mcast.setdefault(ls, []).append(ip)
    return {'logical_switches': lss, 'bindings': bindings,
            'ucast_remote': ucast,
            'mcast_remote': {k: sorted(v) for k, v in mcast.items()}}


def reconcile(db, ps, want):
    """Make the VTEP's database match `want`; returns the commands run."""
    have = current(db, ps)
    cmds = []
    for ls, vni in sorted(want['logical_switches'].items()):
        if have['logical_switches'].get(ls, 'missing') != vni:
            cmds.append(['--may-exist', 'add-ls', ls, '--', 'set',
                         'Logical_Switch', ls, f'tunnel_key={vni}'])
    for (port, vlan), ls in sorted(want['bindings'].items()):
        if have['bindings'].get((port, vlan)) != ls:
            cmds.append(['bind-ls', ps, port, str(vlan), ls])
    for (port, vlan) in sorted(set(have['bindings']) - set(want['bindings'])):
        cmds.append(['unbind-ls', ps, port, str(vlan)])
    for (ls, mac), ip in sorted(want['ucast_remote'].items()):
        if have['ucast_remote'].get((ls, mac)) != ip:
            cmds.append(['add-ucast-remote', ls, mac, 'vxlan_over_ipv4', ip])
    for (ls, mac) in sorted(set(have['ucast_remote']) -
                            set(want['ucast_remote'])):
        if ls in want['logical_switches']:
            cmds.append(['del-ucast-remote', ls, mac])
    for ls, ips in sorted(want['mcast_remote'].items()):
        old = have['mcast_remote'].get(ls, [])
        if sorted(ips) != old:
            if old:
                cmds.append(['clear-remote-macs', ls])     # re-adds ucast
                cmds += [['add-ucast-remote', ls, mac, 'vxlan_over_ipv4', ip]
                         for (l2, mac), ip in sorted(
                             want['ucast_remote'].items()) if l2 == ls]
            cmds += [['add-mcast-remote', ls, 'unknown-dst',
                      'vxlan_over_ipv4', ip] for ip in ips]
    for ls in sorted(set(have['logical_switches']) -
                     set(want['logical_switches'])):
        cmds.append(['clear-remote-macs', ls])
        cmds.append(['--if-exists', 'del-ls', ls])
    if cmds:
        args = []
        for c in cmds:
            args += ['--'] + c
        _ctl(db, *args)
    return cmds


class LocalMacMonitor:
    """Follows Ucast_Macs_Local of one VTEP database and calls
    on_change({(vni, mac)}) with the full set after each update (figure 15,
    step 6: the VTEP reports what it learned). A logical switch's VNI is
    looked up once per switch, on first sight."""

    def __init__(self, db, on_change):
        self.db, self.on_change = db, on_change
        self.rows, self.vni = {}, {}
        self.mon = Monitor(db, 'hardware_vtep', 'Ucast_Macs_Local',
                           'MAC,logical_switch', self._update)

    def start(self):
        self.mon.start()
        return self

    def stop(self):
        self.mon.stop()

    def _vni(self, ls_uuid):
        if ls_uuid not in self.vni:
            try:
                key = _ctl(self.db, 'get', 'Logical_Switch', ls_uuid,
                           'tunnel_key').strip()
            except RuntimeError:
                return None
            self.vni[ls_uuid] = int(key) if key.isdigit() else None
        return self.vni[ls_uuid]

    def _update(self, rows):
        for row in rows:
            uuid, action = row.get('row'), row.get('action')
            if action == 'delete':
                self.rows.pop(uuid, None)
            elif action in ('initial', 'insert', 'new'):
                ls = row.get('logical_switch')
                self.rows[uuid] = (ls[1] if isinstance(ls, list) else ls,
                                   row.get('MAC'))
        macs = {(self._vni(ls), mac) for ls, mac in self.rows.values()}
        self.on_change({m for m in macs if m[0] is not None})
