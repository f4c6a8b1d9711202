"""The lab's map (pure): which physical switches carry which virtual
networks, where every VM and server sits, every VTEP and tunnel, and what
is known of their health, the correlation Network Director shows
(whitepaper figures 24-25).

`build(plan, state)` joins the lab's plan (topologies.expand: underlay,
cabling, addresses) with the controller's state (`state`, see build): the
logical switches, ports and gateway connections of its Store, the MACs
the gateways reported, the BFD sessions it follows, the service nodes it
declared dead and, in a cluster, each device's active and standby node.
The controller serves it as GET /api/v1/map; `./run.py map` prints it with
`text`. What nothing reports to the controller is absent, not guessed
(NOT_REPORTED); the transport nodes' port counters are asked of them on
request (`counters`, shown by counters_text). A software gateway's role per
segment is what its agent published in its OVSDB (controllers.nodedb).
"""
import re

from controllers import intent
from topologies import liveness
from topologies.colours import ROLE_COLOURS

TRANSPORT = ('hypervisor', 'service_node', 'sw_gateway', 'hw_vtep')
ENDPOINTS = ('vm', 'bare_metal', 'appliance')
UNDERLAY = ('spine', 'leaf', 'l2_segment')
# what the controller has no session to read: the underlay's switches are
# FRR and OVS of their own (scenarios read them in their namespaces); the
# switches' port counters come with GET /map?counters=true (read_ports)
NOT_REPORTED = ["ECMP next hops and eBGP session state (the routers' own: "
                './run.py map --underlay asks them)',
                "underlay switches' port counters",
                "hardware VTEPs' port counters"]


def natural(name):
    """Sort key: hv2 before hv10."""
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


def _ip(cidr):
    return cidr.split('/')[0] if cidr else None


def underlay(plan):
    """Switches, cables between them and the VTEPs (no host cables), and on
    a Clos the eBGP sessions (one per spine-leaf cable, the AS numbers of
    both ends; docs: topologies/frr.py)."""
    nodes = plan['nodes']
    switches = [{'name': n, 'role': p['role'], 'mgmt_ip': _ip(p.get('mgmt_ip')),
                 **({'asn': p['asn']} if 'asn' in p else {})}
                for n, p in sorted(nodes.items()) if p['role'] in UNDERLAY]
    links, bgp = [], []
    for ln in plan['links']:
        ra, rb = nodes[ln['a']]['role'], nodes[ln['b']]['role']
        if ra in ENDPOINTS or rb in ENDPOINTS:
            continue
        links.append({'a': ln['a'], 'a_intf': ln['a_intf'], 'b': ln['b'],
                      'b_intf': ln['b_intf']})
        if {ra, rb} == {'spine', 'leaf'} and 'asn' in nodes[ln['a']]:
            bgp.append({'a': ln['a'], 'a_asn': nodes[ln['a']]['asn'],
                        'b': ln['b'], 'b_asn': nodes[ln['b']]['asn']})
    out = {'fabric': plan['fabric'], 'switches': switches, 'links': links}
    if plan['fabric'] == 'clos':
        out['bgp'] = bgp
    pods = [{'vtep': n, 'members': list(p['members'])}
            for n, p in sorted(nodes.items()) if p.get('pod')]
    if pods:
        out['pods'] = pods
    return out


def health(v, sess):
    """'down' when the controller lost a session to the device (OpenFlow
    to its br-int, OVSDB to its database) or declared it dead, 'up' when
    every session it holds is up, None when it holds none."""
    if v.get('dead') or False in sess.values():
        return 'down'
    return 'up' if sess else None


def vteps(plan, dead=(), roles=None, gateway_states=None, sessions=None,
          chosen=None):
    """Every transport node: tunnel IP, the leaf (or pod members) it sits
    on, the service nodes it floods through (an edge's, in failover order,
    and the one in use: the first not declared dead), a software
    gateway's role on each physical segment as its agent published it
    (CFM decides it: 'active', 'standby', 'down'; absent while unknown),
    the controller's sessions to it ({'openflow', 'ovsdb'}: up?) and its
    health (see health) and, in a cluster, its active and standby
    controller node."""
    nodes = plan['nodes']
    if chosen is None:
        chosen = liveness.service_nodes_of_edges(nodes)
    out = []
    for n, p in sorted(nodes.items(), key=lambda kv: kv[1]['index']):
        if p['role'] not in TRANSPORT:
            continue
        v = {'name': n, 'role': p['role'], 'tunnel_ip': _ip(p['tunnel_ip']),
             'mgmt_ip': _ip(p.get('mgmt_ip')),
             'leaf': p.get('uplink') or p.get('members')}
        if n in chosen:
            v['service_nodes'] = chosen[n]
            v['service_node_in_use'] = next(
                (s for s in chosen[n] if s not in dead), None)
        elif p['role'] == 'service_node':
            v['dead'] = n in dead
        if p['role'] == 'sw_gateway' and n in (gateway_states or {}):
            v['segments'] = dict(sorted(gateway_states[n].items()))
        if roles and n in roles:
            v['controller'] = dict(roles[n])
        v['sessions'] = dict((sessions or {}).get(n, {}))
        v['health'] = health(v, v['sessions'])
        out.append(v)
    return out


def tunnel_pairs(plan):
    """{(a, b): BFD runs on it} for every pair of transport nodes a < b
    (the full mesh the controller builds, controllers.intent.tunnels)."""
    nodes = {n: p for n, p in plan['nodes'].items()
             if p['role'] in TRANSPORT}
    runs = {}
    for n in nodes:
        for peer, t in intent.tunnels({'nodes': nodes}, n).items():
            key = tuple(sorted((n, peer)))
            runs[key] = runs.get(key, False) or t['bfd']
    return dict(sorted(runs.items()))


def tunnels(pairs, bfd_state):
    """One entry per tunnel (`pairs`, tunnel_pairs): whether BFD runs on
    it and, where the controller follows that session (`bfd_state`
    {(edge, service node): up?}), 'up' or 'down'; None where nobody
    reports it."""
    out = []
    for (a, b), bfd in pairs.items():
        seen = [bfd_state[k] for k in ((a, b), (b, a)) if k in bfd_state]
        out.append({'a': a, 'b': b, 'bfd': bfd,
                    'state': None if not seen else
                    'up' if all(seen) else 'down'})
    return out


def _attachments(plan, ports):
    """{endpoint: where it sits}: a VM at its logical port's binding (the
    hypervisor and OpenFlow port where the controller bound it; nowhere
    while unbound), a server at the switch ports its cables reach (a
    hardware VTEP's port, a VCF leaf's pod port, a segment's VLAN)."""
    nodes = plan['nodes']
    bound = {p['attachment']: p for p in ports}
    out = {}
    for n, p in nodes.items():
        if p['role'] not in ENDPOINTS:
            continue
        if p['role'] == 'vm':
            port = bound.get(n)
            hv = port and port['transport_node']
            out[n] = [{'node': hv, 'port': port['ofport'], 'vlan': 0,
                       'leaf': nodes[hv].get('uplink')}] if hv else []
            continue
        at = []
        for i in p['intfs']:
            peer = nodes[i['peer']]
            ent = {'node': i['peer'], 'port': i['peer_intf'],
                   'vlan': i.get('vlan', 0)}
            if peer['role'] == 'leaf' and peer.get('pod_vtep'):
                ent['pod_vtep'] = peer['pod_vtep']['vtep']
                ent['pod_port'] = next(
                    (j['pod_port'] for j in peer['intfs']
                     if j['peer'] == n and 'pod_port' in j), None)
            elif peer['role'] in TRANSPORT:
                ent['leaf'] = peer.get('uplink')
            at.append(ent)
        out[n] = at
    return out


def _bound_ls(at, conns, name_of):
    """The logical switch a server's cable ends on: the gateway binding
    of that port (hardware VTEP, VCF pod port) or of that segment's VLAN
    (software gateways), else None."""
    for c in conns:
        if (c['gateway'], c['port']) in ((at['node'], at['port']),
                                         (at.get('pod_vtep'),
                                          at.get('pod_port'))) or \
                (c['port'] == at['node'] and c['vlan'] == at['vlan']):
            return name_of.get(c['ls_id'])
    return None


def endpoints(plan, ports, switches=(), conns=()):
    """Every VM and server: its logical switch as the controller has it
    (a VM's logical port; a server's gateway binding; None without one),
    the one the lab file gave it (`planned_ls`), IP, MAC, where it sits
    (`on`, _attachments) and a VM's cable (`cabled_to`)."""
    nodes = plan['nodes']
    at = _attachments(plan, ports)
    ls_of = {p['attachment']: p for p in ports}
    name_of = {ls['id']: ls['name'] for ls in switches}
    out = []
    for n, p in sorted(nodes.items(), key=lambda kv: kv[1]['index']):
        if p['role'] not in ENDPOINTS:
            continue
        if p['role'] == 'vm':
            ls = name_of.get(ls_of[n]['ls_id']) if n in ls_of else None
        else:
            ls = next((x for x in (_bound_ls(a, conns, name_of)
                                   for a in at[n]) if x), None)
        e = {'name': n, 'role': p['role'], 'ls': ls,
             'planned_ls': p.get('ls'),
             'ip': _ip(p.get('ip')), 'mac': p.get('mac'), 'on': at[n]}
        if n in ls_of:
            e['port_id'] = ls_of[n]['id']
        if p['role'] == 'vm':         # where its cable goes (the plan's)
            hv = p['intfs'][0]['peer']
            e['cabled_to'] = {'node': hv, 'port': next(
                i['ofport'] for i in nodes[hv]['intfs'] if i['peer'] == n)}
        out.append(e)
    return out


def logical_switches(desired, vtep_macs, ports):
    """Each logical switch: VNI, replication mode, its member VTEPs (the
    transport nodes with a bound port, a gateway connection or a MAC a
    gateway reported: controllers.intent.members, over `desired`), its
    ports (`ports`: every one, bound or not) and its gateway bindings
    (VLAN <-> VNI)."""
    members = intent.members(desired, {'vtep_macs': vtep_macs})
    out = []
    for ls in desired['logical_switches']:
        out.append({
            'id': ls['id'], 'name': ls['name'], 'vni': ls['vni'],
            'replication_mode': ls['replication_mode'],
            'subnet': ls['subnet'],
            'members': sorted(members.get(ls['vni'], ()), key=natural),
            'ports': [{'id': p['id'], 'attachment': p['attachment'],
                       'transport_node': p['transport_node']}
                      for p in ports if p['ls_id'] == ls['id']],
            'bindings': [{'gateway': c['gateway'], 'port': c['port'],
                          'vlan': c['vlan']}
                         for c in desired['gateway_connections']
                         if c['ls_id'] == ls['id']]})
    return out


def build(plan, state):
    """The map of `plan` for `state` (see Mapper.build), in one call."""
    return Mapper(plan).build(state)


class Mapper:
    """The map of one lab: what depends on the plan alone (underlay,
    which pairs of transport nodes have a tunnel and which run BFD, the
    service nodes of each edge) is worked out once; build() adds the
    controller's state (the web view asks four times a second)."""

    def __init__(self, plan):
        self.plan = plan
        self.underlay = underlay(plan)
        self.pairs = tunnel_pairs(plan)
        self.chosen = liveness.service_nodes_of_edges(plan['nodes'])

    def build(self, state):
        """The map as plain data (JSON-able), with each endpoint's path
        as text (`paths`, path_of) and the roles' colours (`colours`, as
        every picture of the lab draws them). `state`:
        {'logical_switches', 'ports' (every logical port, bound or not),
        'gateway_connections'} as the Store lists them; optional
        'vtep_macs' {(vni, mac): node}, 'bfd' {(edge, service node):
        up?}, 'dead' (service nodes), 'roles' {device: {'active',
        'standby'}} (a cluster's assignment), 'gateway_states' {software
        gateway: {segment: role}}, 'sessions' {device: {'openflow': up?,
        'ovsdb': up?}} (the controller's)."""
        plan = self.plan
        desired = {'logical_switches': state['logical_switches'],
                   'ports': state['ports'],
                   'gateway_connections': state['gateway_connections']}
        bound = dict(desired, ports=[p for p in state['ports']
                                     if p['transport_node'] is not None])
        macs = state.get('vtep_macs', {})
        m = {'lab': plan['name'],
             'underlay': self.underlay,
             'vteps': vteps(plan, set(state.get('dead', ())),
                            state.get('roles'), state.get('gateway_states'),
                            state.get('sessions'), self.chosen),
             'tunnels': tunnels(self.pairs, state.get('bfd', {})),
             'logical_switches': logical_switches(bound, macs,
                                                  state['ports']),
             'endpoints': endpoints(plan, state['ports'],
                                    state['logical_switches'],
                                    state['gateway_connections']),
             'learned_macs': [{'vni': vni, 'mac': mac, 'behind': node}
                              for (vni, mac), node in sorted(macs.items())],
             'not_reported': list(NOT_REPORTED),
             'colours': dict(ROLE_COLOURS)}
        index = _index(m)
        m['paths'] = {e['name']: path_of(m, e['name'], index)
                      for e in m['endpoints']}
        return m


# -- text ----------------------------------------------------------------
def _index(m):
    return ({v['name']: v for v in m['vteps']},
            {ls['name']: ls for ls in m['logical_switches']},
            {e['name']: e for e in m['endpoints']})


def _leaf(v):
    """A VTEP's leaf, or its pod's members joined ('leaf1+leaf2')."""
    return v['leaf'] if isinstance(v['leaf'], str) else \
        '+'.join(v['leaf'] or ())


def _hop(vt, ls, at):
    """Where an endpoint's cable ends, and the gateway binding that puts
    it on its logical switch: 'hv2 (port 3; leaf2, 198.19.64.17)',
    'vtep2 (port bm2; leaf2, 198.19.64.11) VLAN 0 <-> VNI 5001',
    'leaf1 port bm1 = vtep1 leaf1p1 VLAN 0 <-> VNI 5001',
    'seg1 port srv1 VLAN 100 -> gw1, gw2 <-> VNI 5001'."""
    binds = (ls or {}).get('bindings', ())
    vni = f" <-> VNI {ls['vni']}" if ls else ''
    node = at['node']
    if node in vt:                        # a hypervisor or hardware VTEP
        v = vt[node]
        leaf = _leaf(v)
        hop = f"{node} (port {at['port']}; {leaf}, {v['tunnel_ip']})"
        b = [b for b in binds if b['gateway'] == node and
             b['port'] == at['port']]
        return hop + (f" VLAN {b[0]['vlan']}{vni}" if b else '')
    if at.get('pod_vtep'):                # a VCF leaf: the pod VTEP's port
        hop = f"{node} port {at['port']} = {at['pod_vtep']} {at['pod_port']}"
        b = [b for b in binds if b['gateway'] == at['pod_vtep'] and
             b['port'] == at['pod_port']]
        return hop + (f" VLAN {b[0]['vlan']}{vni}" if b else '')
    # a physical segment: the software gateways bridging its VLAN
    hop = f"{node} port {at['port']} VLAN {at['vlan']}"
    gws = sorted(b['gateway'] for b in binds
                 if b['port'] == node and b['vlan'] == at['vlan'])
    return hop + (f" -> {', '.join(gws)}{vni}" if gws else '')


def path_of(m, name, index=None):
    """One endpoint's path through the lab, a line per cable: 'vm5 -> hv2
    (port 3; leaf2, 198.19.64.17) -> ls1 VNI 5001 -> members gw1, gw2,
    hv1, ...'. KeyError names what is unknown and what exists."""
    vt, lss, eps = index or _index(m)
    if name not in eps:
        raise KeyError(f'no VM or server named {name!r}; the lab has '
                       f"{', '.join(sorted(eps)) or 'none'}")
    e = eps[name]
    ls = lss.get(e['ls'])
    tail = (f"{ls['name']} VNI {ls['vni']} -> members "
            f"{', '.join(ls['members']) or 'none'}") if ls else \
        f"{e['ls'] or 'no logical switch'} (not created)"
    if not e['on']:
        cab = e.get('cabled_to')
        where = f" (cabled to {cab['node']} port {cab['port']})" if cab \
            else ''
        return [f'{name}{where} -> no bound logical port -> {tail}']
    return [f"{name} -> {_hop(vt, ls, at)} -> {tail}" for at in e['on']]


def describe_ls(m, name):
    """Lines for one logical switch: VNI, members, endpoints, bindings."""
    _vt, lss, eps = _index(m)
    if name not in lss:
        raise KeyError(f'no logical switch named {name!r}; the lab has '
                       f"{', '.join(sorted(lss)) or 'none'}")
    ls = lss[name]
    on = [e for e in eps.values() if e['ls'] == name]
    out = [f"{name}: VNI {ls['vni']}, {ls['replication_mode']} replication, "
           f"{ls['subnet'] or 'no subnet'}",
           f"  members: {', '.join(ls['members']) or 'none'}"]
    for e in on:
        where = ', '.join(f"{a['node']}:{a['port']}" for a in e['on']) or \
            'unbound'
        out.append(f"  {e['role']} {e['name']} {e['ip'] or ''} "
                   f"{e['mac']} at {where}".replace('  at', ' at'))
    for b in ls['bindings']:
        out.append(f"  binding: {b['gateway']} port {b['port']} VLAN "
                   f"{b['vlan']} <-> VNI {ls['vni']}")
    return out


def counters_text(counters):
    """Lines of port counters ({node: controllers.tables.port_counters
    rows}): one per port that carried, dropped or botched anything; '-'
    for a counter the port does not keep."""
    keys = ('rx_packets', 'tx_packets', 'rx_dropped', 'tx_dropped',
            'rx_errors', 'tx_errors')
    widths = (10, 10, 8, 8, 7, 7)
    out = [f"{'node':8} {'port':22} " + ' '.join(
        f'{h:>{w}}' for h, w in zip(('rx pkts', 'tx pkts', 'rx drop',
                                      'tx drop', 'rx err', 'tx err'),
                                     widths))]
    for node in sorted(counters, key=natural):
        for p in counters[node]:
            vals = [p.get(k) for k in keys]
            if any(vals):
                out.append(f"{node:8} {p['name'][:22]:22} " + ' '.join(
                    f"{'-' if v is None else v:>{w}}"
                    for v, w in zip(vals, widths)))
    return out


def text(m, ls=None, vm=None):
    """The map as lines: everything, or one logical switch, or one VM's
    (or server's) path."""
    if vm:
        return path_of(m, vm)
    if ls:
        return describe_ls(m, ls)
    u = m['underlay']
    out = [f"lab {m['lab']}: {u['fabric']} underlay, "
           f"{len(u['switches'])} switches, {len(u['links'])} cables"]
    for s in u.get('bgp', ()):
        out.append(f"  eBGP {s['a']} (AS {s['a_asn']}) - {s['b']} "
                   f"(AS {s['b_asn']})")
    for p in u.get('pods', ()):
        out.append(f"  pod VTEP {p['vtep']} on {', '.join(p['members'])}")
    out.append('VTEPs:')
    for v in m['vteps']:
        leaf = _leaf(v)
        extra = ''
        if 'service_node_in_use' in v:
            extra = (f", floods via {v['service_node_in_use'] or 'none'}"
                     f" ({' > '.join(v['service_nodes'])})")
        if v.get('dead'):
            extra += ', DEAD'
        lost = [k for k, up in sorted(v.get('sessions', {}).items())
                if not up]
        if lost:
            extra += f", {' and '.join(lost)} session DOWN"

        for seg, role in v.get('segments', {}).items():
            extra += f', {seg} {role}'
        if 'controller' in v:
            extra += (f", controller {v['controller']['active']}"
                      f" (standby {v['controller']['standby']})")
        out.append(f"  {v['role']} {v['name']} {v['tunnel_ip']} on "
                   f"{leaf}{extra}")
    down = [t for t in m['tunnels'] if t['state'] == 'down']
    bfd = [t for t in m['tunnels'] if t['bfd']]
    seen = [t for t in m['tunnels'] if t['state'] is not None]
    out.append(f"tunnels: {len(m['tunnels'])}, {len(bfd)} with BFD, "
               f"{len(seen)} followed by the controller, {len(down)} down"
               + (': ' + ', '.join(f"{t['a']}-{t['b']}" for t in down)
                  if down else ''))
    for ls_ in m['logical_switches']:
        out += describe_ls(m, ls_['name'])
    return out
