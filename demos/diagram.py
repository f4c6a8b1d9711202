"""Sequence diagrams of observed frames: one lane per box, one arrow per
frame that crossed from one box to another (tunnelled ones labelled with
their VNI, tagged ones with their VLAN), acts separated by a rule.

`model` is pure (and saved as diagram.json next to the PNG, so a test can
compare the drawing's lanes and arrows with the pcaps); `draw` renders it.
"""
from topologies.colours import ROLE_COLOURS

from . import wire


def model(lanes, acts):
    """lanes: box names left to right; acts: [(title, arrows)] -> the
    diagram as data. Boxes that appear in arrows but not in `lanes` get a
    lane at the right (nothing observed is left out)."""
    lanes = list(lanes)
    for _, arrows in acts:
        for a in arrows:
            for box in (a['src'], a['dst']):
                if box not in lanes:
                    lanes.append(box)
    rows = []
    for n, (title, arrows) in enumerate(acts, 1):
        t0 = arrows[0]['time'] if arrows else 0.0
        rows.append({'act': n, 'title': title})
        rows += [{'act': n, 'src': a['src'], 'dst': a['dst'],
                  'label': wire.label(a),
                  'ms': round((a['time'] - t0) * 1000, 1)} for a in arrows]
    reached = {r['dst'] for r in rows if 'dst' in r}
    return {'lanes': lanes, 'rows': rows,
            'arrows': [r for r in rows if 'src' in r],
            'no_copy': [b for b in lanes if b not in reached]}


def draw(m, roles, path, title):
    """Render model `m` to a PNG at `path`; roles: {box: role}."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    lanes, rows = m['lanes'], m['rows']
    x = {b: i for i, b in enumerate(lanes)}
    height = 1.6 + 0.42 * len(rows)
    fig, ax = plt.subplots(figsize=(max(8.0, 1.25 * len(lanes) + 1.5),
                                    height))
    top = len(rows) + 0.6
    for b, i in x.items():
        ax.plot([i, i], [-0.6, top - 0.3], color='#999999', lw=0.8,
                ls='--', zorder=1)
        ax.text(i, top, b, ha='center', va='center', fontsize=9,
                fontweight='bold', zorder=3,
                bbox={'boxstyle': 'round,pad=0.35', 'ec': '#333333',
                      'fc': ROLE_COLOURS.get(roles.get(b), '#ffffff')})
        if b in m['no_copy']:
            ax.text(i, -0.9, 'no copy', ha='center', va='top', fontsize=7,
                    color='#a00000')
    for k, r in enumerate(rows):
        y = len(rows) - 1 - k
        if 'src' not in r:
            ax.axhline(y, color='#444444', lw=0.6)
            ax.text(-0.6, y + 0.12, f"{r['act']}. {r['title']}", ha='left',
                    va='bottom', fontsize=8.5, style='italic')
            continue
        x0, x1 = x[r['src']], x[r['dst']]
        tunnelled = 'VNI' in r['label']
        ax.annotate('', xy=(x1, y), xytext=(x0, y), zorder=2,
                    arrowprops={'arrowstyle': '-|>', 'lw': 1.4,
                                'color': '#1f5fa8' if tunnelled
                                else '#2f7d32'})
        ax.text((x0 + x1) / 2, y + 0.08, r['label'], ha='center',
                va='bottom', fontsize=7.5)
        ax.text(len(lanes) - 0.4, y, f"+{r['ms']} ms", ha='left',
                va='center', fontsize=7, color='#555555')
    ax.set_xlim(-0.8, len(lanes) + 0.4)
    ax.set_ylim(-1.3, top + 0.6)
    ax.axis('off')
    ax.set_title(title + '\n(blue: VXLAN-tunnelled, green: plain Ethernet;'
                 ' time from the first frame of each act)', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
