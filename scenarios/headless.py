"""Scenario headless: the controller dies under traffic, and comes back.

Whitepaper ("Data Plane"): NSX vSwitches, once configured, "are able to
perform their task independently, even if the controller cluster were to
fail completely".

setup: lab, controller, provisioning; act: UDP probe streams at 1,000
packets/s (VM1 -> VM3 and back, across hypervisors; VM1 -> a physical server
through the software gateway); after `lead` seconds the controller is
killed (SIGKILL) and stays dead for `headless` seconds; then it restarts
from its database and reconciles while the streams go on for `tail`
seconds; measure: losses per phase, and what the restarted controller
sent each switch on its first pass (its own counts, GET /api/v1/status);
verify: zero lost in every phase, every switch reconciled, and no flow
added or deleted anywhere (it read what was installed); teardown: always,
evidence saved.
"""
import os
import time

from topologies import labs, spec as specmod

from . import harness, results

RATE = 1000


def first_passes(status, plan):
    """-> ({switch: its first pass's counts} for every switch of the plan
    that has reconciled, [switches that have not])."""
    sw = status.get('switches', {})
    names = sorted(n for n, p in plan['nodes'].items()
                   if p['role'] in specmod.BR_INT_ROLES)
    done = {n: {k: sw[n][k] for k in ('flows_added', 'flows_deleted',
                                      'group_mods', 'passes')}
            for n in names if sw.get(n, {}).get('passes', 0) >= 1}
    return done, [n for n in names if n not in done]


def streams(plan):
    """(name, sender, receiver, port): VM<->VM across hypervisors in one
    logical switch, and VM -> physical server through the gateway."""
    n = plan['nodes']
    vms = [v for v, p in n.items() if p['role'] == 'vm' and p.get('ls')]
    a = vms[0]
    b = next(v for v in vms if n[v]['ls'] == n[a]['ls'] and
             n[v]['intfs'][0]['peer'] != n[a]['intfs'][0]['peer'])
    out = [(f'{a}->{b}', a, b, 9000), (f'{b}->{a}', b, a, 9001)]
    srv = [h for h, p in n.items() if p['role'] == 'bare_metal' and
           p.get('ls') == n[a]['ls'] and
           n[p['intfs'][0]['peer']]['role'] == 'l2_segment']
    if srv:
        out.append((f'{a}->{srv[0]}', a, srv[0], 9002))
    return out


def phases(lead, headless, tail, t_kill, t_restart, t0):
    """Sequence-number ranges of each phase, from the measured instants."""
    k = int((t_kill - t0) * RATE)
    r = int((t_restart - t0) * RATE)
    end = int((lead + headless + tail) * RATE)
    return {'before': (0, k), 'headless': (k, r), 'reconciling': (r, end)}


def run(fabric='clos', progress=print, lead=3.0, headless=60.0, tail=15.0):
    out_dir = results.run_dir(f'headless-{fabric}')
    env = harness.ControlledLab(labs.resolve(fabric), progress, out_dir)
    metrics, evidence, total = {}, [], lead + headless + tail
    with env as lab:
        plan = lab.plan
        flows = streams(plan)
        ip = {h: plan['nodes'][h]['ip'].split('/')[0] for _, s, d, _ in
              flows for h in (s, d)}
        harness.until(lambda: all(
            lab.node(s).ns_run(['ping', '-c', '1', '-W', '1', ip[d]]
                               ).returncode == 0 for _, s, d, _ in flows), 30,
            step=0.5)
        probes = harness.Streams(lab, flows, total, out_dir, RATE)
        evidence += list(probes.paths.values())
        probes.start()
        t0 = time.monotonic()
        progress(f'  {len(flows)} probe streams at {RATE}/s for {total:.0f} s')
        time.sleep(lead)
        t_kill = time.monotonic()
        lab.ctl.proc.kill()                       # silent crash
        lab.ctl.proc.wait()
        progress(f'  controller killed; headless for {headless:.0f} s')
        time.sleep(headless)
        t_restart = time.monotonic()
        lab.ctl.start()
        progress('  controller restarted from its database')
        t_up = time.monotonic()
        while True:
            done, missing = first_passes(lab.ctl.get('/status'), plan)
            if not missing or time.monotonic() - t_up > 30:
                break
            time.sleep(0.5)
        progress(f'  {len(done)} switches reconciled' + (
            f' after {time.monotonic() - t_up:.1f} s' if not missing else
            f'; never: {missing}'))
        got = probes.finish()
    span = phases(lead, headless, tail, t_kill, t_restart, t0)
    changes = [f"{n}: +{c['flows_added']} -{c['flows_deleted']}"
               for n, c in sorted(done.items())
               if c['flows_added'] or c['flows_deleted']]
    per_stream, passed = {}, True
    for name, g in got.items():
        (sent, seqs), res = g, g.analyse(RATE)
        have = set(seqs)
        res['by_phase'] = {ph: sum(1 for seq in range(a, min(b, sent))
                                   if seq not in have)
                           for ph, (a, b) in span.items()}
        per_stream[name] = res
        passed = passed and sent > 0 and res['lost'] == 0
    metrics.update(streams=per_stream, rate_pps=RATE,
                   headless_s=round(t_restart - t_kill, 3),
                   switches_reconciled=len(done),
                   switches_not_reconciled=missing,
                   first_pass_after_restart=done,
                   flow_changes_after_restart=changes,
                   controller_errors=env.controller_errors()[:20])
    passed = passed and not changes and not missing and bool(done) and \
        not metrics['controller_errors']
    res = results.result('headless', plan['name'], passed, metrics,
                         evidence + [os.path.join(out_dir, 'controller.log')])
    results.save(res, out_dir)
    return res
