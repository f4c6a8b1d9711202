"""What a hardware VTEP's database must become (pure): the controller's
operations from what it holds (`have`, read from an IDL replica) to what
it must hold (`want`, intent.vtep_intent). controllers.hwvtep applies them.

    plan(want, have)       the operations, in an order in which no row
                           ever references a missing one
    read_have(tables, ps)  the VTEP's present state, from the replica, and
                           what the switch reports it learned
"""
ENCAP = 'vxlan_over_ipv4'
UNKNOWN_DST = 'unknown-dst'


def plan(want, have):
    """The operations that make a VTEP database holding `have` hold `want`,
    as plain tuples, in an order in which no row ever references a missing
    one (logical switches first, then what stops referencing old rows, then
    new references, then deletions of logical switches):

        ('add_ls', ls, vni, mode)  ('set_ls', ls, vni, mode)
        ('del_ucast', ls, mac)     ('del_mcast', ls)
        ('unbind', port, vlan)     ('bind', port, vlan, ls)
        ('add_ucast', ls, mac, ip) ('set_ucast', ls, mac, ip)
        ('set_mcast', ls, (ip, ...))
        ('del_ls', ls)             ('set_bfd', ip, bfd_params)

    want: intent.vtep_intent(). have: read_have(), the same shape plus
    'ports' (the physical switch's port names: a binding on a port the
    switch has not created yet waits for it), 'local_refs' (logical switches
    that rows the controller does not write still reference: the switch's
    Ucast/Mcast_Macs_Local, bindings of another physical switch; one that
    is not wanted any more is deleted once they let go of it) and 'tunnels'
    ({remote ip: bfd_params} of the switch's Tunnel rows).
    """
    gone = sorted(set(have['logical_switches']) -
                  set(want['logical_switches']))
    return (_ls_ops(want, have) + _unref_ops(want, have) +
            _bind_ops(want, have) + _ucast_ops(want, have) +
            _mcast_ops(want, have) +
            [('del_ls', ls) for ls in gone
             if ls not in have.get('local_refs', ())] +
            _bfd_ops(want, have))


def _ls_ops(want, have):
    """Logical_Switch rows to create, or whose tunnel_key/replication_mode
    differ."""
    ops = []
    for ls, w in sorted(want['logical_switches'].items()):
        h = have['logical_switches'].get(ls)
        if h is None:
            ops.append(('add_ls', ls, w['vni'], w['mode']))
        elif (h['vni'], h['mode']) != (w['vni'], w['mode']):
            ops.append(('set_ls', ls, w['vni'], w['mode']))
    return ops


def _unref_ops(want, have):
    """Rows that are not wanted any more and reference a logical switch:
    remote MACs (every one of a switch that goes), unknown-dst rows, and
    bindings."""
    ops = [('del_ucast', ls, mac) for ls, mac in sorted(
        set(have['ucast_remote']) - set(want['ucast_remote']))]
    ops += [('del_mcast', ls) for ls in sorted(have['mcast_remote'])
            if not want['mcast_remote'].get(ls)]
    ops += [('unbind', port, vlan) for port, vlan in sorted(
        set(have['bindings']) - set(want['bindings']))]
    return ops


def _bind_ops(want, have):
    """Bindings that are missing or point at another logical switch, on
    ports the physical switch has."""
    return [('bind', port, vlan, ls)
            for (port, vlan), ls in sorted(want['bindings'].items())
            if have['bindings'].get((port, vlan)) != ls and
            port in have.get('ports', ())]


def _ucast_ops(want, have):
    """Remote MACs to add, or to move to another locator."""
    ops = []
    for (ls, mac), ip in sorted(want['ucast_remote'].items()):
        old = have['ucast_remote'].get((ls, mac))
        if old is None:
            ops.append(('add_ucast', ls, mac, ip))
        elif old != ip:
            ops.append(('set_ucast', ls, mac, ip))
    return ops


def _mcast_ops(want, have):
    """unknown-dst locator sets that differ (a set is immutable: a new one
    each time)."""
    return [('set_mcast', ls, tuple(sorted(ips)))
            for ls, ips in sorted(want['mcast_remote'].items())
            if ips and sorted(ips) != sorted(have['mcast_remote'].get(ls,
                                                                     []))]


def _bfd_ops(want, have):
    """bfd_params of the switch's Tunnel rows: as wanted towards service
    nodes; cleared where BFD is on but not wanted (others untouched). A
    tunnel the switch has not created yet gets its parameters when it
    does."""
    ops = []
    for ip, params in sorted(have.get('tunnels', {}).items()):
        wanted = want.get('bfd', {}).get(ip)
        if wanted is not None and params != wanted:
            ops.append(('set_bfd', ip, dict(wanted)))
        elif wanted is None and params.get('enable') == 'true':
            ops.append(('set_bfd', ip, {}))
    return ops


# -- the replica -------------------------------------------------------------

def rows(tables, name):
    return list(tables[name].rows.values())


def _one(value):
    """An optional column (a list of 0 or 1 values) -> its value or None."""
    return value[0] if value else None


def physical_switch(tables, ps):
    return next((r for r in rows(tables, 'Physical_Switch')
                 if r.name == ps), None)


def read_have(tables, ps):
    """The VTEP's present state in plan()'s `have` shape, from the IDL
    replica `tables` (idl.tables) and the physical switch named `ps`.
    Reads every table in COLUMNS; references to rows not (yet) replicated
    are skipped. 'bfd_running': the remote IPs the switch says it runs BFD
    to (Tunnel bfd_status enabled=true): it picks healthy service nodes
    itself; 'bfd_state': {remote IP: its BFD state ('up', 'down', ...)}
    where it runs. 'local_macs': {(vni, mac)} of Ucast_Macs_Local, the VNI being
    its logical switch's tunnel_key (rows of one without it left out)."""
    lss = {r.name: {'vni': _one(r.tunnel_key),
                    'mode': _one(r.replication_mode)}
           for r in rows(tables, 'Logical_Switch')}
    ports, bindings, tunnels, bfd_running = set(), {}, {}, set()
    bfd_state = {}
    switch = physical_switch(tables, ps)
    if switch is not None:
        for port in filter(None, switch.ports):
            ports.add(port.name)
            for vlan, ls in port.vlan_bindings.items():
                if ls is not None:
                    bindings[(port.name, vlan)] = ls.name
        for tunnel in filter(None, switch.tunnels):
            if tunnel.remote is not None:
                tunnels[tunnel.remote.dst_ip] = dict(tunnel.bfd_params)
                status = dict(tunnel.bfd_status)
                if status.get('enabled') == 'true':
                    bfd_running.add(tunnel.remote.dst_ip)
                    bfd_state[tunnel.remote.dst_ip] = status.get('state')
    ucast = {(r.logical_switch.name, r.MAC): r.locator.dst_ip
             for r in rows(tables, 'Ucast_Macs_Remote')
             if r.logical_switch is not None and r.locator is not None}
    # rows this controller does not manage that still name a logical
    # switch (it cannot be deleted under them); each table read once (a
    # python-ovs column read converts its datum every time)
    local_refs, local = set(), set()
    mcast = {}
    for r in rows(tables, 'Mcast_Macs_Remote'):
        ls = r.logical_switch
        if ls is None:
            continue
        if r.MAC != UNKNOWN_DST:
            local_refs.add(ls.name)
        elif r.locator_set is not None:
            mcast[ls.name] = sorted(loc.dst_ip for loc in
                                    filter(None, r.locator_set.locators))
    local_refs |= {r.logical_switch.name
                   for r in rows(tables, 'Mcast_Macs_Local')
                   if r.logical_switch is not None}
    for r in rows(tables, 'Ucast_Macs_Local'):
        ls = r.logical_switch
        if ls is not None:
            local_refs.add(ls.name)
            if ls.tunnel_key:
                local.add((_one(ls.tunnel_key), r.MAC))
    mine = set(switch.ports) if switch is not None else set()
    local_refs |= {ls.name for port in rows(tables, 'Physical_Port')
                   if port not in mine
                   for ls in port.vlan_bindings.values() if ls is not None}
    return {'logical_switches': lss, 'bindings': bindings,
            'ucast_remote': ucast, 'mcast_remote': mcast, 'ports': ports,
            'local_refs': local_refs, 'tunnels': tunnels,
            'bfd_running': bfd_running, 'bfd_state': bfd_state,
            'local_macs': local}
