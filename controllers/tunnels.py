"""Thin OVSDB (Open_vSwitch) driver: the tunnel ports of one transport node,
and the software gateways' CFM IDs.

Each function returns a `build(tables, txn)` for one transaction on the
node's own database, run by controllers.nodedb.NodeFollower.transact on
the controller's persistent IDL session to that node (no ovs-vsctl): one
vxlan port per remote VTEP named vx<peer> (key=flow: the VNI comes from
the flow), BFD where intent asks for it. Reconciles: adds what is
missing, changes what differs, deletes vx* ports that are not wanted;
touches nothing else.
"""


def _one(value):
    """An optional column's value (python-ovs gives a list) or None."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _by_name(tables, table):
    return {r.name: r for r in tables[table].rows.values()}


def installed(tables):
    """{port name: {'remote_ip', 'ofport', 'bfd'}} of our vx* tunnels in a
    replica's tables."""
    rows = {}
    for name, r in _by_name(tables, 'Interface').items():
        if not name.startswith('vx'):
            continue
        ofport = _one(r.ofport_request)
        rows[name] = {'remote_ip': dict(r.options).get('remote_ip'),
                      'ofport': ofport if isinstance(ofport, int) else None,
                      'bfd': dict(r.bfd).get('enable') == 'true'}
    return rows


def plan_changes(want, have):
    """want: intent.tunnels() values; have: installed(). -> (add, delete,
    bfd) lists of port names: a changed port is deleted and added; `bfd`
    are the ports whose BFD setting must change."""
    by_name = {t['name']: t for t in want}
    add, delete = [], []
    for name, t in sorted(by_name.items()):
        cur = have.get(name)
        if cur is None or (cur['remote_ip'], cur['ofport']) != (
                t['remote_ip'], t['port']):
            if cur is not None:
                delete.append(name)
            add.append(name)
    delete += sorted(n for n in have if n not in by_name)
    bfd = [n for n, t in sorted(by_name.items())
           if n in add or have[n]['bfd'] != t['bfd']]
    bfd = [n for n in bfd if by_name[n]['bfd'] or n not in add]
    return add, delete, bfd


def reconcile(want, bridge='br-int'):
    """Ports first (no BFD). The build returns (changes, the ports whose
    BFD must then be set with `set_bfd`; see Core.enable_bfd for when)."""
    by_name = {t['name']: t for t in want}

    def build(tables, txn):
        add, delete, bfd = plan_changes(want, installed(tables))
        if not add and not delete:
            return 0, [by_name[n] for n in bfd]
        br = _by_name(tables, 'Bridge').get(bridge)
        if br is None:
            raise RuntimeError(f'no bridge {bridge}')
        ports = _by_name(tables, 'Port')
        for name in delete:
            port = ports.get(name)
            if port is None:
                continue
            br.delvalue('ports', port)
            for iface in port.interfaces:
                iface.delete()
            port.delete()
        for name in add:
            t = by_name[name]
            iface = txn.insert(tables['Interface'])
            iface.name, iface.type = name, 'vxlan'
            iface.options = {'remote_ip': t['remote_ip'], 'key': 'flow'}
            iface.ofport_request = [t['port']]
            port = txn.insert(tables['Port'])
            port.name, port.interfaces = name, [iface]
            br.addvalue('ports', port)
        return len(add) + len(delete), [by_name[n] for n in bfd]
    return build


def refresh(name, n):
    """Reconfigure one tunnel port (toggles options:ttl between OVS's
    default made explicit and unset) so OVS re-creates its tunnel state."""
    def build(tables, _txn):
        iface = _by_name(tables, 'Interface').get(name)
        if iface is None:
            raise RuntimeError(f'no interface {name}')
        if n % 2:
            iface.delkey('options', 'ttl')
        else:
            iface.setkey('options', 'ttl', '64')
    return build


def set_bfd(ports, ms):
    """Enable (or disable) BFD on tunnel ports, as intent says, every `ms`
    (the lab's bfd_interval_ms)."""
    def build(tables, _txn):
        rows = _by_name(tables, 'Interface')
        for t in ports:
            iface = rows.get(t['name'])
            if iface is None:
                raise RuntimeError(f"no interface {t['name']}")
            iface.setkey('bfd', 'enable', 'true' if t['bfd'] else 'false')
            if t['bfd']:
                iface.setkey('bfd', 'min_tx', str(ms))
                iface.setkey('bfd', 'min_rx', str(ms))
    return build


def set_cfm(port, mpid, interval_ms):
    """A software gateway's CFM ID and interval on its segment port."""
    def build(tables, _txn):
        iface = _by_name(tables, 'Interface').get(port)
        if iface is None:
            raise RuntimeError(f'no interface {port}')
        iface.cfm_mpid = [mpid]
        iface.setkey('other_config', 'cfm_interval', str(interval_ms))
    return build
