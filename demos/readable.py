"""OpenFlow dumps a trainer can read: port numbers become the names of what
is cabled there (a VM, the uplink, the tunnel to hv2), VNIs and MACs get
the logical switch and host they belong to. Pure: plan + text in, text
out."""
import re

from controllers.naming import annotate, names, port_names  # noqa: F401


_COOKIE = re.compile(r'cookie=0x[0-9a-f]+,\s*')
_NOISE = re.compile(r'\s*(duration|n_packets|n_bytes|idle_age|hard_age)='
                    r'[^,\s]*,?')


def flows(plan, node, dump, br_int=True):
    """`ovs-ofctl dump-flows` text -> the same flows with counters dropped
    and ports, MACs and VNIs annotated, e.g.
    'table=1, priority=100,tun_id=0x1389(ls1),dl_dst=..(vm3) actions=
    output:1003(tunnel->hv3)'."""
    out = []
    for line in dump.splitlines():
        if 'cookie=' not in line and 'table=' not in line:
            continue
        line = _NOISE.sub(' ', _COOKIE.sub('', line)).strip()
        out.append(re.sub(r'\s+', ' ', annotate(plan, node, line, br_int)))
    return out


def mac_table(plan, node, dump):
    """A transport node's MAC -> location table, read from its br-int
    table 1 (the controller's unicast flows): 'ls1  02:..:0c (vm1)  ->
    tunnel->hv2'."""
    ports, known = port_names(plan, node), names(plan)
    out = []
    for line in dump.splitlines():
        vni = re.search(r'tun_id=(0x[0-9a-f]+|\d+)', line)
        mac = re.search(r'dl_dst=(([0-9a-f]{2}:){5}[0-9a-f]{2})', line)
        port = re.search(r'actions=output:(\d+)', line)
        if not (vni and mac and port) or 'metadata=0x1' in line:
            continue
        m, p = mac.group(1), int(port.group(1))
        out.append(f"{known.get(str(int(vni.group(1), 0)), vni.group(1))}  "
                   f"{m} ({known.get(m, '?')})  ->  {ports.get(p, p)}")
    return sorted(set(out))


def resolve_flow(plan, node, flow):
    """A trace flow written with names -> the same with numbers and MACs:
    'in_port=vm1,dl_dst=vm3' on hv1 -> 'in_port=2,dl_dst=02:..:0e'.
    Raises ValueError naming the field and what is valid."""
    ports = {name: n for n, name in port_names(plan, node).items()}
    hosts = {n: p['mac'] for n, p in plan['nodes'].items() if 'mac' in p}
    out = []
    for field in flow.split(','):
        key, sep, val = field.partition('=')
        if key == 'in_port' and sep and not val.isdigit():
            if val not in ports:
                raise ValueError(f'in_port={val}: {node} has no port facing '
                                 f'{val}; its ports: '
                                 + ', '.join(sorted(ports)))
            val = str(ports[val])
        elif key in ('dl_src', 'dl_dst', 'eth_src', 'eth_dst') and sep \
                and ':' not in val:
            if val not in hosts:
                raise ValueError(f'{key}={val}: not a host of this lab; '
                                 'use a MAC or one of '
                                 + ', '.join(sorted(hosts)))
            val = hosts[val]
        out.append(key + sep + val)
    return ','.join(out)


def failure_target(plan, text):
    """'gw1' -> ('node', 'gw1'); 'leaf1-hv1' -> ('link', a, a_intf, b,
    b_intf). Raises ValueError with what is valid."""
    nodes = plan['nodes']
    if text in nodes:
        return ('node', text)
    a, sep, b = text.partition('-')
    for link in plan['links']:
        if sep and {link['a'], link['b']} == {a, b}:
            return ('link', link['a'], link['a_intf'], link['b'],
                    link['b_intf'])
    raise ValueError(f'{text!r} is neither a node nor a link of this lab: '
                     'give a node (e.g. gw1) or a link as A-B (e.g. '
                     f"{plan['links'][0]['a']}-{plan['links'][0]['b']})")
