"""`./run.py topo`: build a lab, optionally verify its underlay, report.

setup: expand the spec and start the lab; act/measure: probe every VTEP
pair with 1600-byte don't-fragment packets (and ECMP on Clos); with
`overlay`, start the controller, provision the lab's logical switches through
the NSX API and verify VM reachability and isolation; verify: every check
passed; teardown: always, saving the result and the controller's log.
"""
import os
import shutil
import tempfile
import time

from topologies import check, expand, records
from topologies.lab import Lab

from . import cpuload, results

SETTLE_S = 10        # after the overlay checks, before an idle window


def lab_pss(lab):
    pids = [p for ps in lab.pids().values() for p in ps]
    return results.pss_mb(pids)


def run(spec, do_check=True, progress=print, deadline_s=90, save=True,
        overlay=False, idle_s=0):
    """Build, check (and with `overlay`, provision and verify; with
    `idle_s`, then measure the settled lab: cpuload.idle_window). A run
    that fails saves the evidence (node logs, plan, controller log) in its
    results directory before teardown; the result's artifacts list it."""
    plan = expand.expand(spec)
    n_nodes, n_links = len(plan['nodes']), len(plan['links'])
    progress(f"lab {plan['name']} ({plan['fabric']}): {n_nodes} nodes, "
             f"{n_links} links")
    t0 = time.monotonic()
    metrics = {'nodes': n_nodes, 'links': n_links,
               'transport_nodes': len(check.endpoints(plan)),
               'vms': sum(1 for p in plan['nodes'].values()
                          if p['role'] == 'vm'),
               'bfd_interval_ms': plan['bfd_interval_ms'],
               'tls': plan['tls']}
    passed, table, artifacts = True, [], []
    name = 'topo-check' if do_check else 'topo'
    where = results.run_dir(name) if save else tempfile.mkdtemp()
    with Lab(plan, progress=progress) as lab:
        metrics['start_s'] = round(time.monotonic() - t0, 3)
        if 'pki_s' in lab.timings:      # the CA and every certificate
            metrics['tls_setup_ms'] = round(lab.timings['pki_s'] * 1000, 1)
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
        if overlay:
            ok, log = _overlay(lab, metrics, progress, where, t0, idle_s)
            passed = passed and ok
            artifacts.append(log)
        peak = max(peak, lab_pss(lab))
        if not passed:
            from .harness import save_node_logs, save_plan
            save_node_logs(lab, os.path.join(where, 'logs'))
            save_plan(plan, where)
            artifacts += [os.path.join(where, 'logs'),
                          os.path.join(where, 'plan.json')]
            progress(f'  FAILED: evidence (node logs, plan'
                     f"{', controller.log' if overlay else ''}) saved in "
                     f'{where}')
    metrics['peak_rss_mb'] = round(peak + results.self_peak_mb(), 1)
    metrics['lab_processes_mb'] = peak
    metrics['stop_s'] = round(lab.timings.get('stop_s', 0), 3)
    leftover = records.leftovers()
    if leftover['namespaces']:
        passed = False
        metrics['leftover_namespaces'] = leftover['namespaces']
    if not save and not passed:       # a benchmark's failed run: keep it
        kept = results.run_dir(name)
        shutil.copytree(where, kept, dirs_exist_ok=True)
        shutil.rmtree(where, ignore_errors=True)
        artifacts = [a.replace(where, kept) for a in artifacts]
        where, save = kept, True
    out = results.result(name, plan['name'], passed, metrics, artifacts)
    if save:
        results.save(out, where)
    else:
        shutil.rmtree(where, ignore_errors=True)
    return out, table


def _overlay(lab, metrics, progress, where, t_boot, idle_s=0):
    """Controller up, lab provisioned through the API, overlay verified.
    Returns (passed, path of the controller's log saved in `where`);
    `overlay_boot_s`: from the lab's start (`t_boot`) until every VM pair
    was reached."""
    from controllers import clusterlab, provision
    from . import harness, overlay
    ctl = clusterlab.make(lab.plan)
    try:
        t0 = time.monotonic()
        ctl.start()
        progress(f'  controller up ({ctl.url})')
        provision.provision(ctl, lab.plan, progress)
        metrics['provision_s'] = round(time.monotonic() - t0, 3)
        try:
            metrics['bfd_up_s'] = harness.wait_bfd(lab, progress)
        except harness.LabFailed as exc:      # verify anyway: how bad is it
            metrics['bfd_problem'] = str(exc)
            progress(f'  {exc}')
        t1 = time.monotonic()
        res = overlay.verify(lab, progress=progress)
        metrics.update(res)
        if res['overlay_reached_s'] is not None:
            metrics['overlay_boot_s'] = round(
                t1 - t_boot + res['overlay_reached_s'], 3)
        if idle_s:
            time.sleep(SETTLE_S)
            metrics.update(cpuload.idle_window(lab, ctl, idle_s, progress))
    finally:
        ctl.stop()
        os.makedirs(where, exist_ok=True)
        logs = harness.save_controller_logs(ctl, where)
    saved = os.path.join(where, 'controller.log')
    errors = [e for path in logs for e in harness.log_errors(path)]
    metrics['controller_errors'] = errors[:20]
    ok = res['overlay_pairs'] > 0 and 'bfd_problem' not in metrics and \
        res['overlay_reachable'] == res['overlay_pairs'] and \
        not res['isolation_leaks'] and not errors
    return ok, saved


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
