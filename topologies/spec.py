"""Lab specs as data: load and validate, reporting every problem at once.

A spec is a plain dict (usually read from YAML), netlab-like:

    name: clos-small
    fabric: clos                      # clos | vcf
    nodes:
      spine1: {role: spine}
      leaf1:  {role: leaf}
      hv1:    {role: hypervisor}
      vm1:    {role: vm, ls: web}
    links: [spine1-leaf1, leaf1-hv1, hv1-vm1, {link: vtep1-bm1, vlan: 100}]
    logical_switches:
      web: {vni: 5001, subnet: 10.1.0.0/24}
    vtep_device: native               # native | ovs-vtep (hardware VTEPs)
    vtep_mac_age_s: 300               # how long a VTEP keeps a silent MAC
    bfd_interval_ms: 100              # BFD to service nodes (default: sized
                                      # to the lab, see topologies/liveness)
    tls: true                         # OpenFlow, OVSDB and the API over TLS
                                      # with the lab's CA (default true)
    controllers: 1                    # controller nodes: 1 (root namespace)
                                      # or a cluster of 3 or 5 on etcd

`validate(spec)` returns the list of problems (empty if the spec is good);
`load(source)` raises SpecError listing all of them. Nothing here does I/O
except `load_file`, which only reads the YAML file.
"""
import ipaddress
import re

ROLES = {
    # role: (allowed node keys besides 'role', kind)
    'spine': ((), 'fabric'),
    'leaf': ((), 'fabric'),
    'hypervisor': ((), 'transport'),
    'service_node': ((), 'transport'),
    'sw_gateway': ((), 'transport'),
    'hw_vtep': ((), 'transport'),
    'l2_segment': ((), 'segment'),
    'vm': (('ls', 'ip', 'mac'), 'host'),
    'bare_metal': (('ls', 'ip', 'mac'), 'host'),
    'appliance': (('ls', 'ip', 'mac'), 'host'),
}
TRANSPORT = {r for r, (_, kind) in ROLES.items() if kind == 'transport'}
# transport nodes whose br-int the controller programs over OpenFlow (a
# hardware VTEP is programmed through its hardware_vtep database instead)
BR_INT_ROLES = ('hypervisor', 'service_node', 'sw_gateway')
PHYSICAL_HOSTS = {'bare_metal', 'appliance'}
FABRICS = ('clos', 'vcf')
TOP_KEYS = {'name', 'fabric', 'description', 'nodes', 'links',
            'logical_switches', 'mgmt_subnet', 'underlay_subnet', 'mtu',
            'vtep_device', 'vtep_mac_age_s', 'bfd_interval_ms', 'tls',
            'controllers'}
# controller nodes: one (the root namespace), or a cluster of an odd number
# (docs/cluster.md): a majority must remain when one (or two) fail
CONTROLLER_COUNTS = (1, 3, 5)
# The hardware VTEP device: the lab's own event-driven device (native) or
# OVS's polling emulator (ovs-vtep), kept as the reference to compare with.
VTEP_DEVICES = ('native', 'ovs-vtep')
DEFAULT_VTEP_DEVICE = 'native'
DEFAULT_MAC_AGE_S = 300
BFD_MIN_MS, BFD_MAX_MS = 50, 10000
LINK_KEYS = {'link', 'vlan'}
LS_KEYS = {'vni', 'subnet'}
NAME_RE = re.compile(r'^[a-z][a-z0-9]{0,9}$')
VCF_MAX_SPINES, VCF_MIN_SPINES, VCF_MAX_LEAVES, VCF_MAX_MEMBERS = 8, 2, 30, 32
DEFAULT_MGMT = '198.18.0.0/16'      # RFC 2544 benchmarking range: lab-only
DEFAULT_UNDERLAY = '198.19.0.0/16'
DEFAULT_MTU = 1600


class SpecError(ValueError):
    """A spec with problems; `.problems` lists each as 'path: message'."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__('invalid lab spec:\n' + '\n'.join(
            '  - ' + p for p in self.problems))


def parse_link(entry):
    """'a-b' or {link: 'a-b', vlan: N} -> (a, b, vlan) or raise ValueError."""
    if isinstance(entry, dict):
        text, vlan = entry.get('link'), entry.get('vlan', 0)
    else:
        text, vlan = entry, 0
    if not isinstance(text, str) or text.count('-') != 1:
        raise ValueError("write a link as 'nodeA-nodeB' (node names have "
                         "no '-'), e.g. leaf1-hv1")
    a, b = text.split('-')
    return a, b, vlan


def vtep_device(spec):
    return spec.get('vtep_device', DEFAULT_VTEP_DEVICE)


def _allowed_peers(fabric):
    """Which role pairs may be linked, per fabric (unordered pairs)."""
    pairs = {('spine', 'leaf'), ('hypervisor', 'vm'),
             ('l2_segment', 'sw_gateway'), ('l2_segment', 'bare_metal'),
             ('l2_segment', 'appliance')}
    for role in ('hypervisor', 'service_node', 'sw_gateway'):
        pairs.add(('leaf', role))
    if fabric == 'clos':
        # A Clos leaf's VTEP function is its own node, cabled to the leaf;
        # physical servers plug into that VTEP's ports.
        pairs |= {('leaf', 'hw_vtep'), ('hw_vtep', 'bare_metal'),
                  ('hw_vtep', 'appliance')}
    else:
        # A VCF pod has one VTEP for the whole pod; servers plug into
        # leaves. The native device runs on every leaf that has servers;
        # OVS's emulator hangs off one spine (a link spine-hw_vtep).
        pairs |= {('spine', 'hw_vtep'), ('leaf', 'bare_metal'),
                  ('leaf', 'appliance')}
    return {frozenset(p) for p in pairs}


def _check_nodes(spec, problems):
    nodes = spec.get('nodes')
    if not isinstance(nodes, dict) or not nodes:
        problems.append('nodes: required, a mapping of node name to '
                        '{role: ...}')
        return {}
    roles = {}
    for name, node in nodes.items():
        path = f'nodes.{name}'
        if not isinstance(name, str) or not NAME_RE.match(name):
            problems.append(f'{path}: node names are 1-10 lowercase letters '
                            'or digits, starting with a letter (e.g. hv12)')
        if not isinstance(node, dict) or 'role' not in node:
            problems.append(f'{path}: needs a role, one of '
                            + ', '.join(sorted(ROLES)))
            continue
        role = node['role']
        if role not in ROLES:
            problems.append(f'{path}.role: unknown role {role!r}; use one '
                            'of ' + ', '.join(sorted(ROLES)))
            continue
        roles[name] = role
        allowed = set(ROLES[role][0]) | {'role'}
        for key in sorted(set(node) - allowed):
            hint = (', '.join(sorted(allowed - {'role'})) or 'none')
            problems.append(f'{path}.{key}: unknown key for a {role}; '
                            f'allowed: {hint}')
        _check_host_fields(spec, path, node, problems)
    return roles


def _check_host_fields(spec, path, node, problems):
    lss = spec.get('logical_switches') or {}
    if 'ls' in node and node['ls'] not in lss:
        problems.append(f"{path}.ls: logical switch {node['ls']!r} is not "
                        'declared under logical_switches')
    if 'ip' in node:
        try:
            ipaddress.ip_interface(node['ip'])
        except (ValueError, TypeError):
            problems.append(f"{path}.ip: {node['ip']!r} is not an address "
                            'with prefix, e.g. 10.1.0.11/24')
    if 'mac' in node and not re.match(r'^([0-9a-f]{2}:){5}[0-9a-f]{2}$',
                                      str(node['mac'])):
        problems.append(f"{path}.mac: {node['mac']!r} is not a MAC like "
                        '02:00:00:00:00:01 (lowercase)')


def _is_vlan(value):
    return isinstance(value, int) and not isinstance(value, bool) \
        and 0 <= value <= 4094


def _check_links(spec, roles, fabric, problems):
    links = spec.get('links')
    if not isinstance(links, list):
        problems.append('links: required, a list of "nodeA-nodeB" strings')
        return []
    allowed = _allowed_peers(fabric)
    seen, good = set(), []
    for i, entry in enumerate(links):
        path = f'links[{i}]'
        if isinstance(entry, dict):
            for key in sorted(set(entry) - LINK_KEYS):
                problems.append(f'{path}.{key}: unknown key; allowed: link, '
                                'vlan')
        try:
            a, b, vlan = parse_link(entry)
        except ValueError as exc:
            problems.append(f'{path}: {exc}')
            continue
        bad = [n for n in (a, b) if n not in roles]
        for n in bad:
            problems.append(f'{path}: unknown node {n!r}; declare it under '
                            'nodes')
        if bad:
            continue
        if a == b:
            problems.append(f'{path}: a link needs two different nodes')
            continue
        pair = frozenset((roles[a], roles[b]))
        if pair not in allowed:
            problems.append(f'{path}: a {fabric} lab cannot link a '
                            f'{roles[a]} to a {roles[b]}')
            continue
        if frozenset((a, b)) in seen:
            problems.append(f'{path}: duplicate link {a}-{b}')
            continue
        if not _is_vlan(vlan):
            problems.append(f'{path}.vlan: a VLAN id is an integer 0..4094 '
                            '(0 = untagged)')
            continue
        if vlan and not pair & PHYSICAL_HOSTS:
            problems.append(f'{path}.vlan: only a link to a bare_metal or '
                            'appliance carries a VLAN tag')
            continue
        seen.add(frozenset((a, b)))
        good.append((a, b, vlan))
    return good


def _adjacency(links):
    adj = {}
    for a, b, _ in links:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    return adj


def _degree(adj, name, role_of, peer_role=None):
    return sum(1 for y in adj.get(name, ())
               if peer_role is None or role_of[y] == peer_role)


def _check_topology(fabric, roles, links, problems, device='native'):
    spines = sorted(n for n, r in roles.items() if r == 'spine')
    leaves = sorted(n for n, r in roles.items() if r == 'leaf')
    if not spines or not leaves:
        problems.append('nodes: a lab needs at least one spine and one leaf')
    if fabric == 'vcf':
        if spines and not VCF_MIN_SPINES <= len(spines) <= VCF_MAX_SPINES:
            problems.append(f'vcf.spines: a Virtual Chassis Fabric pod has '
                            f'{VCF_MIN_SPINES} to {VCF_MAX_SPINES} spines '
                            f'(found {len(spines)})')
        if len(leaves) > VCF_MAX_LEAVES:
            problems.append(f'vcf.leaves: a Virtual Chassis Fabric pod has at '
                            f'most {VCF_MAX_LEAVES} leaves (found '
                            f'{len(leaves)})')
        elif len(spines) + len(leaves) > VCF_MAX_MEMBERS:
            problems.append(f'vcf: a Virtual Chassis Fabric pod has at most '
                            f'{VCF_MAX_MEMBERS} members (found '
                            f'{len(spines) + len(leaves)})')
        vteps = [n for n, r in roles.items() if r == 'hw_vtep']
        if len(vteps) > 1:
            problems.append('vcf.hw_vtep: a Virtual Chassis Fabric pod has a '
                            f'single VTEP; found {len(vteps)} ('
                            + ', '.join(sorted(vteps)) + ')')
    linked = {frozenset((a, b)) for a, b, _ in links}
    adj = _adjacency(links)
    for leaf in leaves:
        missing = [s for s in spines if frozenset((s, leaf)) not in linked]
        if missing:
            problems.append(f'nodes.{leaf}: a leaf links to every spine; add '
                            + ', '.join(f'{s}-{leaf}' for s in missing))
    uplink = {'hypervisor': ('leaf', 1), 'service_node': ('leaf', 1),
              'sw_gateway': ('leaf', 1),
              'hw_vtep': ('leaf' if fabric == 'clos' else 'spine', 1),
              'vm': ('hypervisor', 1)}
    if fabric == 'vcf' and device == 'native':
        del uplink['hw_vtep']
        for name, role in sorted(roles.items()):
            if role == 'hw_vtep' and adj.get(name):
                problems.append(
                    f'nodes.{name}: the native pod VTEP runs on every leaf '
                    'that has servers and has no cable of its own; remove '
                    + ', '.join(f'{p}-{name}' for p in adj[name])
                    + ' (or set vtep_device: ovs-vtep)')
    for name, role in sorted(roles.items()):
        if role in uplink:
            peer, want = uplink[role]
            got = _degree(adj, name, roles, peer)
            if got != want:
                problems.append(f'nodes.{name}: a {role} links to exactly one '
                                f'{peer} (found {got})')
        elif role in PHYSICAL_HOSTS:
            got = _degree(adj, name, roles)
            if got not in (1, 2):
                problems.append(f'nodes.{name}: a {role} has one link, or two '
                                f'for dual-homing (found {got})')
    for name, role in roles.items():
        if role == 'sw_gateway' and _degree(adj, name, roles,
                                            'l2_segment') > 1:
            problems.append(f'nodes.{name}: a sw_gateway links to at most one '
                            'l2_segment')


def _check_logical_switches(spec, problems):
    lss = spec.get('logical_switches', {})
    if not isinstance(lss, dict):
        problems.append('logical_switches: a mapping of name to {vni, '
                        'subnet}')
        return
    vnis = {}
    for name, ls in lss.items():
        path = f'logical_switches.{name}'
        if not isinstance(ls, dict):
            problems.append(f'{path}: a mapping with vni and subnet')
            continue
        for key in sorted(set(ls) - LS_KEYS):
            problems.append(f'{path}.{key}: unknown key; allowed: subnet, '
                            'vni')
        vni = ls.get('vni')
        if not (isinstance(vni, int) and 1 <= vni <= 16777215):
            problems.append(f'{path}.vni: a VNI is an integer 1..16777215')
        elif vni in vnis:
            problems.append(f'{path}.vni: VNI {vni} is already used by '
                            f'{vnis[vni]}; pick another')
        else:
            vnis[vni] = name
        try:
            ipaddress.ip_network(ls.get('subnet'))
        except (ValueError, TypeError):
            problems.append(f'{path}.subnet: required, a network like '
                            '10.1.0.0/24')


def _check_top(spec, problems):
    for key in sorted(set(spec) - TOP_KEYS):
        problems.append(f'{key}: unknown top-level key; allowed: '
                        + ', '.join(sorted(TOP_KEYS)))
    if not isinstance(spec.get('name'), str) or not spec.get('name'):
        problems.append('name: required, a short lab name')
    if spec.get('fabric') not in FABRICS:
        problems.append('fabric: required, one of clos, vcf')
    for key, default in (('mgmt_subnet', DEFAULT_MGMT),
                         ('underlay_subnet', DEFAULT_UNDERLAY)):
        try:
            net = ipaddress.ip_network(spec.get(key, default))
            if net.version != 4 or net.prefixlen > 20:
                raise ValueError
        except (ValueError, TypeError):
            problems.append(f'{key}: an IPv4 network of /20 or larger, e.g. '
                            f'{default}')
    if spec.get('vtep_device', DEFAULT_VTEP_DEVICE) not in VTEP_DEVICES:
        problems.append(f"vtep_device: {spec.get('vtep_device')!r} is not a "
                        'hardware VTEP device; use native (the default) or '
                        'ovs-vtep')
    age = spec.get('vtep_mac_age_s', DEFAULT_MAC_AGE_S)
    if not isinstance(age, int) or isinstance(age, bool) or \
            not 10 <= age <= 65535:
        problems.append('vtep_mac_age_s: seconds a hardware VTEP keeps a '
                        'silent MAC, an integer 10..65535 (default 300)')
    bfd = spec.get('bfd_interval_ms', BFD_MIN_MS)
    if not isinstance(bfd, int) or isinstance(bfd, bool) or \
            not BFD_MIN_MS <= bfd <= BFD_MAX_MS:
        problems.append(f'bfd_interval_ms: the BFD interval to the service '
                        f'nodes, an integer {BFD_MIN_MS}..{BFD_MAX_MS} ms '
                        '(--bfd-interval); leave it out for the default '
                        'sized to the lab')
    if not isinstance(spec.get('tls', True), bool):
        problems.append('tls: true (the default: the control channels run '
                        "over TLS with the lab's CA) or false (plain TCP and "
                        'HTTP, e.g. to measure what TLS costs; --no-tls)')
    _check_controllers(spec.get('controllers', 1), problems)
    mtu = spec.get('mtu', DEFAULT_MTU)
    if not isinstance(mtu, int) or not 1550 <= mtu <= 9000:
        problems.append('mtu: underlay MTU 1550..9000 (VXLAN adds 50 bytes '
                        'to a 1500-byte frame)')


def _check_controllers(n, problems):
    if isinstance(n, int) and not isinstance(n, bool) and n > 0 and \
            n % 2 == 0:
        problems.append(
            f'controllers: {n} is even; a cluster changes its configuration '
            f'only with a majority, and {n} nodes lose it when {n // 2} of '
            f"them {'fails' if n == 2 else 'fail'}, just as {n - 1} "
            f"node{'s' if n > 2 else ''} would (one more node to run, no "
            'more failures survived): use 1, 3 or 5')
    elif n not in CONTROLLER_COUNTS or isinstance(n, bool):
        problems.append(f'controllers: {n!r} is not a number of controller '
                        'nodes; use 1 (the default: one controller in the '
                        'root namespace), 3 or 5 (a cluster on etcd, '
                        '--controllers)')


def validate(spec):
    """Return every problem in `spec` as 'path: message' (empty if valid)."""
    if not isinstance(spec, dict):
        return ['(top): a lab spec is a mapping with name, fabric, nodes, '
                'links']
    problems = []
    _check_top(spec, problems)
    _check_logical_switches(spec, problems)
    roles = _check_nodes(spec, problems)
    fabric = spec.get('fabric') if spec.get('fabric') in FABRICS else 'clos'
    links = _check_links(spec, roles, fabric, problems)
    if roles:
        device = spec.get('vtep_device') if spec.get('vtep_device') in \
            VTEP_DEVICES else DEFAULT_VTEP_DEVICE
        _check_topology(fabric, roles, links, problems, device)
    return problems


def load(spec):
    """Validate a spec dict and return it, or raise SpecError."""
    problems = validate(spec)
    if problems:
        raise SpecError(problems)
    return spec


def load_file(path):
    import yaml
    with open(path) as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as exc:
            raise SpecError([f'{path}: not valid YAML: {exc}']) from None
    return load(data)
