"""A topology picture from a lab's expanded plan: boxes coloured by role in
tiers (spines, leaves, transport nodes, physical segments, hosts), tunnel
IPs under every VTEP, and under every gateway the VLAN -> VNI each of its
ports maps. `layout` and `captions` are pure; `draw` renders the PNG."""
from controllers import provision
from topologies.colours import ROLE_COLOURS

TIERS = {'spine': 0, 'leaf': 1, 'hypervisor': 2, 'service_node': 2,
         'sw_gateway': 2, 'hw_vtep': 2, 'l2_segment': 3, 'vm': 4,
         'bare_metal': 4, 'appliance': 4}


def neighbours(plan, node):
    return [i['peer'] for i in plan['nodes'][node]['intfs']]


def layout(plan):
    """{node: (x, y)}: one row per tier, top to bottom; within a row a node
    sits as near as it can (1 apart at least) to the mean position of the
    nodes it is cabled to above it, so cables mostly run straight down."""
    nodes = plan['nodes']
    rows = {}
    for n, p in nodes.items():
        rows.setdefault(TIERS.get(p['role'], 4), []).append(n)
    pos = {}
    for tier in sorted(rows):
        def want(n):
            above = [pos[m][0] for m in neighbours(plan, n) if m in pos]
            return sum(above) / len(above) if above else None
        row = sorted(rows[tier], key=lambda n: (want(n) or 0.0,
                                                nodes[n]['index']))
        desired = [want(n) for n in row]
        if any(d is None for d in desired):
            desired = [k - (len(row) - 1) / 2.0 for k in range(len(row))]
        xs = []
        for d in desired:                   # at least 1 apart, in order
            xs.append(d if not xs else max(d, xs[-1] + 1.0))
        shift = (sum(xs) - sum(desired)) / len(xs)
        for n, x in zip(row, xs):
            pos[n] = (x - shift, -float(tier))
    return pos


def captions(plan):
    """{node: text under its name}: tunnel IP, host IP and logical switch,
    and each gateway port's 'PORT: VLAN v -> VNI n'."""
    nodes, lss = plan['nodes'], plan['logical_switches']
    out = {}
    for n, p in nodes.items():
        lines = []
        if 'tunnel_ip' in p:
            lines.append(p['tunnel_ip'].split('/')[0])
        if p.get('ip') and p['role'] in ('vm', 'bare_metal', 'appliance'):
            ls = p.get('ls')
            lines.append(p['ip'].split('/')[0] +
                         (f" {ls}" if ls else ' (no switch)'))
        elif p['role'] in ('vm', 'bare_metal', 'appliance'):
            lines.append('on no logical switch')
        if p['role'] in ('spine', 'leaf') and p.get('asn'):
            lines.append(f"AS {p['asn']}")
        out[n] = lines
    for c in provision.gateway_connections(plan):
        ls = c['ls_id'].strip('{}').split(':', 1)[1]
        vlan = f"VLAN {c['vlan']}" if c['vlan'] else 'untagged'
        out[c['gateway']].append(f"{c['port']}: {vlan} -> VNI "
                                 f"{lss[ls]['vni']}")
    return out


def draw(plan, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    pos, caps = layout(plan), captions(plan)
    width = max(len([1 for p in pos.values() if p[1] == y])
                for y in {p[1] for p in pos.values()})
    fig, ax = plt.subplots(figsize=(max(9.0, 1.55 * width), 8.5))
    drawn = set()
    for link in plan['links']:
        a, b = link['a'], link['b']
        if (a, b) in drawn or a not in pos or b not in pos:
            continue
        drawn.add((a, b))
        ax.plot([pos[a][0], pos[b][0]], [pos[a][1], pos[b][1]],
                color='#888888', lw=0.8, zorder=1)
    roles = set()
    for n, (x, y) in pos.items():
        role = plan['nodes'][n]['role']
        roles.add(role)
        ax.text(x, y, n, ha='center', va='center', fontsize=8.5,
                fontweight='bold', zorder=3,
                bbox={'boxstyle': 'round,pad=0.3', 'ec': '#333333',
                      'fc': ROLE_COLOURS.get(role, '#ffffff')})
        if caps.get(n):
            ax.text(x, y - 0.16, '\n'.join(caps[n]), ha='center', va='top',
                    fontsize=6.5, zorder=3, color='#222222')
    ax.legend(handles=[Patch(fc=ROLE_COLOURS.get(r, '#ffffff'),
                             ec='#333333', label=r.replace('_', ' '))
                       for r in sorted(roles, key=lambda r: TIERS.get(r, 4))],
              loc='upper left', fontsize=7, frameon=False,
              bbox_to_anchor=(1.0, 1.0))
    xs = [p[0] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.8, max(xs) + 0.8)
    ax.set_ylim(-4.9, 0.5)
    ax.axis('off')
    ls = ', '.join(f"{n} = VNI {p['vni']}"
                   for n, p in sorted(plan['logical_switches'].items()))
    ax.set_title(f"{plan['name']} ({plan['fabric']}): {ls}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
