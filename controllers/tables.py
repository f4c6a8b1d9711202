"""A device's tables as the controller reads them from the device itself,
named for people (pure): what the web view shows when a node is clicked
(GET /api/v1/transport-nodes/{name}/tables) and `./run.py map --node`
prints.

- An OpenFlow switch (hypervisor, service node, software gateway): its
  br-int's flows with their counters, named as the lab CLI's `flows`
  names them (controllers.naming), the MAC table those flows make (table
  1's unicast flows: where each MAC of each logical switch goes), and its
  ports' counters (packets, drops, errors), from flow and port statistics
  the controller asks the switch for (controllers.app read).
- A hardware VTEP: its vtep(5) database as the controller's replica holds
  it (controllers.vtepplan.read_have): VLAN bindings, the MACs it learned
  (Ucast_Macs_Local), those the controller gave it (Ucast_Macs_Remote),
  flooding lists and the BFD state of its tunnels.
"""
from controllers import dfw, labmap, naming

OFPP_LOCAL = 0xfffffffe
UNAVAILABLE = 2 ** 64 - 1    # OpenFlow: a counter the port does not keep
COUNTERS = ('rx_packets', 'tx_packets', 'rx_dropped', 'tx_dropped',
            'rx_errors', 'tx_errors')
_FIRST = ('in_port', 'ct_state', 'metadata', 'dl_vlan', 'tunnel_id',
          'dl_type', 'dl_src', 'dl_dst')


def known_names(plan, switches=()):
    """{MAC: host, VNI as text: logical switch} of the plan and of the
    logical switches the controller has now (`switches`: the Store's)."""
    out = naming.names(plan)
    for ls in switches:
        out[str(ls['vni'])] = ls['name']
        out[hex(ls['vni'])] = ls['name']
    return out


def _action(a):
    """os-ken's action text ('OUTPUT:3', 'SET_FIELD: {tunnel_id:5001}')
    in ovs-ofctl's spelling ('output:3', 'set_field:{tunnel_id:5001}')."""
    if isinstance(a, dict):            # {'WRITE_ACTIONS': [...]}
        return ','.join(f"{k.lower()}({','.join(map(_action, v))})"
                        for k, v in a.items())
    name, sep, arg = a.partition(':')
    if name == 'CT':                   # 'CT:commit,zone=2' -> ct(commit,..)
        return f'ct({arg})'
    return name.lower() + sep + arg.strip()


CT_FLAGS = ((0x01, 'new'), (0x02, 'est'), (0x04, 'rel'), (0x08, 'rpl'),
            (0x10, 'inv'), (0x20, 'trk'))


def _value(field, v):
    """os-ken's '1/255' of a masked metadata as ovs-ofctl's '0x1/0xff',
    its '33/35' of a ct_state as '+new-est+trk', an Ethernet type in
    hex."""
    if field == 'metadata':
        return '/'.join(hex(int(x)) for x in str(v).split('/'))
    if field == 'ct_state':
        val, _, mask = str(v).partition('/')
        val, mask = int(val), int(mask or 0xff)
        return ''.join(('+' if val & bit else '-') + name
                       for bit, name in CT_FLAGS if mask & bit)
    if field == 'dl_type':
        return f'0x{int(v):04x}'
    return v


def flow_text(f):
    """One flow ({'table', 'priority', 'match': {field: value}, 'actions':
    [os-ken action text]}) as ovs-ofctl writes it: 'table=1,
    priority=100,tunnel_id=5001,dl_dst=02:.. actions=output:1003'."""
    keys = sorted(f['match'], key=lambda k: (
        _FIRST.index(k) if k in _FIRST else len(_FIRST), k))
    match = ''.join(f',{k}={_value(k, f["match"][k])}' for k in keys)
    acts = ','.join(_action(a) for a in f['actions']) or 'drop'
    return f"table={f['table']}, priority={f['priority']}{match} " \
           f"actions={acts}"


def flows(plan, node, raw, known):
    """The switch's flows in table order (highest priority first), each
    {'table', 'priority', 'flow' (named text), 'packets', 'bytes'}."""
    out = [{'table': f['table'], 'priority': f['priority'],
            'flow': naming.annotate(plan, node, flow_text(f), known=known),
            'packets': f['packets'], 'bytes': f['bytes']} for f in raw]
    return sorted(out, key=lambda r: (r['table'], -r['priority'], r['flow']))


def _outputs(f):
    return [a.split(':', 1)[1] for a in f['actions']
            if isinstance(a, str) and a.startswith('OUTPUT:')]


def mac_table(plan, node, raw, known):
    """Where the switch sends each known MAC: table 1's unicast flows (a
    VNI, a destination MAC, output ports; split-horizon drops left out),
    each {'ls', 'vni', 'mac', 'host', 'to': [port names]}."""
    ports = naming.port_names(plan, node)
    out = []
    for f in raw:
        m, outs = f['match'], _outputs(f)
        if f['table'] != 1 or 'tunnel_id' not in m or 'dl_dst' not in m \
                or not outs or \
                str(m.get('metadata', 0)).split('/')[0] == '1':
            continue
        vni, mac = int(m['tunnel_id']), m['dl_dst']
        out.append({'ls': known.get(str(vni)), 'vni': vni, 'mac': mac,
                    'host': known.get(mac),
                    'to': [ports.get(int(p), p) if p.isdigit() else p
                           for p in outs]})
    return sorted(out, key=lambda r: (r['vni'], r['mac']))


def port_counters(plan, node, raw):
    """Each port's counters ({'port', 'name', COUNTERS...}) in port order;
    a port is named after what is cabled there ('vm1', 'tunnel->hv2',
    'br-int' for the bridge's own); a counter the port does not keep
    (OVS's tunnel ports: drops and errors) is None."""
    ports = naming.port_names(plan, node)
    out = []
    for p in sorted(raw, key=lambda p: p['port']):
        name = 'br-int' if p['port'] == OFPP_LOCAL else \
            ports.get(p['port'], str(p['port']))
        out.append({'port': 'LOCAL' if p['port'] == OFPP_LOCAL
                    else p['port'], 'name': name,
                    **{k: None if p.get(k) == UNAVAILABLE else p.get(k)
                       for k in COUNTERS}})
    return out


def openflow(plan, node, raw, switches=()):
    """An OpenFlow switch's tables from what it answered (`raw`: {'flows':
    [...], 'ports': [...]}, see controllers.app read)."""
    known = known_names(plan, switches)
    return {'node': node, 'source': 'openflow',
            'flows': flows(plan, node, raw['flows'], known),
            'macs': mac_table(plan, node, raw['flows'], known),
            'ports': port_counters(plan, node, raw['ports'])}


def vtep(plan, node, have):
    """A hardware VTEP's tables from the controller's replica of its
    database (`have`, vtepplan.read_have): VLAN bindings, MACs it learned
    and was given, flooding lists and its tunnels' BFD state (each
    remote VTEP named)."""
    by_ip = {p['tunnel_ip'].split('/')[0]: n for n, p in
             plan['nodes'].items() if p.get('tunnel_ip')}
    hosts = naming.names(plan)
    vni_of = {ls: v['vni'] for ls, v in have['logical_switches'].items()}
    ls_of = {v['vni']: ls for ls, v in have['logical_switches'].items()}
    return {
        'node': node, 'source': 'ovsdb (vtep)',
        'bindings': [{'port': port, 'vlan': vlan, 'ls': ls,
                      'vni': vni_of.get(ls)}
                     for (port, vlan), ls in sorted(have['bindings'].items())],
        'macs': sorted(
            [{'ls': ls_of.get(vni), 'vni': vni, 'mac': mac,
              'host': hosts.get(mac), 'to': ['local']}
             for vni, mac in have['local_macs']] +
            [{'ls': ls, 'vni': vni_of.get(ls), 'mac': mac,
              'host': hosts.get(mac), 'to': [by_ip.get(ip, ip)]}
             for (ls, mac), ip in have['ucast_remote'].items()],
            key=lambda r: (r['vni'] or 0, r['mac'])),
        'flooding': [{'ls': ls, 'to': [by_ip.get(ip, ip) for ip in ips]}
                     for ls, ips in sorted(have['mcast_remote'].items())],
        'bfd': [{'peer': by_ip.get(ip, ip), 'ip': ip,
                 'state': have.get('bfd_state', {}).get(ip)}
                for ip in sorted(have['bfd_running'])]}


def text(t):
    """A device's tables (openflow or vtep) as lines for a terminal."""
    out = [f"{t['node']} (read from its {t['source']})"]
    if t['source'] == 'openflow':
        out.append(f"flows ({len(t['flows'])}):")
        out += [f"  {f['packets']:>9} pkts  {f['flow']}" for f in t['flows']]
    else:
        out.append('bindings:')
        out += [f"  {b['port']} VLAN {b['vlan']} <-> {b['ls']} VNI "
                f"{b['vni']}" for b in t['bindings']]
        out.append('flooding:')
        out += [f"  {f['ls']} -> {', '.join(f['to'])}" for f in t['flooding']]
        out.append('BFD:')
        out += [f"  {b['peer']} ({b['ip']}): {b['state'] or 'unknown'}"
                for b in t['bfd']]
    out.append('MACs:')
    out += [f"  {m['ls'] or m['vni']}  {m['mac']} ({m['host'] or '?'})  ->  "
            f"{', '.join(map(str, m['to']))}" for m in t['macs']]
    if t.get('ports'):
        out.append('ports:')
        out += ['  ' + ln for ln in
                labmap.counters_text({t['node']: t['ports']})]
    if t.get('firewall'):
        out.append('firewall:')
        out += ['  ' + ln for ln in dfw.view_text(t['firewall'])]
    return out
