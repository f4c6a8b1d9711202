"""Scenario controller-failover: a node of the controller cluster dies (or
is cut off) under traffic and a steady stream of API writes; the standby
of its devices takes over.

Whitepaper ("Controller Cluster"): configuration needs a majority; every
device has an active and a standby controller node; "if the active fails,
the standby takes over immediately" and a new standby is chosen; "if both
fail, traffic is not interrupted" while replacements are elected.

setup: the lab with a controller cluster (--controllers, 3 by default),
provisioned. A writer attaches a spare VM (one the lab attaches to no
logical switch) to a logical switch and detaches it again, one write every
50 ms, each sent to the first node that takes it (one that refuses with
503 or does not answer: the next). UDP probe streams at 1,000 packets/s
(VM <-> VM across hypervisors, VM -> a physical server) run in every
window below.
act, per trial (--trials, 20): a device the writes change is picked in
turn and its active node killed (SIGKILL of its controller and its etcd
member: the fault catalog's 'controller' on a node); once its devices are
taken over, it is started again and rejoins (as a standby: actives stay
where they are, controllers.assign). Then once: a node cut off from
the others (the catalog's 'isolate'): writes sent to it are refused (503),
the majority's accepted; healed; every node's state compared. Last: the
active and the standby of a device killed together.
measure, per trial: probes lost in each window; ms from the kill until
each device of the dead node the writes change had confirmed (barrier
reply) a change pushed by its new active node; ms until every device had
a live active and standby node again (when the survivor took that
assignment); the flow mods of the new active node's first pass over the whole
switch (the takeover's churn), against the most one write cost that
device before (its group mods, every group sent once, apart); seconds until the restarted node was a member
again.
verify: no probe lost; every takeover seen and its churn within one
write's; the minority refused every write, the majority took the writer's;
after healing every node holds the same state and none the refused
writes; after the double kill traffic still flows and the device gets an
active node again (the third node if the survivors are a majority, else
once one of the two is back). Target (reported, met or not): the
takeover's p95 <= 1 s.
"""
import http.client
import json
import os
import re
import threading
import time

from topologies import labs, records, spec as specmod

from . import (cpuload, failplots, faults, harness, headless, probe,
               results, stats)

RATE = 1000
WRITE_EVERY_S = 0.05
TAKEOVER_TARGET_MS = 1000
KILL_WINDOW_S = 6.0          # streams: 1 s before the kill, 5 s after
RESTORE_WINDOW_S = 14.0      # restart at 0.5 s (its start: 3-10 s), rejoin
LEAD_S = 1.0
WARMUP_S = 1.0              # streams before the baseline, not judged
BASELINE_S = 10.0
REJOIN_WAIT_S = 30.0


def streams(plan):
    """headless's probe streams (VM <-> VM across hypervisors, VM -> a
    physical server), the server's sender another VM of the logical switch
    when there is one: a VM port that receives two streams (2,000/s)
    overflows the datapath's socket buffer twice as fast when the box
    starves ovs-vswitchd (docs/cluster.md)."""
    flows = headless.streams(plan)
    n = plan['nodes']
    a, b = flows[0][1], flows[0][2]
    others = sorted(v for v, p in n.items() if p['role'] == 'vm' and
                    p.get('ls') == n[a]['ls'] and v not in (a, b))
    out = []
    for name, src, dst, port, *rest in flows:
        if src == a and n[dst]['role'] == 'bare_metal' and others:
            src, name = others[0], f'{others[0]}->{dst}'
        out.append((name, src, dst, port, *rest))
    return out


def check_controllers(n):
    """Raise ValueError naming the fix unless `n` controller nodes make a
    cluster this scenario can fail."""
    if n not in (3, 5) or isinstance(n, bool):
        raise ValueError(f'controllers: {n!r}; controller-failover kills '
                         'nodes of a controller cluster: use --controllers 3 '
                         'or 5')


def spare_vm(plan):
    """(a VM on a hypervisor that the lab attaches to no logical switch,
    the logical switch to attach it to: the first VM's) or None."""
    n = plan['nodes']
    spare = sorted(v for v, p in n.items() if p['role'] == 'vm' and
                   not p.get('ls'))
    used = sorted(p['ls'] for p in n.values() if p['role'] == 'vm' and
                  p.get('ls'))
    return (spare[0], used[0]) if spare and used else None


def picks(devices, trials):
    """The device whose active node trial k (0-based) kills: each of
    `devices` in turn."""
    devices = sorted(devices)
    return [devices[k % len(devices)] for k in range(trials)]


def first_confirmed(pushes, devices, after):
    """{device: Unix time of its first confirmed push acked after
    `after`} from push logs [{'node', 'acked', ...}] (any nodes')."""
    out = {}
    for p in sorted(pushes, key=lambda p: p['acked']):
        if p['node'] in devices and p['acked'] > after:
            out.setdefault(p['node'], p['acked'])
    return out


def most_per_write(pushes):
    """{device: the most messages one confirmed push sent it}."""
    out = {}
    for p in pushes:
        out[p['node']] = max(out.get(p['node'], 0), p['msgs'])
    return out


def settled(assignment, alive):
    """Every device has an active and a standby node, both alive and
    different."""
    return bool(assignment) and all(
        r['active'] in alive and r['standby'] in alive and
        r['active'] != r['standby'] for r in assignment.values())


def rejoined(cluster_view, nodes, node):
    """`node` is a member again and has a role (a returning node gets
    standbys: actives stay where they are, controllers.assign)."""
    return cluster_view['members'] == nodes and any(
        node in (r['active'], r['standby'])
        for r in cluster_view['assignment'].values())


def unconnected(status, plan):
    """The switches a node's GET /status says it has no OpenFlow
    session to, sorted."""
    return harness.sessions_down(status, [
        n for n, p in plan['nodes'].items()
        if p['role'] in specmod.BR_INT_ROLES])


def elections(term_before, term_after):
    """etcd elections between two raft terms, or None if either is
    unknown."""
    if term_before is None or term_after is None:
        return None
    return term_after - term_before


def churn(full_pass):
    """Flow mods of a whole-switch pass (GET /status's last_full_pass), or
    None; its group mods are reported apart (`groups_resent`). Held
    against the most one write cost in the baseline: a whole-switch pass
    and an incremental one both send a flow that replaces another in its
    slot as the add alone (the cookie carries the slot: ofdriver.diff),
    so a takeover that changes only what the writes asked costs what
    they cost (docs/cluster.md)."""
    if not full_pass:
        return None
    return full_pass['flows_added'] + full_pass['flows_deleted']


class Writer(threading.Thread):
    """Attach `vm` to logical switch `ls_id`, detach it, every `every` s;
    each write to the first node of the cluster that takes it. Counts
    what the nodes answered; pause()/resume() hold it (to compare the
    nodes' states)."""

    def __init__(self, cluster, ls_id, vm, every=WRITE_EVERY_S):
        super().__init__(name='api-writer', daemon=True)
        self.cluster, self.ls_id, self.vm, self.every = cluster, ls_id, vm, \
            every
        self.port = None
        self.order = list(cluster.members)
        self.counts = {'accepted': 0, 'refused': 0, 'unanswered': 0}
        self.log = []               # (Unix time, node, status)
        self._halt, self._run = threading.Event(), threading.Event()
        self._run.set()
        self.idle = threading.Event()

    def pause(self):
        self._run.clear()
        self.idle.wait(10)

    def resume(self):
        self._run.set()

    def stop(self):
        self._halt.set()
        self._run.set()
        self.join(15)

    def _send(self, method, path, body=None):
        """-> (node, status, body) of the first node that answered with
        anything but 503; (None, 503 or None, body) if none did."""
        last = (None, None, None)
        for name in list(self.order):
            m = self.cluster.member(name)
            if m.proc is None or m.proc.poll() is not None:
                continue
            try:
                status, body = m.request(method, path, body)
            except (OSError, http.client.HTTPException, ValueError) as exc:
                last = (None, None, str(exc))
                continue
            if status == 503:
                last = (None, 503, body)
                continue
            self.order.remove(name)          # the one that answers first
            self.order.insert(0, name)
            return name, status, body
        return last

    def _resync(self):
        node, status, body = self._send(
            'GET', f'/logical-switches/{self.ls_id}/ports')
        if status == 200:
            self.port = next((p['id'] for p in body
                              if p['attachment'] == self.vm), None)

    def run(self):
        # a client of the API, not part of the lab: below the datapaths
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        nxt = time.monotonic()
        while not self._halt.is_set():
            if not self._run.is_set():
                self.idle.set()
                self._run.wait()
                self.idle.clear()
                nxt = time.monotonic()
            if self.port is None:
                node, status, body = self._send(
                    'POST', f'/logical-switches/{self.ls_id}/ports',
                    {'attachment': self.vm})
                ok = status == 201
                if ok:
                    self.port = body['id']
            else:
                node, status, body = self._send(
                    'DELETE', f'/logical-ports/{self.port}')
                ok = status == 204
                if ok:
                    self.port = None
            self.log.append((time.time(), node, status))
            self.counts['accepted' if ok else 'unanswered'
                        if status is None else 'refused'] += 1
            if not ok:
                self._resync()
            nxt += self.every
            time.sleep(max(0.0, nxt - time.monotonic()))
            if time.monotonic() - nxt > 1.0:       # fell behind: go on
                nxt = time.monotonic()
        self.idle.set()


def drop_counters(lab, nodes):
    """{'node:interface': packets dropped (rx and tx, as OVS counts them),
    'node:datapath': upcalls lost} on `nodes` (where a loss happened)."""
    out = {}
    for n in nodes:
        r = lab.node(n).ns_run(['ovs-vsctl', '--format=json', '--columns='
                                'name,statistics', 'list', 'interface'])
        try:
            rows = json.loads(r.stdout)['data']
        except ValueError:
            continue
        for name, st in rows:
            d = dict(st[1]) if isinstance(st, list) else {}
            out[f'{n}:{name}'] = d.get('rx_dropped', 0) + \
                d.get('tx_dropped', 0)
        m = re.search(r'lost:(\d+)', lab.node(n).ns_run(
            ['ovs-appctl', 'dpctl/show']).stdout)
        if m:
            out[f'{n}:datapath'] = int(m.group(1))
        # the packet sockets the userspace datapath reads its ports with:
        # what they dropped when their receive buffer was full
        for port, d in re.findall(r':(\S+)\s.*skmem:\([^)]*,d(\d+)\)',
                                  lab.node(n).ns_run(
                                      ['ss', '-0', '-m', '-n']).stdout):
            out[f'{n}:{port} socket'] = int(d)
    return out


def udp_drops(lab, hosts):
    """{'host:udp receive buffer': datagrams dropped because the socket's
    buffer was full (the receiver starved)} of `hosts`."""
    out = {}
    for h in hosts:
        lines = [ln.split() for ln in lab.node(h).ns_run(
            ['cat', '/proc/net/snmp']).stdout.splitlines()
            if ln.startswith('Udp:')]
        if len(lines) == 2 and 'RcvbufErrors' in lines[0]:
            out[f'{h}:udp receive buffer'] = int(
                lines[1][lines[0].index('RcvbufErrors')])
    return out


def grew(before, after):
    return {k: v - before.get(k, 0) for k, v in sorted(after.items())
            if v > before.get(k, 0)}


class Window:
    """Probe streams for `seconds`; finish() -> {stream: lost, ...}, and
    .drops: what OVS counted dropped meanwhile on the nodes they cross."""

    def __init__(self, lab, flows, seconds, out_dir, tag, rate=RATE):
        self.lab, self.seconds, self.rate = lab, seconds, rate
        self.nodes = sorted(
            n for n, p in lab.plan['nodes'].items()
            if p['role'] in specmod.BR_INT_ROLES + ('l2_segment',))
        self.hosts = sorted({f[2] for f in flows})
        self.before = self.counters()
        self.probes = harness.Streams(lab, flows, seconds, out_dir, rate,
                                      tag=tag).start()
        self.t0 = time.monotonic()

    def counters(self):
        return {**drop_counters(self.lab, self.nodes),
                **udp_drops(self.lab, self.hosts)}

    def left(self):
        return self.t0 + self.seconds - time.monotonic()

    def finish(self, at=()):
        """`at`: the faults' wall times inside the window: a stream's
        loss count measures it only if its sender was on time around
        them (probe.loss_countable)."""
        time.sleep(max(0.0, self.left()))
        got = self.probes.finish()
        self.drops = grew(self.before, self.counters())
        out = {}
        for name, g in got.items():
            res = g.analyse(self.rate)
            ok, why = probe.loss_countable(g[0], g.stalls, self.seconds,
                                           at)
            out[name] = {'sent': g[0], 'lost': res['lost'],
                         'outage_ms': res['outage_ms'],
                         'sender_ok': ok, 'why': why,
                         'stalls': len(g.stalls or ())}
        return out


def lab_cpu(lab, seconds):
    """Where the box's CPU goes over `seconds` (scenarios.cpuload): every
    lab node's processes by role, and the controller nodes'."""
    pids = dict(lab.pids())
    found = records.pids_in([records.ns_name(n) for n in
                             lab.plan['controllers']])
    roles = {n: p['role'] for n, p in lab.plan['nodes'].items()}
    for n in lab.plan['controllers']:
        pids[n] = found.get(records.ns_name(n), [])
        roles[n] = 'controller node'
    got = cpuload.sample(pids, roles, seconds)
    return {'total_pct': got['total_pct'], 'by_kind': got['by_kind'][:8]}


def view(lab, node):
    return lab.ctl.member(node).get('/cluster')


def pushes_of(lab, nodes, since):
    out = []
    for n in nodes:
        try:
            out += lab.ctl.member(n).get(f'/pushes?since={since}')['pushes']
        except (OSError, RuntimeError):
            pass
    return out


def generation(lab, node):
    return lab.ctl.member(node).get('/pushes?since=999999999')['generation']


def measure_takeover(lab, devices, survivors, t_fault, until_s, since):
    """Poll the survivors until each of `devices` had a change confirmed
    after `t_fault` and their assignment settled on them alone ->
    {'takeover_ms': {device: ms}, 'new_standby_ms', 'missing': [...],
    'new_active': {device: node}, 'churn': {device: flow mods},
    'groups_resent': {device: group mods}}."""
    deadline = time.monotonic() + until_s
    got, standby_ms, assignment = {}, None, {}
    while time.monotonic() < deadline:
        v = view(lab, survivors[0])
        assignment = v['assignment']
        if standby_ms is None and settled(assignment, survivors) and \
                v.get('assigned_at'):
            standby_ms = round((v['assigned_at'] - t_fault) * 1000, 1)
        got = first_confirmed(pushes_of(lab, survivors, since), devices,
                              t_fault)
        if standby_ms is not None and set(devices) <= set(got):
            break
        time.sleep(0.1)
    new_active = {d: assignment.get(d, {}).get('active') for d in devices}
    churned, regrouped = {}, {}
    for d, node in new_active.items():
        if node in survivors:
            sw = lab.ctl.member(node).get('/status')['switches'].get(d, {})
            fp = sw.get('last_full_pass')
            fresh = fp and fp['at'] > t_fault
            churned[d] = churn(fp) if fresh else None
            regrouped[d] = fp['group_mods'] if fresh else None
    return {'takeover_ms': {d: round((t - t_fault) * 1000, 1)
                            for d, t in sorted(got.items())},
            'new_standby_ms': standby_ms,
            'missing': sorted(set(devices) - set(got)),
            'new_active': new_active, 'churn': churned,
            'groups_resent': regrouped}


def state(lab, node):
    m = lab.ctl.member(node)
    switches = m.get('/logical-switches')
    return (switches, m.get('/gateway-connections'),
            [m.get(f"/logical-switches/{ls['id']}/ports")
             for ls in switches])


def equal_state(lab, nodes, timeout=20):
    """Seconds until every node in `nodes` answered the same state (the
    writer held), or None."""
    return harness.until(lambda: len({repr(state(lab, n))
                                      for n in nodes}) == 1, timeout, 0.2)


def run(fabric='clos', progress=print, trials=20, seed=1, controllers=3,
        rate=RATE):
    check_controllers(controllers)
    out_dir = results.run_dir(harness.run_name('controller-failover', fabric,
                                               None))
    spec = dict(labs.resolve(fabric), controllers=controllers)
    env = harness.ControlledLab(spec, progress, out_dir)
    records, problems, extra, cost = [], [], {}, {}
    with env as lab:
        plan = lab.plan
        nodes = sorted(plan['controllers'])
        spare = spare_vm(plan)
        if spare is None:
            raise harness.LabFailed(f"lab {plan['name']}: no spare VM (one "
                                    'attached to no logical switch) to '
                                    'attach and detach')
        ls_id = next(ls['id'] for ls in lab.ctl.get('/logical-switches')
                     if ls['name'] == spare[1])
        flows = streams(plan)
        progress(f'  writer: {spare[0]} attached to {spare[1]} and detached'
                 f', one write every {WRITE_EVERY_S * 1000:.0f} ms')
        writer = Writer(lab.ctl, ls_id, spare[0])
        since = generation(lab, nodes[0])
        writer.start()
        try:
            time.sleep(3.0)
            cost = most_per_write(pushes_of(lab, nodes, since))
            changed = sorted(cost)
            progress(f'  the writes change {", ".join(changed)} '
                     f'(at most {max(cost.values(), default=0)} mods each)')
            if not changed:
                problems.append('the writes changed no device: nothing to '
                                'measure a takeover on')
            # the streams' first packets on paths never used yet: not
            # what the baseline measures (seen: the first 13-16 probes of
            # vm1 <-> vm3 lost on vcf, none after); kept, not judged
            warm = Window(lab, flows, WARMUP_S, out_dir, 'warmup', rate)
            extra['warmup_lost'] = lost_of(warm.finish())
            # the writes alone, no fault: what the trials are compared with
            term = lab.ctl.etcd_status()[1]
            w = Window(lab, flows, BASELINE_S, out_dir, 'baseline', rate)
            time.sleep(1.0)
            extra['baseline_cpu'] = lab_cpu(lab, BASELINE_S - 2.0)
            extra['baseline_lost'] = lost_of(w.finish())
            extra['baseline_dropped'] = w.drops
            # elections with nothing killed: etcd's timers too tight for
            # the lab's load
            extra['baseline_elections'] = elections(
                term, lab.ctl.etcd_status()[1])
            progress(f"  warm-up ({WARMUP_S:.0f} s, not judged): lost "
                     f"{extra['warmup_lost']}")
            progress(f"  {BASELINE_S:.0f} s of writes, no fault: lost "
                     f"{extra['baseline_lost']}, etcd elections "
                     f"{extra['baseline_elections']}")
            if any(extra['baseline_lost'].values()):
                problems.append('with no fault, under the writes alone: '
                                f"probes lost {extra['baseline_lost']}")
            bar = harness.TrialBar(trials, progress)
            for k, device in enumerate(picks(changed, trials)
                                       if changed else [], 1):
                rec = kill_trial(lab, k, device, flows, out_dir, cost,
                                 problems, rate)
                records.append(rec)
                bar.step(trial_text(rec))
                if rec.get('abort'):
                    break
            if changed and not any(r.get('abort') for r in records):
                extra['isolation'] = isolate_phase(
                    lab, changed, flows, out_dir, writer, problems, progress,
                    rate)
                extra['double_kill'] = double_kill_phase(
                    lab, changed, flows, out_dir, writer, problems,
                    progress, rate)
        finally:
            writer.stop()
        extra['writes'] = dict(writer.counts)
        # every write: when, through which node, what it answered (None:
        # no node answered), to put against the kills' times
        with open(os.path.join(out_dir, 'writes.csv'), 'w') as f:
            f.write('unix_time,node,status\n')
            for t, node, status in writer.log:
                f.write(f"{t:.3f},{node or ''},{status or ''}\n")
        # what each node's cluster side did (writes sent again, leases
        # revoked, devices taken early, log reads) since it last started
        extra['node_counts'] = {}
        for n in nodes:
            try:
                extra['node_counts'][n] = view(lab, n)['counts']
            except (OSError, RuntimeError) as exc:
                extra['node_counts'][n] = f'no answer: {exc}'
        problems += [f'controller: {e}' for e in env.controller_errors()[:5]]
    return finish(plan, out_dir, records, problems, extra, trials, seed,
                  cost, rate)


def kill_trial(lab, k, device, flows, out_dir, cost, problems, rate):
    nodes = sorted(lab.ctl.members)
    assignment = view(lab, nodes[0])['assignment']
    victim = assignment[device]['active']
    devices = sorted(d for d, r in assignment.items()
                     if r['active'] == victim and d in cost)
    survivors = [n for n in nodes if n != victim]
    rec = {'trial': k, 'device': device, 'killed': victim,
           'devices': devices}
    since = generation(lab, survivors[0])
    w = Window(lab, flows, KILL_WINDOW_S, out_dir, f'kill-{k:02d}', rate)
    # a leader's death costs an etcd election before anything commits
    rec['etcd_leader'] = lab.ctl.etcd_leader()
    time.sleep(max(0.0, LEAD_S - (time.monotonic() - w.t0)))
    fault = faults.apply(lab, {'kind': 'controller', 'target': victim})
    rec['killed_at'] = fault['at']
    got = measure_takeover(lab, devices, survivors, fault['at'],
                           w.left() - 0.3, since)
    rec.update(got)
    rec['lost'] = lost_of(w.finish(at=[fault['at']]))
    rec['dropped'] = w.drops
    why = []
    if got['missing']:
        why.append(f"no change confirmed on {', '.join(got['missing'])} "
                   f'by a surviving node within the window')
    if got['new_standby_ms'] is None:
        why.append('the survivors never settled on an active and a '
                   'standby for every device')
    for d, c in got['churn'].items():
        if c is None:
            why.append(f'{d}: its new active node made no pass over the '
                       'whole switch after the kill')
        elif c > cost.get(d, 0):
            why.append(f'{d}: the takeover sent {c} mods, one write costs '
                       f'at most {cost.get(d, 0)}')
    w = Window(lab, flows, RESTORE_WINDOW_S, out_dir, f'back-{k:02d}', rate)
    time.sleep(0.5)
    t_back, repaired_at = time.monotonic(), time.time()
    try:
        faults.repair(lab, fault)
    except Exception as exc:        # the node did not come back: say so
        why.append(f'{victim} did not start again: {exc}')
        rec['abort'] = True
    def back():
        # a member with a role, and a session to every switch (OVS backs
        # off from a controller that refused it: a standby without a
        # session could not take a device over)
        return rejoined(view(lab, survivors[0]), nodes, victim) and \
            not unconnected(lab.ctl.member(victim).get('/status'), lab.plan)
    if not rec.get('abort'):
        took = harness.until(back, max(1.0, w.left() - 0.3), 0.1)
        if took is not None:
            rec['rejoin_s'] = round(time.monotonic() - t_back, 2)
    rec['lost_restore'] = lost_of(w.finish(at=[repaired_at]))
    rec['dropped_restore'] = w.drops
    if not rec.get('abort') and rec.get('rejoin_s') is None:
        # not yet: wait on (no streams), the next trial needs it back
        took = harness.until(back, REJOIN_WAIT_S, 0.2)
        rec['rejoin_s'] = None if took is None else \
            round(time.monotonic() - t_back, 2)
        rec['unconnected'] = unconnected(lab.ctl.member(victim).get(
            '/status'), lab.plan)
        if took is None:
            why.append(f'{victim} not a member (standby of a device, '
                       f'connected to every switch) {REJOIN_WAIT_S:.0f} s '
                       f"after the window; no session to "
                       f"{', '.join(rec['unconnected']) or '-'}")
    for what, lost in (('kill', rec['lost']),
                       ('restore', rec['lost_restore'])):
        if any(lost.values()):
            why.append(f'{what} window: probes lost {lost}')
    if why:
        problems.append(f'trial {k} (killed {victim}): ' + '; '.join(why))
    return rec


def lost_of(window):
    out = {}
    for name, r in window.items():
        out[name] = r['lost'] if r['sent'] > 0 and r['sender_ok'] else \
            f"{r.get('why') or 'sender stalled'} ({r['sent']} sent)"
    return out


def lost_total(lost):
    """Probes lost over a window's streams (lost_of), stalled senders
    left out."""
    return sum(v for v in lost.values() if isinstance(v, int))


def trial_text(rec):
    t = rec.get('takeover_ms') or {}
    return (f"killed {rec['killed']} ({', '.join(rec['devices'])}): "
            f"takeover {max(t.values()) if t else '-'} ms, new standby "
            f"{rec.get('new_standby_ms')} ms, churn {rec.get('churn')}, "
            f"lost {lost_total(rec['lost'])}/"
            f"{lost_total(rec.get('lost_restore', {}))}"
            f", rejoined in {rec.get('rejoin_s')} s")


def isolate_phase(lab, changed, flows, out_dir, writer, problems, progress,
                  rate):
    """Cut the active node of the first changed device off; writes to it
    refused, the writer's to the majority accepted; heal; states equal."""
    nodes = sorted(lab.ctl.members)
    victim = view(lab, nodes[0])['assignment'][changed[0]]['active']
    majority = [n for n in nodes if n != victim]
    cut = lab.ctl.member(victim)
    out = {'isolated': victim}
    progress(f'  isolating {victim} from the other nodes')
    w = Window(lab, flows, 14.0, out_dir, 'isolate', rate)
    time.sleep(LEAD_S)
    accepted0 = writer.counts['accepted']
    since = generation(lab, majority[0])
    mine = sorted(d for d, r in view(lab, majority[0])['assignment'].items()
                  if r['active'] == victim and d in changed)
    fault = faults.apply(lab, {'kind': 'isolate', 'target': victim})
    try:
        knew = harness.until(lambda: cut.get('/cluster')['cut_off_s'] > 0,
                             10, 0.1)
        out['knew_cut_off_s'] = knew
        answers = [cut.request('POST', '/logical-switches',
                               {'name': f'minority{i}', 'vni': 7900 + i})[0]
                   for i in range(5)]
        out['minority_answers'] = answers
        got = measure_takeover(lab, mine, majority, fault['at'], 6.0,
                               since)
        out['takeover_ms'] = got['takeover_ms']
        out['missing'] = got['missing']
        out['majority_accepted'] = writer.counts['accepted'] - accepted0
    finally:
        faults.repair(lab, fault)
    out['lost'] = lost_of(w.finish(at=[fault['at']]))
    out['dropped'] = w.drops
    writer.pause()
    try:
        back = harness.until(lambda: cut.get('/cluster')['cut_off_s'] == 0,
                             15, 0.2)
        out['rejoined_s'] = back
        out['equal_after_s'] = equal_state(lab, nodes)
        names = {ls['name'] for n in nodes for ls in
                 lab.ctl.member(n).get('/logical-switches')}
        out['minority_writes_present'] = sorted(
            x for x in names if x.startswith('minority'))
    finally:
        writer.resume()
    why = []
    if out['knew_cut_off_s'] is None:
        why.append(f'{victim} never knew it was cut off')
    if any(a != 503 for a in out['minority_answers']):
        why.append(f"the minority answered {out['minority_answers']}, "
                   'not 503 each')
    if out['majority_accepted'] <= 0:
        why.append('the majority accepted none of the writer\'s writes')
    if out['missing']:
        why.append(f"no change confirmed on {out['missing']} by the "
                   'majority')
    if out['equal_after_s'] is None:
        why.append('the nodes\' states differ after healing')
    if out['minority_writes_present']:
        why.append(f"refused writes present: {out['minority_writes_present']}")
    if any(out['lost'].values()):
        why.append(f"probes lost {out['lost']}")
    if why:
        problems.append('isolation: ' + '; '.join(why))
    refused = out['minority_answers'].count(503)
    progress(f'  isolation: {victim} refused {refused}'
             f" of 5 writes, the majority took {out['majority_accepted']}; "
             f"takeover {out['takeover_ms']} ms; equal after healing in "
             f"{out['equal_after_s']} s; lost {out['lost']}")
    return out


def double_kill_phase(lab, changed, flows, out_dir, writer, problems,
                      progress, rate):
    """Kill the active and the standby of a device together: traffic
    flows; the third node takes it over if the survivors are a majority,
    else once one of the two is back."""
    nodes = sorted(lab.ctl.members)
    device = changed[0]
    r = view(lab, nodes[0])['assignment'][device]
    both = [r['active'], r['standby']]
    survivors = [n for n in nodes if n not in both]
    majority = len(survivors) > len(nodes) // 2
    out = {'device': device, 'killed': both, 'survivors_majority': majority}
    progress(f"  killing {' and '.join(both)} (active and standby of "
             f'{device}) together')
    since = generation(lab, survivors[0])
    w = Window(lab, flows, 16.0, out_dir, 'double', rate)
    time.sleep(LEAD_S)
    recs = [faults.apply(lab, {'kind': 'controller', 'target': n})
            for n in both]
    t_kill = recs[0]['at']
    back = []
    if not majority:
        time.sleep(4.0)       # no majority: the survivor refuses, headless
        out['survivor_answers'] = lab.ctl.member(survivors[0]).request(
            'POST', '/logical-switches', {'name': 'headless', 'vni': 7990})[0]
        faults.repair(lab, recs[1])      # the standby back: a majority
        back = [recs[1]]
        survivors = survivors + [both[1]]
    got = measure_takeover(lab, [device], survivors, t_kill,
                           max(1.0, w.left() - 0.3), since)
    out.update(takeover_ms=got['takeover_ms'], new_active=got['new_active'],
               missing=got['missing'])
    out['lost'] = lost_of(w.finish(at=[t_kill]))
    out['dropped'] = w.drops
    for rec in recs:
        if rec not in back:
            faults.repair(lab, rec)
    took = harness.until(lambda: view(lab, nodes[0])['members'] == nodes,
                         30, 0.2)
    why = []
    if any(out['lost'].values()):
        why.append(f"probes lost {out['lost']}")
    if got['missing']:
        why.append(f'no change confirmed on {device} afterwards')
    if not majority and out.get('survivor_answers') != 503:
        why.append(f"the lone survivor answered a write "
                   f"{out.get('survivor_answers')}, not 503")
    if majority and got['new_active'].get(device) not in survivors:
        why.append(f"{device}'s new active node is "
                   f"{got['new_active'].get(device)}, not a survivor")
    if took is None:
        why.append('the killed nodes did not all rejoin')
    if why:
        problems.append('double kill: ' + '; '.join(why))
    progress(f"  double kill: lost {out['lost']}; {device} driven again "
             f"after {got['takeover_ms'].get(device)} ms by "
             f"{got['new_active'].get(device)}"
             + ('' if majority else ' (no majority until one came back)'))
    return out


def finish(plan, out_dir, records, problems, extra, trials, seed, cost,
           rate):
    takeovers = [ms for r in records for ms in r.get('takeover_ms',
                                                     {}).values()]
    standbys = [r['new_standby_ms'] for r in records
                if r.get('new_standby_ms') is not None]
    rejoins = [round(r['rejoin_s'] * 1000, 1) for r in records
               if r.get('rejoin_s')]
    lost = sum(lost_total(r.get(w, {})) for r in records
               for w in ('lost', 'lost_restore'))
    summary = {}
    by_leader = {True: [], False: []}
    for r in records:
        by_leader[r.get('etcd_leader') == r['killed']] += list(
            r.get('takeover_ms', {}).values())
    for key, vals in (('takeover (kill -> change confirmed)', takeovers),
                      ('takeover, etcd leader killed', by_leader[True]),
                      ('takeover, etcd follower killed', by_leader[False]),
                      ('new standby', standbys),
                      ('restarted node rejoined', rejoins)):
        if vals:
            summary[key] = {'all': stats.describe(vals)}
    outages = stats.flat(summary)
    targets = [stats.target(outages, 'takeover (kill -> change confirmed) '
                            'all', 'p95', TAKEOVER_TARGET_MS)]
    targets.append({'key': 'probes lost', 'stat': 'total', 'limit': 0,
                    'measured': lost, 'unit': 'probes',
                    'met': lost == 0 and bool(records)})
    if len(records) < trials and not problems:
        problems.append(f'{len(records)} of {trials} trials ran')
    artifacts = []
    if records:
        artifacts = [os.path.join(out_dir, 'takeover-per-trial.png'),
                     os.path.join(out_dir, 'takeover-cdf.png')]
        series = {'takeover, slowest device': [
            max(r['takeover_ms'].values()) for r in records
            if r.get('takeover_ms')],
            'new standby': [r['new_standby_ms'] for r in records
                            if r.get('new_standby_ms') is not None]}
        failplots.per_trial(series, artifacts[0],
                            f"Controller node killed ({plan['name']}): "
                            'takeover per trial', 'ms after the kill')
        failplots.cdf({'takeover': takeovers}, artifacts[1],
                      f"Controller node killed ({plan['name']}): takeover, "
                      'every device')
    metrics = dict(rate_pps=rate, seed=seed, write_every_ms=WRITE_EVERY_S *
                   1000, controllers=len(plan['controllers']),
                   mods_per_write=cost, outages=outages, targets=targets,
                   trials=records, problems=problems, **extra)
    res = results.result('controller-failover', plan['name'],
                         not problems and len(records) == trials, metrics,
                         artifacts + [os.path.join(out_dir, f) for f in (
                             'controller.log', 'writes.csv')
                             if os.path.exists(os.path.join(out_dir, f))])
    results.save(res, out_dir)
    return res
