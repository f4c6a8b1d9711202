"""Expand a validated spec into a plan: every node's interfaces, addresses,
MACs, ASNs and every link, ready for the Mininet builder. Pure and
deterministic: the same spec always gives the same plan (golden-tested).

Addressing (underlay_subnet U, default 198.19.0.0/16, split in quarters):
  U.q0  fabric point-to-point /31s (Clos spine-leaf; spine gets the even one)
  U.q1  Clos access /31s leaf-transport node (leaf even, node odd = tunnel IP)
  U.q2  the VCF transport subnet: one L2 domain for every VTEP of the pod
  U.q3  router loopbacks / router IDs (/32)
Management (mgmt_subnet, default 198.18.0.0/16): .1 is the root namespace
(where the controller runs), nodes follow in plan order.
Overlay hosts take .11, .12, ... of their logical switch's subnet.
"""
import ipaddress
import re

from . import liveness, spec as specmod

ROLE_ORDER = ['spine', 'leaf', 'hw_vtep', 'service_node', 'sw_gateway',
              'hypervisor', 'l2_segment', 'bare_metal', 'appliance', 'vm']
SPINE_ASN, LEAF_ASN_BASE = 65000, 65001
HOST_ROLES = {'vm', 'bare_metal', 'appliance'}
MGMT_BRIDGE = 'nsxl-mgmt'
PREFIX = 'nsxl'


def natural_key(name):
    return [int(t) if t.isdigit() else t for t in re.split(r'(\d+)', name)]


def mac(kind, index):
    return '02:00:00:%02x:%02x:%02x' % (kind, (index >> 8) & 0xff,
                                         index & 0xff)


def _quarters(underlay):
    net = ipaddress.ip_network(underlay)
    return list(net.subnets(prefixlen_diff=2))


def _p2p(pool, k):
    """k-th /31 of `pool` -> (even address, odd address, prefixlen 31)."""
    base = int(pool.network_address) + 2 * k
    if base + 1 > int(pool.broadcast_address):
        raise ValueError(f'underlay_subnet: too small for {k + 1} links; '
                         'use a larger one')
    return (str(ipaddress.ip_address(base)),
            str(ipaddress.ip_address(base + 1)))


class _Node(dict):
    def add_intf(self, **intf):
        intf['ofport'] = len(self['intfs']) + 1
        self['intfs'].append(intf)
        return intf


def expand(spec):
    """Return the plan (a JSON-serialisable dict) for a valid spec."""
    specmod.load(spec)
    fabric = spec['fabric']
    mtu = spec.get('mtu', specmod.DEFAULT_MTU)
    q_fabric, q_access, q_vcf, q_loop = _quarters(
        spec.get('underlay_subnet', specmod.DEFAULT_UNDERLAY))
    mgmt = ipaddress.ip_network(spec.get('mgmt_subnet', specmod.DEFAULT_MGMT))
    order = sorted(spec['nodes'], key=lambda n: (
        ROLE_ORDER.index(spec['nodes'][n]['role']), natural_key(n)))
    if len(order) + 2 > mgmt.num_addresses:
        raise ValueError('mgmt_subnet: too small for %d nodes' % len(order))
    nodes = {}
    for i, name in enumerate(order):
        role = spec['nodes'][name]['role']
        nodes[name] = _Node(name=name, role=role, index=i, intfs=[])
        if role not in HOST_ROLES:    # hosts are not on NSX management
            nodes[name].update(mgmt_ip=f'{mgmt.network_address + 2 + i}/'
                                       f'{mgmt.prefixlen}',
                               mgmt_intf=f'{PREFIX}-m{i}')
    links = [specmod.parse_link(e) for e in spec['links']]
    # Put each link with the "upper" node first (role order), stable.
    links = sorted(((a, b, v) if nodes[a]['index'] < nodes[b]['index']
                    else (b, a, v) for a, b, v in links),
                   key=lambda t: (nodes[t[0]]['index'], nodes[t[1]]['index']))
    plan_links = []
    counters = {'fabric': 0, 'access': 0, 'vcf': 0}
    for i, name in enumerate(order):
        role = nodes[name]['role']
        if role in specmod.TRANSPORT:
            nodes[name]['tunnel_mac'] = mac(1, i)
        if role in ('spine', 'leaf') and fabric == 'clos':
            nodes[name]['asn'] = SPINE_ASN if role == 'spine' else \
                LEAF_ASN_BASE + sum(1 for n in order[:i]
                                    if nodes[n]['role'] == 'leaf')
            nodes[name]['router_id'] = str(q_loop.network_address + 1 + i)
    ext_ports = {}
    device = specmod.vtep_device(spec)
    for a, b, vlan in links:
        plan_links.extend(_link(fabric, nodes, a, b, vlan, mtu, counters,
                                (q_fabric, q_access, q_vcf), ext_ports,
                                device))
    if fabric == 'vcf' and device == 'native':
        _vcf_pod_vtep(nodes, counters, q_vcf)
    ls_slot = _ls_slots(spec)
    for name in order:
        _host_addressing(spec, nodes[name], ls_slot)
    _check_unique_host_ips(nodes)
    for n in nodes.values():
        if n['role'] in HOST_ROLES:
            n['bond'] = len(n['intfs']) > 1
            # Hosts tag in OVS (this kernel has no VLAN devices): a host
            # tags itself unless a segment's access port does it.
            on_segment = all(nodes[i['peer']]['role'] == 'l2_segment'
                             for i in n['intfs'])
            n['vlan'] = 0 if on_segment else max(
                [i.get('vlan', 0) for i in n['intfs']] or [0])
            n['host_bridge'] = n['bond'] or bool(n['vlan'])
    return {'name': spec['name'], 'fabric': fabric, 'mtu': mtu,
            'vtep_device': device, 'tls': spec.get('tls', True),
            'vtep_mac_age_s': spec.get('vtep_mac_age_s',
                                       specmod.DEFAULT_MAC_AGE_S),
            'bfd_interval_ms': spec.get(
                'bfd_interval_ms', liveness.default_interval_ms(
                    {n: p['role'] for n, p in nodes.items()})),
            'underlay': spec.get('underlay_subnet',
                                 specmod.DEFAULT_UNDERLAY),
            'mgmt': {'bridge': MGMT_BRIDGE, 'subnet': str(mgmt),
                     'root_ip': f'{mgmt.network_address + 1}/'
                                f'{mgmt.prefixlen}'},
            'logical_switches': spec.get('logical_switches', {}),
            'nodes': {n: dict(nodes[n]) for n in order},
            'links': plan_links, **_controllers(spec, mgmt, len(order))}


def _controllers(spec, mgmt, used):
    """{'controllers': {name: {'name', 'mgmt_ip', 'mgmt_intf'}}} for a
    cluster (controllers: 3 or 5): its nodes take the top of the management
    subnet, so the other nodes' addresses do not move; nothing for one
    controller (it runs in the root namespace, at .1)."""
    n = spec.get('controllers', 1)
    if n == 1:
        return {}
    top = int(mgmt.broadcast_address) - n
    if top <= int(mgmt.network_address) + 1 + used:
        raise ValueError(f'mgmt_subnet: too small for {used} nodes and '
                         f'{n} controller nodes; use a larger one (the '
                         'default 198.18.0.0/16 holds 65,000)')
    return {'controllers': {
        f'ctl{k}': {'name': f'ctl{k}', 'mgmt_intf': f'{PREFIX}-c{k}',
                    'mgmt_ip': f'{ipaddress.ip_address(top + k - 1)}/'
                               f'{mgmt.prefixlen}'}
        for k in range(1, n + 1)}}


def _intf_name(node, peer):
    if node['role'] in HOST_ROLES:
        return f"eth{len(node['intfs'])}"
    return peer


def _link(fabric, nodes, a, b, vlan, mtu, counters, pools, ext_ports,
          device='native'):
    q_fabric, q_access, q_vcf = pools
    na, nb = nodes[a], nodes[b]
    ra, rb = na['role'], nb['role']
    ia = {'name': _intf_name(na, b), 'peer': b, 'kind': 'fabric'}
    ib = {'name': _intf_name(nb, a), 'peer': a, 'kind': 'fabric'}
    fabric_roles = {'spine', 'leaf'}
    if {ra, rb} == fabric_roles:
        if fabric == 'clos':
            ia['ip'], ib['ip'] = (f'{x}/31' for x in
                                  _p2p(q_fabric, counters['fabric']))
            counters['fabric'] += 1
    elif {ra, rb} & fabric_roles and {ra, rb} & specmod.TRANSPORT:
        up, tn, iu, it = (na, nb, ia, ib) if rb in specmod.TRANSPORT else \
            (nb, na, ib, ia)
        iu['kind'] = it['kind'] = 'access'
        if fabric == 'clos':
            gw, ip = _p2p(q_access, counters['access'])
            counters['access'] += 1
            iu['ip'] = f'{gw}/31'
            tn['tunnel_ip'], tn['gateway'] = f'{ip}/31', gw
        else:
            k = counters['vcf']
            counters['vcf'] += 1
            hosts = q_vcf.num_addresses - 2
            if k + 1 > hosts:
                raise ValueError('underlay_subnet: too small for the VCF '
                                 'transport subnet')
            tn['tunnel_ip'] = f'{q_vcf.network_address + 1 + k}/' \
                              f'{q_vcf.prefixlen}'
        tn['uplink'] = it['name']
    else:
        # Everything else carries hosts' frames: a VM's port on a hypervisor
        # ('host'), or a physical cable to a server, appliance, gateway or
        # segment ('physical').
        ia['kind'] = ib['kind'] = 'host' if 'vm' in (ra, rb) else 'physical'
        if vlan:
            ib['vlan'] = ia['vlan'] = vlan
    link = {'a': a, 'a_intf': ia['name'], 'b': b, 'b_intf': ib['name'],
            'mtu': mtu if ia['kind'] in ('fabric', 'access') else 1500}
    ia['peer_intf'], ib['peer_intf'] = ib['name'], ia['name']
    stored = na.add_intf(**ia)
    nb.add_intf(**ib)
    if fabric == 'vcf' and ra == 'leaf' and rb in specmod.PHYSICAL_HOSTS:
        if device == 'native':
            _vcf_pod_port(nodes, na, stored, ext_ports)
            return [link]
        return [link, _vcf_extension(nodes, na, stored, ext_ports)]
    return [link]


def _pod_vtep(nodes, leaf):
    vtep = next((n for n in nodes.values() if n['role'] == 'hw_vtep'), None)
    if vtep is None:
        raise ValueError(f"nodes.{leaf['name']}: bare-metal servers on a VCF "
                         'leaf need the pod VTEP; add a hw_vtep node')
    return vtep


def _vcf_pod_port(nodes, leaf, leaf_port, ext_ports):
    """VCF, native device: the pod VTEP runs on the leaf itself (the leaf
    is a line card of the one switch), so the server's port is a port of
    the pod VTEP named <leaf>p<k>; it stays the leaf's interface. The pod
    VTEP's entry for it says which member has it."""
    vtep = _pod_vtep(nodes, leaf)
    k = ext_ports[leaf['name']] = ext_ports.get(leaf['name'], 0) + 1
    name = f"{leaf['name']}p{k}"
    vtep['intfs'].append({'name': name, 'peer': leaf['name'],
                          'peer_intf': leaf_port['name'], 'kind': 'physical',
                          'server': leaf_port['peer'], 'member': leaf['name'],
                          'ofport': leaf_port['ofport']})
    leaf_port['pod_port'] = name


def _vcf_pod_vtep(nodes, counters, q_vcf):
    """VCF, native device: one tunnel IP and MAC for the pod, served by
    every leaf that has servers (its members): each gets a VTEP instance
    (a port `<vtep>` on its fabric bridge towards the instance's tunnel
    bridge, and a port `i-<vtep>` into its `vtep` bridge for frames that
    cross the pod between members)."""
    vtep = next((n for n in nodes.values() if n['role'] == 'hw_vtep'), None)
    if vtep is None:
        return
    k = counters['vcf']
    counters['vcf'] += 1
    vtep['tunnel_ip'] = f'{q_vcf.network_address + 1 + k}/{q_vcf.prefixlen}'
    vtep['pod'] = True
    members = sorted({i['member'] for i in vtep['intfs']}, key=lambda m:
                     nodes[m]['index'])
    vtep['members'] = members
    for m in members:
        leaf = nodes[m]
        n = len(leaf['intfs'])
        leaf['pod_vtep'] = {'vtep': vtep['name'], 'phy_port': vtep['name'],
                            'phy_ofport': n + 1,
                            'uplink': f"{vtep['name']}-up",
                            'internal_port': f"i-{vtep['name']}",
                            'internal_ofport': n + 2}


def _vcf_extension(nodes, leaf, leaf_port, ext_ports):
    """VCF, OVS's emulator: the leaf extends a server port to the pod VTEP
    (a port of the single pod VTEP, named <leaf>p<k>), cross-connected by
    static flows."""
    vtep = _pod_vtep(nodes, leaf)
    k = ext_ports[leaf['name']] = ext_ports.get(leaf['name'], 0) + 1
    vport = f"{leaf['name']}p{k}"
    lx = leaf.add_intf(name=f"x{leaf_port['peer']}", peer=vtep['name'],
                       peer_intf=vport, kind='extension')
    vtep.add_intf(name=vport, peer=leaf['name'], peer_intf=lx['name'],
                  kind='physical', server=leaf_port['peer'])
    leaf_port['xconnect'] = lx['name']
    lx['xconnect'] = leaf_port['name']
    return {'a': leaf['name'], 'a_intf': lx['name'], 'b': vtep['name'],
            'b_intf': vport, 'mtu': 1500}


def _host_addressing(spec, node, ls_slot):
    if node['role'] not in HOST_ROLES:
        return
    decl = spec['nodes'][node['name']]
    node['mac'] = decl.get('mac', mac(2, node['index']))
    ls = decl.get('ls')
    if ls:
        node['ls'] = ls
    if 'ip' in decl:
        node['ip'] = decl['ip']
    elif ls:
        net = ipaddress.ip_network(spec['logical_switches'][ls]['subnet'])
        k = ls_slot[node['name']]
        if 11 + k >= net.num_addresses - 1:
            raise specmod.SpecError([f'logical_switches.{ls}.subnet: too '
                                     f'small for its hosts; use a larger '
                                     'one'])
        node['ip'] = f'{net.network_address + 11 + k}/{net.prefixlen}'


def _ls_slots(spec):
    """Host name -> its position among its logical switch's auto-addressed
    hosts (natural name order)."""
    slots, count = {}, {}
    for name in sorted(spec['nodes'], key=natural_key):
        decl = spec['nodes'][name]
        if decl.get('ls') and 'ip' not in decl:
            slots[name] = count.get(decl['ls'], 0)
            count[decl['ls']] = slots[name] + 1
    return slots


def _check_unique_host_ips(nodes):
    seen = {}
    for n in nodes.values():
        if 'ip' not in n:
            continue
        key = (n.get('ls'), n['ip'].split('/')[0])
        if key in seen:
            raise specmod.SpecError([f"nodes.{n['name']}.ip: {n['ip']} is "
                                     f'already used by {seen[key]} in the '
                                     'same logical switch'])
        seen[key] = n['name']
