"""What was seen on the wire, as a trainer explains it: decoded frames from
capture points -> arrows between boxes (one per frame that crossed from one
box to another), each with its outer (VXLAN) and inner headers. Pure: reads
the plan and frame records (scenarios.harness.decode), no I/O.

A capture point is (name, node, kind):
  uplink   a VTEP's cable into the fabric: tunnelled frames, both ways
  host     a VM's or server's own interface
  segment  a software gateway's cable into its physical segment
One frame is often seen at two points (sent by one box, received by the
next): observations with the same sender, receiver and content within
MERGE_S seconds make one arrow, which lists every point that saw it.
"""

MERGE_S = 0.25
VXLAN_PORT = 4789
EDGE_ROLES = ('hypervisor', 'hw_vtep', 'sw_gateway', 'service_node')


def addr(cidr):
    return cidr.split('/')[0]


def vtep_names(plan):
    """{tunnel IP: VTEP name}."""
    return {addr(p['tunnel_ip']): n for n, p in plan['nodes'].items()
            if 'tunnel_ip' in p}


def owners(plan):
    """{MAC: host name} for VMs and servers."""
    return {p['mac']: n for n, p in plan['nodes'].items() if 'mac' in p}


def attachment(plan, host):
    """The VTEP box a host's frames enter the overlay through: its
    hypervisor, the hardware VTEP whose port faces it, or the software
    gateway on its segment if there is exactly one. None when ambiguous
    (two gateways on one segment: use the gateways' segment captures)."""
    nodes = plan['nodes']
    peer = nodes[host]['intfs'][0]['peer']
    if nodes[peer]['role'] in ('hypervisor', 'hw_vtep'):
        return peer
    for v, p in nodes.items():
        if p['role'] == 'hw_vtep' and any(
                (i.get('server') or i['peer']) == host for i in p['intfs']
                if i['kind'] == 'physical'):
            return v
    if nodes[peer]['role'] == 'l2_segment':
        gws = [i['peer'] for i in nodes[peer]['intfs']
               if nodes[i['peer']]['role'] == 'sw_gateway']
        return gws[0] if len(gws) == 1 else None
    return None


def segment_hosts(plan, gateway):
    """Hosts on the physical segment(s) behind a software gateway."""
    nodes = plan['nodes']
    segs = [i['peer'] for i in nodes[gateway]['intfs']
            if nodes[i['peer']]['role'] == 'l2_segment']
    return [i['peer'] for s in segs for i in nodes[s]['intfs']
            if nodes[i['peer']]['role'] == 'bare_metal']


def within(recs, window):
    """The records captured inside `window` (start, end), epoch seconds."""
    return [r for r in recs if window[0] <= r['time'] <= window[1]]


def capture_points(plan, lanes):
    """[(point name, node, kind, interface)] for the lanes' boxes: VTEP
    uplinks, hosts' own interfaces, software gateways' segment cables."""
    nodes, out = plan['nodes'], []
    for b in lanes:
        p = nodes[b]
        if p.get('pod'):          # a VCF pod VTEP: on each member leaf
            out += [(f'{b}@{m}', m, 'uplink', nodes[m]['pod_vtep']['uplink'])
                    for m in p['members']]
        elif 'tunnel_ip' in p:
            out.append((b, b, 'uplink', p['uplink']))
        if p['role'] in ('vm', 'bare_metal', 'appliance'):
            out.append((b, b, 'host', p['intfs'][0]['name']))
        if p['role'] == 'sw_gateway':
            for i in p['intfs']:
                if nodes[i['peer']]['role'] == 'l2_segment':
                    out.append((f'{b}-seg', b, 'segment', i['name']))
    return out


def what(rec):
    """A frame's inner content in words, e.g. 'ARP request'."""
    if rec.get('arp'):
        return f"ARP {rec['arp']}"
    if rec.get('icmp') == 8:
        return 'ICMP echo request'
    if rec.get('icmp') == 0:
        return 'ICMP echo reply'
    if rec.get('ip_src'):
        return 'IP packet'
    return 'frame'


def relevant(rec, pair):
    """Part of the exchange between the two IPs in `pair`?"""
    if rec.get('arp'):
        return {rec.get('psrc'), rec.get('pdst')} == set(pair)
    return {rec.get('ip_src'), rec.get('ip_dst')} == set(pair)


def observe(plan, point, rec, macs=None, mac_of=None, vteps=None):
    """(sender box, receiver box) of one captured frame, or None; `macs`
    overrides who owns a MAC (after a migration, the VM). `mac_of` and
    `vteps` (owners + macs, vtep_names) may be given, computed once for
    many frames."""
    name, node, kind = point
    if mac_of is None:
        mac_of = {**owners(plan), **(macs or {})}
    if kind == 'uplink':
        if 'vni' not in rec:
            return None
        vteps = vteps or vtep_names(plan)
        return (vteps.get(rec['outer_src'], rec['outer_src']),
                vteps.get(rec['outer_dst'], rec['outer_dst']))
    if kind == 'host':
        edge = attachment(plan, node)
        if edge is None:
            return None
        return (node, edge) if mac_of.get(rec['src']) == node else \
            (edge, node)
    if kind == 'segment':
        behind = segment_hosts(plan, node)
        src = mac_of.get(rec['src'])
        if src in behind:
            return (src, node)
        dst = mac_of.get(rec['dst'])
        if dst in behind:
            return (node, dst)
        return (node, behind[0]) if len(behind) == 1 else None
    raise ValueError(f'capture point {name}: unknown kind {kind!r}')


def arrows(plan, points, frames, pair, act=None, macs=None):
    """Capture points [(name, node, kind)] and {name: [records]} -> arrows
    in time order, each {src, dst, what, time, points, vni?, vlan?,
    outer?, inner}, for the frames between the IPs in `pair`."""
    obs = []
    mac_of, vteps = {**owners(plan), **(macs or {})}, vtep_names(plan)
    for point in points:
        for rec in frames.get(point[0], []):
            if not relevant(rec, pair):
                continue
            ends = observe(plan, point, rec, macs, mac_of, vteps)
            if ends is None or ends[0] == ends[1]:
                continue
            obs.append((rec['time'], ends, what(rec), point[0], rec))
    out = []
    for t, (src, dst), kind, at, rec in sorted(obs, key=lambda o: o[0]):
        same = [a for a in out if (a['src'], a['dst'], a['what']) ==
                (src, dst, kind) and t - a['time'] <= MERGE_S and
                at not in a['points']]
        if same:
            a = same[0]
        else:
            a = {'src': src, 'dst': dst, 'what': kind, 'time': t,
                 'points': [], 'act': act,
                 'inner': {k: rec[k] for k in ('src', 'dst', 'psrc', 'pdst',
                                               'hwsrc', 'ip_src', 'ip_dst')
                           if rec.get(k) is not None}}
            out.append(a)
        a['points'].append(at)
        if 'vni' in rec:
            a['vni'] = rec['vni']
            a['outer'] = {'src': rec['outer_src'], 'dst': rec['outer_dst'],
                          'sport': rec.get('outer_sport'),
                          'dport': rec.get('outer_dport')}
        if rec.get('vlan') is not None:
            a['vlan'] = rec['vlan']
    return out


def label(a):
    """The arrow's label in a diagram: content, then VNI or VLAN."""
    tag = f"  VNI {a['vni']}" if 'vni' in a else (
        f"  VLAN {a['vlan']}" if 'vlan' in a else '')
    return a['what'] + tag


def describe(a, t0):
    """Two or three lines: who -> whom, outer headers, inner headers."""
    ms = (a['time'] - t0) * 1000
    lines = [f"+{ms:7.1f} ms  {a['src']} -> {a['dst']}: {a['what']}"
             f"   (seen at {', '.join(a['points'])})"]
    if 'outer' in a:
        o = a['outer']
        lines.append(f"              outer  IP {o['src']} -> {o['dst']}  "
                     f"UDP {o['sport']} -> {o['dport']}  VXLAN VNI "
                     f"{a['vni']}")
    i = a['inner']
    inner = f"              inner  {i.get('src')} -> {i.get('dst')}"
    if 'vlan' in a:
        inner += f"  VLAN {a['vlan']}"
    if a['what'] == 'ARP request':
        inner += f"  who-has {i.get('pdst')} tell {i.get('psrc')}"
    elif a['what'] == 'ARP reply':
        inner += f"  {i.get('psrc')} is-at {i.get('hwsrc', i.get('src'))}"
    elif 'ip_src' in i:
        inner += f"  IP {i['ip_src']} -> {i['ip_dst']}"
    lines.append(inner)
    return lines
