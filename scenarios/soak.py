"""The fault soak: `./run.py soak --faults N --seed S [--topo clos|vcf]`.

One lab, N faults from the catalog (scenarios/faults.py) in a seeded order
(same lab, N and seed: same faults), each held `hold` seconds and then
repaired; after each repair an oracle must hold within `settle` seconds:

  reach     every pair of hosts of a logical switch pings (each pair's
            first direction; VMs, physical servers);
  switches  every switch's OpenFlow session is up and reconciled, and the
            flows on its br-int are as many as the controller says it
            installed (a stale or missing flow shows as a difference);
            the controller's session to each node's OVSDB is up;
  vteps     every hardware VTEP's OVSDB session is up, its tables hold
            exactly what the controller wants (its last comparison found
            nothing to change: no stale or missing MAC, locator or
            binding), and the remote MACs in its database, read directly,
            are as many as the controller's replica holds;
  errors    no new ERROR line or traceback in the controller's log.

During the whole soak tcpdump runs on every host's port: at the end, no
frame may carry the source MAC of a host of another logical switch. UDP
probe streams (one pair of hosts per logical switch, PROBE_RATE each way
the stream goes) run for the whole soak too: every silence of at least
PROBE_GAP_S is a probe gap, put against the fault it fell in (the report
and the timeline show them; the gaps are measured, not judged, but a
stream that delivered nothing at the start or at the end measured nothing
and fails the soak).

The first fault after which the oracle does not hold within `settle` ends
the soak: the result names it and the sequence that led to it, the
evidence is saved, and `--replay results/soak/<UTC>/result.json` runs that
same sequence again. Results: result.json (every fault: when applied,
repaired, healed, and the oracle's last answer), report.md and
timeline.png (faults and heal times).
"""
import contextlib
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from topologies import labs, spec as specmod

from . import faults as catalog, harness, probe, results, stats

HOLD_S, SETTLE_S = 2.0, 60.0
SWITCH_ROLES = specmod.BR_INT_ROLES
PROBE_RATE, PROBE_GAP_S, PROBE_STREAMS, PROBE_PORT = 100, 0.1, 4, 9300
PROBE_EDGE_S = 10       # a stream must deliver in its first and last 10 s


def probe_pairs(plan, todo, most=PROBE_STREAMS):
    """[(a, b)]: the first pair of hosts of each logical switch (at most
    `most`), for the soak's probe streams."""
    n, out, seen = plan['nodes'], [], set()
    for a, b, _ in todo:
        if n[a]['ls'] not in seen and len(out) < most:
            seen.add(n[a]['ls'])
            out.append((a, b))
    return out


def fault_windows(log, settle):
    """[(index, kind, start, end)]: each fault from when it was applied to
    when the oracle held again (or `settle` after the repair)."""
    out = []
    for e in log:
        if 'applied' not in e or 'repaired' not in e:
            continue
        heal = e.get('healed_s')
        out.append((e['index'], e['fault']['kind'], e['applied'],
                    e['repaired'] + (heal if heal is not None else settle)))
    return out


def probe_gaps(times, t_start, log, settle, min_s=PROBE_GAP_S):
    """{stream: [receive times]} -> [{'stream', 'at' (s since the soak's
    start), 'ms', 'fault' (index, or None: outside every fault), 'kind'}],
    in time order."""
    windows = fault_windows(log, settle)
    out = []
    for name, ts in sorted(times.items()):
        for a, b in probe.silences(ts, min_s):
            at = a - t_start
            hit = next((w for w in windows if w[2] - min_s <= at <= w[3]),
                       None)
            out.append({'stream': name, 'at': round(at, 3),
                        'ms': round((b - a) * 1000, 1),
                        'fault': hit[0] if hit else None,
                        'kind': hit[1] if hit else None})
    return sorted(out, key=lambda g: (g['at'], g['stream']))


def stream_problems(times, started, stopped, edge=PROBE_EDGE_S):
    """[problem] for each stream that delivered nothing within `edge` s of
    its start, or of its end: it measured nothing there."""
    out = []
    for name, ts in sorted(times.items()):
        if not any(started <= t <= started + edge for t in ts):
            out.append(f'probe stream {name}: nothing arrived in its first '
                       f'{edge} s')
        if not any(stopped - edge <= t <= stopped for t in ts):
            out.append(f'probe stream {name}: nothing arrived in its last '
                       f'{edge} s')
    return out


def gaps_by_kind(gaps):
    """{kind (or 'outside faults'): {'gaps', 'longest_ms'}}."""
    out = {}
    for g in gaps:
        d = out.setdefault(g['kind'] or 'outside faults',
                           {'gaps': 0, 'longest_ms': 0.0})
        d['gaps'] += 1
        d['longest_ms'] = max(d['longest_ms'], g['ms'])
    return out


def pairs(plan):
    """[(a, b, b's address)]: each unordered pair of hosts of one logical
    switch, once."""
    n = plan['nodes']
    hosts = sorted(h for h, p in n.items() if p.get('ls') and p.get('ip')
                   and p['role'] in ('vm', 'bare_metal', 'appliance'))
    return [(a, b, n[b]['ip'].split('/')[0]) for i, a in enumerate(hosts)
            for b in hosts[i + 1:] if n[a]['ls'] == n[b]['ls']]


def foreign_frames(frames, plan):
    """frames: {host: [decoded frames on its port]} -> ['host: src (owner,
    its switch)'] for frames whose source MAC is a host of another logical
    switch."""
    n = plan['nodes']
    hosts = [h for h, p in n.items() if p.get('mac') and p.get('ls')]
    ls_of = {h: n[h]['ls'] for h in hosts}
    mac_of = {h: n[h]['mac'] for h in hosts}
    return [f"{host}: {r['src']} ({src}, {ls_of[src]})"
            for host, recs in sorted(frames.items())
            for r, src in harness.foreign(recs, host, ls_of, mac_of)]


def switch_problems(status, device_flows, plan):
    """[problem] from the controller's /status and {switch: its br-int's
    flow count (None: could not read)}."""
    sw, out = status.get('switches', {}), []
    for name in sorted(n for n, p in plan['nodes'].items()
                       if p['role'] in SWITCH_ROLES):
        s = sw.get(name)
        if not s or not s.get('connected'):
            out.append(f'{name}: no OpenFlow session to the controller')
        elif s.get('flows') is None:
            out.append(f'{name}: not reconciled yet')
        elif device_flows.get(name) != s['flows']:
            out.append(f"{name}: {device_flows.get(name)} flows on br-int, "
                       f"the controller installed {s['flows']}")
    for name, s in sorted(status.get('node_ovsdb', {}).get('nodes',
                                                            {}).items()):
        if not s.get('connected'):
            out.append(f'{name}: no OVSDB session to the controller')
    return out


def vtep_problems(status, db_macs, plan):
    """[problem] from the controller's /status (hardware_vteps) and
    {VTEP: remote MACs in its database, read directly (None: could not
    read)}."""
    by_name = {v['name']: v for v in status.get('hardware_vteps', [])}
    out = []
    for name in sorted(n for n, p in plan['nodes'].items()
                       if p['role'] == 'hw_vtep'):
        v = by_name.get(name)
        if not v or not v.get('connected'):
            out.append(f'{name}: no OVSDB session to the controller')
        elif v.get('pending_ops') is None:
            out.append(f'{name}: not compared with the controller yet')
        elif v['pending_ops']:
            out.append(f"{name}: {v['pending_ops']} change(s) between its "
                       "tables and the controller's view")
        elif db_macs.get(name) != v['counts']['remote_macs']:
            out.append(f'{name}: {db_macs.get(name)} remote MACs in its '
                       f"database, the controller's replica has "
                       f"{v['counts']['remote_macs']}")
    return out


def _remote_macs(lab, name):
    """Rows of Ucast_Macs_Remote in VTEP `name`'s database, asked on its
    own socket (not through the controller)."""
    query = json.dumps(['hardware_vtep', {
        'op': 'select', 'table': 'Ucast_Macs_Remote', 'where': [],
        'columns': ['MAC']}])
    r = subprocess.run(['ovsdb-client', '--timeout=10', 'transact',
                        lab.db(name), query], capture_output=True,
                       text=True, timeout=20)
    try:
        return len(json.loads(r.stdout)[0]['rows'])
    except (ValueError, LookupError, TypeError):
        return None


def _ping_all(lab, todo, workers=8):
    """-> [pairs of `todo` that did not answer]."""
    def ping(pair):
        a, _b, ip = pair
        return lab.node(a).ns_run(['ping', '-c', '1', '-W', '1', ip],
                                  timeout=10).returncode == 0
    with ThreadPoolExecutor(workers) as pool:
        return sorted(p for p, ok in zip(todo, pool.map(ping, todo))
                      if not ok)


def _flow_count(lab, name):
    r = lab.node(name).ns_run(['ovs-ofctl', '-O', 'OpenFlow13',
                               'dump-aggregate', 'br-int'], timeout=10)
    for word in r.stdout.split():
        if word.startswith('flow_count='):
            return int(word.split('=')[1])
    return None


def oracle(lab, plan, todo, errors_before):
    """-> {'unreached': [...], 'switches': [...], 'errors': [...]}."""
    status = lab.ctl.get('/status')
    counts = {n: _flow_count(lab, n) for n, p in plan['nodes'].items()
              if p['role'] in SWITCH_ROLES}
    macs = {n: _remote_macs(lab, n) for n, p in plan['nodes'].items()
            if p['role'] == 'hw_vtep'}
    errs = harness.log_errors(lab.ctl.log_path)[errors_before:]
    return {'unreached': [f'{a}->{b}' for a, b, _ in _ping_all(lab, todo)],
            'switches': switch_problems(status, counts, plan),
            'vteps': vtep_problems(status, macs, plan),
            'errors': errs[:10]}


STATE_CMDS = {
    'ovs': [['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', 'br-int'],
            ['ovs-vsctl', 'show'], ['ovs-appctl', 'bfd/show'],
            ['ovs-appctl', 'tnl/neigh/show'], ['ovs-appctl',
                                                'ovs/route/show'],
            ['ip', 'addr'], ['ip', 'route'], ['ip', 'neigh']],
    'router': [['ip', 'addr'], ['ip', 'route'], ['ip', 'neigh'],
               ['vtysh', '--vty_socket', '{run_dir}', '-c',
                'show ip bgp summary'],
               ['vtysh', '--vty_socket', '{run_dir}', '-c',
                'show ip route']],
    'host': [['ip', 'addr'], ['ip', 'neigh']]}


def save_state(lab, where):
    """Every node's forwarding state, as text, into `where` (a failed
    oracle's evidence: what a user would look at next)."""
    os.makedirs(where, exist_ok=True)
    for name, p in sorted(lab.plan['nodes'].items()):
        kind = 'ovs' if p['role'] in SWITCH_ROLES + ('hw_vtep',) else \
            'router' if p['role'] in ('spine', 'leaf') else 'host'
        with open(os.path.join(where, f'{name}.txt'), 'w') as f:
            for cmd in STATE_CMDS[kind]:
                cmd = [c.format(run_dir=lab.node(name).run_dir)
                       for c in cmd]
                try:
                    r = lab.node(name).ns_run(cmd, timeout=15)
                    text = r.stdout + r.stderr
                except Exception as exc:      # evidence, best effort
                    text = f'({exc})'
                f.write(f"$ {' '.join(cmd)}\n{text}\n")
    return where


def settle_until_healed(lab, plan, todo, errors_before, settle):
    """The oracle, again every 0.5 s until it holds or `settle` s pass ->
    its last answer."""
    t0 = time.time()
    while True:
        o = oracle(lab, plan, todo, errors_before)
        if healed(o) or time.time() - t0 > settle:
            return o
        time.sleep(0.5)


def healed(o):
    return not (o['unreached'] or o['switches'] or o['vteps'] or
                o['errors'])


def run(fabric='clos', progress=print, count=10, seed=1, hold=HOLD_S,
        settle=SETTLE_S, replay=None):
    if replay is not None:
        with open(replay) as f:
            old = json.load(f)
        fabric = old['metrics']['fabric']
        sequence = old['metrics']['sequence']
        seed = old['metrics'].get('seed')
    out_dir = results.run_dir(f'soak-{fabric}')
    env = harness.ControlledLab(labs.resolve(fabric), progress, out_dir)
    log, problems, t_start = [], [], time.time()
    frames, probe_times, span = {}, {}, {}
    with env as lab:
        plan = lab.plan
        if replay is None:
            sequence = catalog.schedule(plan, count, seed)
        for f in sequence:
            catalog.check(f, plan)
        todo = pairs(plan)
        progress(f'soak: {len(sequence)} faults on {plan["name"]} (seed '
                 f'{seed}); oracle: {len(todo)} pairs, every switch, every '
                 "hardware VTEP's tables, the controller log; hold "
                 f'{hold} s, settle <= {settle} s')
        # a fresh userspace OVS drops the first tunnelled frame to each next
        # hop while it resolves it: the lab is warmed up in rounds first
        o = settle_until_healed(lab, plan, todo, 0, settle)
        errors_seen = len(harness.log_errors(lab.ctl.log_path))
        if not healed(o):
            problems.append(f'the lab was not healthy before any fault: {o}')
        hosts = sorted({a for a, _, _ in todo} | {b for _, b, _ in todo})
        flows = [(f'{a}-{b}', a, b, PROBE_PORT + i)
                 for i, (a, b) in enumerate(probe_pairs(plan, todo))]
        # every port captured; a stream's own frames not on its two ends
        # (they would be most of the capture), anyone else's still are
        own = {h: f'not udp port {port}' for _, a, b, port in flows
               for h in (a, b)}
        groups = {}
        for h in hosts:
            groups.setdefault(own.get(h, ''), []).append(h)
        caps = [harness.Captures(lab, {h: 'eth0' for h in hs}, out_dir,
                                 bpf=bpf, snaplen=96)
                for bpf, hs in sorted(groups.items())]
        streams = harness.Streams(lab, flows, 24 * 3600, out_dir,
                                  rate=PROBE_RATE, tag='probe')
        def stop_streams():
            span['stopped'] = time.time()
            probe_times.update(streams.stop())

        with contextlib.ExitStack() as stack:
            for c in caps:
                stack.enter_context(c)
            stack.callback(stop_streams)        # before the captures end
            streams.start()
            span['started'] = time.time()
            progress(f'  probe streams ({PROBE_RATE}/s): '
                     + ', '.join(f[0] for f in flows))
            for i, fault in enumerate(sequence if not problems else []):
                what = catalog.describe(fault)
                entry = {'index': i + 1, 'fault': fault, 'what': what}
                log.append(entry)
                try:
                    rec = catalog.apply(lab, fault)
                    entry.update(applied=round(rec['at'] - t_start, 3),
                                 done=rec['done'])
                    time.sleep(hold)
                    entry['repaired'] = round(catalog.repair(lab, rec) -
                                              t_start, 3)
                except (RuntimeError, OSError, ValueError) as exc:
                    entry['error'] = str(exc)
                    problems.append(f'fault {i + 1} ({what}): {exc}')
                    break
                t_rep = time.time()
                o = settle_until_healed(lab, plan, todo, errors_seen, settle)
                entry['oracle'] = o
                if healed(o):
                    entry['healed_s'] = round(time.time() - t_rep, 3)
                    progress(f'  [{i + 1}/{len(sequence)}] {what}: healed '
                             f"{entry['healed_s']:.1f} s after the repair")
                else:
                    entry['healed_s'] = None
                    problems.append(
                        f'fault {i + 1} ({what}) not healed within '
                        f'{settle} s: {o}; sequence so far: '
                        + '; '.join(e['what'] for e in log))
                    progress(f'  [{i + 1}/{len(sequence)}] {what}: NOT '
                             f'healed within {settle} s: {o}')
                    entry['state'] = save_state(
                        lab, os.path.join(out_dir, 'state-at-failure'))
                    break
        frames = {h: fs for c in caps for h, fs in c.frames().items()}
        foreign = foreign_frames(frames, plan)
        if foreign:
            problems.append(f'{len(foreign)} frame(s) crossed logical '
                            f'switches, e.g. {foreign[:3]}')
        name = plan['name']
    # a stream that streams.start() did not get going has no times at all
    problems += stream_problems(
        {f[0]: probe_times.get(f[0], []) for f in flows},
        span.get('started', t_start), span.get('stopped', time.time()))
    gaps = probe_gaps(probe_times, t_start, log, settle)
    heals = [e['healed_s'] for e in log if e.get('healed_s') is not None]
    metrics = {
        'fabric': fabric, 'seed': seed, 'sequence': sequence,
        'faults_planned': len(sequence),
        'faults_survived': len(heals), 'faults': log,
        'permanent_losses': sum(1 for e in log if 'oracle' in e and
                                e.get('healed_s') is None),
        'heal_s': _describe(heals), 'pairs': len(todo),
        'frames_captured': sum(len(v) for v in frames.values()),
        'cross_tenant_frames': len(foreign), 'problems': problems,
        'by_kind': _by_kind(log),
        'probe': {'rate': PROBE_RATE, 'min_gap_ms': PROBE_GAP_S * 1000,
                  'streams': {f[0]: len(probe_times.get(f[0], []))
                              for f in flows},
                  'gaps': gaps, 'by_kind': gaps_by_kind(gaps)}}
    passed = not problems and len(heals) == len(sequence)
    artifacts = sorted(f for c in caps for f in c.files.values()) + \
        sorted(streams.paths.values()) + [
            os.path.join(out_dir, 'controller.log')]
    for path in (report(metrics, name, out_dir),
                 timeline(log, out_dir, gaps)):
        if path:
            artifacts.append(path)
    res = results.result('soak', name, passed, metrics, artifacts)
    results.save(res, out_dir)
    return res


def _describe(xs):
    return stats.describe(xs) if xs else None


def _by_kind(log):
    out = {}
    for e in log:
        k = e['fault']['kind']
        d = out.setdefault(k, {'faults': 0, 'healed': 0, 'heal_s': []})
        d['faults'] += 1
        if e.get('healed_s') is not None:
            d['healed'] += 1
            d['heal_s'].append(e['healed_s'])
    for d in out.values():
        d['heal_s'] = _describe(d['heal_s'])
    return out


def report(m, name, out_dir):
    lines = [f"# Fault soak on {name} (seed {m['seed']})", '',
             f"{m['faults_survived']} of {m['faults_planned']} faults "
             f"survived; {m['permanent_losses']} permanent loss(es); "
             f"{m['cross_tenant_frames']} cross-tenant frame(s) in "
             f"{m['frames_captured']} captured; oracle over {m['pairs']} "
             'pairs after each repair.', '',
             '| kind | faults | healed | heal p50 / p95 / max, s |',
             '|---|---|---|---|']
    for k, d in sorted(m['by_kind'].items()):
        h = d['heal_s']
        lines.append(f"| {k} | {d['faults']} | {d['healed']} | " + (
            f"{h['p50']:.1f} / {h['p95']:.1f} / {h['max']:.1f}" if h
            else '-') + ' |')
    pr = m.get('probe')
    if pr:
        gaps = pr['gaps']
        lines += ['', '## Probe gaps', '',
                  f"Streams at {pr['rate']}/s for the whole soak: "
                  + ', '.join(f'{k} ({v} received)' for k, v in
                              sorted(pr['streams'].items()))
                  + f"; {len(gaps)} silence(s) of at least "
                  f"{pr['min_gap_ms']:.0f} ms.", '',
                  '| during | gaps | longest, ms |', '|---|---|---|']
        for k, d in sorted(pr['by_kind'].items()):
            lines.append(f"| {k} | {d['gaps']} | {d['longest_ms']:.0f} |")
        longest = sorted(gaps, key=lambda g: -g['ms'])[:10]
        if longest:
            lines += ['', '| stream | at, s | ms | fault |', '|---|---|---|---|']
            lines += [f"| {g['stream']} | {g['at']:.1f} | {g['ms']:.0f} | "
                      f"{g['fault'] if g['fault'] else '-'} |"
                      for g in longest]
    lines += ['', '| # | fault | healed after, s |', '|---|---|---|']
    for e in m['faults']:
        lines.append(f"| {e['index']} | {e['what']} | "
                     f"{e.get('healed_s', '-')} |")
    if m['problems']:
        lines += ['', '## Problems', ''] + [f'- {p}' for p in m['problems']]
    path = os.path.join(out_dir, 'report.md')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def timeline(log, out_dir, gaps=()):
    """PNG: one row per fault, the fault held (applied -> repaired), the
    time until the oracle held again, and the probe gaps that fell in it
    (gaps outside every fault on a last row)."""
    done = [e for e in log if 'repaired' in e]
    if not done:
        return None
    from .failplots import _plt
    plt = _plt()
    row_of = {e['index']: row for row, e in enumerate(done)}
    outside = [g for g in gaps if g['fault'] not in row_of]
    rows = len(done) + (1 if outside else 0)
    fig, ax = plt.subplots(figsize=(10, max(3, 0.25 * rows + 1)))
    colors = {'crash': 'tab:red', 'freeze': 'tab:purple', 'cut': 'tab:orange',
              'partition': 'tab:brown', 'controller': 'tab:blue',
              'several': 'black'}
    for row, e in enumerate(done):
        k = e['fault']['kind']
        ax.barh(row, e['repaired'] - e['applied'], left=e['applied'],
                color=colors.get(k, 'grey'), height=0.6)
        if e.get('healed_s') is not None:
            ax.barh(row, e['healed_s'], left=e['repaired'], color='tab:green',
                    height=0.3)
        else:
            ax.plot(e['repaired'], row, 'kx', ms=10)
    for g in gaps:
        row = row_of.get(g['fault'], len(done))
        ax.barh(row - 0.3, max(g['ms'] / 1000, 0.3), left=g['at'],
                color='gold', edgecolor='black', linewidth=0.5, height=0.25)
    labels = [f"{e['index']} {e['what']}"[:48] for e in done] + (
        ['probe gaps outside faults'] if outside else [])
    ax.set_yticks(range(rows))
    ax.set_yticklabels(labels, fontsize=6)
    ax.invert_yaxis()
    from matplotlib.patches import Patch
    used = sorted({e['fault']['kind'] for e in done})
    handles = [Patch(color=colors.get(k, 'grey'), label=k) for k in used] + [
        Patch(color='tab:green', label='until the oracle held')] + (
        [Patch(facecolor='gold', edgecolor='black', label='probe gap')]
        if gaps else [])
    ax.set_xlabel('seconds since the soak started')
    ax.set_title('fault soak: faults held, time to heal (x: never), probe '
                 'gaps')
    ax.legend(handles=handles, fontsize=7, loc='upper left',
              bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3, axis='x')
    fig.tight_layout()
    path = os.path.join(out_dir, 'timeline.png')
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
