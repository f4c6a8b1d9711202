"""Scenario service-node-failover: the service node replicating a logical
switch's broadcasts dies; BUM traffic resumes through another service node
with no help from the controller (whitepaper, "Redundancy": hypervisors
keep-alive the service nodes and "can immediately switch to another one").

setup: lab, controller, provisioning; BFD up from every hypervisor and
gateway to both service nodes.
per trial: VM A broadcasts UDP probes (1,000/s, to its subnet's broadcast
address) that VM B, on another hypervisor, receives: A's hypervisor sends
them to one service node (fast-failover group, first live bucket), which
replicates them to B's. The service node in use is found from the group's
bucket counters. One second in, the controller is frozen (SIGSTOP: nothing
it does can help) and the service node in use is killed (kill -9 of its
ovs-vswitchd). BUM outage = longest run of missing sequence numbers at B;
verify that traffic resumed through the other service node (its bucket
counts). Then the controller resumes and, in a second window, the dead
service node is restarted: the group goes back to the first live bucket
once BFD is up again, and that failback's outage is measured too (the
restarted service node must have its flows before it gets traffic).
"""
import os
import signal
import time

from topologies import boot

from . import failplots, harness, probe, results, stats

RATE = 1000


def bucket_packets(lab, hv):
    """[packets per bucket] of the service-node fast-failover group."""
    out = lab.node(hv).ns_run(['ovs-ofctl', '-O', 'OpenFlow13',
                               'dump-group-stats', 'br-int',
                               'group_id=1']).stdout
    return [int(part.split('packet_count=')[1].split(',')[0])
            for part in out.split('bucket')[1:]]


def in_use(before, after, sns):
    """The service node whose bucket counted the most packets between two
    readings, or None."""
    deltas = [a - b for a, b in zip(after, before)]
    if not deltas or max(deltas) <= 0:
        return None
    return sns[deltas.index(max(deltas))]


def pick_pair(plan):
    n = plan['nodes']
    vms = [v for v, p in n.items() if p['role'] == 'vm' and p.get('ls')]
    a = vms[0]
    b = next(v for v in vms if n[v]['ls'] == n[a]['ls'] and
             n[v]['intfs'][0]['peer'] != n[a]['intfs'][0]['peer'])
    return a, b


def broadcast_of(cidr):
    import ipaddress
    return str(ipaddress.ip_interface(cidr).network.broadcast_address)


def _kill_vswitchd(lab, node):
    with open(os.path.join(lab.node(node).run_dir, 'ovs-vswitchd.pid')) as f:
        lab.node(node).ns_run(['kill', '-9', f.read().strip()])


def window(lab, a, b, dst, seconds, out_dir, tag, at, act):
    """Broadcast probes A -> B for `seconds`, act() `at` s in; ->
    (analysis, what act returned, received seqs, sent)."""
    probes = harness.Streams(lab, [('bum', a, b, 9200, dst)], seconds,
                             out_dir, RATE, tag).start()
    time.sleep(at)
    got = act()
    sent, seqs = probes.finish()['bum']
    os.remove(probes.paths['bum'])
    return probe.analyse(sent, seqs, RATE), got, seqs, sent


def run(fabric='clos', progress=print, trials=20, seed=1, seconds=3.0):
    out_dir, rng, env = harness.measured_run('service-node-failover', fabric, seed,
                                             progress)
    records, problems = [], []
    with env as lab:
        plan = lab.plan
        sns = sorted((s for s, p in plan['nodes'].items()
                      if p['role'] == 'service_node'),
                     key=lambda s: plan['nodes'][s]['index'])
        edges = [n for n, p in plan['nodes'].items()
                 if p['role'] in ('hypervisor', 'sw_gateway')]
        a, b = pick_pair(plan)
        hv_a = plan['nodes'][a]['intfs'][0]['peer']
        dst = broadcast_of(plan['nodes'][a]['ip'])
        if harness.until(lambda: harness.bfd_up(lab, edges, sns), 30,
                         0.2) is None:
            problems.append('BFD to every service node never came up')
        bar = harness.TrialBar(trials, progress)
        for n in range(1, trials + 1 if not problems else 1):
            time.sleep(3.5)       # BFD at its negotiated rate (DESIGN.md)
            at = 1.0 + rng.uniform(0, 0.2)
            state = {}

            def fault():
                c0 = c1 = bucket_packets(lab, hv_a)
                victim, deadline = None, time.time() + 1.0
                while victim is None and time.time() < deadline:
                    time.sleep(0.1)
                    c1 = bucket_packets(lab, hv_a)
                    victim = in_use(c0, c1, sns)
                state.update(victim=victim, before=c1, counters=(c0, c1))
                if victim:
                    os.kill(lab.ctl.proc.pid, signal.SIGSTOP)
                    state['frozen'] = True
                    _kill_vswitchd(lab, victim)
                return victim
            try:
                res, victim, seqs, sent = window(
                    lab, a, b, dst, seconds, out_dir, f'bum-{n:02d}', at,
                    fault)
                after = bucket_packets(lab, hv_a)
            finally:
                if state.get('frozen'):
                    os.kill(lab.ctl.proc.pid, signal.SIGCONT)
            why = []
            if not victim:
                why.append('no service node was carrying the broadcasts '
                           f"(group 1 bucket packets on {hv_a}: "
                           f"{state.get('counters')})")
                problems.append(f'trial {n}: ' + '; '.join(why))
                break
            others = [s for s in sns if s != victim]
            moved = [s for s in others if after[sns.index(s)] >
                     state['before'][sns.index(s)]]
            resumed = any(s >= sent - 300 for s in seqs)
            time.sleep(1.0)
            back_res, _, back_seqs, back_sent = window(
                lab, a, b, dst, seconds + 4.0, out_dir, f'back-{n:02d}', 1.0,
                lambda: lab.node(victim).ns_run(['bash', '-c',
                                                 boot.vswitchd_cmd(lab.node(
                                                     victim).run_dir)],
                                                check=True))
            back = harness.until(
                lambda: harness.bfd_up(lab, edges, sns), 30, 0.2)
            c0 = bucket_packets(lab, hv_a)
            window(lab, a, b, dst, 0.5, out_dir, f'via-{n:02d}', 0.1,
                   lambda: None)
            back_via = in_use(c0, bucket_packets(lab, hv_a), sns)
            rec = {'trial': n, 'victim': victim, 'resumed_via': moved,
                   'outage_ms': {'bum a->b': res['outage_ms']},
                   'lost': res['lost'], 'bfd_back_s': back,
                   'after_restart_via': back_via,
                   'after_restart_outage_ms': {
                       'bum a->b': back_res['outage_ms']}}
            records.append(rec)
            bar.step(f"killed {victim}: BUM outage {res['outage_ms']:.0f} ms"
                     f", resumed via {','.join(moved) or 'nothing'}; "
                     f"restarted: outage {back_res['outage_ms']:.0f} ms, "
                     f"back via {back_via}")
            if not moved or not resumed:
                why.append(f'broadcasts did not resume through another '
                           f'service node (buckets {after})')
            if back is None:
                why.append(f'BFD to {victim} never came back up')
            elif back_via != victim:
                why.append(f'broadcasts did not go back to {victim} once it '
                           f'was up again (via {back_via})')
            if why:
                problems.append(f'trial {n}: ' + '; '.join(why))
                break
        problems += [f'controller: {e}' for e in env.controller_errors()[:5]]
    summary = stats.flat(stats.summarize(records, group=lambda t: 'killed'))
    summary.update(stats.flat(stats.summarize(
        records, 'after_restart_outage_ms', group=lambda t: 'restarted')))
    artifacts = []
    if records:
        artifacts = [os.path.join(out_dir, 'bum-outage-per-trial.png')]
        failplots.per_trial({'service node killed': [
            r['outage_ms']['bum a->b'] for r in records],
            'it restarts (failback)': [r['after_restart_outage_ms']['bum a->b']
                                   for r in records]}, artifacts[0],
            'Service node failover: BUM outage per trial')
    metrics = {'rate_pps': RATE, 'seed': seed, 'pair': [a, b],
               'bfd_interval_ms': 100, 'outages': summary,
               'trials': records, 'problems': problems}
    res = results.result('service-node-failover', plan['name'],
                         not problems and len(records) == trials, metrics,
                         artifacts + [os.path.join(out_dir,
                                                   'controller.log')])
    results.save(res, out_dir)
    return res
