"""`./run.py topo`: build a lab, optionally verify its underlay, report.

setup: expand the spec and start the lab; act/measure: probe every VTEP
pair with 1600-byte don't-fragment packets (and ECMP on Clos); verify: every
pair reachable both ways; teardown: always, saving the result.
"""
import time

from topologies import check, expand, records
from topologies.lab import Lab

from . import results


def lab_pss(lab):
    pids = [p for ps in lab.pids().values() for p in ps]
    return results.pss_mb(pids)


def run(spec, do_check=True, progress=print, deadline_s=90, save=True):
    plan = expand.expand(spec)
    n_nodes, n_links = len(plan['nodes']), len(plan['links'])
    progress(f"lab {plan['name']} ({plan['fabric']}): {n_nodes} nodes, "
             f"{n_links} links")
    t0 = time.monotonic()
    metrics = {'nodes': n_nodes, 'links': n_links,
               'transport_nodes': len(check.endpoints(plan)),
               'vms': sum(1 for p in plan['nodes'].values()
                          if p['role'] == 'vm')}
    passed, table = True, []
    with Lab(plan, progress=progress) as lab:
        metrics['start_s'] = round(time.monotonic() - t0, 3)
        progress(f"  started in {metrics['start_s']:.1f} s "
                 f"({', '.join(f'{k} {v:.2f}' for k, v in lab.timings.items())})")
        peak = lab_pss(lab)
        if do_check:
            res = check.verify(lab, deadline_s=deadline_s, progress=progress)
            metrics['boot_s'] = round(time.monotonic() - t0, 3)
            metrics.update(vtep_pairs=res['vtep_pairs'],
                           reachable_pairs=res['reachable_pairs'],
                           verify_s=res['verify_s'])
            passed = res['vtep_pairs'] == res['reachable_pairs'] and \
                res['vtep_pairs'] > 0
            if 'ecmp' in res:
                paths = res['ecmp']['min_paths']
                metrics['ecmp_min_paths'] = min(paths.values()) if paths else 0
                metrics['spines'] = res['ecmp']['spines']
                passed = passed and metrics['ecmp_min_paths'] == \
                    res['ecmp']['spines']
            table = _table(res)
            metrics['failing_pairs'] = [f'{a}->{b}' for a, b in
                                        res['failing'][:50]]
        peak = max(peak, lab_pss(lab))
    metrics['peak_rss_mb'] = round(peak + results.self_peak_mb(), 1)
    metrics['lab_processes_mb'] = peak
    metrics['stop_s'] = round(lab.timings.get('stop_s', 0), 3)
    leftover = records.leftovers()
    if leftover['namespaces']:
        passed = False
        metrics['leftover_namespaces'] = leftover['namespaces']
    out = results.result('topo-check' if do_check else 'topo', plan['name'],
                         passed, metrics)
    if save:
        results.save(out, results.run_dir('topo-check' if do_check
                                          else 'topo'))
    return out, table


def _table(res):
    eps, reached = res['endpoints'], res['reached']
    rows = [('VTEP', 'tunnel IP', 'reaches', 'missing')]
    for name, ip in eps.items():
        others = [d for d in eps if d != name]
        missing = [d for d in others if eps[d] not in reached.get(name, ())]
        rows.append((name, ip, f'{len(others) - len(missing)}/{len(others)}',
                     ', '.join(missing[:6]) + (' ...' if len(missing) > 6
                                               else '') or '-'))
    return rows
