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
           metadata=1 (from a tunnel; the VNI came in the VXLAN header),
           only for a VNI its peer may send: one it has a member of (a VM,
           a gateway connection, a MAC a hardware VTEP learned) or any, from
           a service node (it replicates for all); anything else from a
           tunnel is dropped (a peer cannot inject into a tenant it does
           not carry; an outer source that is no peer matches no tunnel
           port at all).
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

from . import dfw, steering

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
    sections, groups = node_sections(context(desired, observed), node)
    return [f for _key, flows in sorted(sections.items(), key=_order)
            for f in flows], groups


def _order(item):
    return ORDER[item[0][0]], item[0][1:]


# A device's flows come in sections, so that a change recomputes and
# compares only the sections it touches (see changed_sections):
#   ('base',)           table-miss flows, tunnel classification
#   ('gw',)             a software gateway's physical ports -> VNI
#   ('mac', vni, mac)   the flows one MAC gives this node: its port's
#                       classification and delivery where it is local;
#                       unicast to its owner (and split horizon) where not
#   ('flood', vni)      BUM of one VNI on an edge
#   ('replicate', vni)  a service node's replication of one VNI
#   ('dfw', vni, mac)   the distributed firewall at a local VM port
#                       and its service steering (controllers.dfw,
#                       controllers.steering; none while no rule applies)
ORDER = {'base': 0, 'gw': 1, 'mac': 2, 'flood': 3, 'replicate': 4, 'dfw': 5}


def context(desired, observed=None):
    """What every node's flows are computed from, once per pass (plain
    data; two contexts compare with ==, see changed_sections)."""
    nodes = desired['nodes']
    vni_of = {ls['id']: ls['vni'] for ls in desired['logical_switches']}
    owner, local = {}, {}
    # a port declared through the API is authoritative over a MAC a
    # hardware VTEP learned (after a P2V migration the VTEP's entry for
    # the old server may linger until it ages out)
    for key, vtep in (observed or {}).get('vtep_macs', {}).items():
        owner[key] = vtep
    ports_of = {}                 # (node, vni) -> [ofport] in port order
    ls_name = {ls['id']: ls['name'] for ls in desired['logical_switches']}
    vm_port = {}                  # (vni, mac) -> what the firewall needs
    for p in desired['ports']:
        key = (vni_of[p['ls_id']], p['mac'])
        owner[key] = p['transport_node']
        local[key] = p['ofport']
        vm_port[key] = {'ofport': p['ofport'], 'vni': key[0], 'mac': key[1],
                        'ip': p.get('ip'), 'ls': ls_name[p['ls_id']]}
        ports_of.setdefault((p['transport_node'], key[0]), []).append(
            p['ofport'])
    gw = {}                       # node -> [(vni, ofport, vlan)]
    for c in desired.get('gateway_connections', []):
        ofport = nodes.get(c['gateway'], {}).get('ports', {}).get(c['port'])
        if ofport is not None:
            gw.setdefault(c['gateway'], []).append(
                (vni_of[c['ls_id']], ofport, c['vlan']))
    macs = {}
    for key in owner:
        macs.setdefault(key[0], []).append(key)
    return {'nodes': nodes, 'vni_of': vni_of,
            'mode_of': {ls['vni']: ls['replication_mode']
                        for ls in desired['logical_switches']},
            'members': {v: frozenset(m) for v, m in
                        members(desired, observed).items()},
            'owner': owner, 'local': local, 'ports_of': ports_of,
            'gw': gw, 'macs': {v: sorted(k) for v, k in macs.items()},
            'groups': {(g, v): gateway_group(desired, g, v)
                       for g, conns in gw.items() for v, _o, _l in conns},
            'chosen': liveness.service_nodes_of_edges(nodes),
            'dfw': dfw.resolve(desired), 'vm_port': vm_port,
            'steer': steering.resolve(desired),
            'svm': steering.service_vms(desired)}


def changed_sections(before, after):
    """The sections a change from context `before` to `after` touches, on
    every node: a set of section keys, or None when anything beyond MACs,
    ports and VNI membership moved (logical switches, gateway connections,
    nodes: recompute everything). A VNI whose members changed recomputes
    all its sections (a node that joined needs every MAC of it); a
    firewall change (rules, groups' addresses) every VM port's firewall
    section and nothing else, a port's own change (its address) its
    own."""
    if before is None:
        return None
    for k in ('nodes', 'vni_of', 'mode_of', 'gw', 'chosen'):
        if before[k] != after[k]:
            return None
    keys = set()
    ports = set(before['vm_port']) | set(after['vm_port'])
    if (before['dfw'], before['steer'], before['svm']) != \
            (after['dfw'], after['steer'], after['svm']):
        keys |= {('dfw',) + k for k in ports}
    else:
        keys |= {('dfw',) + k for k in ports if before['vm_port'].get(k)
                 != after['vm_port'].get(k)}
    for vni in set(before['members']) | set(after['members']):
        if before['members'].get(vni) != after['members'].get(vni):
            keys |= {('flood', vni), ('replicate', vni)}
            keys |= {('mac',) + k for k in before['macs'].get(vni, []) +
                     after['macs'].get(vni, [])}
    for key in set(before['owner']) | set(after['owner']):
        if (before['owner'].get(key), before['local'].get(key)) != \
                (after['owner'].get(key), after['local'].get(key)):
            keys |= {('mac',) + key, ('dfw',) + key}
    for nk in set(before['ports_of']) | set(after['ports_of']):
        if before['ports_of'].get(nk) != after['ports_of'].get(nk):
            keys.add(('flood', nk[1]))
    return keys


def split_keys(ctx, keys):
    """A pass's changed `keys` (changed_sections; not None) -> (the keys
    every node computes, {node: the firewall keys of its own VM ports}).
    A VM port's firewall section has flows only on the node that owns the
    port (node_sections), so the other nodes skip it (node_keys): on a
    100-node lab a firewall change was every port's section on every
    node."""
    common, own = set(), {}
    for k in keys:
        if k[0] == 'dfw':
            owner = ctx['owner'].get(k[1:])
            if owner is not None:
                own.setdefault(owner, set()).add(k)
        else:
            common.add(k)
    return common, own


def node_keys(split, node, keys, had):
    """The keys of a pass (`split` = split_keys(ctx, keys)) that can change
    `node`'s flows: the common ones, its own ports' firewall sections, and
    a changed firewall section it holds now (`had`: its sections with
    flows), which may have to go (the port moved or left)."""
    common, own = split
    return common | own.get(node, set()) | {
        k for k in had if k[0] == 'dfw' and k in keys}


def pass_order(split, switches):
    """[(dpid, node)] -> their dpids in the order a pass reconciles them:
    the switches whose own ports' firewall sections changed (`split`,
    split_keys; None for a full pass) first, so a rule's targets do not
    wait behind the rest of a 100-node fabric, then by dpid."""
    own = {} if split is None else split[1]
    return [d for d, n in sorted(switches,
                                 key=lambda s: (s[1] not in own, s[0]))]


def node_sections(ctx, node, keys=None):
    """({section key: [flows]}, groups) of `node`'s br-int: every section
    it has, or only those in `keys` (a key the node does not have gives
    [], so its flows go)."""
    role = ctx['nodes'][node]['role']
    want = None if keys is None else set(keys)
    out = {}
    if role == 'service_node':
        for vni in sorted(ctx['members']) if want is None else \
                sorted(k[1] for k in want if k[0] == 'replicate'):
            out[('replicate', vni)] = _replicate(ctx, node, vni)
        if want is None or ('base',) in want:
            out[('base',)] = [_flow(0, 0, {})]
        return out, []
    mine = {v for v, m in ctx['members'].items() if node in m} | \
        {v for v, _o, _l in ctx['gw'].get(node, [])}
    if want is None:
        want = {('base',), ('gw',)} | {('flood', v) for v in mine} | {
            ('mac',) + k for v in mine for k in ctx['macs'].get(v, [])}
        want |= {('dfw',) + k for k, o in ctx['owner'].items()
                 if o == node and k in ctx['vm_port']}
    for key in want:
        if key[0] == 'mac':
            out[key] = _mac_flows(ctx, node, key[1], key[2], mine)
        elif key[0] == 'dfw':
            p = ctx['vm_port'].get(key[1:])
            out[key] = dfw.port_flows(ctx['dfw'], p, _flow) + \
                steering.port_flows(ctx['steer'], p, ctx['svm'].get(node),
                                    _flow) \
                if p is not None and ctx['owner'].get(key[1:]) == node \
                else []
        elif key[0] == 'flood':
            out[key] = _flood(ctx, node, key[1]) if key[1] in mine else []
        elif key == ('gw',):
            out[key] = _gw_classify(ctx, node)
        elif key == ('base',):
            out[key] = [_flow(0, 0, {}), _flow(1, 0, {})] + (
                dfw.fallback(_flow) if role == 'hypervisor' else [])
    return out, _ff_groups(ctx, node) + steering.groups(
        ctx['svm'].get(node) if role == 'hypervisor' else None)


def _tunnel_to(ctx, node, peer):
    """Has `node` a tunnel port to `peer`? (see tunnels)"""
    nodes = ctx['nodes']
    if peer == node or peer not in nodes:
        return False
    return not (nodes[node]['role'] == 'service_node' and
                nodes[peer]['role'] == 'service_node')


def _port(ctx, peer):
    return TUNNEL_BASE + ctx['nodes'][peer]['index']


def _mac_flows(ctx, node, vni, mac, mine):
    key = (vni, mac)
    owner = ctx['owner'].get(key)
    if owner is None:
        return []
    if owner == node:
        ofport = ctx['local'].get(key)
        if ofport is None:
            return []          # a MAC a hardware VTEP says it has itself
        return [_flow(0, 100, {'in_port': ofport}, [('set_tunnel', vni)],
                      goto=1, metadata=0),
                _flow(1, 100, {'tunnel_id': vni, 'eth_dst': mac},
                      [('output', ofport)])]
    if vni not in mine or not _tunnel_to(ctx, node, owner):
        return []
    group = ctx['groups'].get((owner, vni)) or [owner]
    if node in group:
        return []              # its own segment: frames go to its cable
    outs = [('output', _port(ctx, g)) for g in group
            if _tunnel_to(ctx, node, g)]
    return [_flow(1, 100, {'tunnel_id': vni, 'eth_dst': mac, 'metadata': 0},
                  outs),
            _flow(1, 90, {'tunnel_id': vni, 'eth_dst': mac,
                          'metadata': 1})]          # split horizon


def _gw_classify(ctx, node):
    flows = []
    for vni, ofport, vlan in ctx['gw'].get(node, []):
        if vlan:
            flows.append(_flow(0, 100, {'in_port': ofport, 'vlan_vid': vlan},
                               [('pop_vlan',), ('set_tunnel', vni)], goto=1,
                               metadata=0))
        else:
            flows.append(_flow(0, 100, {'in_port': ofport, 'vlan_vid': 0},
                               [('set_tunnel', vni)], goto=1, metadata=0))
    return flows


def _sns(ctx, node):
    return [s for s in ctx['chosen'].get(node, ())
            if _tunnel_to(ctx, node, s)]


def _ff_groups(ctx, node):
    sns = _sns(ctx, node)
    if not sns:
        return []
    return [{'group_id': GROUP_SERVICE_NODES, 'type': 'fast_failover',
             'buckets': [{'watch_port': _port(ctx, s),
                          'actions': [('output', _port(ctx, s))]}
                         for s in sns]}]


def _flood(ctx, node, vni):
    # bridged VLAN copies go last: their push/pop must not tag others
    outs = [('output', o) for o in ctx['ports_of'].get((node, vni), [])] + \
        [('output_vlan', o, vlan) for v, o, vlan in ctx['gw'].get(node, [])
         if v == vni]
    others = sorted(ctx['members'].get(vni, set()) - {node})
    if ctx['mode_of'].get(vni, 'service_node') == 'source_node':
        up = [('output', _port(ctx, p)) for p in others
              if _tunnel_to(ctx, node, p)]
    else:
        up = [('group', GROUP_SERVICE_NODES)] if others and \
            _sns(ctx, node) else []
    senders = (ctx['members'].get(vni, frozenset()) |
               set(service_nodes(ctx['nodes']))) - {node}
    ingress = [_flow(0, 100, {'in_port': _port(ctx, p), 'tunnel_id': vni},
                     goto=1, metadata=1)
               for p in sorted(senders, key=lambda n: ctx['nodes'][n]['index'])
               if _tunnel_to(ctx, node, p)]
    return ingress + [
        _flow(1, 50, {'tunnel_id': vni, 'metadata': 0}, outs + up),
        _flow(1, 50, {'tunnel_id': vni, 'metadata': 1}, outs)]


def _replicate(ctx, node, vni):
    """A service node's replication of one VNI: a frame from a member
    VTEP goes to every other member."""
    vteps = sorted(ctx['members'].get(vni, ()))
    flows = []
    for src in vteps:
        if not _tunnel_to(ctx, node, src):
            continue
        outs = [('output', _port(ctx, d)) for d in vteps
                if d != src and _tunnel_to(ctx, node, d)]
        flows.append(_flow(0, 100, {'in_port': _port(ctx, src),
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


def stuck_bfd(down_since, refreshed, now, stuck_s, every_s):
    """The BFD sessions to refresh at `now` (sorted): down for more than
    `stuck_s` (down_since: {(node, service node): since}) and not refreshed
    in the last max(every_s, 2 * stuck_s) (refreshed: {key: when})."""
    wait = max(every_s, 2 * stuck_s)
    return sorted(k for k, t in down_since.items()
                  if now - t > stuck_s and
                  now - refreshed.get(k, float('-inf')) > wait)


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
