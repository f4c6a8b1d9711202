"""Builders that generate lab specs (plain dicts) for the two architectures.

    clos(spines=2, leaves=2, ...)  L3 IP Clos: FRR eBGP spine/leaf, a VTEP
                                   function (hw_vtep node) per leaf that has
                                   bare-metal servers.
    vcf(spines=2, leaves=2, ...)   Virtual Chassis Fabric: 2-8 spines, up to
                                   30 leaves, one pod VTEP.

Transport nodes are spread round-robin over the leaves; VMs round-robin over
hypervisors and logical switches. The first bare-metal server is dual-homed
(to two hw VTEPs on Clos, to two leaves on VCF) when the lab has two of them.
The result is validated like any hand-written spec.
"""
from . import spec as specmod


def _spread(prefix, count, targets):
    """[(name, target)] placing `count` nodes round-robin on `targets`."""
    return [(f'{prefix}{i + 1}', targets[i % len(targets)])
            for i in range(count)]


def _common(name, fabric, spines, leaves, hypervisors, vms, service_nodes,
            gateways, logical_switches, servers):
    nodes, links = {}, []
    spine_names = [f'spine{i + 1}' for i in range(spines)]
    leaf_names = [f'leaf{i + 1}' for i in range(leaves)]
    for s in spine_names:
        nodes[s] = {'role': 'spine'}
    for lf in leaf_names:
        nodes[lf] = {'role': 'leaf'}
        links += [f'{s}-{lf}' for s in spine_names]
    lss = {f'ls{i + 1}': {'vni': 5001 + i, 'subnet': f'10.{i + 1}.0.0/16'}
           for i in range(logical_switches)}
    ls_names = list(lss)
    transport = (_spread('hv', hypervisors, leaf_names)
                 + _spread('sn', service_nodes, leaf_names[::-1])
                 + _spread('gw', gateways, leaf_names[::-1]))
    for tn, leaf in transport:
        role = {'hv': 'hypervisor', 'sn': 'service_node',
                'gw': 'sw_gateway'}[tn.rstrip('0123456789')]
        nodes[tn] = {'role': role}
        links.append(f'{leaf}-{tn}')
    hv_names = [n for n, _ in transport if n.startswith('hv')]
    if vms and not hv_names:
        raise ValueError('vms: VMs need at least one hypervisor')
    for i, (vm, hv) in enumerate(_spread('vm', vms, hv_names or [None])):
        nodes[vm] = {'role': 'vm', 'ls': ls_names[i % len(ls_names)]}
        links.append(f'{hv}-{vm}')
    if gateways:
        nodes['seg1'] = {'role': 'l2_segment'}
        links += [f'seg1-gw{i + 1}' for i in range(gateways)]
        for i in range(servers):
            srv = f'srv{i + 1}'
            nodes[srv] = {'role': 'bare_metal', 'ls': ls_names[0]}
            links.append({'link': f'seg1-{srv}', 'vlan': 100})
    return {'name': name, 'fabric': fabric, 'nodes': nodes, 'links': links,
            'logical_switches': lss}, spine_names, leaf_names


def _add_bare_metal(spec, count, attach_points, ls):
    """bm1..bmN on `attach_points` (names); bm1 dual-homed if two exist."""
    for i in range(count):
        bm = f'bm{i + 1}'
        spec['nodes'][bm] = {'role': 'bare_metal', 'ls': ls}
        homes = attach_points[:2] if i == 0 and len(attach_points) > 1 \
            else [attach_points[i % len(attach_points)]]
        spec['links'] += [f'{h}-{bm}' for h in homes]


def clos(spines=2, leaves=2, hypervisors=3, vms=6, service_nodes=2,
         gateways=2, hw_vteps=2, bare_metal=2, logical_switches=2,
         servers=1, name=None, vtep_device='native'):
    """An L3 IP Clos lab (eBGP, ECMP over every spine)."""
    spec, _, leaf_names = _common(
        name or f'clos-{spines}x{leaves}', 'clos', spines, leaves,
        hypervisors, vms, service_nodes, gateways, logical_switches, servers)
    if vtep_device != 'native':
        spec['vtep_device'] = vtep_device
    vteps = [f'vtep{i + 1}' for i in range(hw_vteps)]
    for i, v in enumerate(vteps):
        spec['nodes'][v] = {'role': 'hw_vtep'}
        spec['links'].append(f'{leaf_names[i % len(leaf_names)]}-{v}')
    if bare_metal:
        if not vteps:
            raise ValueError('bare_metal: Clos bare-metal servers plug into '
                             'a hw_vtep; set hw_vteps >= 1')
        _add_bare_metal(spec, bare_metal, vteps, 'ls1')
    return specmod.load(spec)


def vcf(spines=2, leaves=2, hypervisors=3, vms=6, service_nodes=2,
        gateways=2, bare_metal=2, logical_switches=2, servers=1, name=None,
        vtep_device='native'):
    """A Virtual Chassis Fabric pod: one logical switch, one VTEP (on the
    leaves that have servers; OVS's emulator hangs off the first spine)."""
    spec, spine_names, leaf_names = _common(
        name or f'vcf-{spines}x{leaves}', 'vcf', spines, leaves, hypervisors,
        vms, service_nodes, gateways, logical_switches, servers)
    spec['nodes']['vtep1'] = {'role': 'hw_vtep'}
    if vtep_device != 'native':
        spec['vtep_device'] = vtep_device
        spec['links'].append(f'{spine_names[0]}-vtep1')
    if bare_metal:
        _add_bare_metal(spec, bare_metal, leaf_names, 'ls1')
    return specmod.load(spec)
