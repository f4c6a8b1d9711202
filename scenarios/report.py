"""`./run.py report`: the latest result of every scenario and benchmark in
results/, in one summary: results/report.md and results/report.png.

`latest` and `rows` are pure (they take the results tree's content);
`write` does the file I/O and the plot.
"""
import glob
import json
import os

from . import results

KEY_METRICS = ('boot_s', 'vtep_pairs', 'reachable_pairs', 'overlay_reachable',
               'isolation_leaks', 'mac5_learned_after_reply_s',
               'mac5_installed_after_learned_s', 'headless_s',
               'target_met', 'peak_rss_mb', 'steps_held', 'steps_total')


def latest(root=results.ROOT):
    """{run directory name: (timestamp, result dict)} for the newest
    result.json under each results/<name>/."""
    out = {}
    for path in sorted(glob.glob(os.path.join(root, '*', '*',
                                              'result.json'))):
        name, stamp = path.split(os.sep)[-3:-1]
        with open(path) as f:
            try:
                res = json.load(f)
            except ValueError:
                continue
        if name not in out or stamp > out[name][0]:
            out[name] = (stamp, res)
    return out


def _summary(res):
    m = res.get('metrics', {})
    parts = []
    for k in KEY_METRICS:
        if k in m:
            v = m[k]
            parts.append(f'{k}={len(v) if isinstance(v, list) else v}')
    if 'checks' in m:
        held = sum(1 for c in m['checks'] if c['held'])
        parts.append(f"claims held={held}/{len(m['checks'])}")
    for name, st in m.get('streams', {}).items():
        parts.append(f"{name} lost={st['lost']}/{st['sent']}")
    outages = dict(m.get('outages', {}))
    outages.update({f'RTT {k}': v for k, v in m.get('latency', {}).items()})
    for key in list(outages)[:4]:
        st = outages[key]
        parts.append(f"{key} p50/p95 {st['p50']}/{st['p95']} ms "
                     f"(n={st['n']})")
    if len(outages) > 4:
        parts.append(f'... {len(outages) - 4} more outage rows')
    if m.get('targets'):
        met = sum(1 for t in m['targets'] if t['met'])
        parts.append(f"targets met {met}/{len(m['targets'])}")
    for run in m.get('runs', []):
        parts.append(f"{run['transport_nodes']} nodes: {run['boot_s']} s, "
                     f"{run['peak_rss_mb']} MiB")
    return ', '.join(parts)


def rows(found):
    return [(name, stamp, res.get('topology', ''),
             'PASS' if res.get('passed') else 'FAIL', _summary(res))
            for name, (stamp, res) in sorted(found.items())]


def write(root=results.ROOT):
    table = rows(latest(root))
    md = os.path.join(root, 'report.md')
    with open(md, 'w') as f:
        f.write('# nsx-l2gw-lab: latest results\n\n'
                '| run | when (UTC) | topology | verdict | figures |\n'
                '|---|---|---|---|---|\n')
        for r in table:
            f.write('| ' + ' | '.join(str(c).replace('|', '/') for c in r)
                    + ' |\n')
    png = os.path.join(root, 'report.png')
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(13, 0.5 + 0.45 * max(1, len(table))))
    ax.axis('off')
    if table:
        cells = [[r[0], r[1], r[2], r[3], r[4][:90]] for r in table]
        t = ax.table(cellText=cells, colLabels=['run', 'when (UTC)',
                                                'topology', 'verdict',
                                                'figures'],
                     loc='center', cellLoc='left', colLoc='left')
        t.auto_set_font_size(False)
        t.set_fontsize(8)
        t.auto_set_column_width(range(5))
        for i, r in enumerate(table, 1):
            t[i, 3].set_facecolor('#c8f0c8' if r[3] == 'PASS' else '#f5c0c0')
    else:
        ax.text(0.5, 0.5, 'no results yet', ha='center')
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return md, png, table
