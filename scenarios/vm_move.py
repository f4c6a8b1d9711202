"""Scenario vm-move: a running VM moves between two hypervisors keeping
its MAC and IP (vMotion-style, topologies/vmotion.py), under UDP probe
streams at 1,000/s both ways with a VM on a third hypervisor.

As vCenter tells NSX that a vMotion starts, each move begins with the API
action POST /logical-ports/{id}/move {"transport_node": destination} (the
port stays where it is; only a VIF on the destination will bind it). At
the switchover the destination hypervisor announces the VM's port in its
own OVSDB (external_ids:iface-id); the controller follows every
hypervisor's OVSDB (controllers/nodedb.py) and binds the logical port
there, then reprograms the hypervisors: no API call is on the cut-over
path. Per trial (one move,
alternately there and back): the downtime per direction on the receive
clock (scenarios/probe.py, the sequence clock beside it), and when the
controller bound the port, in ms after the VM switched vNICs (its log).
A trial whose streams were not flowing before the move, or had not resumed
by the end of its window, fails the run; one whose probe sender stalled
during the downtime is reported (the figure is then an upper bound).
"""
import datetime
import os
import re
import time

from topologies import vmotion

from . import failplots, harness, results, stats

RATE = 1000
VM, PEER = 'vm1', 'vm3'
TARGET_MS = 50                   # VM side p95, both directions
BOUND = re.compile(r'^(\S+ \S+) nsx\.core INFO (\S+): VIF (.+) bound here')


def bound_times(log_text, vm):
    """[(epoch, hypervisor)] of the controller binding `vm`'s port where
    its VIF appeared (controllers/core.py: vifs_changed)."""
    out = []
    for line in log_text.splitlines():
        m = BOUND.match(line)
        if m and vm in m.group(3).split(', '):
            t = datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S,%f')
            out.append((t.timestamp(), m.group(2)))
    return out


def hypervisors_for(plan, vm):
    """(the VM's own hypervisor, another one to move it to, not the
    peer's)."""
    home = plan['nodes'][vm]['intfs'][0]['peer']
    peer_hv = plan['nodes'][PEER]['intfs'][0]['peer']
    other = sorted(n for n, p in plan['nodes'].items()
                   if p['role'] == 'hypervisor' and n not in (home, peer_hv))
    return home, other[0]


def request_move(ctl, port, dst):
    """The API action that starts a move -> None, or what went wrong."""
    status, body = ctl.request('POST', f'/logical-ports/{port}/move',
                               {'transport_node': dst})
    if status != 202 or body.get('requested_node') != dst:
        return f'POST /logical-ports/{port}/move answered {status} {body}'
    return None


def run(fabric='clos', progress=print, trials=20, seed=1, seconds=3.0):
    out_dir, rng, env = harness.measured_run('vm-move', fabric, seed,
                                             progress)
    records, problems = [], []
    with env as lab:
        plan = lab.plan
        home, away = hypervisors_for(plan, VM)
        ip = {h: plan['nodes'][h]['ip'].split('/')[0] for h in (VM, PEER)}
        flows = [(f'{VM}->{PEER}', VM, PEER, 9500),
                 (f'{PEER}->{VM}', PEER, VM, 9501)]
        if harness.until(lambda: lab.node(VM).ns_run(
                ['ping', '-c', '1', '-W', '1', ip[PEER]]).returncode == 0,
                30, 0.5) is None:
            problems.append(f'{VM} never reached {PEER}')
        bar = harness.TrialBar(trials, progress)
        located = {}
        port = harness.port_id(lab.ctl, VM)
        for k in range(1, trials + 1):
            if problems:
                break
            dst = away if k % 2 else home
            time.sleep(0.5 + rng.uniform(0, 0.2))
            mark = os.path.getsize(lab.ctl.log_path)
            probes = harness.Streams(lab, flows, seconds, out_dir, RATE,
                                     f'move-{k:02d}').start()
            time.sleep(1.0)
            refused = request_move(lab.ctl, port, dst)
            if refused:
                problems.append(f'trial {k}: {refused}')
                probes.finish()
                break
            moved = vmotion.move_vm(lab, VM, dst, located)
            got = probes.finish()
            for path in probes.paths.values():
                os.remove(path)
            fig = harness.clocks(got, RATE)
            with open(lab.ctl.log_path) as f:
                f.seek(mark)
                bound = [t for t, hv in bound_times(f.read(), VM)
                         if hv == dst]
            rec = {'trial': k, 'from': moved['src'], 'to': dst,
                   'outage_ms': fig['outage_ms'],
                   'outage_seq_ms': fig['outage_seq_ms'],
                   'sender_lag_ms': fig['sender_lag_ms'],
                   'sender_stalled': harness.stall_note(fig) or None,
                   'announce_after_switch_ms': round(
                       (moved['announced'] - moved['switchover']) * 1000, 1),
                   'bound_after_switch_ms': round(
                       (bound[0] - moved['switchover']) * 1000, 1)
                   if bound else None,
                   'valid': not fig['why']}
            records.append(rec)
            bar.step(f"{moved['src']} -> {dst}: downtime " + ', '.join(
                f'{n} {ms:.0f}' for n, ms in fig['outage_ms'].items())
                + f" ms; bound +{rec['bound_after_switch_ms']} ms")
            why = [fig['why']] if fig['why'] else []
            if not bound:
                why.append(f'the controller never logged binding {VM} on '
                           f'{dst}')
            if why:
                problems.append(f'trial {k} ({moved["src"]} -> {dst}): '
                                + '; '.join(why))
        problems += [f'controller: {e}' for e in env.controller_errors()[:5]]
    summary = stats.flat(stats.summarize(records, group=lambda t: 'move'))
    bounds = stats.flat(stats.summarize(
        [{'b': {'controller bound the port': r['bound_after_switch_ms']}}
         for r in records if r['bound_after_switch_ms'] is not None], 'b',
        group=lambda t: 'after the switchover,'))
    targets = [stats.target(summary, f'move {n}', 'p95', TARGET_MS)
               for n, *_ in flows]
    artifacts = []
    if records:
        path = os.path.join(out_dir, 'downtime-per-trial.png')
        failplots.per_trial({n: [r['outage_ms'][n] for r in records]
                             for n, *_ in flows}, path,
                            f'VM move ({VM} between {home} and {away}): '
                            'downtime per trial')
        artifacts.append(path)
    metrics = {'rate_pps': RATE, 'seed': seed, 'vm': VM, 'peer': PEER,
               'hypervisors': [home, away], 'outages': summary,
               'bounds': bounds, 'targets': targets, 'trials': records,
               'problems': problems}
    res = results.result('vm-move', plan['name'],
                         not problems and len(records) == trials, metrics,
                         artifacts + [os.path.join(out_dir,
                                                   'controller.log')])
    results.save(res, out_dir)
    return res
