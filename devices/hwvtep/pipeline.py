"""The hardware VTEP's forwarding pipeline (pure: state in, flows out).

One function computes, for one member of the switch (the node itself on a
Clos leaf; one leaf of a Virtual Chassis Fabric pod), the OpenFlow 1.3
flows and groups of its `vtep` bridge, as plain data that a driver applies
(devices.hwvtep.ofmsg). Inputs are what the hardware_vtep database says
(logical switches, port/VLAN bindings, remote MACs, replication mode),
what the switch learned (devices.hwvtep.macs) and which service nodes BFD
sees alive.

Tables (OpenFlow goes forward only):
  0 CLASSIFY  a bound (port, VLAN) of this member: pop the tag, VNI into
              tunnel_id, binding id into reg1, go to LEARN; a tunnel port:
              a known VNI goes to FORWARD with reg2=1 (from a tunnel); the
              pod-internal port (VCF): outer tag = VNI >> 12 into reg4, pop,
              go to INTERNAL
  1 INTERNAL  inner tag = VNI & 0xfff: pop, VNI into tunnel_id, reg2=2,
              go to FORWARD (delivers to local bindings only)
  2 LEARN     a known (VNI, source MAC, binding) goes on; anything else is
              also sent to the device (packet-in: learn or move the MAC)
  3 FORWARD   by (VNI, destination MAC): a MAC learned here -> EGRESS of its
              binding; learned on another pod member -> over the pod's
              internal fabric (from local ports only); a remote MAC
              (Ucast_Macs_Remote) -> VXLAN to its locator (from local ports
              only: split horizon); otherwise BUM: every other binding of
              the VNI here, the other pod members, and (from local ports
              only) the unknown-dst locators: one healthy service node
              (service_node mode) or all of them (source_node mode)
  4 EGRESS    one flow per binding: tag and send (counts packets_to_local)

Registers: reg1 ingress binding id, reg2 origin (0 local port, 1 tunnel,
2 pod-internal), reg3 egress binding id, reg4 VNI >> 12 (internal frames).
A binding id is ofport * 4096 + VLAN, so it never changes for a binding.
"""

import ipaddress

CLASSIFY, INTERNAL, LEARN, FORWARD, EGRESS = 0, 1, 2, 3, 4
LOCAL, TUNNEL, POD = 0, 1, 2
S_TAG = 0x88a8
UNKNOWN_DST = 'unknown-dst'


def binding_id(ofport, vlan):
    return ofport * 4096 + vlan


def split_binding(bid):
    return bid // 4096, bid % 4096


def _flow(table, priority, match, actions=(), goto=None, idle=0,
          notify=False, count=False):
    """notify: the switch reports the flow's removal (aging, counters);
    count: a binding's counter (Logical_Binding_Stats)."""
    out = {'table': table, 'priority': priority, 'match': dict(match),
           'actions': list(actions), 'goto': goto, 'idle': idle,
           'notify': notify}
    if count:
        out['count'] = True
    return out


def member_of_port(members):
    """{Physical_Port name: member name}."""
    return {pp: m['name'] for m in members for pp in m['ports']}


def pod_bindings(members, config):
    """{(member, port, vlan): ls} of the bindings that can be instantiated
    (their port exists on a member and their logical switch has a VNI)."""
    where = member_of_port(members)
    lss = config['lss']
    return {(where[pp], pp, vlan): ls
            for (pp, vlan), ls in config['bindings'].items()
            if pp in where and lss.get(ls, {}).get('vni') is not None}


def split(members, config):
    """{member: (its bindings by logical switch {ls: [(port, vlan)]}, the
    logical switches bound on other members)}: computed once per
    configuration, used by every section."""
    out = {m['name']: ({}, set()) for m in members}
    for (m, pp, vlan), ls in sorted(pod_bindings(members, config).items()):
        out[m][0].setdefault(ls, []).append((pp, vlan))
    for m, (mine, _) in out.items():
        for other, (theirs, _) in out.items():
            if other != m:
                out[m][1].update(theirs)
    return out


def _to_binding(bid):
    return [('set_reg', 3, bid), ('resubmit', EGRESS)]


def _internal(vni, fabric_port):
    """Out over the pod's internal fabric: C-tag VNI & 0xfff inside an
    S-tag VNI >> 12, then the tags come off again for later actions."""
    return [('push_vlan', 0x8100, vni & 0xfff), ('push_vlan', S_TAG, vni >> 12),
            ('output', fabric_port), ('pop_vlan',), ('pop_vlan',)]


def _remote(ip, vx):
    return [('set_tun_dst', ip), ('output', vx)]


def sn_buckets(ips, bfd_ports, live, vx):
    """Fast-failover buckets towards the service nodes `ips` (in order):
    a service node this member runs BFD to is watched on its BFD port (the
    data plane fails over by itself); one it does not is used if BFD seen
    elsewhere in the pod says it is alive (or nothing is known). The last
    bucket (always live) sends to the first service node: a switch that has
    heard from none yet still floods somewhere instead of dropping. OVS
    wants a watched port in every fast-failover bucket: those that are
    always live watch the flow-based VXLAN port (no BFD: always live)."""
    out = []
    for ip in ips:
        if ip in bfd_ports:
            out.append({'watch_port': bfd_ports[ip],
                        'actions': [('output', bfd_ports[ip])]})
        elif live.get(ip, True):
            out.append({'watch_port': vx, 'actions': _remote(ip, vx)})
            return out
    if ips:
        out.append({'watch_port': vx, 'actions': _remote(ips[0], vx)})
    return out


def group_ids(config):
    """{(ls, mac): group id} of the flooding groups: a logical switch's
    unknown-dst set is its VNI; its multicast MACs are numbered above
    2**24, in order."""
    out = {}
    extra = sorted(k for k in config['mcast_remote'] if k[1] != UNKNOWN_DST)
    for k, (ls, mac) in enumerate(extra):
        out[(ls, mac)] = (1 << 24) + k
    for ls, info in config['lss'].items():
        if info.get('vni') is not None:
            out[(ls, UNKNOWN_DST)] = info['vni']
    return out


def sections(member, members, config, live=None, bfd_ports=None,
             splits=None):
    """({section key: [flows]}, [groups]) of one member, for everything
    that follows from the logical switches and bindings and from
    service-node liveness. Keys: ('defaults',), ('ls', ls). Remote MACs
    (remote_sections) and learned MACs (mac_flows) have their own.

    member:  {'name', 'ports': {Physical_Port name: ofport}, 'vx': ofport
              of the flow-based VXLAN port, 'fabric': ofport of the pod
              internal port or None}
    members: every member of the switch (the pod), this one included
    config:  {'lss': {ls: {'vni', 'mode'}}, 'bindings': {(port, vlan): ls},
              'ucast_remote': {(ls, mac): ip},
              'mcast_remote': {(ls, mac): [ips]}}  (mac may be unknown-dst)
    live:    {service node ip: BFD says forwarding}
    bfd_ports: {service node ip: ofport} of the BFD tunnels on this member
    splits:  split(members, config), if already computed
    """
    live, bfd_ports = live or {}, bfd_ports or {}
    mine, elsewhere = (splits or split(members, config))[member['name']]
    out = {('defaults',): [_flow(t, 0, {}) for t in
                           (CLASSIFY, FORWARD, EGRESS, INTERNAL)] + [
        _flow(LEARN, 0, {}, [('controller',)], goto=FORWARD),
        # a multicast source is never learned: no need to ask
        _flow(LEARN, 50, {'eth_src': ('01:00:00:00:00:00',
                                      '01:00:00:00:00:00')},
              goto=FORWARD)]}
    groups, gids = [], group_ids(config)
    for ls in sorted(mine):
        flows, grps = _ls_flows(member, config, ls, mine[ls], ls in elsewhere,
                                live, bfd_ports, gids)
        out[('ls', ls)] = flows
        groups += grps
    return out, groups


def remote_sections(member, config, mine):
    """{('remote', ls, mac): flows} of every remote MAC of a logical
    switch bound on this member (mine: its bindings by logical switch)."""
    return {('remote', ls, mac): remote_section(member, config, ls, mac,
                                                mine)
            for (ls, mac) in sorted(config['ucast_remote']) if ls in mine}


def remote_section(member, config, ls, mac, mine):
    """The flows of one remote MAC on one member (none if its logical
    switch is not bound there, or the MAC is not remote any more)."""
    ip = config['ucast_remote'].get((ls, mac))
    if ip is None or ls not in mine:
        return []
    return remote_flows(config['lss'][ls]['vni'], mac.lower(), ip,
                        member['vx'])


def remote_flows(vni, mac, ip, vx):
    """A remote MAC (Ucast_Macs_Remote): from local ports, VXLAN to its
    locator; from a tunnel or the pod, dropped (split horizon). A MAC
    learned in the pod outranks it (mac_flows)."""
    match = {'tunnel_id': vni, 'eth_dst': mac}
    return [_flow(FORWARD, 150, {**match, 'reg2': LOCAL}, _remote(ip, vx)),
            _flow(FORWARD, 140, match)]


def _ls_flows(member, config, ls, ports, elsewhere, live, bfd_ports, gids):
    """Classify, egress and flooding of one logical switch bound here."""
    vx, fabric = member['vx'], member.get('fabric')
    vni = config['lss'][ls]['vni']
    mode = config['lss'][ls].get('mode') or 'service_node'
    flows, groups, here = [], [], []
    for pp, vlan in ports:
        bid = binding_id(member['ports'][pp], vlan)
        ofport = member['ports'][pp]
        pop = [('pop_vlan',)] if vlan else []
        flows.append(_flow(CLASSIFY, 100, {'in_port': ofport,
                                           'vlan_vid': vlan},
                           pop + [('set_tunnel', vni), ('set_reg', 1, bid)],
                           goto=LEARN, notify=True, count=True))
        flows.append(_flow(EGRESS, 100, {'reg3': bid},
                           [('output_vlan', ofport, vlan)], notify=True,
                           count=True))
        # to another binding of the same port (another VLAN): OVS sends
        # back out of the ingress port only when told to
        flows.append(_flow(EGRESS, 105, {'reg3': bid, 'in_port': ofport},
                           [('output_in_port_vlan', vlan)], notify=True,
                           count=True))
        # a flood never goes back out of the binding it came in on
        flows.append(_flow(EGRESS, 110, {'reg3': bid, 'reg1': bid}))
        here += _to_binding(bid)
    for t in [vx] + sorted(bfd_ports.values()):
        flows.append(_flow(CLASSIFY, 100, {'in_port': t, 'tunnel_id': vni},
                           [('set_reg', 2, TUNNEL)], goto=FORWARD))
    pod = []
    if fabric is not None and elsewhere:
        pod = _internal(vni, fabric)
        # the pod's tags are always tags, VID 0 included
        flows.append(_flow(CLASSIFY, 100, {'in_port': fabric,
                                           'vlan_tag': vni >> 12},
                           [('set_reg', 4, vni >> 12), ('pop_vlan',)],
                           goto=INTERNAL))
        flows.append(_flow(INTERNAL, 100, {'reg4': vni >> 12,
                                           'vlan_tag': vni & 0xfff},
                           [('pop_vlan',), ('set_tunnel', vni),
                            ('set_reg', 2, POD)], goto=FORWARD))
    sets = sorted((m, sorted(ips, key=ipaddress.IPv4Address))
                  for (l2, m), ips in
                  config['mcast_remote'].items() if l2 == ls)
    if not any(m == UNKNOWN_DST for m, _ in sets):
        sets.append((UNKNOWN_DST, []))
    for mac, ips in sets:
        if mode == 'source_node':
            up = [a for ip in ips for a in _remote(ip, vx)]
        elif ips:
            gid = gids[(ls, mac)]
            groups.append({'group_id': gid, 'type': 'fast_failover',
                           'buckets': sn_buckets(ips, bfd_ports, live, vx)})
            up = [('group', gid)]
        else:
            up = []
        if mac == UNKNOWN_DST:
            match, prio = {'tunnel_id': vni, 'reg2': LOCAL}, 100
        else:
            match = {'tunnel_id': vni, 'eth_dst': mac.lower(), 'reg2': LOCAL}
            prio = 150
        flows.append(_flow(FORWARD, prio, match, here + pod + up))
    flows.append(_flow(FORWARD, 90, {'tunnel_id': vni}, here))
    return flows, groups


def mac_flows(member, config, ls, mac, entry, mine, age=300):
    """The flows one learned MAC gives this member (mine: its bindings by
    logical switch): on the member that learned it, a LEARN flow that idles
    out after `age` seconds (the switch's aging; its removal is reported)
    and delivery to its binding from anywhere; on the other members of a
    pod, frames from their own ports go over the pod fabric, and copies
    from a tunnel or the pod are dropped (the owner got its own copy)."""
    lss = config['lss']
    if ls not in lss or lss[ls].get('vni') is None:
        return []
    vni = lss[ls]['vni']
    match = {'tunnel_id': vni, 'eth_dst': mac}
    if entry.member == member['name']:
        if entry.port not in member['ports']:
            return []
        bid = binding_id(member['ports'][entry.port], entry.vlan)
        return [_flow(LEARN, 100, {'tunnel_id': vni, 'eth_src': mac,
                                   'reg1': bid}, goto=FORWARD, notify=True,
                      idle=age),
                _flow(FORWARD, 200, match, _to_binding(bid))]
    if ls not in mine:
        return []
    out = []
    if member.get('fabric') is not None:
        out.append(_flow(FORWARD, 200, {**match, 'reg2': LOCAL},
                         _internal(vni, member['fabric'])))
    out.append(_flow(FORWARD, 190, match))
    return out


def member_pipeline(member, members, config, macs, live=None,
                    bfd_ports=None, age=300):
    """(flows, groups) of one member: all its sections (macs: {(ls, mac):
    Entry} learned in the pod)."""
    splits = split(members, config)
    mine = splits[member['name']][0]
    secs, groups = sections(member, members, config, live, bfd_ports, splits)
    secs.update(remote_sections(member, config, mine))
    flows = [f for fl in secs.values() for f in fl]
    for (ls, mac), entry in sorted(macs.items()):
        flows += mac_flows(member, config, ls, mac, entry, mine, age)
    return flows, groups
