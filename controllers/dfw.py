"""The distributed firewall (pure): security groups and rules as the API
takes them, and the flows that enforce them on each hypervisor's br-int,
statefully, with OVS connection tracking (whitepaper: "VMware NSX
Integration with Juniper vSRX Firewall", the NSX distributed firewall).

A **security group** has members: VMs by name, every VM port of the
logical switches it names, and every VM port that carries one of its
tags (a logical port's `tags`; a port tagged later joins at once). A **rule** (checked in `priority` order, the
lowest number first; each rule its own priority) matches a source and a destination (a
group, a CIDR or any), a protocol (tcp, udp, icmp or any) and, for tcp
and udp, a destination port; its action is allow, drop or reject (drop,
and an answer to the sender: controllers.reject); `applied_to`
limits it to the VM ports of one logical switch or, `{"group": NAME}`,
to those of a group's members (NSX's "Applied To"; default: every VM
port). A new connection no rule matches is allowed (NSX's default rule):
a default deny for a logical switch is a last rule `any -> any drop`
applied to it.

**Enforcement**, at each protected VM port (a VM port some rule applies
to) of each hypervisor, in both directions, in one conntrack zone per
port (the port's OpenFlow number):

  table 0  the port's IPv4 frames: set the VNI, ct(zone, table 2)
  table 2  egress from the VM: established and related pass (resubmit
           to table 1: OpenFlow's goto only goes forward); invalid drop;
           a new connection: the first rule whose source holds the VM and
           whose destination matches decides (allow: ct(commit), then
           table 1; drop; reject: to the controller, which answers the
           VM, controllers.reject); none: allow
  table 1  IPv4 to the VM's MAC: ct_clear, ct(zone, table 3)
  table 3  ingress to the VM: the same, rules whose destination holds the
           VM and whose source matches; allow: ct(commit), output;
           reject: the controller answers the sender through table 1
A protected port's unicast IPv6 is dropped both ways (the rules are
IPv4). Everything else (ARP, IPv6 multicast, frames of unprotected
ports, BUM) takes the usual pipeline (controllers.intent). A reply belongs to a connection its
first packet committed, so it passes both ports' zones whatever the
rules say the other way; unsolicited traffic the other way is a new
connection and meets the rules. A rule change recomputes the flows; the
controller sends only the difference, so connections that stay allowed
keep their conntrack entries and flows.
"""
import functools
import ipaddress
import json

from .model import ApiError, _check_fields, _require, check_name, check_tags

PROTOCOLS = {'any': None, 'tcp': 6, 'udp': 17, 'icmp': 1}
ACTIONS = ('allow', 'drop', 'reject')
MAX_PRIORITY = 10000
EGRESS, INGRESS = 2, 3            # br-int tables
REJECT_LEN = 128                  # a rejected packet's bytes sent up: its
                                  # Ethernet, IPv4 and TCP headers
# ct_state bits (ovs-fields(7)): value, mask
NEW = (0x21, 0x23)                # +trk+new-est
EST = (0x22, 0x22)                # +trk+est
REL = (0x24, 0x24)                # +trk+rel
INV = (0x30, 0x30)                # +trk+inv
IPV4, IPV6 = 0x0800, 0x86dd

GROUP_FIELDS = ('name', 'vms', 'logical_switches', 'tags')
RULE_FIELDS = ('name', 'priority', 'source', 'destination', 'protocol',
               'port', 'action', 'applied_to')


def _names_list(body, field, known, what, hint):
    value = body.get(field, [])
    if not isinstance(value, list) or not all(isinstance(v, str)
                                              for v in value):
        raise ApiError(400, field, f'a list of {what} names, e.g. ["x"]')
    for i, v in enumerate(value):
        if v not in known:
            raise ApiError(404, f'{field}[{i}]', f'no {what} {v!r}; {hint}'
                           + (': ' + ', '.join(sorted(known)[:12])
                              if known else ''))
    return sorted(set(value))


def check_group(body, vms, switches):
    """A security group's body -> {'name', 'vms', 'logical_switches',
    'tags'}; `vms`: the lab's VM names, `switches`: the logical switches'
    names. A tag needs no port that carries it yet: membership by tag is
    dynamic (a port tagged later joins). ApiError names the field and
    what is valid."""
    _check_fields(body, GROUP_FIELDS)
    return {'name': check_name(_require(body, 'name', 'a group name')),
            'vms': _names_list(body, 'vms', vms, 'VM', 'the lab\'s VMs'),
            'logical_switches': _names_list(
                body, 'logical_switches', switches, 'logical switch',
                'GET /logical-switches lists them'),
            'tags': check_tags(body.get('tags', []))}


def _endpoint(value, field, groups):
    """'any' | {'group': name} | {'cidr': '10.1.0.0/16'} -> canonical."""
    if value == 'any' or value is None:
        return 'any'
    if isinstance(value, dict) and set(value) == {'group'}:
        if not isinstance(value['group'], str) or \
                value['group'] not in groups:
            raise ApiError(404, f'{field}.group', f"no security group "
                           f"{value['group']!r}; GET /security-groups "
                           'lists them')
        return {'group': value['group']}
    if isinstance(value, dict) and set(value) == {'cidr'}:
        try:
            if not isinstance(value['cidr'], str):
                raise ValueError
            return {'cidr': str(ipaddress.IPv4Network(value['cidr'],
                                                      strict=False))}
        except (TypeError, ValueError):
            raise ApiError(400, f'{field}.cidr', 'an IPv4 network like '
                           '10.1.0.0/16 or a host like 10.1.0.11/32') \
                from None
    raise ApiError(400, field, '"any", {"group": NAME} or {"cidr": '
                   '"10.1.0.0/16"}')


def check_rule(body, groups, switches):
    """A rule's body -> its canonical fields; `groups`, `switches`: the
    names that exist. ApiError names the field and what is valid."""
    _check_fields(body, RULE_FIELDS)
    name = check_name(_require(body, 'name', 'a rule name'))
    prio = _require(body, 'priority', f'an integer 1..{MAX_PRIORITY}, the '
                    'lowest checked first')
    if not isinstance(prio, int) or isinstance(prio, bool) or \
            not 1 <= prio <= MAX_PRIORITY:
        raise ApiError(400, 'priority', f'an integer 1..{MAX_PRIORITY}, the '
                       'lowest checked first')
    proto = body.get('protocol', 'any')
    if not isinstance(proto, str) or proto not in PROTOCOLS:
        raise ApiError(400, 'protocol', 'one of ' + ', '.join(PROTOCOLS))
    port = body.get('port')
    if port is not None:
        if proto not in ('tcp', 'udp'):
            raise ApiError(400, 'port', 'a destination port needs protocol '
                           f'tcp or udp (this rule says {proto})')
        if not isinstance(port, int) or isinstance(port, bool) or \
                not 1 <= port <= 65535:
            raise ApiError(400, 'port', 'a destination port 1..65535')
    action = _require(body, 'action', 'allow, drop or reject')
    if action not in ACTIONS:
        raise ApiError(400, 'action', 'allow, drop or reject (drop, and a '
                       'TCP RST or an ICMP unreachable to the sender)')
    applied = body.get('applied_to')
    if isinstance(applied, dict):
        if set(applied) != {'group'} or applied['group'] not in groups:
            raise ApiError(404, 'applied_to.group', 'no security group '
                           f"{applied.get('group')!r}; GET /security-groups "
                           '(or a logical switch\'s name, or null: every '
                           'VM port)')
        applied = {'group': applied['group']}
    elif applied is not None and (not isinstance(applied, str) or
                                  applied not in switches):
        raise ApiError(404, 'applied_to', f'no logical switch {applied!r} '
                       '(or {"group": NAME}, or null: every VM port); GET '
                       '/logical-switches')
    return {'name': name, 'priority': prio,
            'source': _endpoint(body.get('source', 'any'), 'source', groups),
            'destination': _endpoint(body.get('destination', 'any'),
                                     'destination', groups),
            'protocol': proto, 'port': port, 'action': action,
            'applied_to': applied}


def encode(value):
    return json.dumps(value, sort_keys=True)


def decode(text):
    return json.loads(text)


# -- compilation ------------------------------------------------------------
# parsed addresses, remembered: a pass over a 100-hypervisor lab asks
# whether each of 400 VM ports is in each rule's scope, and parsing the
# same strings again was 30 of its 42 ms (clos-pod, offline profile)
@functools.lru_cache(maxsize=65536)
def _network(cidr):
    return ipaddress.ip_network(cidr)


@functools.lru_cache(maxsize=65536)
def _address(ip):
    return ipaddress.ip_interface(ip).ip


def _host(ip):
    return str(_address(ip)) + '/32'


def group_addresses(desired):
    """{security group: sorted /32s of its members' bound ports with an
    IP} from `desired` (what a partner firewall's address groups follow:
    GET /security-groups/addresses)."""
    ls_name = {ls['id']: ls['name'] for ls in desired['logical_switches']}
    ips = {}
    for p in desired['ports']:
        if p.get('ip'):
            ips.setdefault(('vm', p['attachment']), set()).add(_host(p['ip']))
            ips.setdefault(('ls', ls_name[p['ls_id']]), set()).add(
                _host(p['ip']))
            for t in p.get('tags', ()):
                ips.setdefault(('tag', t), set()).add(_host(p['ip']))
    groups = {}
    for g in desired.get('security_groups', ()):
        cidrs = set()
        for vm in g['vms']:
            cidrs |= ips.get(('vm', vm), set())
        for ls in g['logical_switches']:
            cidrs |= ips.get(('ls', ls), set())
        for t in g.get('tags', ()):
            cidrs |= ips.get(('tag', t), set())
        groups[g['name']] = sorted(cidrs)
    return groups


def resolve(desired):
    """The rules in checking order with their endpoints as CIDR lists
    (None: any), from `desired` (model.Store.desired: 'security_groups',
    'firewall_rules', ports, logical switches): a group is the /32 of
    every bound port of its VMs and logical switches that has an IP.
    Plain data: two snapshots compare with ==. No rules: [] at once
    (every reconciliation pass calls this)."""
    if not desired.get('firewall_rules'):
        return []
    groups = group_addresses(desired)

    def side(e):
        if e == 'any':
            return None
        return groups.get(e['group'], []) if 'group' in e else [e['cidr']]
    rules = sorted(desired.get('firewall_rules', ()),
                   key=lambda r: (r['priority'], r['id']))
    return [{'id': r['id'], 'name': r['name'], 'priority': r['priority'],
             'src': side(r['source']), 'dst': side(r['destination']),
             'proto': r['protocol'], 'port': r['port'],
             'action': r['action'],
             'ls': r['applied_to'] if isinstance(r['applied_to'], str)
             else None,
             'at': side(r['applied_to']) if isinstance(r['applied_to'], dict)
             else None}
            for r in rules]


def holds(cidrs, ip):
    """Does endpoint `cidrs` (None: any) hold host `ip` ('10.1.0.11/16')?"""
    if cidrs is None:
        return True
    if not ip:
        return False
    addr = _address(ip)
    return any(addr in _network(c) for c in cidrs)


def others_of(cidrs, ip):
    """An endpoint's CIDRs without the port's own /32 (a VM's traffic to
    itself never crosses its port): None (any) stays None."""
    if cidrs is None or not ip:
        return cidrs
    return [c for c in cidrs if c != _host(ip)]


def in_scope(rule, port):
    """Does `rule` apply at VM port `port` ({'ls', 'ip'}): its logical
    switch (applied_to a switch, or every one) and, applied_to a group,
    the port's address in the group?"""
    return rule['ls'] in (None, port['ls']) and (
        rule.get('at') is None or holds(rule['at'], port['ip']))


def applies(rules, port):
    """Do any of `rules` apply to VM port `port`?"""
    return any(in_scope(r, port) for r in rules)


def _l4(rule):
    out = {}
    if PROTOCOLS[rule['proto']] is not None:
        out['ip_proto'] = PROTOCOLS[rule['proto']]
    if rule['port'] is not None:
        out[f"{rule['proto']}_dst"] = rule['port']
    return out


def cidr_match(c):
    net = _network(c)
    return str(net.network_address) if net.prefixlen == 32 else \
        (str(net.network_address), str(net.netmask))


def port_flows(rules, port, flow):
    """The flows that protect one VM port: `port` {'ofport', 'vni', 'mac',
    'ip', 'ls'}, `rules` from resolve(), `flow(table, priority, match,
    actions, goto)` builds a flow (controllers.intent's shape). [] when
    no rule applies to the port's logical switch."""
    mine = [r for r in rules if in_scope(r, port)]
    if not mine:
        return []
    zone, vni, mac = port['ofport'], port['vni'], port['mac']
    commit = ('ct', zone, None, True)
    here = {'egress': {'in_port': zone},
            'ingress': {'tunnel_id': vni, 'eth_dst': mac}}
    back = ('resubmit', 1)            # to forwarding (table 1)
    then = {'egress': ([commit, back], None),
            'ingress': ([commit, ('output', zone)], None)}
    out = [flow(0, 110, {'in_port': zone, 'eth_type': IPV4},
                [('set_tunnel', vni), ('ct', zone, EGRESS, False)], None),
           flow(1, 110, {'tunnel_id': vni, 'eth_dst': mac,
                         'eth_type': IPV4},
                [('ct_clear',), ('ct', zone, INGRESS, False)], None),
           # the rules are IPv4: a protected port's unicast IPv6 would
           # pass them by, so it is dropped both ways (IPv6 multicast,
           # neighbour discovery, takes the flooding path)
           flow(0, 110, {'in_port': zone, 'eth_type': IPV6}, [], None),
           flow(1, 110, {'tunnel_id': vni, 'eth_dst': mac,
                         'eth_type': IPV6}, [], None)]
    for way, table in (('egress', EGRESS), ('ingress', INGRESS)):
        at = dict(here[way], eth_type=IPV4)
        pass_on = ([back], None) if way == 'egress' else \
            ([('output', zone)], None)
        out += [flow(table, 65000, dict(at, ct_state=EST), *pass_on),
                flow(table, 65000, dict(at, ct_state=REL), *pass_on),
                flow(table, 64000, dict(at, ct_state=INV), [], None)]
        me, other = ('src', 'dst') if way == 'egress' else ('dst', 'src')
        far = 'ipv4_dst' if way == 'egress' else 'ipv4_src'
        for r in mine:
            far_side = others_of(r[other], port['ip'])
            if not holds(r[me], port['ip']) or far_side == []:
                continue
            prio = 50000 - r['priority']
            acts, goto = {'allow': then[way],
                          'reject': ([('controller', REJECT_LEN)], None),
                          'drop': ([], None)}[r['action']]
            for c in (far_side if far_side is not None else [None]):
                m = dict(at, ct_state=NEW, **_l4(r))
                if c is not None:
                    m[far] = cidr_match(c)
                out.append(flow(table, prio, m, acts, goto))
        out.append(flow(table, 100, dict(at, ct_state=NEW), *then[way]))
    return out


def fallback(flow):
    """Tables 2 and 3 of every hypervisor, below any port's flows: a frame
    that reaches them for a port no longer protected goes on to
    forwarding. OVS can keep a datapath flow that sends a port's frames
    through conntrack for seconds after the hook that did so was deleted
    (seen: 10.9 s, docs/platform.md); without these, the rules' removal
    would black-hole that port meanwhile."""
    return [flow(EGRESS, 0, {}, [('resubmit', 1)], None),
            flow(INGRESS, 0, {}, [('ct_clear',), ('resubmit', 1)], None)]


def _ways(rule, port):
    """Which ways `rule` meets `port` (a VM port {'ip', 'ls'}): ['out']
    (the port is its source), ['in'] (its destination), both, or []."""
    if not in_scope(rule, port):
        return []
    return [w for w, side, far in (('out', 'src', 'dst'),
                                   ('in', 'dst', 'src'))
            if holds(rule[side], port['ip']) and
            others_of(rule[far], port['ip']) != []]


def rule_text(rule):
    """'10.1.0.11/32 -> any tcp/80 ALLOW' (an empty group shown so)."""
    ends = ['any' if x is None else ', '.join(x) or '(empty group)'
            for x in (rule['src'], rule['dst'])]
    proto = rule['proto'] + (f"/{rule['port']}" if rule['port'] else '')
    return f"{ends[0]} -> {ends[1]} {proto} {rule['action'].upper()}"


def port_view(rules, port, raw=None):
    """One VM port's firewall (`port` {'attachment', 'ip', 'ls', 'ofport',
    'mac', 'vni'}, `rules` from resolve()): the rules that meet it, in
    checking order, each with its ways and the packets it passed or
    dropped each way, and the firewall's own verdicts (established,
    invalid, default) likewise, from `raw`, its switch's flow statistics
    (controllers.app's rows: structured matches); packets are None
    without `raw` (the switch did not answer)."""
    seen = hits(raw or (), port)

    def packets(key):
        if raw is None:
            return None
        return seen.get(key, {'out': 0, 'in': 0})
    mine = [dict(r, ways=_ways(r, port)) for r in rules]
    mine = [dict(r, packets=packets(r['priority']))
            for r in mine if r['ways']]
    return {'vm': port['attachment'], 'ip': port['ip'], 'ls': port['ls'],
            'ofport': port['ofport'], 'mac': port['mac'],
            'protected': applies(rules, port), 'rules': mine,
            **{k: packets(k) for k in ('established', 'invalid',
                                       'default')}}


def node_view(desired, node, raw=None):
    """The firewall at hypervisor `node`'s VM ports (GET
    /transport-nodes/{node}/firewall): {'node', 'rules' (resolve()),
    'ports': [port_view()] in port order}, from `desired`
    (model.Store.desired) and `raw`, the switch's flow statistics (None:
    it did not answer, packets unknown)."""
    rules = resolve(desired)
    lss = {ls['id']: ls for ls in desired['logical_switches']}
    ports = sorted((p for p in desired['ports']
                    if p['transport_node'] == node),
                   key=lambda p: p['ofport'])
    return {'node': node, 'rules': rules, 'ports': [
        port_view(rules, dict(p, ls=lss[p['ls_id']]['name'],
                              vni=lss[p['ls_id']]['vni']), raw)
        for p in ports]}


def view_text(view):
    """node_view() as lines for a terminal (the lab CLI's `dfw NODE`,
    `./run.py map --node NODE`)."""
    if not view['rules']:
        return ['no firewall rule: every VM port is open (POST '
                '/firewall-rules makes one)']
    out = [] if view['ports'] else [f"no VM port is bound on {view['node']}"]
    zero = {'out': 0, 'in': 0}
    for q in view['ports']:
        out.append(f"{q['vm']} ({q['ip'] or 'no IP'}, {q['ls']}, "
                   f"port {q['ofport']}):")
        if not q['rules']:
            out.append('  no rule applies: ' + (
                'the default allows' if q['protected'] else 'not protected'))
        for r in q['rules']:
            c = r['packets'] or zero
            out.append(f"  {r['priority']:>5} {r['name']}: {rule_text(r)} "
                       f"({'/'.join(r['ways'])})  packets out {c['out']} "
                       f"in {c['in']}")
        if q['protected']:
            d, e = q['default'] or zero, q['established'] or zero
            out.append(f"  default allow: out {d['out']} in {d['in']}; "
                       f"established: out {e['out']} in {e['in']}")
    if view['ports'] and view['ports'][0]['default'] is None:
        out.append(f"(packets not shown: {view.get('counters', 'unknown')})")
    return out


def rule_at(rules, table, priority):
    """The rule (or the firewall's own verdict) a flow of table 2 or 3 at
    `priority` stands for: 'rule web-in', 'default: allow', ... or None
    when that is no firewall flow."""
    if table not in (EGRESS, INGRESS):
        return None
    fixed = {65000: 'established/related: pass', 64000: 'invalid: drop',
             100: 'no rule matched: allow (the default rule)'}
    if priority in fixed:
        return fixed[priority]
    for r in rules:
        if 50000 - r['priority'] == priority:
            return f"rule {r['name']} ({r['action']})"
    return None


def hits(raw, port):
    """{rule priority (or 'established', 'invalid', 'default'):
    {'out': packets, 'in': packets}} at one VM port, from its switch's
    flow statistics (`raw` rows, matches as {field: value}) of tables 2
    (egress: from its OpenFlow port) and 3 (ingress: to its MAC on its
    VNI)."""
    out = {}
    mac = port['mac'].lower()
    for f in raw:
        m = f['match']
        if f['table'] == EGRESS and m.get('in_port') == port['ofport']:
            way = 'out'
        elif f['table'] == INGRESS and str(m.get('dl_dst', '')).lower() \
                == mac and int(m.get('tunnel_id', -1)) == port['vni']:
            way = 'in'
        else:
            continue
        key = {65000: 'established', 64000: 'invalid', 100: 'default'}.get(
            f['priority'], 50000 - f['priority'])
        c = out.setdefault(key, {'out': 0, 'in': 0})
        c[way] += f['packets']
    return out
