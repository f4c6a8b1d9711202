"""Scenario gateway-failover: two software L2 gateways on one physical
segment (CFM election, whitepaper "Software Layer 2 Gateway / Redundancy").

Per trial, under UDP probe streams at 1,000/s both ways between a VM and
the server behind the gateways:
  fault    about one second in (plus a seeded jitter), the active gateway
           gw1 (the lower CFM ID) fails: `crash` kills its ovs-vswitchd
           (kill -9, silent), `link` cuts its cable into the segment. The
           outage per direction is the longest run of missing sequence
           numbers; gw2 must be the one active gateway afterwards.
  repair   in a second stream window the fault is undone (ovs-vswitchd
           restarted / link up). Failback is preemptive: gw1, the lowest
           ID, must be active again. A restarted gw1 announces its ID only
           once the controller has programmed its br-int (controllers/
           gwagent.py), so the failback outage is measured too.
A trial whose streams were not flowing before the event, or had not
resumed by the end of its window, is invalid and fails the run.

One lab per CFM interval (the controller sets it when it assigns the IDs):
the first interval gets --trials per fault kind, the others --sweep-trials
(outage against CFM interval). Results: result.json with every trial,
p50/p95/max per interval, fault kind and direction, targets; plots: outage
per trial, CDF per fault kind, outage against CFM interval.
"""
import os
import random
import time

from topologies import boot, labs

from . import failplots, harness, results, stats

RATE = 1000
DIRS = ('vm->server', 'server->vm')
TARGETS = (('crash vm->server', 100), ('crash server->vm', 100),
           ('link vm->server', 20), ('link server->vm', 20))


def agent_state(lab, gw):
    return lab.node(gw).ns_run(['ovs-vsctl', 'get', 'bridge', 'br-seg1',
                                'external_ids:l2gw-state']).stdout.strip()


def _vswitchd_alive(lab, gw):
    try:
        with open(os.path.join(lab.node(gw).run_dir, 'ovs-vswitchd.pid')) as f:
            return os.path.exists(f'/proc/{int(f.read().strip())}')
    except (OSError, ValueError):
        return False


def _carrier(lab, gw):
    r = lab.node(gw).ns_run(['cat', '/sys/class/net/seg1/carrier'])
    return r.stdout.strip() == '1'


def active(lab):
    """Gateways that forward: the election agent says active, the data
    plane runs and the cable is up."""
    return [g for g in ('gw1', 'gw2')
            if agent_state(lab, g) == 'active' and _vswitchd_alive(lab, g)
            and _carrier(lab, g)]


def fail(lab, kind):
    gw = lab.node('gw1')
    if kind == 'crash':
        with open(os.path.join(gw.run_dir, 'ovs-vswitchd.pid')) as f:
            gw.ns_run(['kill', '-9', f.read().strip()])
    else:
        gw.ns_run(['ip', 'link', 'set', 'seg1', 'down'], check=True)


def repair(lab, kind):
    gw = lab.node('gw1')
    if kind == 'crash':
        gw.ns_run(['bash', '-c', boot.vswitchd_cmd(gw.run_dir)], check=True)
    else:
        gw.ns_run(['ip', 'link', 'set', 'seg1', 'up'], check=True)


def agent_events(lab, gw, since):
    """[(epoch s, state)] from `gw`'s election agent log after `since`."""
    path = os.path.join(lab.node(gw).run_dir, 'gwagent-seg1.log')
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3 and parts[2] in ('active', 'standby'):
                    if float(parts[0]) >= since:
                        out.append((float(parts[0]), parts[2]))
    except (OSError, ValueError):
        pass
    return out


def window_s(interval_ms):
    """Stream length for one window: a second before the event, CFM's
    worst detection (2 x 3.5 intervals) or listen time, and a margin."""
    return 2.5 + 8 * interval_ms / 1000.0


def measure(lab, flows, seconds, out_dir, tag, at, act):
    """Run probe streams for `seconds`, call act() `at` seconds in; ->
    (harness.clocks figures per direction, epoch of the event)."""
    probes = harness.Streams(lab, flows, seconds, out_dir, RATE, tag).start()
    time.sleep(at)
    t_event = time.time()
    act()
    got = probes.finish()
    for path in probes.paths.values():
        os.remove(path)                         # keep the figures only
    names = {name: d for (name, *_), d in zip(flows, DIRS)}
    return harness.clocks(got, RATE, names.get), t_event


def run_interval(fabric, interval, kinds, trials, rng, bar, out_dir,
                 progress):
    """One lab at one CFM interval: (lab name, trial records, problems)."""
    records, problems = [], []
    env = harness.ControlledLab(labs.resolve(fabric), progress, out_dir,
                                cfm_interval_ms=interval)
    with env as lab:
        plan = lab.plan
        vm = next(n for n, p in plan['nodes'].items()
                  if p['role'] == 'vm' and p.get('ls') == 'ls1')
        ip = plan['nodes']['srv1']['ip'].split('/')[0]
        flows = [(f'{vm}->srv1', vm, 'srv1', 9100),
                 (f'srv1->{vm}', 'srv1', vm, 9101)]
        ready = harness.until(lambda: active(lab) == ['gw1'] and lab.node(
            vm).ns_run(['ping', '-c', '1', '-W', '1', ip]).returncode == 0,
            30, 0.5) is not None
        if not ready:
            return plan['name'], [], [f'CFM {interval} ms: gw1 never became the only '
                        f'active gateway, or {vm} never reached srv1']
        order = [k for k in kinds for _ in range(trials)]
        rng.shuffle(order)
        seconds = window_s(interval)
        for n, kind in enumerate(order, 1):
            time.sleep(2.0)                 # link events spaced (docs/platform.md)
            at = 1.0 + rng.uniform(0, 0.2)
            tag = f'{interval}ms-{kind}-{n:02d}'
            fig, t_fault = measure(
                lab, flows, seconds, out_dir, tag, at,
                lambda: fail(lab, kind))
            after_fault = active(lab)
            took = [t for t, s in agent_events(lab, 'gw2', t_fault)
                    if s == 'active']
            time.sleep(0.5)
            fig_back, t_rep = measure(
                lab, flows, seconds + 1.0, out_dir, tag + '-repair', 1.0,
                lambda: repair(lab, kind))
            back = harness.until(lambda: active(lab) == ['gw1'], 15, 0.1)
            outage, back_out = fig['outage_ms'], fig_back['outage_ms']
            rec = {'trial': n, 'fault': kind, 'cfm_interval_ms': interval,
                   'fault_at_s': round(at, 3), 'outage_ms': outage,
                   'outage_seq_ms': fig['outage_seq_ms'],
                   'failback_outage_seq_ms': fig_back['outage_seq_ms'],
                   'sender_lag_ms': fig['sender_lag_ms'],
                   'gw2_active_after_ms': round((took[0] - t_fault) * 1000,
                                                1) if took else None,
                   'active_after_fault': after_fault,
                   'failback_outage_ms': back_out,
                   'active_after_repair': active(lab),
                   'valid': not fig['why'] and not fig_back['why']}
            records.append(rec)
            bar.step(f"{kind} @{interval} ms: outage "
                     f"{outage[DIRS[0]]:.0f}/{outage[DIRS[1]]:.0f} ms, "
                     f"failback {back_out[DIRS[0]]:.0f}/"
                     f"{back_out[DIRS[1]]:.0f} ms (vm->srv/srv->vm)")
            why = []
            why += [w for w in (fig['why'], fig_back['why']) if w]
            if after_fault != ['gw2']:
                why.append(f'active after the fault: {after_fault}')
            if back is None:
                why.append('gw1 did not become the only active gateway '
                           f'again (active: {active(lab)})')
            if why:
                problems.append(f'CFM {interval} ms, trial {n} ({kind}): '
                                + '; '.join(why))
                break
        problems += [f'CFM {interval} ms controller: {e}'
                     for e in env.controller_errors()[:5]]
    return plan['name'], records, problems


def plot(records, main_interval, out_dir):
    main = [r for r in records if r['cfm_interval_ms'] == main_interval]
    series = {f'{r_kind}, {d}': [r['outage_ms'][d] for r in main
                                 if r['fault'] == r_kind]
              for r_kind in ('crash', 'link') for d in DIRS}
    series.update({f'failback after {k}, {d}': [
        r['failback_outage_ms'][d] for r in main if r['fault'] == k]
        for k in ('crash', 'link') for d in DIRS})
    paths = [os.path.join(out_dir, p) for p in
             ('outage-per-trial.png', 'outage-cdf.png',
              'outage-vs-cfm-interval.png')]
    failplots.per_trial(series, paths[0], 'Software L2 gateway failover '
                        f'(CFM {main_interval} ms): outage per trial')
    failplots.cdf({k: v for k, v in series.items()
                   if not k.startswith('failback')}, paths[1],
                  f'Gateway failover outage CDF (CFM {main_interval} ms)')
    sweep = {}
    for r in records:
        for d in DIRS:
            sweep.setdefault(f"{r['fault']}, {d}", {}).setdefault(
                r['cfm_interval_ms'], []).append(max(r['outage_ms'][d], 1))
    failplots.against(sweep, paths[2], 'Gateway failover outage against '
                      'CFM interval', 'CFM interval, ms')
    return paths


def run(fabric='clos', progress=print, trials=20, sweep_trials=5,
        intervals=(10, 100, 1000), kinds=('crash', 'link'), seed=1):
    out_dir = results.run_dir(f'gateway-failover-{fabric}')
    rng = random.Random(seed)
    plan_trials = {iv: trials if i == 0 else sweep_trials
                   for i, iv in enumerate(intervals)}
    bar = harness.TrialBar(sum(plan_trials.values()) * len(kinds), progress)
    records, problems, name = [], [], fabric
    for iv in intervals:
        if problems:
            break
        progress(f'CFM interval {iv} ms: {plan_trials[iv]} trials per '
                 f"fault kind ({', '.join(kinds)})")
        sub = os.path.join(out_dir, f'cfm-{iv}ms')
        os.makedirs(sub, exist_ok=True)
        name, recs, probs = run_interval(fabric, iv, kinds, plan_trials[iv], rng,
                                   bar, sub, progress)
        records += recs
        problems += probs
    by = {iv: stats.summarize([r for r in records
                               if r['cfm_interval_ms'] == iv])
          for iv in intervals}
    back = {iv: stats.summarize([r for r in records
                                 if r['cfm_interval_ms'] == iv],
                                'failback_outage_ms')
            for iv in intervals}
    main = stats.flat(by[intervals[0]])
    outages = {}
    for iv in intervals:
        outages.update(stats.flat(by[iv], f'@{iv}ms '))
        outages.update(stats.flat(back[iv], f'@{iv}ms failback after '))
    targets = [stats.target(main, k, 'p95', lim) for k, lim in TARGETS
               if intervals[0] == 10 and k.split()[0] in kinds]
    artifacts = plot(records, intervals[0], out_dir) if records else []
    expected = sum(plan_trials.values()) * len(kinds)
    if len(records) < expected and not problems:
        problems.append(f'{len(records)} of {expected} trials ran')
    metrics = {'rate_pps': RATE, 'seed': seed, 'cfm_intervals_ms':
               list(intervals), 'trials_per_kind': plan_trials,
               'outages': outages, 'targets': targets,
               'trials': records, 'problems': problems}
    res = results.result('gateway-failover', name,
                         not problems and len(records) == expected, metrics,
                         artifacts)
    results.save(res, out_dir)
    return res
