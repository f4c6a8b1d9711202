"""Scenario p2v-migration: a bare-metal server behind a hardware VTEP is
migrated to a VM on a hypervisor, keeping its IP and MAC, while a VM and a
physical peer keep talking to it (whitepaper, "Use Cases": P2V migration;
the physical port is decommissioned and the VM takes over the identity).

The lab holds a spare VM (`vm7`, on hv3) that is given the server's MAC
and IP before the cut-over: the converted machine, booted, its vNIC not
connected yet (hv3 does not announce it: no iface-id). Its logical port is
created through the API before the first trial, with the server's MAC and
IP: a port whose VM is plugged nowhere is unbound (in no device's intent).

per trial, under UDP probe streams at 1,000/s in both directions between
the migrating server and each peer (a VM, and a dual-homed bare-metal
server behind other VTEP ports), sequence numbers being time slots of one
shared epoch so the VM continues the server's streams:
  cut-over  the server is powered off (its senders stop, its link goes
            down: its switch forgets, by itself, the MACs it learned on that
            port when the port loses carrier); hv3 connects the VM's vNIC
            (announces its iface-id in its OVSDB, which the controller
            follows: it binds the port there, no API call on the path); the
            VM (already running the same senders, dropped until its vNIC is
            on the logical switch) announces itself with a gratuitous ARP;
            then the hardware VTEP port binding is decommissioned through
            the API.
  measure   downtime per direction (longest gap of the merged receivers);
            time from the vNIC's connection until every hypervisor,
            gateway and hardware VTEP points the MAC at the hypervisor
            (each device's change pushed to a watch: an OpenFlow flow
            monitor, an OVSDB replica);
            afterwards, no stale entry anywhere (no flow or VTEP entry
            still pointing at the old location, no local entry left).
  restore   the reverse migration (not measured): the vNIC disconnected
            (the port unbound), server up, binding back, until everyone
            points at the VTEP again.
"""
import os
import subprocess
import sys
import time

from controllers import intent
from topologies import vmotion

from . import failplots, harness, probe, results, stats, watch

RATE = 1000
SERVER, SPARE, VM_PEER, PHYS_PEER = 'bm2', 'vm7', 'vm1', 'bm1'
TARGET_P95_MS = 50


def server_port(plan, server=SERVER):
    """(hardware VTEP, port name) that faces `server`."""
    for n, p in plan['nodes'].items():
        if p['role'] != 'hw_vtep':
            continue
        for i in p['intfs']:
            if i['kind'] == 'physical' and (i.get('server') or
                                            i['peer']) == server:
                return n, i['name']
    raise ValueError(f'no hardware VTEP port faces {server}')


CUT_AT_S = 2.0          # streams run this long before the cut-over
MAX_DISCARDED = 3       # attempts with losses before the cut, repeated


def cutover_gap(res, epoch, t_cut, rate=RATE):
    """The cut-over downtime of one stream (an analysis of slots since
    `epoch`, with receive times): the longest silence that ends after the
    cut-over began (receive clock), the longest gap of sequence numbers
    that starts there (sequence clock), in ms, and whether the stream was
    clean in the second before it (else the trial measures something else). 150 ms of slack before the cut: on a
    busy box a sender runs late, so the slots it had not sent yet when the
    server was powered off show up as a gap starting before the cut (they
    count as downtime: a conservative reading)."""
    cut = (t_cut - epoch) * rate
    slack = 0.15 * rate
    before = [(a, n) for a, n in res['gaps']
              if a < cut - slack and a + n > cut - rate]
    after = [n for a, n in res['gaps'] if a >= cut - slack]
    seq_ms = round(max(after, default=0) * 1000 / rate, 1)
    times = res.get('times')
    if times is None:
        return {'downtime_ms': seq_ms, 'downtime_seq_ms': seq_ms,
                'clean_before': not before}
    # the receive clock: the longest silence after the cut-over began (a
    # silence already running then counts from there)
    start = t_cut - slack / rate
    around = [max(t, start) for t in times if t < start][-1:] + \
        [t for t in times if t >= start]
    _, a, b = probe.longest_silence(around)
    return {'downtime_ms': probe.silence_ms(around, rate),
            'downtime_seq_ms': seq_ms, 'clean_before': not before,
            'sender_ok': not probe.stalled_during(res.get('stalls', []),
                                                  a, b)}


def longest_gap(res, epoch, t0):
    """[start, end] in ms after t0 of the longest gap of an analysis whose
    sequence numbers are 1 ms slots since `epoch`."""
    if not res['gaps']:
        return None
    first, n = max(res['gaps'], key=lambda g: g[1])
    start = (epoch + first / RATE - t0) * 1000
    return [round(start), round(start + n * 1000 / RATE)]


def stale_entries(flows, vteps, expect_edge, expect_ip):
    """What still points elsewhere. flows: {edge: set of output ports for
    the MAC}; expect_edge: {edge: port it must use}; vteps: {vtep: (remote
    locator IP or None, listed as local?)}; expect_ip: the locator all
    hardware VTEPs must use. -> [readable problems] (empty: converged)."""
    out = []
    for edge, want in sorted(expect_edge.items()):
        got = flows.get(edge, set())
        if got != {want}:
            out.append(f'{edge}: MAC sent to ports {sorted(got)}, '
                       f'expected {want}')
    for vtep, (remote, local) in sorted(vteps.items()):
        if remote != expect_ip:
            out.append(f'{vtep}: Ucast_Macs_Remote locator {remote}, '
                       f'expected {expect_ip}')
        if local:
            out.append(f'{vtep}: still lists the MAC in Ucast_Macs_Local')
    return out


def edge_outputs(lab, edge, mac):
    out = lab.node(edge).ns_run(['ovs-ofctl', '-O', 'OpenFlow13',
                                 'dump-flows', 'br-int', f'dl_dst={mac}'
                                 ]).stdout
    ports = set()
    for line in out.splitlines():
        if 'actions=output:' in line:
            ports.add(int(line.split('actions=output:')[1].split(',')[0]))
    return ports


def vtep_view(lab, vtep, ls, mac):
    db = f'--db={lab.db(vtep)}'

    def ctl(*args):
        return subprocess.run(['vtep-ctl', db, *args], capture_output=True,
                              text=True, timeout=10).stdout
    remote = None
    for line in ctl('list-remote-macs', ls).splitlines():
        if mac in line and '->' in line:
            remote = line.split('/')[-1].strip()
    return remote, mac in ctl('list-local-macs', ls)


class Identity:
    """The spare VM takes the server's MAC and IP (the converted machine)."""

    def __init__(self, lab):
        n = lab.plan['nodes']
        self.mac, self.ip = n[SERVER]['mac'], n[SERVER]['ip']
        vm = lab.node(SPARE)
        for cmd in (['ip', 'link', 'set', 'eth0', 'down'],
                    ['ip', 'link', 'set', 'eth0', 'address', self.mac],
                    ['ip', 'addr', 'flush', 'dev', 'eth0'],
                    ['ip', 'addr', 'add', self.ip, 'dev', 'eth0'],
                    ['ip', 'link', 'set', 'eth0', 'up']):
            vm.ns_run(cmd, check=True)


class Streams:
    """Epoch-numbered probe streams whose server end moves: receivers for
    the server's address run on both the server and the VM; the server's
    senders are replaced by the VM's at the cut-over."""

    def __init__(self, lab, seconds, out_dir, tag):
        self.lab, self.seconds, self.dir, self.tag = lab, seconds, out_dir, tag
        n = lab.plan['nodes']
        self.ip = {h: n[h]['ip'].split('/')[0]
                   for h in (SERVER, VM_PEER, PHYS_PEER)}
        self.into = {f'{p}->server': (p, 9400 + k)
                     for k, p in enumerate((VM_PEER, PHYS_PEER))}
        self.outof = {f'server->{p}': (p, 9402 + k)
                      for k, p in enumerate((VM_PEER, PHYS_PEER))}
        self.procs, self.files = {'recv': [], 'send': [], 'server': []}, {}

    def _probe(self, node, *args, out=subprocess.DEVNULL):
        return subprocess.Popen(['ip', 'netns', 'exec', self.lab.node(
            node).ns, sys.executable, harness.PROBE, *args], stdout=out,
            text=True)

    def _recv(self, name, node, port):
        path = os.path.join(self.dir, f'{self.tag}-{name}-{node}.txt')
        self.files.setdefault(name, []).append(path)
        self.procs['recv'].append(self._probe(
            node, 'recv', '--port', str(port), '--out', path, '--seconds',
            str(self.seconds + 5)))

    def _send(self, group, name, node, dst, port):
        self.procs[group].append((name, self._probe(
            node, 'send', '--dst', dst, '--port', str(port), '--rate',
            str(RATE), '--seconds', str(self.seconds), '--epoch',
            str(self.epoch), out=subprocess.PIPE)))

    def start(self):
        for name, (peer, port) in self.into.items():
            self._recv(name, SERVER, port)
            self._recv(name, SPARE, port)
        for name, (peer, port) in self.outof.items():
            self._recv(name, peer, port)
        time.sleep(0.5)
        self.epoch = time.time() + 0.3
        for name, (peer, port) in self.into.items():
            self._send('send', name, peer, self.ip[SERVER], port)
        for name, (peer, port) in self.outof.items():
            self._send('server', name, SERVER, self.ip[peer], port)
            # the converted VM already runs the same workload; its vNIC is
            # on no logical switch yet, so its hypervisor drops its frames
            self._send('send', name, SPARE, self.ip[peer], port)
        return self

    def power_off_server(self):
        for _, p in self.procs['server']:
            p.terminate()

    def finish(self):
        """-> {stream: probe analysis + 'times' (receive times, both
        receivers) and 'sender_lag_ms' (the worst of its senders; a sender
        powered off mid-stream reports nothing)}."""
        lag, stalls = {}, {}
        for name, p in self.procs['send'] + self.procs['server']:
            _, behind, when = probe.sender_report(p.communicate()[0])
            stalls[name] = stalls.get(name, []) + when
            if behind is not None:
                lag[name] = max(lag.get(name, 0.0), behind)
        time.sleep(0.3)
        for p in self.procs['recv']:
            p.terminate()
            p.wait()
        total = int(RATE * self.seconds)
        out = {}
        for name, paths in self.files.items():
            seqs, times = [], []
            for path in paths:
                s, t = probe.read(path)
                seqs, times = seqs + s, times + t
                os.remove(path)
            out[name] = probe.analyse(total, sorted(set(seqs)), RATE,
                                      sender_lag_ms=lag.get(name))
            out[name].update(times=sorted(times),
                             stalls=stalls.get(name, []))
        return out


def run(fabric='clos', progress=print, trials=10, seed=1, seconds=11.0,
        vtep_device=None):
    out_dir, rng, env = harness.measured_run('p2v-migration', fabric, seed,
                                             progress, vtep_device)
    records, problems = [], []
    with env as lab:
        plan, ctl = lab.plan, lab.ctl
        n = plan['nodes']
        mac = n[SERVER]['mac']
        hv = n[SPARE]['intfs'][0]['peer']
        vm_port = next(i['ofport'] for i in n[hv]['intfs']
                       if i['peer'] == SPARE)
        vtep_of_server, port = server_port(plan)
        ls_name = n[SERVER]['ls']
        ls_id = next(ls['id'] for ls in ctl.get('/logical-switches')
                     if ls['name'] == ls_name)
        conn = next(c for c in ctl.get('/gateway-connections')
                    if (c['gateway'], c['port']) == (vtep_of_server, port))
        vteps = [v for v, p in n.items() if p['role'] == 'hw_vtep']
        edges = [e for e, p in n.items()
                 if p['role'] in ('hypervisor', 'sw_gateway')]
        server_intf = n[SERVER]['intfs'][0]['name']
        identity = Identity(lab)
        # the converted VM: its vNIC not connected, its port (the server's
        # MAC and IP) created ahead, unbound until hv3 announces the vNIC
        vmotion.unplug(lab, SPARE, hv)
        s2, vport = ctl.request('POST', f'/logical-switches/{ls_id}/ports',
                                {'attachment': SPARE, 'mac': mac,
                                 'ip': identity.ip})

        def bound():
            return next((p['transport_node'] for p in ctl.get(
                f'/logical-switches/{ls_id}/ports')
                if p['attachment'] == SPARE), 'gone')
        if s2 != 201 or harness.until(lambda: bound() is None, 10,
                                      0.1) is None:
            problems.append(f'the converted VM\'s port: API answered {s2} '
                            f'{vport}; bound at {bound()} with its vNIC '
                            'unplugged')
            trials = 0

        def where():
            flows = {e: edge_outputs(lab, e, mac) for e in edges}
            views = {v: vtep_view(lab, v, ls_name, mac) for v in vteps}
            return flows, {v: x for v, x in views.items()
                           if x[0] or x[1]}

        def at_vtep():
            # the server talks, so its switch learns it and reports it
            lab.node(SERVER).ns_run(['ping', '-c', '1', '-W', '0.5',
                                     peer_ip])
            flows, views = where()
            want = intent.TUNNEL_BASE + n[vtep_of_server]['index']
            at = n[vtep_of_server]['tunnel_ip'].split('/')[0]
            talks = all(lab.node(p).ns_run(
                ['ping', '-c', '1', '-W', '0.5', n[SERVER]['ip'].split('/')[0]]
            ).returncode == 0 for p in (VM_PEER, PHYS_PEER))
            return talks and all(flows[e] == {want} for e in users) and \
                views.get(vtep_of_server, (None, False))[1] and \
                all(views.get(v, (None, False))[0] == at for v in vteps
                    if v != vtep_of_server)
        peer_ip = n[VM_PEER]['ip'].split('/')[0]
        lab.node(SERVER).ns_run(['ping', '-c', '2', '-W', '1', peer_ip])
        users = [e for e in edges if edge_outputs(lab, e, mac)]
        bar = harness.TrialBar(trials, progress)
        k, discarded = 0, []
        while k < trials:
            k += 1
            if harness.until(at_vtep, 30, 0.3) is None:
                problems.append(f'trial {k}: the server never reachable at '
                                f'{vtep_of_server} ({where()})')
                break
            # every device's view of the MAC, pushed by the device as it
            # changes (polling them would load the box that is measured)
            watches = {e: watch.FlowWatch(lab, e, mac)
                       for e in sorted(set(users) | {hv})}
            watches.update({v: watch.VtepWatch(lab, v, ls_name, mac)
                            for v in vteps})
            time.sleep(1.0 + rng.uniform(0, 0.2))
            st = Streams(lab, seconds, out_dir, f'p2v-{k:02d}').start()
            time.sleep(max(0.0, st.epoch + CUT_AT_S - time.time()))
            for w in watches.values():
                w.start()
            plug = vmotion.Plug(lab, SPARE, mac, hv)      # armed ahead
            # cut-over: the server goes away (its switch port loses carrier
            # and the switch flushes what it learned there), the VM's vNIC is
            # attached with the server's MAC and IP, the physical binding is
            # decommissioned, the VM announces itself
            t_off = time.time()
            st.power_off_server()
            lab.node(SERVER).ns_run(['ip', 'link', 'set', server_intf,
                                     'down'])
            t_plug = plug.fire()
            # the VM's vNIC comes up once its hypervisor has programmed its
            # port (what hv3's flow monitor shows); then it forgets the
            # neighbours it failed to resolve while isolated (a cold VM
            # resolves on first use) and announces itself
            harness.until(lambda: watches[hv].value() == vm_port, 2.0, 0.002)
            t_up = time.time()
            lab.node(SPARE).ns_run(['ip', 'neigh', 'flush', 'dev', 'eth0'])
            lab.node(SPARE).ns_run(['arping', '-U', '-c', '1', '-I', 'eth0',
                                    identity.ip.split('/')[0]])
            # the physical port is decommissioned (off the cut-over path)
            s1, _ = ctl.request('DELETE', f"/gateway-connections/{conn['id']}")
            expect_edge = {e: intent.TUNNEL_BASE + n[hv]['index']
                           for e in users if e != hv}
            expect_edge[hv] = vm_port
            expect_ip = n[hv]['tunnel_ip'].split('/')[0]

            got = st.finish()
            time.sleep(1.0)
            for w in watches.values():
                w.stop()
            expected = {e: expect_edge.get(e, (expect_ip, False))
                        for e in watches}
            settled = watch.settled_at({watches[e]: want for e, want in
                                        expected.items()})
            flows, views = where()
            stale = stale_entries(flows, views, expect_edge, expect_ip)
            cut = {name: cutover_gap(r, st.epoch, t_off)
                   for name, r in got.items()}
            rec = {'trial': k, 'outage_ms': {
                name: c['downtime_ms'] for name, c in cut.items()},
                'outage_seq_ms': {
                name: c['downtime_seq_ms'] for name, c in cut.items()},
                'sender_lag_ms': {name: r.get('sender_lag_ms')
                                  for name, r in got.items()},
                'clean_before_cut': {name: c['clean_before']
                                     for name, c in cut.items()},
                'converged_after_s': None if settled is None else round(
                    settled - t_plug, 3),
                'stale_after': stale, 'api': [s1],
                # what a watch saw last where it is not what was expected
                'watched_unsettled': {
                    e: [watches[e].value(), want] for e, want in
                    expected.items() if watches[e].value() != want},
                'vnic_up_after_plug_ms': round((t_up - t_plug) * 1000, 1),
                'plug_after_power_off_ms': round((t_plug - t_off) * 1000,
                                                 1),
                # the longest gap, in ms after the power-off: [start, end]
                'gap_ms_after_power_off': {
                    name: longest_gap(r, st.epoch, t_off)
                    for name, r in got.items()}}
            dirty = [name for name, c in cut.items() if not c['clean_before']]
            if dirty and len(discarded) < MAX_DISCARDED:
                # losses before the cut-over: this attempt measures nothing;
                # it is kept in the result as discarded, and repeated
                rec['discarded'] = (f'streams {dirty} were losing packets '
                                    'in the second before the cut-over')
                discarded.append(rec)
                progress(f"  trial {k} discarded: {rec['discarded']}")
                k -= 1
            else:
                records.append(rec)
                bar.step('downtime ' + ', '.join(
                    f'{name} {ms:.0f}' for name, ms in
                    rec['outage_ms'].items())
                    + f" ms; every VTEP at {hv} after "
                    f"{rec['converged_after_s']} s")
            why = []
            if s1 != 204:
                why.append(f'API answered {s1} to the binding\'s removal')
            if stale:
                why.append('stale entries: ' + '; '.join(stale))
            if dirty and 'discarded' not in rec:
                why.append(f'streams {dirty} were losing packets in the '
                           'second before the cut-over: not measured')
            # a stall can only lengthen the silence: reported, not fatal
            rec['sender_stalled'] = [name for name, c in cut.items()
                                     if not c['sender_ok']]
            if any(r['received'] == 0 for r in got.values()):
                why.append('a stream received nothing')
            # restore: the reverse migration, for the next trial
            vmotion.unplug(lab, SPARE, hv)
            if harness.until(lambda: bound() is None, 5, 0.05) is None:
                why.append(f'the port stayed bound at {bound()} after its '
                           'vNIC was unplugged')
            lab.node(SERVER).ns_run(['ip', 'link', 'set', server_intf, 'up'])
            s3, conn = ctl.request('POST', '/gateway-connections', {
                'ls_id': ls_id, 'gateway': vtep_of_server, 'port': port,
                'vlan': conn['vlan']})
            if why or s3 != 201:
                problems.append(f'trial {k}: ' + '; '.join(
                    why or [f'binding not restored: {s3} {conn}']))
                break
        problems += [f'controller: {e}' for e in env.controller_errors()[:5]]
    summary = stats.flat(stats.summarize(records, group=lambda t: 'p2v'))
    targets = [stats.target(summary, k, 'p95', TARGET_P95_MS)
               for k in summary]
    conv = [r['converged_after_s'] * 1000 for r in records
            if r['converged_after_s'] is not None]
    if conv:
        summary['every VTEP at the VM'] = stats.describe(conv)
    artifacts = []
    if records:
        artifacts = [os.path.join(out_dir, 'downtime-per-trial.png')]
        series = {}
        for r in records:
            for name, ms in r['outage_ms'].items():
                series.setdefault(name, []).append(ms)
        series['every VTEP points at the VM (ms after the API call)'] = conv
        failplots.per_trial(series, artifacts[0], 'P2V migration: cut-over '
                            'downtime per trial', 'ms')
    metrics = {'rate_pps': RATE, 'seed': seed, 'server': SERVER,
               'discarded_attempts': discarded,
               'vm': SPARE, 'peers': [VM_PEER, PHYS_PEER],
               'outages': summary, 'targets': targets, 'trials': records,
               'problems': problems}
    res = results.result('p2v-migration', plan['name'],
                         not problems and len(records) == trials, metrics,
                         artifacts + [os.path.join(out_dir,
                                                   'controller.log')])
    results.save(res, out_dir)
    return res
