"""Pure decisions: desired state (+ observed state) -> one device's intent.

Reads: the store's snapshot (`model.Store.desired()`): logical switches,
logical ports, transport nodes; observed: MACs that hardware VTEPs learned,
service nodes BFD declared down. Writes nothing: returns flows and groups
for one OVS bridge (br-int), the tunnel ports it needs, or a hardware
VTEP's hardware_vtep rows (vtep_intent), as plain data that a driver
applies.

Hypervisor (and software gateway) br-int pipeline, OpenFlow 1.3:
  table 0  classify: a VM port sets the VNI (tunnel_id) of its logical
           switch and metadata=0 (from local); a tunnel port sets
           metadata=1 (from a tunnel; the VNI came in the VXLAN header).
  table 1  forward by (VNI, destination MAC):
           local MAC          -> its port
           remote MAC         -> the tunnel to the VTEP that owns it (only
                                 from local: split horizon); a physical
                                 MAC that a software gateway reported ->
                                 the tunnels to every gateway of its
                                 segment bound to the switch (only the
                                 active one forwards, the others drop at
                                 their segment bridge: a takeover needs
                                 nobody to re-point anything)
           BUM from local     -> every other local port of the VNI, plus one
                                 live service node of the edge's own
                                 (topologies.liveness; a fast-failover
                                 group whose buckets follow BFD) or, in
                                 source_node mode, every VTEP with members
                                 of the VNI
           BUM from a tunnel  -> local ports of the VNI only
Service node br-int: table 0 replicates a frame arriving on a tunnel with a
VNI to every VTEP with members of that VNI, except the one it came from.
"""

from topologies import liveness

TUNNEL_BASE = 1000          # ofport of the tunnel to transport node #i
BFD_MS = 100                # BFD min_rx/min_tx when the lab sets none, ms
GROUP_SERVICE_NODES = 1
BCAST = ('01:00:00:00:00:00', '01:00:00:00:00:00')


def tunnel_port(nodes, peer):
    return TUNNEL_BASE + nodes[peer]['index']


def tunnel_name(peer):
    return f'vx{peer}'


def service_nodes(nodes):
    return sorted((n for n, p in nodes.items()
                   if p['role'] == 'service_node'),
                  key=lambda n: nodes[n]['index'])


def members(desired, observed=None):
    """{vni: set of transport nodes with a member of that logical switch}."""
    by_id = {ls['id']: ls['vni'] for ls in desired['logical_switches']}
    out = {vni: set() for vni in by_id.values()}
    for p in desired['ports']:
        out[by_id[p['ls_id']]].add(p['transport_node'])
    for (vni, _mac), node in (observed or {}).get('vtep_macs', {}).items():
        out.setdefault(vni, set()).add(node)
    for c in desired.get('gateway_connections', []):
        out[by_id[c['ls_id']]].add(c['gateway'])
    return out


def tunnels(desired, node):
    """{peer: {'port', 'name', 'remote_ip', 'bfd'}} that `node` needs: one
    per other transport node (per-peer ports, so BFD can drive liveness),
    with BFD where liveness decides something: from an edge to the service
    nodes it floods through (topologies.liveness), from a service node to
    the edges that chose it and to every hardware VTEP."""
    nodes = desired['nodes']
    me = nodes[node]['role']
    chosen = liveness.service_nodes_of_edges(nodes)
    out = {}
    for peer, p in nodes.items():
        if peer == node or (me == 'service_node' and
                            p['role'] == 'service_node'):
            continue
        if me == 'service_node':
            bfd = p['role'] == 'hw_vtep' or node in chosen.get(peer, ())
        else:
            bfd = peer in chosen.get(node, ())
        out[peer] = {'port': tunnel_port(nodes, peer),
                     'name': tunnel_name(peer),
                     'remote_ip': p['tunnel_ip'], 'bfd': bfd}
    return out


def gateway_group(desired, gw, vni):
    """The software gateways that bridge `vni` on the physical segment
    where `gw` bridges it (gw first, then by index): one active, the
    others standing by. [] if `gw` is not a software gateway bridging
    `vni`."""
    nodes = desired['nodes']
    if nodes.get(gw, {}).get('role') != 'sw_gateway':
        return []
    vni_of = {ls['id']: ls['vni'] for ls in desired['logical_switches']}
    conns = [c for c in desired.get('gateway_connections', [])
             if vni_of.get(c['ls_id']) == vni and
             nodes.get(c['gateway'], {}).get('role') == 'sw_gateway']

    def segment(c):
        return nodes[c['gateway']].get('segments', {}).get(c['port'],
                                                           c['port'])
    mine = {segment(c) for c in conns if c['gateway'] == gw}
    if not mine:
        return []
    others = {c['gateway'] for c in conns
              if segment(c) in mine and c['gateway'] != gw}
    return [gw] + sorted(others, key=lambda n: nodes[n]['index'])


def _flow(table, priority, match, actions=(), goto=None, metadata=None):
    return {'table': table, 'priority': priority, 'match': dict(match),
            'actions': list(actions), 'goto': goto, 'metadata': metadata}


def device_intent(desired, node, observed=None):
    """(flows, groups) for `node`'s br-int."""
    role = desired['nodes'][node]['role']
    if role == 'service_node':
        return _service_node(desired, node, observed), []
    return _edge(desired, node, observed)


def _edge(desired, node, observed):
    nodes = desired['nodes']
    vni_of = {ls['id']: ls['vni'] for ls in desired['logical_switches']}
    mode_of = {ls['vni']: ls['replication_mode']
               for ls in desired['logical_switches']}
    mem = members(desired, observed)
    tun = tunnels(desired, node)
    flows = [_flow(0, 0, {}), _flow(1, 0, {})]
    local = {}                            # vni -> [(ofport, mac)]
    for p in desired['ports']:
        vni = vni_of[p['ls_id']]
        if p['transport_node'] == node:
            local.setdefault(vni, []).append((p['ofport'], p['mac']))
            flows.append(_flow(0, 100, {'in_port': p['ofport']},
                               [('set_tunnel', vni)], goto=1, metadata=0))
    gw_out = {}                           # vni -> [output_vlan action]
    ports = desired['nodes'][node].get('ports', {})
    for c in desired.get('gateway_connections', []):
        if c['gateway'] != node or c['port'] not in ports:
            continue
        vni, ofport = vni_of[c['ls_id']], ports[c['port']]
        if c['vlan']:
            match = {'in_port': ofport, 'vlan_vid': c['vlan']}
            acts = [('pop_vlan',), ('set_tunnel', vni)]
        else:
            match = {'in_port': ofport, 'vlan_vid': 0}
            acts = [('set_tunnel', vni)]
        flows.append(_flow(0, 100, match, acts, goto=1, metadata=0))
        gw_out.setdefault(vni, []).append(('output_vlan', ofport, c['vlan']))
        local.setdefault(vni, [])
    for peer, t in sorted(tun.items()):
        flows.append(_flow(0, 100, {'in_port': t['port']}, goto=1,
                           metadata=1))
    # (vni, mac) -> peer. A port declared through the API is authoritative
    # over a MAC a hardware VTEP learned (after a P2V migration the VTEP's
    # entry for the old server may linger until it ages out).
    remote = {k: v for k, v in (observed or {}).get('vtep_macs', {}).items()
              if v != node}
    for p in desired['ports']:
        key = (vni_of[p['ls_id']], p['mac'])
        if p['transport_node'] != node:
            remote[key] = p['transport_node']
        else:
            remote.pop(key, None)
    for vni, ports in sorted(local.items()):
        for ofport, mac in ports:
            flows.append(_flow(1, 100, {'tunnel_id': vni, 'eth_dst': mac},
                               [('output', ofport)]))
    mine = set(local) | {v for v, n in mem.items() if node in n}
    groups_of = {}
    for (vni, mac), peer in sorted(remote.items()):
        if peer not in tun or vni not in mine:
            continue
        group = groups_of.get((peer, vni))
        if group is None:
            group = groups_of[(peer, vni)] = gateway_group(desired, peer,
                                                           vni)
        if node in group:
            continue              # its own segment: frames go to its cable
        outs = [('output', tun[g]['port']) for g in group or [peer]
                if g in tun]
        flows.append(_flow(1, 100, {'tunnel_id': vni, 'eth_dst': mac,
                                    'metadata': 0}, outs))
        flows.append(_flow(1, 90, {'tunnel_id': vni, 'eth_dst': mac,
                                   'metadata': 1}))     # split horizon
    sns = [s for s in liveness.service_nodes_of_edges(nodes).get(node, ())
           if s in tun]
    groups = []
    if sns:
        groups.append({'group_id': GROUP_SERVICE_NODES,
                       'type': 'fast_failover',
                       'buckets': [{'watch_port': tun[s]['port'],
                                    'actions': [('output', tun[s]['port'])]}
                                   for s in sns]})
    for vni in sorted(mine):
        # bridged VLAN copies go last: their push/pop must not tag others
        outs = [('output', ofport) for ofport, _ in local.get(vni, [])] + \
            gw_out.get(vni, [])
        others = sorted(mem.get(vni, set()) - {node})
        if mode_of.get(vni, 'service_node') == 'source_node':
            up = [('output', tun[p]['port']) for p in others if p in tun]
        else:
            up = [('group', GROUP_SERVICE_NODES)] if others and sns else []
        flows.append(_flow(1, 50, {'tunnel_id': vni, 'metadata': 0},
                           outs + up))
        flows.append(_flow(1, 50, {'tunnel_id': vni, 'metadata': 1}, outs))
    return flows, groups


def _service_node(desired, node, observed):
    tun = tunnels(desired, node)
    mem = members(desired, observed)
    flows = [_flow(0, 0, {})]
    for vni, vteps in sorted(mem.items()):
        for src in sorted(vteps):
            if src not in tun:
                continue
            outs = [('output', tun[d]['port']) for d in sorted(vteps)
                    if d != src and d in tun]
            flows.append(_flow(0, 100, {'in_port': tun[src]['port'],
                                        'tunnel_id': vni}, outs))
    return flows


def vtep_intent(desired, vtep, observed=None, bfd_ms=BFD_MS):
    """What hardware VTEP `vtep`'s hardware_vtep database must hold, as
    plain data (applied by controllers.hwvtep: plan, then VtepSession):

    'logical_switches': {ls: {'vni', 'mode'}}  Logical_Switch tunnel_key and
        replication_mode, for every logical switch bound on this VTEP;
    'bindings': {(port, vlan): ls}  Physical_Port vlan_bindings;
    'ucast_remote': {(ls, mac): ip}  Ucast_Macs_Remote for every VM MAC and
        every MAC another hardware VTEP learned in those switches (locator =
        the owner's tunnel IP);
    'mcast_remote': {ls: [ip]}  Mcast_Macs_Remote unknown-dst: the service
        nodes (service_node mode) or every other member VTEP (source_node
        mode). A VTEP that runs BFD to a service node itself
        (`observed['bfd_running']`, its Tunnel bfd_status) gets it whatever
        the hypervisors report, and picks a healthy one; for one that does
        not, service nodes in `observed['dead']` (BFD from the hypervisors
        declared them down) are left out;
    'bfd': {ip: bfd_params}  Tunnel bfd_params towards every service node
        (the VTEP runs BFD to them, every `bfd_ms`, and picks a healthy one
        itself).
    """
    nodes = desired['nodes']
    ls_by_id = {ls['id']: ls for ls in desired['logical_switches']}
    conns = [c for c in desired.get('gateway_connections', [])
             if c['gateway'] == vtep]
    mine = {ls_by_id[c['ls_id']]['name']: ls_by_id[c['ls_id']]
            for c in conns}
    bindings = {(c['port'], c['vlan']): ls_by_id[c['ls_id']]['name']
                for c in conns}
    ucast = {}
    vni_name = {ls['vni']: name for name, ls in mine.items()}
    for (vni, mac), owner in (observed or {}).get('vtep_macs', {}).items():
        if owner != vtep and vni in vni_name:
            ucast[(vni_name[vni], mac)] = nodes[owner]['tunnel_ip']
    for p in desired['ports']:               # declared ports win (see _edge)
        ls = ls_by_id[p['ls_id']]
        if ls['name'] in mine:
            ucast[(ls['name'], p['mac'])] = nodes[p['transport_node']][
                'tunnel_ip']
    dead = set((observed or {}).get('dead', ()))
    running = set((observed or {}).get('bfd_running', ()))
    mem = members(desired, observed)
    mcast = {}
    for name, ls in mine.items():
        if ls['replication_mode'] == 'source_node':
            peers = sorted(mem.get(ls['vni'], set()) - {vtep})
        else:
            peers = [s for s in service_nodes(nodes) if s not in dead or
                     nodes[s]['tunnel_ip'] in running]
        mcast[name] = sorted(nodes[p]['tunnel_ip'] for p in peers)
    bfd = {nodes[sn]['tunnel_ip']: {'enable': 'true', 'min_rx': str(bfd_ms),
                                    'min_tx': str(bfd_ms)}
           for sn in service_nodes(nodes)}
    return {'logical_switches': {n: {'vni': ls['vni'],
                                     'mode': ls['replication_mode']}
                                 for n, ls in mine.items()},
            'bindings': bindings, 'ucast_remote': ucast,
            'mcast_remote': mcast, 'bfd': bfd}


def dead_service_nodes(nodes, liveness):
    """liveness: {(reporter, service node): live?} from the tunnel ports'
    BFD-driven liveness. A service node is dead when most of the nodes that
    report on it see it down (one node's own trouble does not condemn it)."""
    votes = {}
    for (_reporter, sn), live in liveness.items():
        if nodes.get(sn, {}).get('role') == 'service_node':
            votes.setdefault(sn, []).append(live)
    return {sn for sn, v in votes.items()
            if sum(1 for x in v if not x) * 2 > len(v)}


def gateway_macs(desired, gw, raw):
    """What software gateway `gw` reported, {(cable, vlan, mac)}, as
    {(vni, mac)}: a (cable, VLAN) counts where a gateway connection binds
    it to a logical switch; others are ignored."""
    vni_of = {ls['id']: ls['vni'] for ls in desired['logical_switches']}
    bound = {(c['port'], c['vlan'] or 0): vni_of[c['ls_id']]
             for c in desired.get('gateway_connections', [])
             if c['gateway'] == gw and c['ls_id'] in vni_of}
    return {(bound[(cable, vlan)], mac) for cable, vlan, mac in raw
            if (cable, vlan) in bound}


def merge_vtep_macs(owners, previous, vtep, macs, others=None):
    """Who owns each MAC that hardware VTEPs learned, after `vtep` reports
    its whole Ucast_Macs_Local set `macs` (it reported `previous` before).

    owners: {(vni, mac): vtep}. A MAC newly reported by a VTEP moves to it
    (the server moved there, e.g. its bond failed over); one it keeps
    reporting stays with whoever learned it last (a VTEP whose entry has not
    aged out yet must not take it back); one it stops reporting while it
    owned it goes to another VTEP that still reports it (`others`: {vtep:
    its reported set}; a dual-homed server's standby switch keeps what it
    learned), or is dropped. Returns the new owners dict (input
    unchanged)."""
    out = dict(owners)
    for key in previous - macs:
        if out.get(key) == vtep:
            still = sorted(v for v, keys in (others or {}).items()
                           if v != vtep and key in keys)
            if still:
                out[key] = still[0]
            else:
                del out[key]
    for key in macs - previous:
        out[key] = vtep
    for key in macs & previous:
        out.setdefault(key, vtep)
    return out
