"""Results as users read and plot them: one JSON object per run, saved to
results/<name>/<UTC timestamp>/result.json next to its artifacts.

    {"name": ..., "topology": ..., "passed": bool, "metrics": {...},
     "artifacts": [...]}
"""
import json
import os
import time

import resource

ROOT = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'results')


def result(name, topology, passed, metrics, artifacts=(), **extra):
    out = {'name': name, 'topology': topology, 'passed': bool(passed),
           'metrics': metrics, 'artifacts': list(artifacts)}
    out.update(extra)
    return out


def run_dir(name, now=None):
    stamp = time.strftime('%Y%m%dT%H%M%SZ', time.gmtime(now))
    path = os.path.join(ROOT, name, stamp)
    os.makedirs(path, exist_ok=True)
    return path


def save(res, directory):
    path = os.path.join(directory, 'result.json')
    res['artifacts'] = sorted(set(res['artifacts']) | {path})
    with open(path, 'w') as f:
        json.dump(res, f, indent=2, sort_keys=True)
    return path


def save_json(obj, path):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    return path


def pss_mb(pids):
    """Proportional set size of `pids` in MiB (shared pages split fairly)."""
    total = 0
    for pid in pids:
        try:
            with open(f'/proc/{pid}/smaps_rollup') as f:
                for line in f:
                    if line.startswith('Pss:'):
                        total += int(line.split()[1])
                        break
        except OSError:
            continue
    return round(total / 1024, 1)


def self_peak_mb():
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
