"""Scenario gateway-failover: two software L2 gateways on one physical
segment (CFM election, whitepaper "Software Layer 2 Gateway / Redundancy").

Per trial: probe streams at 1,000/s both ways between a VM and the server
behind the gateways; one second in, the active gateway (gw1, the lower CFM
ID) fails: `crash` kills its ovs-vswitchd (silent, -9), `link` cuts its
cable into the segment. The outage per direction is the longest run of
missing sequence numbers. Then the failure is repaired (vswitchd restarted
/ link up) and, failback being preemptive, gw1 must be active again before
the next trial. Which gateway is active is recorded after each step.

Results: result.json with every trial, p50/p95/max per fault kind and
direction, outage-per-trial and CDF plots.
"""
import math
import os
import time

from topologies import boot, labs

from . import harness, probe, results

RATE = 1000


def percentile(values, q):
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    vals = sorted(values)
    k = max(1, math.ceil(q / 100.0 * len(vals)))
    return vals[min(k, len(vals)) - 1]


def summarize(trials):
    """{kind: {direction: {p50, p95, max, n}}} from trial records."""
    out = {}
    for t in trials:
        for direction, ms in t['outage_ms'].items():
            out.setdefault(t['fault'], {}).setdefault(direction, []).append(ms)
    return {kind: {d: {'n': len(v), 'p50': percentile(v, 50),
                       'p95': percentile(v, 95), 'max': max(v)}
                   for d, v in dirs.items()}
            for kind, dirs in out.items()}


def _state(lab, gw):
    return lab.node(gw).ns_run(['ovs-vsctl', 'get', 'bridge', 'br-seg1',
                                'external_ids:l2gw-state']).stdout.strip()


def _vswitchd_alive(lab, gw):
    try:
        with open(os.path.join(lab.node(gw).run_dir, 'ovs-vswitchd.pid')) as f:
            return os.path.exists(f'/proc/{int(f.read().strip())}')
    except (OSError, ValueError):
        return False


def _active(lab):
    """Gateways whose election agent says active and whose data plane runs
    (a crashed gateway keeps its last label in its database)."""
    return [g for g in ('gw1', 'gw2')
            if _state(lab, g) == 'active' and _vswitchd_alive(lab, g)]


def _fail(lab, kind):
    gw = lab.node('gw1')
    if kind == 'crash':
        with open(os.path.join(gw.run_dir, 'ovs-vswitchd.pid')) as f:
            gw.ns_run(['kill', '-9', f.read().strip()])
    else:
        gw.ns_run(['ip', 'link', 'set', 'seg1', 'down'], check=True)


def _repair(lab, kind):
    gw = lab.node('gw1')
    if kind == 'crash':
        gw.ns_run(['bash', '-c', boot.vswitchd_cmd(gw.run_dir)], check=True)
    else:
        gw.ns_run(['ip', 'link', 'set', 'seg1', 'up'], check=True)


def plot(trials, path_trials, path_cdf):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 4))
    for kind, marker in (('crash', 'o'), ('link', 's')):
        for direction, ls in (('vm->server', '-'), ('server->vm', '--')):
            ys = [t['outage_ms'][direction] for t in trials
                  if t['fault'] == kind]
            if ys:
                ax.plot(range(1, len(ys) + 1), ys, marker=marker, ls=ls,
                        label=f'{kind}, {direction}')
    ax.set_xlabel('trial')
    ax.set_ylabel('outage, ms (longest probe gap at 1,000/s)')
    ax.set_title('Software L2 gateway failover: outage per trial')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path_trials, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind in ('crash', 'link'):
        for direction in ('vm->server', 'server->vm'):
            ys = sorted(t['outage_ms'][direction] for t in trials
                        if t['fault'] == kind)
            if ys:
                ax.step(ys, [(i + 1) / len(ys) for i in range(len(ys))],
                        where='post', label=f'{kind}, {direction}')
    ax.set_xlabel('outage, ms')
    ax.set_ylabel('fraction of trials')
    ax.set_title('Gateway failover outage CDF')
    ax.legend()
    fig.tight_layout()
    fig.savefig(path_cdf, dpi=100)
    plt.close(fig)


def run(fabric='clos', progress=print, trials=20, kinds=('crash', 'link'),
        cfm_interval_ms=10, seconds=4.0):
    out_dir = results.run_dir(f'gateway-failover-{fabric}')
    env = harness.ControlledLab(labs.resolve(fabric), progress, out_dir,
                                cfm_interval_ms=cfm_interval_ms)
    records, problems = [], []
    with env as lab:
        plan = lab.plan
        vm = next(n for n, p in plan['nodes'].items()
                  if p['role'] == 'vm' and p.get('ls') == 'ls1')
        srv = 'srv1'
        ip = plan['nodes'][srv]['ip'].split('/')[0]
        ready = harness.until(lambda: _active(lab) == ['gw1'] and
                              lab.node(vm).ns_run(
                                  ['ping', '-c', '1', '-W', '1', ip]
                              ).returncode == 0, 30, 0.5) is not None
        if not ready:
            problems.append('gw1 never became the only active gateway, or '
                            'the VM never reached the server')
        plan_trials = [k for k in kinds for _ in range(trials)] if ready \
            else []
        for i, kind in enumerate(plan_trials, 1):
            progress(f'  trial {i}/{len(plan_trials)}: {kind} of gw1')
            time.sleep(2.0)          # link events spaced (see DESIGN.md)
            probes = harness.Streams(
                lab, [(f'{vm}->{srv}', vm, srv, 9100),
                      (f'{srv}->{vm}', srv, vm, 9101)], seconds, out_dir,
                RATE, f'{kind}-{i:02d}').start()
            time.sleep(1.0)
            _fail(lab, kind)
            got = probes.finish()
            after_fault = _active(lab)
            outage = {}
            for name, (sent, seqs) in got.items():
                res = probe.analyse(sent, seqs, RATE)
                outage['vm->server' if name.startswith(vm)
                       else 'server->vm'] = res['outage_ms']
                os.remove(probes.paths[name])   # keep the figures only
            _repair(lab, kind)
            back = harness.until(lambda: _active(lab) == ['gw1'], 15, 0.1)
            records.append({'trial': i, 'fault': kind, 'outage_ms': outage,
                            'active_after_fault': after_fault,
                            'failback_s': back,
                            'active_after_repair': _active(lab)})
            # after a crash gw1 is gone; after a cut it may still call itself
            # active on its dead cable: what matters is that gw2 took over
            if 'gw2' not in after_fault or back is None:
                problems.append(f'trial {i}: active after fault '
                                f'{after_fault}, failback '
                                f"{'none' if back is None else 'ok'}")
                break
    png1 = os.path.join(out_dir, 'outage-per-trial.png')
    png2 = os.path.join(out_dir, 'outage-cdf.png')
    if records:
        plot(records, png1, png2)
    stats = summarize(records)
    passed = ready and not problems and len(records) == len(kinds) * trials
    metrics = {'cfm_interval_ms': cfm_interval_ms, 'rate_pps': RATE,
               'summary': stats, 'trials': records, 'problems': problems,
               'controller_errors': env.controller_errors()[:20]}
    res = results.result('gateway-failover', plan['name'], passed, metrics,
                         [p for p in (png1, png2) if os.path.exists(p)] +
                         [os.path.join(out_dir, 'controller.log')])
    results.save(res, out_dir)
    return res
