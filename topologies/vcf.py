"""Virtual Chassis Fabric as one logical switch (pure: plan -> flows).

How the model maps to the whitepaper ("Virtual Chassis Fabric Switching
Architecture"):
- Up to 32 members (2-8 spines, up to 30 leaves) act as one switch with one
  management point: each member is a userspace OVS bridge in its own
  namespace, and the pod's master (this module, run once by the lab) computes
  every member's forwarding table from the pod's data. No user-configured
  protocol runs between members, as in VCF.
- One L2 transport domain: every VTEP of the pod shares one subnet. The
  master knows where each transport MAC attaches (the lab assigns them), so
  unicast is forwarded by destination MAC; multipath: a leaf spreads traffic
  to another leaf over every live spine with a select group (hashing on
  L3/L4, i.e. the VXLAN source port), skipping dead uplinks.
- Broadcast (ARP on the transport subnet) goes up one live spine (fast
  failover, the master spine first) and down to every other leaf; a leaf
  never floods what came from a spine back up: loop-free without STP.
- The hardware VTEP is created once for the pod, one OVSDB and one tunnel
  IP, and "will exist on all nodes". With the lab's native device
  (devices.hwvtep) every leaf that has server ports is a member of the pod
  VTEP: it encapsulates and decapsulates with the pod's tunnel IP and MAC
  (an instance port towards its tunnel bridge), and the one device process
  programs every member. The fabric delivers frames for the pod's MAC to
  every member (each keeps what is for its own servers) and carries frames
  between members (tagged with their VNI, the pod's internal header) to the
  other members. A server dual-homed to two leaves reaches the same VTEP on
  either; losing a spine or a leaf loses no server still connected.
  Deviation: a real VCF decapsulates at the member where a frame enters and
  sends it across the fabric to the member with the server; here every
  member gets a copy and filters, which NSX cannot tell apart.
- With OVS's emulator (vtep_device: ovs-vtep) the pod VTEP is one node
  cabled to the master spine; a server-facing leaf port is extended to a
  port of that VTEP named <leaf>p<k> by a static cross-connect.
"""

BCAST = 'dl_dst=01:00:00:00:00:00/01:00:00:00:00:00'
TAGGED = 'vlan_tci=0x1000/0x1000'     # only the pod's internal frames
GROUP_FLOOD_UP, GROUP_ECMP_BASE = 1, 100


def _edges(plan):
    """Transport MAC -> (member it attaches to, port name on that member)."""
    out = {}
    for n in plan['nodes'].values():
        if 'tunnel_mac' in n and n.get('uplink'):
            intf = next(i for i in n['intfs'] if i['name'] == n['uplink'])
            out[n['tunnel_mac']] = (intf['peer'], intf['peer_intf'])
    return out


def _ports(node):
    return {i['name']: i['ofport'] for i in node['intfs']}


def _master(plan):
    spines = [n for n in plan['nodes'].values() if n['role'] == 'spine']
    vtep = next((n for n in plan['nodes'].values()
                 if n['role'] == 'hw_vtep' and n.get('uplink')), None)
    return vtep['uplink'] if vtep else spines[0]['name']


def pod_vtep(plan):
    """The native pod VTEP node (on the leaves that have servers), or
    None (no hardware VTEP, or OVS's emulator on a spine)."""
    return next((n for n in plan['nodes'].values()
                 if n['role'] == 'hw_vtep' and n.get('pod')), None)


def member_flows(plan, name):
    """(groups, flows) for VCF member `name`, as ovs-ofctl text lines."""
    node = plan['nodes'][name]
    edges = _edges(plan)
    if node['role'] == 'leaf':
        return _leaf(plan, node, edges)
    return _spine(plan, node, edges)


def _leaf(plan, node, edges):
    ports = _ports(node)
    master = _master(plan)
    uplinks = sorted((i for i in node['intfs'] if i['kind'] == 'fabric'),
                     key=lambda i: (i['peer'] != master, i['ofport']))
    local = [i['ofport'] for i in node['intfs'] if i['kind'] == 'access']
    inst = node.get('pod_vtep')
    if inst:
        local.append(inst['phy_ofport'])
    groups = ['group_id=%d,type=fast_failover,%s' % (GROUP_FLOOD_UP, ','.join(
        f"bucket=watch_port:{u['ofport']},output:{u['ofport']}"
        for u in uplinks))]
    ecmp = 'group_id=%d,type=select,%s' % (GROUP_ECMP_BASE, ','.join(
        f"bucket=watch_port:{u['ofport']},output:{u['ofport']}"
        for u in sorted(uplinks, key=lambda u: u['ofport'])))
    groups.append(ecmp)
    flows = _pod_leaf(plan, node, uplinks)
    for i in node['intfs']:
        if i.get('xconnect'):
            flows.append(f"priority=300,in_port={i['ofport']},"
                         f"actions=output:{ports[i['xconnect']]}")
    for u in uplinks:
        flows.append(f"priority=200,in_port={u['ofport']},{BCAST},actions="
                     + (','.join(f'output:{p}' for p in local) or 'drop'))
    for p in local:
        others = [f'output:{q}' for q in local if q != p]
        flows.append(f'priority=200,in_port={p},{BCAST},actions='
                     + ','.join(others + [f'group:{GROUP_FLOOD_UP}']))
    by_spine = {u['peer']: u['ofport'] for u in uplinks}
    for mac_, (member, port) in sorted(edges.items()):
        if member == node['name']:
            action = f'output:{ports[port]}'
        elif member in by_spine:       # attached to a spine: go there
            action = f'output:{by_spine[member]}'
        else:
            action = f'group:{GROUP_ECMP_BASE}'
        flows.append(f'priority=100,dl_dst={mac_},actions={action}')
    flows.append('priority=0,actions=drop')
    return groups, flows


def _pod_leaf(plan, node, uplinks):
    """A leaf's share of the pod VTEP's frames: anything for the pod's
    MAC goes to this leaf's instance (if it is a member) and, from a local
    port, up one live spine to the other members; the pod's internal
    (tagged) frames go between members' `vtep` bridges the same way."""
    vtep = pod_vtep(plan)
    if vtep is None:
        return []
    inst = node.get('pod_vtep')
    others = [m for m in vtep['members'] if m != node['name']]
    up = [f'group:{GROUP_FLOOD_UP}'] if others else []
    pod = f"dl_dst={vtep['tunnel_mac']}"
    flows = []
    for u in uplinks:
        here = [f"output:{inst['phy_ofport']}"] if inst else []
        flows.append(f"priority=250,in_port={u['ofport']},{pod},actions="
                     + (','.join(here) or 'drop'))
        here = [f"output:{inst['internal_ofport']}"] if inst else []
        flows.append(f"priority=250,in_port={u['ofport']},{TAGGED},actions="
                     + (','.join(here) or 'drop'))
    here = [f"output:{inst['phy_ofport']}"] if inst else []
    flows.append(f'priority=240,{pod},actions=' + (','.join(here + up)
                                                    or 'drop'))
    if inst:
        flows.append(f"priority=240,in_port={inst['internal_ofport']},"
                     f"{TAGGED},actions=" + (','.join(up) or 'drop'))
    flows.append(f'priority=230,{TAGGED},actions=drop')
    return flows


def _pod_spine(plan, node):
    """A spine sends the pod VTEP's frames down to every member; tagged
    frames (the pod's internal fabric) only from one member to the others:
    nothing else in the lab may inject into it."""
    vtep = pod_vtep(plan)
    if vtep is None:
        return []
    members = [i['ofport'] for i in node['intfs']
               if i['kind'] == 'fabric' and i['peer'] in vtep['members']]
    flows = []
    for i in node['intfs']:
        out = [f'output:{p}' for p in members if p != i['ofport']]
        flows.append(f"priority=250,in_port={i['ofport']},"
                     f"dl_dst={vtep['tunnel_mac']},actions="
                     + (','.join(out) or 'drop'))
        inside = i['ofport'] in members
        flows.append(f"priority=250,in_port={i['ofport']},{TAGGED},actions="
                     + ((','.join(out) or 'drop') if inside else 'drop'))
    return flows


def _spine(plan, node, edges):
    ports = _ports(node)
    down = [i for i in node['intfs'] if i['kind'] == 'fabric']
    local = [i['ofport'] for i in node['intfs'] if i['kind'] == 'access']
    flows = _pod_spine(plan, node)
    everyone = [i['ofport'] for i in down] + local
    for p in everyone:
        out = [f'output:{q}' for q in everyone if q != p]
        flows.append(f'priority=200,in_port={p},{BCAST},actions='
                     + (','.join(out) or 'drop'))
    to_leaf = {i['peer']: i['ofport'] for i in down}
    for mac_, (member, port) in sorted(edges.items()):
        if member == node['name']:
            flows.append(f'priority=100,dl_dst={mac_},'
                         f'actions=output:{ports[port]}')
        elif member in to_leaf:
            flows.append(f'priority=100,dl_dst={mac_},'
                         f'actions=output:{to_leaf[member]}')
    flows.append('priority=0,actions=drop')
    return [], flows
