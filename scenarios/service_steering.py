"""Scenario service-steering: traffic of a protected VM redirected through
a partner firewall on its hypervisor (whitepaper: "VMware NSX Integration
with Juniper vSRX Firewall"; controllers.steering, devices/servicevm).

setup: lab, controller, provisioning; a service VM on the server's
hypervisor (the server: a VM of ls1; the client: a VM of ls1 on another
hypervisor), its policy denying telnet to group web; group web = {server};
steering rules: tcp/80 and udp/STEERED to web.
  1. crossing: captures on the service VM's two interfaces while the
     client opens a TCP connection to the server's port 80 (echoed),
     sends a UDP burst to STEERED and one to PLAIN, and pings: the steered
     TCP (both ways) and UDP must cross both interfaces, the plain UDP and
     the ping neither; the service VM's own counters count them
  2. signature: a payload starting with the test signature is dropped in
     the service VM (the connection's other packets pass), its counter
     rises
  3. address groups: `trials` membership changes of web through the API
     (another VM in, then out again), then `trials` by tag (web also
     holds the ports tagged tier=web; that VM's port tagged, then
     untagged); time from the API request until the service VM's agent
     has updated its nftables set (its log's epoch, written after the
     transaction), each checked in the set itself: p50/p95/max
  4. failure: a 1,000/s UDP stream client -> server on STEERED; the
     service VM's vNICs lose their link 1 s in (+0-0.2 s) and get it
     back 1.5 s later, `trials` times per policy:
       fail-open    the outage at the loss (until the stream passes
                    unsteered) and at the return (until it crosses the
                    service VM again)
       fail-closed  what still arrived during the loss (must be nothing
                    after DETECT_MS) and the time from the return until
                    the stream arrives again
"""
import os
import sys
import time

from topologies.servicevm import ServiceVM

from . import dfw, failplots, harness, reach, results, stats
from .dfw import write

RATE = 1000
STEERED, PLAIN = 9300, 9301            # UDP ports
TRIALS = 10
DOWN_S = 1.5                           # how long the vNICs stay down
DETECT_MS = 200                        # fail-closed: nothing passes after
POLICY = [{'name': 'no-telnet', 'destination': 'web', 'protocol': 'tcp',
           'port': 23}]
# what is steered (each with the trial's on_failure): tcp/80 and
# udp/STEERED to web, at web's ports
STEERING = [{'name': f'web-{proto}', 'priority': prio, 'protocol': proto,
             'port': port, 'destination': {'group': 'web'},
             'applied_to': {'group': 'web'}}
            for prio, proto, port in ((10, 'tcp', 80), (11, 'udp', STEERED))]
SIGNED = """
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=2)
s.settimeout(1.5)
out = []
for payload in (b'hello', b'NSXL-IPS-TEST'):
    s.sendall(payload)
    try:
        out.append(s.recv(64).decode() or '-')
    except OSError:
        out.append('-')
print(' '.join(out))
"""


def pick(plan):
    """(client, server): VMs of ls1 on two hypervisors."""
    vms = dfw.pick_targets(plan, 2)
    if len(vms) < 2:
        raise harness.LabFailed(f"{plan['name']}: service-steering needs "
                                'VMs of ls1 on two hypervisors')
    return vms[0], vms[1]


def crossing(frames, a, b):
    """{'tcp', 'udp steered', 'udp plain', 'icmp'}: frames of each kind
    between hosts `a` and `b` (IPs) among captured frames (decoded
    records with 'proto'/'dport'/'sport' when known)."""
    out = {'tcp': 0, 'udp steered': 0, 'udp plain': 0, 'icmp': 0}
    for f in frames:
        if {f.get('ip_src'), f.get('ip_dst')} != {a, b}:
            continue
        if f.get('icmp') is not None:
            out['icmp'] += 1
        elif f.get('proto') == 6 and 80 in (f.get('sport'), f.get('dport')):
            out['tcp'] += 1
        elif f.get('proto') == 17 and f.get('dport') == STEERED:
            out['udp steered'] += 1
        elif f.get('proto') == 17 and f.get('dport') == PLAIN:
            out['udp plain'] += 1
    return out


def judge_crossing(seen):
    """Problems (a list) from crossing() per interface."""
    out = []
    for point, c in seen.items():
        for kind in ('tcp', 'udp steered'):
            if c[kind] == 0:
                out.append(f'{kind} did not cross the service VM ({point})')
        for kind in ('udp plain', 'icmp'):
            if c[kind]:
                out.append(f'{kind} crossed the service VM ({point}: '
                           f'{c[kind]} frames), unsteered traffic must not')
    return out


def updates_after(log_text, t):
    """Epochs of the agent's 'address sets updated' lines after `t`."""
    out = []
    for line in log_text.splitlines():
        head = line.split(' ', 1)[0]
        if 'address sets updated' in line:
            try:
                when = float(head)
            except ValueError:
                continue
            if when > t:
                out.append(when)
    return out


def failure_figures(times, t_down, t_up, failure, window=0.5):
    """One failure trial's figures from the stream's receive times (epoch
    s): fail-open {'outage_down_ms', 'outage_up_ms'}: the longest silence
    between two arrivals that reaches into `window` s after each edge
    (the command that takes the links down or up lands a few ms after
    the time noted for it); fail-closed {'passed_while_down' (arrivals
    from DETECT_MS after the loss until the return), 'last_after_down_ms',
    'resumed_after_up_ms'} (each an upper bound: from the command's
    start)."""
    ts = sorted(times)

    def silence(t):
        gaps = [b - a for a, b in zip(ts, ts[1:])
                if b > t and a < t + window]
        if not gaps or ts[-1] <= t + window:
            return None             # the stream did not run past it
        return round(max(gaps) * 1000, 1)
    if failure == 'fail-open':
        return {'outage_down_ms': silence(t_down),
                'outage_up_ms': silence(t_up)}
    during = [x for x in ts if t_down + DETECT_MS / 1000 < x <= t_up]
    last = [x for x in ts if t_down <= x <= t_up]
    back = [x for x in ts if x > t_up]
    return {'passed_while_down': len(during),
            'last_after_down_ms': round((last[-1] - t_down) * 1000, 1)
            if last else 0.0,
            'resumed_after_up_ms': round((back[0] - t_up) * 1000, 1)
            if back else None}


def steer(lab, failure):
    """The steering rules (STEERING), with `failure`."""
    for r in write(lab, 'GET', '/steering-rules'):
        write(lab, 'DELETE', f"/steering-rules/{r['id']}")
    for rule in STEERING:
        write(lab, 'POST', '/steering-rules', dict(rule, on_failure=failure))
    time.sleep(1.0)                          # every hypervisor pushed


def crossing_phase(lab, svm, client, server, out_dir):
    plan = lab.plan
    before = svm.counters()
    points = [('svc-in', svm.name, 'in'), ('svc-out', svm.name, 'out')]
    with harness.Captures(lab, points, out_dir, 'ip') as cap:
        tcp = reach.tcp(plan, client, server, seconds=1.0)
        streams = harness.Streams(lab, [
            ('steered', client, server, STEERED),
            ('plain', client, server, PLAIN)], 0.3, out_dir, 500,
            'crossing').start()
        got = streams.finish()
        ping = reach.ping(plan, client, server)
    a, b = reach.ip(plan, client), reach.ip(plan, server)
    seen = {p: crossing(f, a, b) for p, f in cap.frames().items()}
    after = svm.counters()
    problems = judge_crossing(seen)
    if tcp[0] != 0:
        problems.append(f'the steered TCP connection failed: {tcp}')
    if not ping:
        problems.append('the unsteered ping failed')
    for name, (sent, seqs) in got.items():
        if not seqs:
            problems.append(f'the {name} UDP burst did not arrive '
                            f'({sent} sent)')
    counted = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    if counted.get('allow', 0) <= 0:
        problems.append(f"the service VM's counters did not count the new "
                        f'connections ({counted})')
    return {'frames': seen, 'counters': counted, 'tcp': tcp[1],
            'ping': ping}, problems


def signature_phase(lab, svm, client, server):
    before = svm.counters().get('ips:tcp', 0)
    r = reach.ns(client, [sys.executable, '-c', SIGNED,
                          reach.ip(lab.plan, server)])
    got = r.stdout.split()
    hits = svm.counters().get('ips:tcp', 0) - before
    problems = []
    if got[:1] != ['hello']:
        problems.append(f'signature check: the connection failed before '
                        f'the signature ({r.stdout.strip()!r} '
                        f'{r.stderr.strip()[-200:]!r})')
    elif got[1:2] != ['-']:
        problems.append('the signature came back: not dropped')
    if hits <= 0:
        problems.append("the signature rule's counter did not rise")
    return {'answers': got, 'dropped_packets': hits}, problems


def group_phase(lab, svm, server, other, trials):
    """Membership changes of web, `trials` each way: the group edited
    (`other` a member by name, then not) and `other`'s port tagged
    tier=web (web holds the tag), then untagged -> ({'group edited': ms,
    'port tagged': ms}: API request -> the agent's set updated), problems.
    Each change counts only when the set then holds what the group
    does: `other`'s address in it or not."""
    web = next(g for g in write(lab, 'GET', '/security-groups')
               if g['name'] == 'web')
    port = harness.port_id(lab.ctl, other)
    addr = lab.plan['nodes'][other]['ip'].split('/')[0] + '/32'
    out, problems = {'group edited': [], 'port tagged': []}, []
    changes = [('group edited', 'PUT', f"/security-groups/{web['id']}",
                {'name': 'web', 'vms': [server, other]}
                if k % 2 == 0 else {'name': 'web', 'vms': [server]},
                k % 2 == 0) for k in range(trials)]
    changes.append(('setup', 'PUT', f"/security-groups/{web['id']}",
                    {'name': 'web', 'vms': [server], 'tags': ['tier=web']},
                    False))
    changes += [('port tagged', 'PUT', f'/logical-ports/{port}/tags',
                 {'tags': ['tier=web'] if k % 2 == 0 else []}, k % 2 == 0)
                for k in range(trials)]
    for k, (kind, method, path, body, holds) in enumerate(changes):
        # from the request: the agent's long poll can answer (and the set
        # change) before the PUT's own answer reaches this client
        sent = time.time()
        write(lab, method, path, body)
        if kind == 'setup':
            time.sleep(0.2)
            continue
        seen = []
        if harness.until(lambda: seen.extend(updates_after(
                svm.log_text(), sent)) or seen, 5, 0.01) is None:
            problems.append(f'{kind} {k + 1}: the service VM had not '
                            'updated its address set within 5 s')
            break
        now = svm.members('web') or []
        if (addr in now) != holds:
            problems.append(f"{kind} {k + 1}: the service VM's web set is "
                            f"{now}: {addr} should {'' if holds else 'not '}"
                            'be in it')
            break
        out[kind].append(round((seen[0] - sent) * 1000, 1))
        time.sleep(0.2)
    return out, problems


def failure_trials(lab, svm, client, server, failure, trials, rng, out_dir,
                   bar):
    steer(lab, failure)
    records, problems = [], []
    for k in range(1, trials + 1):
        streams = harness.Streams(lab, [('steered', client, server,
                                         STEERED)], 4.0, out_dir, RATE,
                                  f'{failure}-{k:02d}').start()
        time.sleep(1.0 + rng.uniform(0, 0.2))
        t_down = time.time()
        svm.link(False)
        time.sleep(DOWN_S)
        t_up = time.time()
        svm.link(True)
        got = streams.finish()['steered']
        for path in streams.paths.values():
            os.remove(path)
        fig = failure_figures(got.times or [], t_down, t_up, failure)
        rec = dict(trial=k, policy=failure, sent=got[0],
                   received=len(got[1]), lost=got[0] - len(set(got[1])),
                   **fig)
        records.append(rec)
        bar.step(f'{failure}: ' + ', '.join(f'{k2} {v}' for k2, v in
                                            fig.items())
                 + f", lost {rec['lost']}")
        if failure == 'fail-closed' and fig['passed_while_down']:
            problems.append(f"{failure} trial {k}: "
                            f"{fig['passed_while_down']} packets passed "
                            'while the service VM was down')
        if None in fig.values():
            problems.append(f'{failure} trial {k}: the stream did not '
                            f'resume ({fig})')
        time.sleep(0.5)
    return records, problems


def run(fabric='clos', progress=print, trials=TRIALS, seed=1):
    out_dir, rng, env = harness.measured_run('service-steering', fabric,
                                             seed, progress)
    problems, metrics, records, group_ms = [], {}, [], {}
    with env as lab:
        plan = lab.plan
        client, server = pick(plan)
        hv = dfw.hypervisor_of(plan, server)
        other = next(v for v in dfw.pick_targets(plan, 3)
                     if v not in (client, server))
        progress(f'service VM on {hv}; {client} -> {server}, steered: '
                 f'tcp/80, udp/{STEERED}; unsteered: udp/{PLAIN}, ping')
        svm = ServiceVM(lab, hv, POLICY)
        echo = reach.echo_server(server)
        try:
            svm.start(lab.ctl)
            write(lab, 'POST', '/security-groups', {'name': 'web',
                                                    'vms': [server]})
            steer(lab, 'fail-closed')
            metrics['crossing'], bad = crossing_phase(lab, svm, client,
                                                      server, out_dir)
            problems += bad
            progress('  crossing: ' + ('; '.join(bad) or 'steered '
                                       'traffic crossed, the rest did not'))
            metrics['signature'], bad = signature_phase(lab, svm, client,
                                                        server)
            problems += bad
            progress('  signature: ' + ('; '.join(bad) or 'dropped in the '
                                        'service VM'))
            group_ms, bad = group_phase(lab, svm, server, other, trials)
            problems += bad
            progress('  address set: ' + ('; '.join(bad) or ', '.join(
                f'{kind} -> updated p50 {stats.describe(v)["p50"]} ms'
                for kind, v in group_ms.items() if v)))
            bar = harness.TrialBar(2 * trials, progress)
            for failure in ('fail-open', 'fail-closed'):
                got, bad = failure_trials(lab, svm, client, server, failure,
                                          trials, rng, out_dir, bar)
                records += got
                problems += bad
        finally:
            with open(os.path.join(out_dir, 'service-vm-agent.log'),
                      'w') as f:
                f.write(svm.log_text())
            svm.stop()
            echo.kill()
            echo.wait(5)
        problems += [f'controller: {e}' for e in env.controller_errors()[:5]]
    summary = {}
    for kind, what in (('group edited', 'API request -> address set '
                        'updated'), ('port tagged', 'port tag -> address '
                                     'set updated')):
        if group_ms.get(kind):
            summary[what] = stats.describe(group_ms[kind])
    for failure, keys in (('fail-open', ('outage_down_ms', 'outage_up_ms')),
                          ('fail-closed', ('last_after_down_ms',
                                           'resumed_after_up_ms'))):
        for key in keys:
            vals = [r[key] for r in records if r['policy'] == failure and
                    r.get(key) is not None]
            if vals:
                summary[f'{failure} {key}'] = stats.describe(vals)
    artifacts = []
    if records:
        path = os.path.join(out_dir, 'failure-per-trial.png')
        failplots.per_trial({
            'fail-open: outage as its vNICs go down': [
                r['outage_down_ms'] for r in records
                if r['policy'] == 'fail-open'],
            'fail-open: outage as they come back': [
                r['outage_up_ms'] for r in records
                if r['policy'] == 'fail-open'],
            'fail-closed: back after its vNICs return': [
                r['resumed_after_up_ms'] for r in records
                if r['policy'] == 'fail-closed']}, path,
            f"{plan['name']}: the service VM's vNICs down {DOWN_S} s, "
            f'a {RATE}/s steered stream')
        artifacts.append(path)
    metrics.update({'client': client, 'server': server, 'hypervisor': hv,
                    'policy': POLICY, 'summary': summary,
                    'group_update_ms': group_ms, 'trials': records,
                    'rate_pps': RATE, 'down_s': DOWN_S, 'seed': seed,
                    'problems': problems})
    res = results.result('service-steering', plan['name'],
                         not problems and len(records) == 2 * trials,
                         metrics, artifacts + [os.path.join(
                             out_dir, 'controller.log'), os.path.join(
                             out_dir, 'service-vm-agent.log')])
    results.save(res, out_dir)
    return res
