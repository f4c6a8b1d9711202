"""Benchmark: controller push latency. How long from a change of the
desired state to its flows being present on every hypervisor it concerns,
at 1, 10 and 100 hypervisors, and how many OpenFlow messages it costs.

Per size, a Clos lab with that many hypervisors, one logical switch with
two VMs on each (so every change below concerns every hypervisor), the
controller. Two kinds of change, --trials each:
  api   an API write: a VM's logical port deleted, then attached again
        (alternately); the clock starts when the request is sent;
  vif   a port event: the VM moves to another hypervisor
        (topologies/vmotion.py) and the destination announces it in its
        OVSDB; the clock starts when that write begins. Needs 2
        hypervisors: at 1 there is nothing to move to (reported as such).
"Present" is the switch's word for it: the controller sends a barrier
after each switch's flow mods and records when the answer came
(GET /api/v1/pushes). Per change: ms until the last hypervisor confirmed
(to all) and per hypervisor, p50/p95/max over the trials; messages per
change (flow and group mods, all switches).
"""
import time

from scenarios import harness, results, stats
from topologies import builders, vmotion

SIZES = (1, 10, 100)
TARGET_MS = 20                   # p95, to all of 100 hypervisors
WAIT_S = 15
STABLE_S = 5.0                  # sessions up this long before the first change
SESSIONS_WAIT_S = 60.0


def lab_spec(n):
    """A Clos with n hypervisors, 2 VMs each on one logical switch."""
    return builders.clos(name=f'push-{n}', spines=2,
                         leaves=max(2, (n + 11) // 12), hypervisors=n,
                         vms=2 * n, service_nodes=2, gateways=0, hw_vteps=0,
                         bare_metal=0, logical_switches=1)


def hypervisors(plan):
    return sorted(n for n, p in plan['nodes'].items()
                  if p['role'] == 'hypervisor')


def sessions_stable(status, nodes, now, stable_s=None):
    """Every node in `nodes` has had its OpenFlow session up for
    `stable_s` (GET /status's switches: connected, since)."""
    return not harness.sessions_down(
        status, nodes, now, STABLE_S if stable_s is None else stable_s)


def wait_pushes(ctl, since, nodes, t0, timeout=WAIT_S):
    """Poll the controller's push log until every node in `nodes`
    confirmed a change after generation `since` -> ({node: ms from t0 to
    its first confirmation}, {node: ms from t0 to when the controller had
    sent that push}, OpenFlow messages in those pushes, the nodes that
    never confirmed)."""
    got, sent, msgs = {}, {}, 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = ctl.get(f'/pushes?since={since}')
        got, msgs, sent = {}, 0, {}
        for p in log['pushes']:
            msgs += p['msgs']
            if p['node'] in nodes and p['node'] not in got:
                got[p['node']] = round((p['acked'] - t0) * 1000, 1)
                if p.get('sent'):
                    sent[p['node']] = round((p['sent'] - t0) * 1000, 1)
        if set(nodes) <= set(got):
            return got, sent, msgs, []
        time.sleep(0.02)
    return got, sent, msgs, sorted(set(nodes) - set(got))


def figures(kind, n, per_node, msgs, sent=None):
    """One change's record; sent_all_ms: when the controller had sent the
    last switch its flow mods and barrier (the rest of to_all_ms is the
    switches' own time to apply and answer)."""
    return {'kind': kind, 'hypervisors': n,
            'to_all_ms': max(per_node.values()) if per_node else None,
            'per_node_ms': sorted(per_node.values()), 'msgs': msgs,
            'sent_all_ms': max(sent.values()) if sent else None}


def run_size(n, trials, progress, out_dir):
    records, problems = [], []
    env = harness.ControlledLab(lab_spec(n), progress, out_dir)
    with env as lab:
        plan, ctl = lab.plan, lab.ctl
        hvs = hypervisors(plan)
        vm = 'vm1'
        port = next(p for ls in ctl.get('/logical-switches')
                    for p in ctl.get(f"/logical-switches/{ls['id']}/ports")
                    if p['attachment'] == vm)
        ls_id = port['ls_id']
        # every hypervisor's OpenFlow session up, and for STABLE_S: seen
        # twice in make test, one dropped (TLS EOF) just after the lab's
        # start and came back 3-4 s later (OVS's backoff), after the
        # first change had gone out: a trial that measured nothing
        if harness.until(lambda: sessions_stable(ctl.get('/status'), hvs,
                                                 time.time()),
                         SESSIONS_WAIT_S, 0.2) is None:
            problems.append(f'{n} hypervisors: not every hypervisor had an '
                            f'OpenFlow session up for {STABLE_S:.0f} s '
                            f'within {SESSIONS_WAIT_S:.0f} s')
            trials = 0
        bar = harness.TrialBar(trials * (2 if n > 1 else 1), progress)
        for k in range(trials):                  # API writes
            since = ctl.get('/pushes?since=0')['generation']
            t0 = time.time()
            if port:
                status, _ = ctl.request('DELETE',
                                        f"/logical-ports/{port['id']}")
                port = None
            else:
                status, port = ctl.request(
                    'POST', f'/logical-switches/{ls_id}/ports',
                    {'attachment': vm})
            per, sent, msgs, missing = wait_pushes(ctl, since, hvs, t0)
            rec = figures('api', n, per, msgs, sent)
            records.append(rec)
            bar.step(f"{n} hypervisors, API write: to all "
                     f"{rec['to_all_ms']} ms, {msgs} messages")
            if status not in (201, 204) or missing:
                problems.append(f'{n} hypervisors, API trial {k + 1}: '
                                f'status {status}, never confirmed by '
                                f'{missing[:5]}')
                break
        if port is None:
            ctl.request('POST', f'/logical-switches/{ls_id}/ports',
                        {'attachment': vm})
        located = {}
        home = vmotion.where_is(plan, vm)
        other = next((h for h in hvs if h != home), None)
        for k in range(trials if other and not problems else 0):
            time.sleep(0.2)
            since = ctl.get('/pushes?since=0')['generation']
            dst = other if k % 2 == 0 else home
            moved = vmotion.move_vm(lab, vm, dst, located)
            per, sent, msgs, missing = wait_pushes(ctl, since, hvs,
                                             moved['announced'])
            rec = figures('vif', n, per, msgs, sent)
            records.append(rec)
            bar.step(f"{n} hypervisors, VIF moved: to all "
                     f"{rec['to_all_ms']} ms, {msgs} messages")
            if missing:
                problems.append(f'{n} hypervisors, VIF trial {k + 1}: never '
                                f'confirmed by {missing[:5]}')
                break
        problems += [f'{n} hypervisors controller: {e}'
                     for e in env.controller_errors()[:5]]
    return records, problems


def _describe(values):
    return stats.describe(values) if values else {}


def summarize(records):
    out = {}
    for kind in ('api', 'vif'):
        for n in sorted({r['hypervisors'] for r in records}):
            mine = [r for r in records
                    if (r['kind'], r['hypervisors']) == (kind, n)]
            if not mine:
                continue
            key = f'{kind} to {n}'
            out[key] = {'to all': stats.describe(
                [r['to_all_ms'] for r in mine]),
                'per hypervisor': stats.describe(
                    [ms for r in mine for ms in r['per_node_ms']]),
                'messages per change': stats.describe(
                    [r['msgs'] for r in mine]),
                'sent to all': _describe([r['sent_all_ms'] for r in mine
                                          if r.get('sent_all_ms')
                                          is not None])}
    return out


def run(sizes=SIZES, trials=20, progress=print):
    out_dir = results.run_dir('bench-controller')
    records, problems = [], []
    for n in sizes:
        if problems:
            break
        progress(f'{n} hypervisor(s): {trials} API writes'
                 + (f', {trials} VIF moves' if n > 1 else
                    ' (no VIF move: one hypervisor)'))
        recs, probs = run_size(n, trials, progress, out_dir)
        records += recs
        problems += probs
    summary = summarize(records)
    targets = []
    for kind in ('api', 'vif'):
        key = f'{kind} to {max(sizes)}'
        if key in summary:
            got = summary[key]['to all']['p95']
            targets.append({'what': f'{kind} change to all {max(sizes)} '
                            'hypervisors, p95 ms', 'limit': TARGET_MS,
                            'measured': got, 'met': got <= TARGET_MS})
    table = [('change', 'to all p50', 'p95', 'max', 'per hv p50', 'p95',
              'sent p50', 'p95', 'msgs p50')] + [
        (k, v['to all']['p50'], v['to all']['p95'], v['to all']['max'],
         v['per hypervisor']['p50'], v['per hypervisor']['p95'],
         v['sent to all'].get('p50'), v['sent to all'].get('p95'),
         v['messages per change']['p50']) for k, v in summary.items()]
    metrics = {'sizes': list(sizes), 'trials': trials, 'summary': summary,
               'targets': targets, 'records': records, 'problems': problems}
    res = results.result('bench-controller', 'clos', not problems, metrics,
                         [])
    results.save(res, out_dir)
    res['table'] = table
    return res
