"""Scenario service-node-failover: the service node replicating a logical
switch's broadcasts dies; BUM traffic resumes through another service node
with no help from the controller (whitepaper, "Redundancy": hypervisors
keep-alive the service nodes and "can immediately switch to another one";
vtep(5): a hardware VTEP picks a service node "known to be healthy and
reachable, which could be determined by BFD").

setup: lab, controller, provisioning; BFD up from every hypervisor and
gateway to both service nodes, and from the hardware VTEPs.
per trial, three broadcast streams (1,000/s each, to the subnet's broadcast
address):
  vm->vm          VM A -> VM B on another hypervisor (A's hypervisor sends
                  to one service node: a fast-failover group following BFD)
  vm->server      the same broadcasts, as a bare-metal server behind a
                  hardware VTEP gets them (the service node replicates them
                  to the VTEP)
  server->vm      the server's own broadcasts, which its hardware VTEP sends
                  to the service node it chose (BFD on the VTEP's tunnels)
The service node each side uses is read from its group's bucket counters,
in a short window before the kill's; that broadcasts resumed through
another one, from a capture of what the hypervisor tunnels from 0.5 s
after the kill (BFD's 3 x 100 ms detection, with room). A kill that comes
less than 1 s before the streams end is a failed trial, not a pass.
One second in, the controller is frozen (SIGSTOP: nothing it does can help)
and a service node in use is killed (kill -9 of its ovs-vswitchd): the one
both sides use, or, if they use different ones, the hypervisor's in odd
trials and the VTEP's in even ones. Outage = longest run of missing
sequence numbers; each side's outage counts for the trials that killed its
service node (the other side must not notice). Then the controller resumes
and, in a second window, the dead service node is restarted (failback).
"""
import ipaddress
import os
import re
import signal
import time

from topologies import boot, hwvtep, liveness

from . import failplots, harness, results, stats

RATE = 1000
BROADCAST = 'ff:ff:ff:ff:ff:ff'
SIDES = {'hypervisor': ('vm->vm', 'vm->server'), 'vtep': ('server->vm',)}


def bucket_packets(lab, node, bridge='br-int', group=1):
    """[packets per bucket] of a group on a node's bridge."""
    out = lab.node(node).ns_run(['ovs-ofctl', '-O', 'OpenFlow13',
                                 'dump-group-stats', bridge,
                                 f'group_id={group}']).stdout
    return [int(part.split('packet_count=')[1].split(',')[0])
            for part in out.split('bucket')[1:]]


def broadcasts_to(frames, since, sn_of_ip):
    """{service node: broadcasts tunnelled to it} among captured frames
    (harness.decode records) sent at or after `since` (epoch s)."""
    out = {}
    for f in frames:
        sn = sn_of_ip.get(f.get('outer_dst'))
        if sn and f['time'] >= since and f.get('dst') == BROADCAST:
            out[sn] = out.get(sn, 0) + 1
    return out


def in_use(before, after, targets):
    """The target of the bucket that counted the most packets between two
    readings, or None."""
    deltas = [a - b for a, b in zip(after, before)]
    if not deltas or max(deltas) <= 0:
        return None
    return targets[deltas.index(max(deltas))]


def vtep_bucket_targets(lab, member, vni):
    """The service node IP each bucket of the VTEP member's group for `vni`
    sends to: its BFD tunnel's remote IP, or the tunnel destination it sets
    (devices.hwvtep.pipeline: one group per logical switch, id = VNI)."""
    n = lab.node(member)
    groups = n.ns_run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-groups',
                       hwvtep.BRIDGE, f'group_id={vni}']).stdout
    names = {}
    for line in n.ns_run(['ovs-ofctl', '-O', 'OpenFlow13', 'show',
                          hwvtep.BRIDGE]).stdout.splitlines():
        m = re.match(r'\s*(\d+)\((\S+)\):', line)
        if m:
            names[int(m.group(1))] = m.group(2)
    out = []
    for bucket in groups.split('bucket=')[1:]:
        m = re.search(r'set_field:([\d.]+)->tun_dst', bucket)
        if m:
            out.append(m.group(1))
            continue
        port = int(re.search(r'output:(\d+)', bucket).group(1))
        out.append(str(ipaddress.IPv4Address(int(names[port][3:], 16))))
    return out


def pick_pair(plan):
    n = plan['nodes']
    vms = [v for v, p in n.items() if p['role'] == 'vm' and p.get('ls')]
    a = vms[0]
    b = next(v for v in vms if n[v]['ls'] == n[a]['ls'] and
             n[v]['intfs'][0]['peer'] != n[a]['intfs'][0]['peer'])
    return a, b


def pick_server(plan, ls):
    """A single-homed bare-metal server of `ls` behind a hardware VTEP ->
    (server, VTEP node, member bridge node) or None."""
    n = plan['nodes']
    for v, p in n.items():
        if p['role'] != 'hw_vtep':
            continue
        for i in p['intfs']:
            host = i.get('server') or i['peer']
            if i['kind'] == 'physical' and n[host].get('ls') == ls and \
                    len(n[host]['intfs']) == 1:
                return host, v, i.get('member', v)
    return None


def broadcast_of(cidr):
    return str(ipaddress.ip_interface(cidr).network.broadcast_address)


def _kill_vswitchd(lab, node):
    with open(os.path.join(lab.node(node).run_dir, 'ovs-vswitchd.pid')) as f:
        lab.node(node).ns_run(['kill', '-9', f.read().strip()])


def window(lab, flows, seconds, out_dir, tag, at, act):
    """Broadcast streams for `seconds`, act() `at` s in; -> ({name:
    analysis}, what act returned, {name: (sent, seqs)})."""
    probes = harness.Streams(lab, flows, seconds, out_dir, RATE, tag).start()
    time.sleep(at)
    got = act()
    res = probes.finish()
    for path in probes.paths.values():
        os.remove(path)
    return {k: g.analyse(RATE) for k, g in res.items()}, got, res


def victim_for(trial, hv_sn, vtep_sn):
    """Which service node a trial kills, and which sides that affects."""
    if vtep_sn is None or hv_sn == vtep_sn:
        return hv_sn, {'hypervisor'} | ({'vtep'} if vtep_sn else set())
    if trial % 2:
        return hv_sn, {'hypervisor'}
    return vtep_sn, {'vtep'}



def outages(res, sides, affected):
    """A trial's outages per stream (res: probe.analyse by stream name,
    sides: stream -> the side it crosses): outage_ms and outage_seq_ms of
    the streams on an affected side, and as unaffected_* of the others
    (the side whose service node lived: it must not notice)."""
    return {f'{prefix}{key}': {name: r[key] for name, r in res.items()
                               if (sides[name] in affected) == hit}
            for prefix, hit in (('', True), ('unaffected_', False))
            for key in ('outage_ms', 'outage_seq_ms')}

def run(fabric='clos', progress=print, trials=20, seed=1, seconds=3.0,
        vtep_device=None):
    out_dir, rng, env = harness.measured_run('service-node-failover', fabric,
                                             seed, progress, vtep_device)
    records, problems = [], []
    with env as lab:
        plan = lab.plan
        n = plan['nodes']
        a, b = pick_pair(plan)
        hv_a = n[a]['intfs'][0]['peer']
        chosen = liveness.service_nodes_of_edges(n)
        sns = chosen[hv_a]          # its group's buckets, in this order
        sn_of_ip = {n[s]['tunnel_ip'].split('/')[0]: s
                    for s in n if n[s]['role'] == 'service_node'}
        dst = broadcast_of(n[a]['ip'])
        flows = [('vm->vm', a, b, 9200, dst)]
        server = pick_server(plan, n[a]['ls'])
        vni = next(ls['vni'] for name, ls in plan['logical_switches'].items()
                   if name == n[a]['ls'])
        if server and plan.get('vtep_device', 'native') == 'native':
            srv, vtep, member = server
            flows += [('vm->server', '=vm->vm', srv, 9200),
                      ('server->vm', srv, b, 9201, dst)]
        else:
            server = None
            progress('  no native hardware VTEP with a single-homed server '
                     'in this lab: the hypervisor side only')
        if harness.until(lambda: harness.bfd_up(lab, chosen), 30,
                         0.2) is None:
            problems.append('BFD to every service node never came up')
        bar = harness.TrialBar(trials, progress)
        for k in range(1, trials + 1 if not problems else 1):
            time.sleep(3.5)       # BFD at its negotiated rate (docs/platform.md)
            at = 1.0 + rng.uniform(0, 0.2)
            # which service node each side uses, in a window of its own:
            # read during the kill's window, it could push the kill past
            # the streams' end (a slow read under load did)
            _, users, _ = window(
                lab, flows, 1.5, out_dir, f'use-{k:02d}', 0.2,
                lambda: used(lab, hv_a, server, vni, sns, sn_of_ip))
            victim, affected = victim_for(k, users['hypervisor'],
                                          users.get('vtep'))
            if not victim:
                problems.append(f'trial {k}: no service node was carrying '
                                f'the broadcasts (in use: {users})')
                break
            state = {'users': users, 'victim': victim,
                     'affected': affected}

            def fault():
                state['killed_at'] = time.time()
                os.kill(lab.ctl.proc.pid, signal.SIGSTOP)
                state['frozen'] = True
                _kill_vswitchd(lab, victim)
                return victim
            tunnels = harness.Captures(
                lab, [(f'bum-{k:02d}', hv_a, n[hv_a]['uplink'], 'out')],
                out_dir, 'udp dst port 4789', snaplen=128)
            try:
                with tunnels:
                    started = time.time()
                    res, victim, raw = window(lab, flows, seconds, out_dir,
                                              f'bum-{k:02d}', at, fault)
            finally:
                if state.get('frozen'):
                    os.kill(lab.ctl.proc.pid, signal.SIGCONT)
            # from BFD's detection on (3 x 100 ms), with room to spare
            sent = broadcasts_to(tunnels.frames()[f'bum-{k:02d}'],
                                 state['killed_at'] + 0.5, sn_of_ip)
            why = []
            others = [s for s in sns if s != victim]
            moved = [s for s in others if sent.get(s, 0) >= RATE // 2]
            if moved:                  # kept only as a failure's evidence
                os.remove(tunnels.files[f'bum-{k:02d}'])
            resumed = {name: any(q >= sent - 300 for q in seqs)
                       for name, (sent, seqs) in raw.items()}
            time.sleep(1.0)
            back_res, _, _ = window(
                lab, flows, seconds + 4.0, out_dir, f'back-{k:02d}', 1.0,
                lambda: lab.node(victim).ns_run(
                    ['bash', '-c', boot.vswitchd_cmd(lab.node(victim)
                                                     .run_dir)], check=True))
            back = harness.until(
                lambda: harness.bfd_up(lab, chosen), 30, 0.2)
            _, back_users, _ = window(
                lab, flows, 1.5, out_dir, f'via-{k:02d}', 0.2,
                lambda: used(lab, hv_a, server, vni, sns, sn_of_ip))
            sides = {name: side for side, names in SIDES.items()
                     for name in names if name in res}
            rec = {'trial': k, 'victim': victim,
                   'in_use': state['users'], 'affected': sorted(
                       state['affected']),
                   'resumed_via': moved, 'broadcasts_sent_to': sent,
                   **outages(res, sides, state['affected']),
                   'sender_lag_ms': {name: r.get('sender_lag_ms')
                                     for name, r in res.items()},
                   'lost': {name: r['lost'] for name, r in res.items()},
                   'bfd_back_s': back, 'after_restart_in_use': back_users,
                   'after_restart_outage_ms': {
                       name: r['outage_ms'] for name, r in back_res.items()}}
            records.append(rec)
            bar.step(f"killed {victim} (used by "
                     f"{', '.join(sorted(state['affected']))}): outage "
                     + ', '.join(f'{name} {ms:.0f}' for name, ms in
                                 rec['outage_ms'].items())
                     + ' ms; restarted: ' + ', '.join(
                         f'{name} {ms:.0f}' for name, ms in
                         rec['after_restart_outage_ms'].items()) + ' ms')
            rec['killed_after_s'] = round(state['killed_at'] - started, 3)
            if rec['killed_after_s'] > seconds - 1.0:
                why.append(f"the kill came {rec['killed_after_s']} s into "
                           f'a {seconds} s window: too late to see a '
                           'failover')
            elif 'hypervisor' in state['affected'] and not moved:
                why.append(f'broadcasts did not resume through another '
                           f'service node ({hv_a} tunnelled, from 0.5 s '
                           f'after the kill: {sent or "none"})')
            rec['sender_stalled'] = [name for name, r in res.items()
                                     if not r.get('sender_ok', True)]
            stalled = [name for name, ok in resumed.items() if not ok]
            if stalled:
                why.append(f'streams {stalled} had not resumed by the end '
                           'of the window')
            if back is None:
                why.append(f'BFD to {victim} never came back up')
            else:
                for side, was in state['users'].items():
                    if was == victim and back_users.get(side) != victim:
                        why.append(f'the {side} did not go back to {victim} '
                                   f'once it was up again (now '
                                   f'{back_users.get(side)})')
            if why:
                problems.append(f'trial {k}: ' + '; '.join(why))
                break
        problems += [f'controller: {e}' for e in env.controller_errors()[:5]]
    summary = stats.flat(stats.summarize(records, group=lambda t: 'killed'))
    summary.update(stats.flat(stats.summarize(
        records, 'unaffected_outage_ms', group=lambda t: 'not killed')))
    summary.update(stats.flat(stats.summarize(
        records, 'after_restart_outage_ms', group=lambda t: 'restarted')))
    artifacts = []
    if records:
        artifacts = [os.path.join(out_dir, 'bum-outage-per-trial.png')]
        series = {}
        for r in records:
            for name, ms in r['outage_ms'].items():
                series.setdefault(f'{name}: its service node killed',
                                  []).append(ms)
        failplots.per_trial(series, artifacts[0], 'Service node failover: '
                            'BUM outage per trial (controller frozen)')
    metrics = {'rate_pps': RATE, 'seed': seed, 'pair': [a, b],
               'server': server[0] if server else None,
               'bfd_interval_ms': 100, 'outages': summary,
               'trials': records, 'problems': problems}
    res = results.result('service-node-failover', plan['name'],
                         not problems and len(records) == trials, metrics,
                         artifacts + [os.path.join(out_dir,
                                                   'controller.log')])
    results.save(res, out_dir)
    return res


def used(lab, hv, server, vni, sns, sn_of_ip):
    """{'hypervisor': service node hv's group sends to, 'vtep': the one the
    server's hardware VTEP sends to}, from bucket counters over 0.3 s."""
    def read():
        out = {'hypervisor': bucket_packets(lab, hv)}
        if server:
            out['vtep'] = bucket_packets(lab, server[2], hwvtep.BRIDGE, vni)
        return out
    first, deadline, found = read(), time.time() + 1.0, {}
    while time.time() < deadline and len(found) < len(first):
        time.sleep(0.1)
        now = read()
        if found.get('hypervisor') is None:
            found['hypervisor'] = in_use(first['hypervisor'],
                                         now['hypervisor'], sns)
        if server and found.get('vtep') is None:
            targets = [sn_of_ip.get(ip) for ip in
                       vtep_bucket_targets(lab, server[2], vni)]
            found['vtep'] = in_use(first['vtep'], now['vtep'], targets)
        found = {k: v for k, v in found.items() if v is not None}
    found.setdefault('hypervisor', None)
    if server:
        found.setdefault('vtep', None)
    return found
