"""Statistics for failure scenarios (pure): nearest-rank percentiles and
outage summaries over trial records.

A trial record holds, per measured window, outages by direction:
    {'fault': 'crash', 'cfm_interval_ms': 10,
     'outage_ms': {'vm->server': 91.0, 'server->vm': 94.0},
     'failback_outage_ms': {...}}
"""
import math


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    vals = sorted(values)
    k = max(1, math.ceil(q / 100.0 * len(vals)))
    return vals[min(k, len(vals)) - 1]


def describe(values):
    return {'n': len(values), 'p50': percentile(values, 50),
            'p95': percentile(values, 95), 'max': max(values)}


def summarize(trials, field='outage_ms', group=lambda t: t['fault']):
    """{group: {direction: {n, p50, p95, max}}} of trials[field]."""
    out = {}
    for t in trials:
        for direction, ms in (t.get(field) or {}).items():
            out.setdefault(group(t), {}).setdefault(direction, []).append(ms)
    return {g: {d: describe(v) for d, v in dirs.items()}
            for g, dirs in out.items()}


def flat(summary, prefix=''):
    """{'<prefix><group> <direction>': stats} for tables and the report."""
    return {f'{prefix}{g} {d}': st for g, dirs in summary.items()
            for d, st in dirs.items()}


def target(summary_flat, key, stat, limit_ms):
    """{'key', 'stat', 'limit_ms', 'measured_ms', 'met'} for one target."""
    st = summary_flat.get(key)
    measured = st[stat] if st else None
    return {'key': key, 'stat': stat, 'limit_ms': limit_ms,
            'measured_ms': measured,
            'met': measured is not None and measured <= limit_ms}
