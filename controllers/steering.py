"""Service steering (pure): traffic of protected VMs redirected through a
partner security VM on the same hypervisor (whitepaper: "VMware NSX
Integration with Juniper vSRX Firewall": a steering policy sends selected
traffic to the vSRX on the host, then back into the pipeline).

A **service VM** is registered per hypervisor ({name, transport_node,
in_port, out_port}: the OpenFlow ports of its two interfaces on br-int; a
bump in the wire: what enters one side leaves the other). A **steering
rule** has a firewall rule's matching fields (controllers.dfw: source,
destination, protocol, port, applied_to, priority) and, instead of an
action, `on_failure`: what happens to matching traffic while the service
VM is down (or missing on that hypervisor): `fail-open` (it passes
unsteered) or `fail-closed` (it is dropped). A rule steers at every VM
port it applies to, as a firewall rule does (default: every VM port, so
a connection between two VMs is steered at both ends, each through its
own hypervisor's service VM); to steer at the protected VMs only, apply
it to their group (`applied_to: {"group": "web"}`).

**Flows**, at each VM port a steering rule applies to, before the
distributed firewall (priorities above its flows; register 0 = 1 marks a
frame that has crossed, or bypassed, the service VM, so it is steered
once):
  table 0  from the VM, matching a rule either way (its request, or the
           reply of a connection the VM accepted): to the egress group
  table 1  to the VM (its MAC on its VNI), likewise: to the ingress group
  table 0  back from the service VM: from `out_port` with the VM's source
           MAC -> reg0=1, in_port=the VM's port, table 0 again (so the
           firewall and forwarding see it as the VM's); from `in_port` to
           the VM's MAC -> reg0=1, its VNI, table 1
The groups are fast-failover: the first bucket sends to the service VM
while the port it leaves by is live (the hypervisor sees its vNIC's link);
`fail-open` has a second bucket that marks the frame and goes on as if
unsteered, `fail-closed` none (a dead service VM: dropped). The data plane
decides; the controller is not asked.
"""
from . import dfw
from .model import ApiError, _check_fields, _require, check_name

FAILURES = ('fail-open', 'fail-closed')
SVM_FIELDS = ('name', 'transport_node', 'in_port', 'out_port')
RULE_FIELDS = tuple(f for f in dfw.RULE_FIELDS if f != 'action') + (
    'on_failure',)
MAX_OFPORT = 0xfeff               # OpenFlow's last physical port number
ALWAYS = 19                       # an `all` group of one empty bucket:
                                  # always live, what a fail-open bucket
                                  # watches (OVS refuses a fast-failover
                                  # bucket that watches nothing)
STEERED = 1                       # reg0 once a frame crossed the service VM
PRIO_BASE = 30000                 # minus the rule's priority (1..10000)
PRIO_BACK = 40000                 # frames back from the service VM
# fast-failover group ids on a hypervisor: (way, on_failure) -> id
GROUPS = {('out', 'fail-open'): 20, ('out', 'fail-closed'): 21,
          ('in', 'fail-open'): 22, ('in', 'fail-closed'): 23}


def _ofport(body, field):
    v = _require(body, field, f'an OpenFlow port number 1..{MAX_OFPORT} on '
                 "the hypervisor's br-int")
    if not isinstance(v, int) or isinstance(v, bool) or \
            not 1 <= v <= MAX_OFPORT:
        raise ApiError(400, field, f'an OpenFlow port number 1..{MAX_OFPORT} '
                       "on the hypervisor's br-int")
    return v


def check_service_vm(body, hypervisors, taken):
    """A service VM's body -> {'name', 'transport_node', 'in_port',
    'out_port'}; `hypervisors`: the lab's hypervisor names; `taken`:
    {hypervisor: name of the service VM it already has}."""
    _check_fields(body, SVM_FIELDS)
    name = check_name(_require(body, 'name', 'a service VM name'))
    node = _require(body, 'transport_node', 'the hypervisor it runs on')
    if not isinstance(node, str) or node not in hypervisors:
        raise ApiError(404, 'transport_node', f'no hypervisor {node!r}; '
                       'one of ' + ', '.join(sorted(hypervisors)[:12]))
    if taken.get(node) not in (None, name):
        raise ApiError(409, 'transport_node', f'{node} already has service '
                       f'VM {taken[node]!r}: one per hypervisor (delete it '
                       'first)')
    row = {'name': name, 'transport_node': node,
           'in_port': _ofport(body, 'in_port'),
           'out_port': _ofport(body, 'out_port')}
    if row['in_port'] == row['out_port']:
        raise ApiError(400, 'out_port', 'a port other than in_port: frames '
                       'enter the service VM by one and leave by the other')
    return row


def check_rule(body, groups, switches):
    """A steering rule's body -> its canonical fields (a firewall rule's,
    controllers.dfw, without `action`, with `on_failure`)."""
    if not isinstance(body, dict):
        raise ApiError(400, 'body', 'a JSON object')
    if 'action' in body:
        raise ApiError(400, 'action', 'a steering rule redirects to the '
                       "service VM: no action; say what happens when it is "
                       'down with on_failure (fail-open or fail-closed)')
    _check_fields(body, RULE_FIELDS)
    failure = _require(body, 'on_failure', 'fail-open or fail-closed')
    if failure not in FAILURES:
        raise ApiError(400, 'on_failure', 'fail-open (pass unsteered while '
                       'the service VM is down) or fail-closed (drop)')
    rest = {k: v for k, v in body.items() if k != 'on_failure'}
    row = dfw.check_rule(dict(rest, action='allow'), groups, switches)
    row.pop('action')
    return dict(row, on_failure=failure)


def resolve(desired):
    """The steering rules in priority order with endpoints as CIDR lists
    (controllers.dfw.resolve's shape, `on_failure` for `action`)."""
    rules = desired.get('steering_rules') or []
    if not rules:
        return []
    fail = {r['id']: r['on_failure'] for r in rules}
    out = dfw.resolve(dict(desired, firewall_rules=[
        dict(r, action='allow') for r in rules]))
    for r in out:
        del r['action']
        r['on_failure'] = fail[r['id']]
    return out


def service_vms(desired):
    """{hypervisor: its service VM} from `desired`."""
    return {s['transport_node']: s for s in desired.get('service_vms', ())}


def _ends(rule, port):
    """[(way, table, match)] the rule steers at VM port `port`: its
    request and the reply, each way the port takes part in."""
    ip = port['ip']
    l4 = {}
    proto = dfw.PROTOCOLS[rule['proto']]
    if proto is not None:
        l4['ip_proto'] = proto
    key = f"{rule['proto']}_%s"
    out = []
    # (port is the rule's side `me`; the other side is `far`)
    for me, far, request in (('src', 'dst', True), ('dst', 'src', False)):
        if not dfw.holds(rule[me], ip):
            continue
        far_side = dfw.others_of(rule[far], ip)
        if far_side == []:
            continue
        # request: from a source to its destination port; reply: back
        for way, dport in (('out', request), ('in', not request)):
            m = dict(l4)
            if rule['port'] is not None:
                m[key % ('dst' if dport else 'src')] = rule['port']
            peer = 'ipv4_dst' if way == 'out' else 'ipv4_src'
            for c in (far_side if far_side is not None else [None]):
                mm = dict(m)
                if c is not None:
                    mm[peer] = dfw.cidr_match(c)
                out.append((way, mm))
    return out


def port_flows(rules, port, svm, flow):
    """The flows that steer one VM port's traffic (`port` {'ofport',
    'vni', 'mac', 'ip', 'ls'}) through `svm`, its hypervisor's service VM
    (None: there is none, every rule's on_failure decides), `rules` from
    resolve(), `flow` controllers.intent's flow builder. [] when no rule
    applies to the port."""
    mine = [r for r in rules if dfw.in_scope(r, port)]
    if not mine or not port.get('ip'):
        return []
    at = {'out': (0, {'in_port': port['ofport']}),
          'in': (1, {'tunnel_id': port['vni'], 'eth_dst': port['mac']})}
    out, seen = [], set()
    for r in mine:
        prio = PRIO_BASE - r['priority']
        for way, m in _ends(r, port):
            table, here = at[way]
            match = dict(here, eth_type=dfw.IPV4, reg0=0, **m)
            sig = (table, prio, tuple(sorted(match.items())))
            if sig in seen:
                continue
            seen.add(sig)
            if svm is not None:
                acts = [('group', GROUPS[(way, r['on_failure'])])]
            elif r['on_failure'] == 'fail-closed':
                acts = []                       # no service VM: dropped
            else:
                continue                        # no service VM: unsteered
            out.append(flow(table, prio, match, acts))
    if svm is not None and out:
        out += [flow(0, PRIO_BACK, {'in_port': svm['out_port'],
                                    'eth_src': port['mac']},
                     [('set_reg0', STEERED),
                      ('set_in_port', port['ofport']), ('resubmit', 0)]),
                flow(0, PRIO_BACK, {'in_port': svm['in_port'],
                                    'eth_dst': port['mac']},
                     [('set_reg0', STEERED), ('set_tunnel', port['vni']),
                      ('resubmit', 1)])]
    return out


def groups(svm):
    """The fast-failover groups of a hypervisor with service VM `svm`
    (None: none)."""
    if svm is None:
        return []
    out = []
    for (way, failure), gid in sorted(GROUPS.items(), key=lambda x: x[1]):
        port = svm['in_port'] if way == 'out' else svm['out_port']
        buckets = [{'watch_port': port, 'actions': [('output', port)]}]
        if failure == 'fail-open':
            buckets.append({'watch_group': ALWAYS, 'actions': [
                ('set_reg0', STEERED),
                ('resubmit', 0 if way == 'out' else 1)]})
        out.append({'group_id': gid, 'type': 'fast_failover',
                    'buckets': buckets})
    return [{'group_id': ALWAYS, 'type': 'all',
             'buckets': [{'actions': []}]}] + out
