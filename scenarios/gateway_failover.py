"""Scenario gateway-failover: two software L2 gateways on one physical
segment (whitepaper "Software Layer 2 Gateway / Redundancy": CFM election,
lowest ID active, preemptive failback), their agents (devices/gwagent).

Per trial, under UDP probe streams at 1,000/s both ways between a VM and
the server behind the gateways, about one second in (plus a seeded
jitter) the active gateway gw1 (the lower CFM ID) fails:
  crash   its ovs-vswitchd is killed (kill -9); its agent lives, sees the
          death through a pidfd and tells gw2 (a `yield` notice over the
          management network).
  link    its cable into the segment is cut; its agent sees the carrier go
          (the kernel's link event, or OVS's port status if that comes
          first) and tells gw2 over both networks.
  power   its agent and ovs-vswitchd die together: nobody tells, gw2 learns
          it from CFM alone (3.5 intervals without a CCM): the figure that
          depends on the CFM interval.
Then, in a second stream window, the fault is undone; failback is
preemptive: gw1 claims, gw2 releases once its flows are gone, gw1 takes
over (a restarted gw1 announces its CFM ID only once the controller has
programmed its br-int).

Outage per direction on the receive clock (scenarios/probe.py), the
sequence clock beside it. Loop freedom is checked by captures on both
gateways in every window: the probes each one forwarded and when (out of
its cable towards the server, out of its uplink in VXLAN towards the
VM). Both gateways forwarding at once (probes leaving both in more than
STALE_MS of 5 ms time bins) fails the run, and so does a capture that missed
the stream (no evidence); probes forwarded by both without that (stale
copies, see loop_check) are counted and reported against the target 0. A trial whose probe sender stalled
at an edge of the outage is kept as discarded and run again (at most
DISCARDS_MAX x the trials planned per interval, DISCARDS_MIN at least;
measured here: process starts, kills and link changes stall even a
SCHED_FIFO sender by 5-30 ms now and then). Once that budget is spent, a
trial whose only fault is such a stall is kept, marked `upper_bound` (its
outage is at most what it says); any other invalid trial fails the run.

The first CFM interval gets --trials per fault kind; the others
--sweep-trials of the `power` kind (the only one CFM decides). Results:
result.json with every trial, p50/p95/max per interval, fault kind and
direction, targets; plots: outage per trial, CDF per fault kind, outage
against CFM interval.
"""
import os
import random
import shutil
import time

from topologies import boot, labs

from . import failplots, harness, pcapseq, results, stats

RATE = 1000
DIRS = ('vm->server', 'server->vm')
PORTS = {'vm->server': 9100, 'server->vm': 9101}
KINDS = ('crash', 'link', 'power')
SWEEP_KINDS = ('power',)
INTERVALS = (10, 3, 100, 1000)      # 3 ms: OVS's shortest standard CFM
TARGETS = (('crash vm->server', 100), ('crash server->vm', 100),
           ('power vm->server', 100), ('power server->vm', 100),
           ('link vm->server', 20), ('link server->vm', 20),
           ('failback after crash vm->server', 20),
           ('failback after crash server->vm', 20),
           ('failback after link vm->server', 20),
           ('failback after link server->vm', 20))
DISCARDS_MAX = 2.0        # x the trials planned at an interval
DISCARDS_MIN = 10         # but at least this many (a 1-trial sweep step)
CAPTURED_MIN = 0.9        # of the probes that arrived, seen leaving a gateway
BIN_MS = 5                # loop check: time resolution of "both at once"
# Both gateways forwarding in more than this much time fails the run. Less
# is reported (targets): when the box stalls for more than CFM's 3.5
# intervals (ovs-vswitchd.log shows its CFM thread 17-75 ms late under
# load) and the agents' heartbeats are as late, the standby takes over
# until the next heartbeat; a gateway also drains copies queued during a
# stall after the other began.
STALE_MS = 50


def agent_state(lab, gw):
    return lab.node(gw).ns_run(['ovs-vsctl', 'get', 'bridge', 'br-seg1',
                                'external_ids:l2gw-state']).stdout.strip()


def _alive(lab, gw, pidfile):
    try:
        with open(os.path.join(lab.node(gw).run_dir, pidfile)) as f:
            return os.path.exists(f'/proc/{int(f.read().strip())}')
    except (OSError, ValueError):
        return False


def _carrier(lab, gw):
    r = lab.node(gw).ns_run(['cat', '/sys/class/net/seg1/carrier'])
    return r.stdout.strip() == '1'


def active(lab):
    """Gateways that forward: the agent runs and says active, the data
    plane runs and the cable is up."""
    return [g for g in ('gw1', 'gw2')
            if _alive(lab, g, 'gwagent-seg1.pid') and
            agent_state(lab, g) == 'active' and
            _alive(lab, g, 'ovs-vswitchd.pid') and _carrier(lab, g)]


def _pid(lab, gw, pidfile):
    with open(os.path.join(lab.node(gw).run_dir, pidfile)) as f:
        return f.read().strip()


def _at_once(lab, gw, cmd):
    """Run `cmd` in the gateway's namespace from a shell that prints the
    time just before it execs it (a subprocess takes ~10-20 ms to get
    there) -> that epoch."""
    r = lab.node(gw).ns_run(['bash', '-c', f'date +%s.%N; exec {cmd}'],
                            check=True)
    return float(r.stdout.split()[0])


def fail(lab, kind):
    """Fail gw1 -> the epoch the fault was applied."""
    if kind == 'crash':
        return _at_once(lab, 'gw1',
                        f"kill -9 {_pid(lab, 'gw1', 'ovs-vswitchd.pid')}")
    if kind == 'power':
        return _at_once(lab, 'gw1', 'kill -9 ' + ' '.join(
            _pid(lab, 'gw1', f) for f in ('gwagent-seg1.pid',
                                          'ovs-vswitchd.pid')))
    return _at_once(lab, 'gw1', 'ip link set seg1 down')


def repair(lab, kind):
    """Undo the fault -> the epoch the repair started."""
    gw = lab.node('gw1')
    if kind == 'power':
        t = time.time()
        gw.ns_run(['bash', '-c', '\n'.join(boot.gateway_power_on(
            lab.plan['nodes']['gw1'], gw.run_dir, lab.plan))], check=True)
        return t
    if kind == 'crash':
        t = time.time()
        gw.ns_run(['bash', '-c', boot.vswitchd_cmd(gw.run_dir)], check=True)
        return t
    return _at_once(lab, 'gw1', 'ip link set seg1 up')


def agent_log(lab, gw, since):
    """[(epoch s, words)] of `gw`'s agent log lines after `since`."""
    path = os.path.join(lab.node(gw).run_dir, 'gwagent-seg1.log')
    out = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                try:
                    t = float(parts[0])
                except (IndexError, ValueError):
                    continue
                if t >= since:
                    out.append((t, parts[1:]))
    except OSError:
        pass
    return out


def agent_events(lab, gw, since):
    """[(epoch s, 'active' or 'standby')]: the state changes `gw`'s agent
    applied after `since` (the demos show them)."""
    return [(t, w[1]) for t, w in agent_log(lab, gw, since)
            if w[:1] == ['seg1'] and w[1:2] in (['active'], ['standby'])]


def first_ms(events, since, test):
    """ms from `since` to the first event whose words pass `test`."""
    for t, words in events:
        if test(words):
            return round((t - since) * 1000, 1)
    return None


def became(state):
    return lambda w: w[:2] == ['seg1', state]


def window_s(interval_ms):
    """Stream length for one window: a second before the event, CFM's
    worst detection (2 x 3.5 intervals) or listen time, and a margin."""
    return 2.5 + 8 * interval_ms / 1000.0


def capture_points(plan):
    """Where each gateway's forwarded frames leave it, as (point, node,
    interface, direction): into the segment switch from its cable (towards
    the server; captured at the switch's end, which stays up when the
    cable is cut) and out of its uplink (VXLAN, towards the VM)."""
    out = []
    seg = next(i['peer'] for i in plan['nodes']['gw1']['intfs']
               if i['kind'] == 'physical')
    for gw in ('gw1', 'gw2'):
        up = next(i['name'] for i in plan['nodes'][gw]['intfs']
                  if i['kind'] != 'physical')
        port = next(i['name'] for i in plan['nodes'][seg]['intfs']
                    if i['peer'] == gw)
        out += [(f'{gw}-cable', seg, port, 'in'),
                (f'{gw}-uplink', gw, up, 'out')]
    return out


def forwarded(seqs_by_point):
    """{point: {port: {seq: time}}} -> {direction: {gateway: {seq: time it
    left that gateway}}}."""
    out = {d: {} for d in DIRS}
    for point, by_port in seqs_by_point.items():
        gw, where = point.split('-')
        d = 'vm->server' if where == 'cable' else 'server->vm'
        out[d][gw] = by_port.get(PORTS[d], {})
    return out


def both_ms(a, b, bin_ms=BIN_MS):
    """ms during which two gateways both forwarded: the time bins (of
    bin_ms) in which probes left each of them."""
    def bins(times):
        return {int(t * 1000 // bin_ms) for t in times}
    return len(bins(a) & bins(b)) * bin_ms


def loop_check(fwd, received, old, new):
    """Captures of one window -> ({direction: probes forwarded by both
    gateways}, {direction: ms during which both forwarded}, why the
    captures are no evidence or '').

    `old` hands over to `new` in the window. A probe forwarded by both is
    a duplicate: the VM's frames to the server are flooded (through a
    service node) to both gateways, so one forwarded by both gateways at
    once, or a stale copy a gateway forwards from its queues after taking
    over (the other had forwarded it before standing down)."""
    both, together, why = {}, {}, []
    for d in DIRS:
        by = fwd[d]
        a, b = by.get(old, {}), by.get(new, {})
        both[d] = len(a.keys() & b.keys())
        together[d] = both_ms(a.values(), b.values())
        seen = len(a.keys() | b.keys())
        if received.get(d, 0) and seen < CAPTURED_MIN * received[d]:
            why.append(f'the captures saw {seen} of the {received[d]} '
                       f'{d} probes leave a gateway: no evidence of loop '
                       'freedom')
    return both, together, '; '.join(why)


def keep_evidence(lab, out_dir, tag):
    """The gateways' agent logs next to the window's captures."""
    for gw in ('gw1', 'gw2'):
        src = os.path.join(lab.node(gw).run_dir, 'gwagent-seg1.log')
        try:
            shutil.copy(src, os.path.join(out_dir, f'{tag}-{gw}-agent.log'))
        except OSError:
            pass


def measure(lab, flows, seconds, out_dir, tag, at, act, handover):
    """Probe streams for `seconds` with captures on both gateways; act()
    `at` seconds in. -> (harness.clocks figures per direction, probes
    forwarded by both gateways per direction, why the capture is no
    evidence, epoch of the event, which act() returns)."""
    with harness.Captures(lab, capture_points(lab.plan), out_dir,
                          'udp port 4789 or udp port 9100 or (vlan and '
                          'udp port 9100)', snaplen=160) as cap:
        probes = harness.Streams(lab, flows, seconds, out_dir, RATE,
                                 tag).start()
        time.sleep(at)
        t_event = act()
        got = probes.finish()
    for path in probes.paths.values():
        os.remove(path)                         # keep the figures only
    seen = {point: pcapseq.seqs_in(path, set(PORTS.values()))
            for point, path in cap.files.items()}
    names = {name: d for (name, *_), d in zip(flows, DIRS)}
    received = {names[n]: len(set(g[1])) for n, g in got.items()}
    both, overlap, why = loop_check(forwarded(seen), received, *handover)
    if any(overlap.values()) or why:
        keep_evidence(lab, out_dir, tag)        # pcaps stay, logs copied
    else:
        for path in cap.files.values():
            os.remove(path)
    return harness.clocks(got, RATE, names.get), (both, overlap), why, \
        t_event


def trial(lab, flows, interval, kind, n, at, out_dir):
    """One fault and its repair -> the trial's record."""
    seconds = window_s(interval)
    tag = f'{interval}ms-{kind}-{n:02d}'
    fig, (both, overlap), cap_why, t_fault = measure(
        lab, flows, seconds, out_dir, tag, at, lambda: fail(lab, kind),
        ('gw1', 'gw2'))
    after_fault = active(lab)
    gw1, gw2 = (agent_log(lab, g, t_fault) for g in ('gw1', 'gw2'))
    time.sleep(0.5)
    back, (back_both, back_overlap), back_why, t_rep = measure(
        lab, flows, seconds + 1.0, out_dir, tag + '-repair', 1.0,
        lambda: repair(lab, kind), ('gw2', 'gw1'))
    settled = harness.until(lambda: active(lab) == ['gw1'], 15, 0.1)
    back1, back2 = (agent_log(lab, g, t_rep) for g in ('gw1', 'gw2'))
    return {
        'trial': n, 'fault': kind, 'cfm_interval_ms': interval,
        'fault_at_s': round(at, 3),
        'outage_ms': fig['outage_ms'], 'outage_seq_ms': fig['outage_seq_ms'],
        'sender_lag_ms': fig['sender_lag_ms'],
        'failback_outage_ms': back['outage_ms'],
        'failback_outage_seq_ms': back['outage_seq_ms'],
        # what the agents logged, in ms after the fault / the repair
        'gw1_saw_fault_ms': first_ms(gw1, t_fault, lambda w: w[:2] in (
            ['ovs-vswitchd', 'exited'], ['seg1', 'carrier'])),
        'gw2_active_after_ms': first_ms(gw2, t_fault, became('active')),
        'gw2_standby_after_repair_ms': first_ms(back2, t_rep,
                                                became('standby')),
        'gw1_active_after_repair_ms': first_ms(back1, t_rep,
                                               became('active')),
        'forwarded_by_both': both, 'failback_forwarded_by_both': back_both,
        'both_forwarding_ms': overlap,
        'failback_both_forwarding_ms': back_overlap,
        'active_after_fault': after_fault,
        'active_after_repair': active(lab), 'failback_settled_s': settled,
        'why_invalid': '; '.join(w for w in (
            fig['why'], back['why'], cap_why, back_why,
            harness.stall_note(fig), harness.stall_note(back)) if w),
        # invalid only because a probe sender stalled during an outage
        'stalled_only': fig['flowing'] and back['flowing'] and
        not (cap_why or back_why) and
        not (fig['sender_ok'] and back['sender_ok']),
        'valid': not (fig['why'] or back['why'] or cap_why or back_why) and
        fig['sender_ok'] and back['sender_ok']}


def problems_of(rec):
    why = [rec['why_invalid']] if rec['why_invalid'] else []
    if rec['active_after_fault'] != ['gw2']:
        why.append(f"active after the fault: {rec['active_after_fault']}")
    if rec['failback_settled_s'] is None:
        why.append('gw1 did not become the only active gateway again '
                   f"(active: {rec['active_after_repair']})")
    loops = {f'{w} {d}': ms for w, key in (('fault', 'both_forwarding_ms'),
             ('failback', 'failback_both_forwarding_ms'))
             for d, ms in rec[key].items() if ms > STALE_MS}
    if loops:
        why.append(f'both gateways forwarded at once (ms): {loops}')
    return why


def run_interval(fabric, interval, kinds, trials, rng, bar, out_dir,
                 progress):
    """One lab at one CFM interval: (lab name, trial records, discarded
    trials, problems)."""
    records, discarded, problems = [], [], []
    env = harness.ControlledLab(labs.resolve(fabric), progress, out_dir,
                                cfm_interval_ms=interval)
    with env as lab:
        plan = lab.plan
        vm = next(n for n, p in plan['nodes'].items()
                  if p['role'] == 'vm' and p.get('ls') == 'ls1')
        ip = plan['nodes']['srv1']['ip'].split('/')[0]
        flows = [(f'{vm}->srv1', vm, 'srv1', PORTS['vm->server']),
                 (f'srv1->{vm}', 'srv1', vm, PORTS['server->vm'])]
        ready = harness.until(lambda: active(lab) == ['gw1'] and lab.node(
            vm).ns_run(['ping', '-c', '1', '-W', '1', ip]).returncode == 0,
            30, 0.5) is not None
        if not ready:
            return plan['name'], [], [], [
                f'CFM {interval} ms: gw1 never became the only active '
                f'gateway, or {vm} never reached srv1']
        order = [k for k in kinds for _ in range(trials)]
        rng.shuffle(order)
        queue = list(enumerate(order, 1))
        while queue:
            n, kind = queue.pop(0)
            time.sleep(2.0)             # link events spaced (docs/platform.md)
            rec = trial(lab, flows, interval, kind, n,
                        1.0 + rng.uniform(0, 0.2), out_dir)
            out, back = rec['outage_ms'], rec['failback_outage_ms']
            why = problems_of(rec)
            stalled = rec['stalled_only'] and len(why) == 1
            if stalled and len(discarded) < max(DISCARDS_MIN,
                                                DISCARDS_MAX * len(order)):
                rec['discarded'] = rec['why_invalid']
                discarded.append(rec)
                progress(f'  {kind} @{interval} ms trial {n} discarded and '
                         f"run again: {rec['why_invalid']}")
                queue.insert(0, (n, kind))
                continue
            if stalled:                  # budget spent: an upper bound
                rec['upper_bound'] = True
                why = []
                progress(f'  {kind} @{interval} ms trial {n} kept as an '
                         f"upper bound (repeats spent): {rec['why_invalid']}")
            records.append(rec)
            bar.step(f"{kind} @{interval} ms: outage "
                     f"{out[DIRS[0]]:.0f}/{out[DIRS[1]]:.0f} ms, failback "
                     f"{back[DIRS[0]]:.0f}/{back[DIRS[1]]:.0f} ms "
                     f"(vm->srv/srv->vm), gw2 active +"
                     f"{rec['gw2_active_after_ms']} ms")
            if why:
                problems.append(f'CFM {interval} ms, trial {n} ({kind}): '
                                + '; '.join(why))
                break
        problems += [f'CFM {interval} ms controller: {e}'
                     for e in env.controller_errors()[:5]]
    return plan['name'], records, discarded, problems


def plot(records, main_interval, out_dir):
    main = [r for r in records if r['cfm_interval_ms'] == main_interval]
    kinds = [k for k in KINDS if any(r['fault'] == k for r in main)]
    series = {f'{r_kind}, {d}': [r['outage_ms'][d] for r in main
                                 if r['fault'] == r_kind]
              for r_kind in kinds for d in DIRS}
    series.update({f'failback after {k}, {d}': [
        r['failback_outage_ms'][d] for r in main if r['fault'] == k]
        for k in kinds for d in DIRS})
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


def plan_of(intervals, kinds, trials, sweep_trials):
    """{interval: (fault kinds, trials per kind)}: the first interval gets
    every kind, the others the kinds CFM decides (SWEEP_KINDS)."""
    out = {}
    for i, iv in enumerate(intervals):
        ks = list(kinds) if i == 0 else [k for k in kinds
                                          if k in SWEEP_KINDS]
        if ks:
            out[iv] = (ks, trials if i == 0 else sweep_trials)
    return out


def run(fabric='clos', progress=print, trials=20, sweep_trials=5,
        intervals=INTERVALS, kinds=KINDS, seed=1):
    out_dir = results.run_dir(f'gateway-failover-{fabric}')
    rng = random.Random(seed)
    plan = plan_of(intervals, kinds, trials, sweep_trials)
    expected = sum(len(ks) * n for ks, n in plan.values())
    bar = harness.TrialBar(expected, progress)
    records, discarded, problems, name = [], [], [], fabric
    for iv, (ks, n) in plan.items():
        if problems:
            break
        progress(f"CFM interval {iv} ms: {n} trials per fault kind "
                 f"({', '.join(ks)})")
        sub = os.path.join(out_dir, f'cfm-{iv}ms')
        os.makedirs(sub, exist_ok=True)
        name, recs, disc, probs = run_interval(fabric, iv, ks, n, rng, bar,
                                               sub, progress)
        records += recs
        discarded += disc
        problems += probs
    outages = {}
    for iv in plan:
        mine = [r for r in records if r['cfm_interval_ms'] == iv]
        outages.update(stats.flat(stats.summarize(mine), f'@{iv}ms '))
        outages.update(stats.flat(stats.summarize(mine, 'failback_outage_ms'),
                                  f'@{iv}ms failback after '))
    targets = [stats.target(outages, f'@10ms {k}', 'p95', lim)
               for k, lim in TARGETS if 10 in plan and
               k.replace('failback after ', '').split()[0] in plan[10][0]]
    if 3 in plan:                       # and at OVS's shortest interval
        targets += [stats.target(outages, f'@3ms power {d}', 'p95', 100)
                    for d in DIRS]
    artifacts = plot(records, intervals[0], out_dir) if records else []
    if len(records) < expected and not problems:
        problems.append(f'{len(records)} of {expected} trials ran')
    dups = sum(sum(r['forwarded_by_both'].values()) +
               sum(r['failback_forwarded_by_both'].values())
               for r in records)
    together = max((max(list(r['both_forwarding_ms'].values()) +
                        list(r['failback_both_forwarding_ms'].values()))
                    for r in records), default=None)
    targets.append({'key': 'both gateways forwarding', 'stat': 'max',
                    'limit': 0, 'measured': together, 'unit': 'ms',
                    'met': together == 0})
    targets.append({'key': 'probes forwarded by both gateways', 'stat':
                    'total', 'limit': 0, 'measured': dups, 'unit': 'probes',
                    'met': dups == 0 and bool(records)})
    metrics = {'rate_pps': RATE, 'seed': seed, 'cfm_intervals_ms':
               list(plan), 'kinds': {iv: ks for iv, (ks, _) in plan.items()},
               'trials_per_kind': {iv: n for iv, (_, n) in plan.items()},
               'outages': outages, 'targets': targets,
               'probes_forwarded_by_both': dups,
               'trials': records, 'discarded': discarded,
               'problems': problems}
    res = results.result('gateway-failover', name,
                         not problems and len(records) == expected, metrics,
                         artifacts)
    results.save(res, out_dir)
    return res
