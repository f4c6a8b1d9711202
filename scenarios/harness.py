"""Shared scenario harness: a lab with its controller, provisioned through
the API; packet captures started and stopped by PID in the lab's
namespaces; pcap decoding into plain frame records.

    with ControlledLab(spec, progress) as lab:   # lab.ctl: the controller
        with Captures(lab, {'hv1': 'leaf1', 'vm1': 'eth0'}, out_dir) as cap:
            ...act...
        frames = cap.frames()                    # {point: [frame dicts]}
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from controllers import clusterlab, provision
from topologies import expand, labs, liveness, records
from topologies.lab import Lab

from . import probe, results


def sessions_down(status, nodes, now=None, stable_s=0.0):
    """The `nodes` whose OpenFlow session the controller's GET /status
    (`switches`: connected, since) does not show up, or up for less than
    `stable_s` at `now`, sorted."""
    sw = status.get('switches', {})
    now = time.time() if now is None else now
    return sorted(n for n in nodes
                  if not sw.get(n, {}).get('connected') or
                  now - (sw[n].get('since') or now) < stable_s)


def port_id(ctl, vm):
    """The logical port `vm` is attached to (asked of the API)."""
    return next(p['id'] for ls in ctl.get('/logical-switches')
                for p in ctl.get(f"/logical-switches/{ls['id']}/ports")
                if p['attachment'] == vm)


def until(fn, timeout, step=0.1):
    """Call fn until it is true or `timeout` seconds pass. Returns the
    seconds it took, or None if it never became true."""
    t0 = time.monotonic()
    while True:
        if fn():
            return round(time.monotonic() - t0, 3)
        if time.monotonic() - t0 >= timeout:
            return None
        time.sleep(step)


def bfd_up(lab, chosen):
    """Every edge sees BFD forwarding on its tunnel to each service node it
    runs BFD to; `chosen`: {edge: [service nodes]}
    (topologies.liveness.service_nodes_of_edges)."""
    return all(edge_bfd_up(lab, n, sns) for n, sns in chosen.items())


def edge_bfd_states(lab, edge, sns):
    """{service node: 'up', 'down', 'off' (no BFD on the port) or 'no
    port'} for `edge`'s tunnel ports to `sns`, as its OVSDB says."""
    out = lab.node(edge).ns_run(['ovs-vsctl', '--columns=name,bfd_status',
                                 'find', 'interface', 'type=vxlan']).stdout
    blocks = {b.split('\n')[0].split(':', 1)[-1].strip().strip('"'): b
              for b in out.split('\n\n') if b.strip()}

    def state(block):
        if block is None:
            return 'no port'
        if 'forwarding="true"' in block:
            return 'up'
        return 'down' if 'state=' in block else 'off'
    return {s: state(blocks.get(f'vx{s}')) for s in sns}


def edge_bfd_up(lab, edge, sns):
    return all(v == 'up' for v in edge_bfd_states(lab, edge, sns).values())


def vtep_points(plan, names):
    """Capture points [(name, node, interface)] on the cable of each VTEP
    in `names` into the fabric: its uplink, or, for a VCF pod VTEP run by
    the native device, the instance on each member leaf (name
    '<vtep>@<leaf>', interface '<vtep>-up' in the leaf's namespace)."""
    out = []
    for n in names:
        p = plan['nodes'][n]
        if p.get('pod'):
            out += [(f'{n}@{m}', m, plan['nodes'][m]['pod_vtep']['uplink'])
                    for m in p['members']]
        else:
            out.append((n, n, p['uplink']))
    return out


def at_vtep(point):
    """The VTEP a capture point belongs to ('vtep1@leaf2' -> 'vtep1')."""
    return point.split('@')[0]


def by_vtep(frames):
    """{point: [frames]} -> {VTEP: [frames]}, a pod VTEP's members merged
    (each member gets its own copy of what is tunnelled to the pod)."""
    out = {}
    for point, recs in frames.items():
        out.setdefault(at_vtep(point), []).extend(recs)
    return {k: sorted(v, key=lambda r: r['time']) for k, v in out.items()}


def run_name(name, fabric, vtep_device=None):
    """A run's results name: NAME-FABRIC, plus the hardware VTEP device
    when it is not the default (e.g. p2v-migration-clos-ovs-vtep)."""
    out = f'{name}-{fabric}'
    if vtep_device and vtep_device != 'native':
        out += f'-{vtep_device}'
    return out


def measured_run(name, fabric, seed, progress, vtep_device=None, **lab_kw):
    """What every repeated-trial scenario starts with on a shipped lab:
    its results directory, a seeded RNG and the controlled lab (not yet
    entered) -> (out_dir, rng, env). `vtep_device` runs the lab's hardware
    VTEPs with that device instead of the lab's own choice."""
    out_dir = results.run_dir(run_name(name, fabric, vtep_device))
    spec = labs.with_vtep_device(labs.resolve(fabric), vtep_device)
    env = ControlledLab(spec, progress, out_dir, **lab_kw)
    return out_dir, random.Random(seed), env


def wait_bfd(lab, progress=lambda m: None, timeout=None):
    """Return once every hypervisor and gateway has BFD up to the service
    nodes it floods through (seconds it took). Enabling BFD takes a tunnel
    port's liveness down until its session comes up; meanwhile the
    fast-failover group has no live bucket and every broadcast (ARP first)
    is dropped: the first measurement in a fresh lab saw replies delayed 1
    to 2 s. Waits up to 30 s, or 30 BFD intervals; raises LabFailed."""
    plan = lab.plan
    chosen = {e: sns for e, sns in
              liveness.service_nodes_of_edges(plan['nodes']).items() if sns}
    if not chosen:
        return 0.0
    if timeout is None:
        timeout = max(30, 30 * plan.get('bfd_interval_ms', 100) / 1000)
    waiting = dict(chosen)

    def all_up():        # the edges still waiting, 16 at a time
        with ThreadPoolExecutor(16) as pool:
            up = [e for e, ok in zip(waiting, pool.map(
                lambda e: edge_bfd_up(lab, e, waiting[e]), list(waiting)))
                if ok]
        for e in up:
            del waiting[e]
        return not waiting
    took = until(all_up, timeout, 0.2)
    if took is None:
        seen = '; '.join(
            f'{e}: ' + ', '.join(f'{sn} {st}' for sn, st in sorted(
                edge_bfd_states(lab, e, waiting[e]).items()))
            for e in sorted(waiting)[:8])
        raise LabFailed(f'BFD to the service nodes not up after '
                        f'{timeout:.0f} s on {len(waiting)} hypervisor(s) '
                        f'and gateway(s) ({seen}; "off": the controller '
                        f'never enabled BFD on the tunnel port)')
    progress(f'  BFD up to every service node ({took} s)')
    return took


def save_node_logs(lab, where):
    """Every node's daemon logs (OVS, FRR, VTEP device or emulator, gateway
    agents) into where/<node>/, before the lab's run directory goes away."""
    for name, node in lab.nodes.items():
        if not node.run_dir or not os.path.isdir(node.run_dir):
            continue
        logs = [f for f in os.listdir(node.run_dir) if f.endswith('.log')]
        if logs:
            os.makedirs(os.path.join(where, name), exist_ok=True)
        for f in logs:
            shutil.copy(os.path.join(node.run_dir, f),
                        os.path.join(where, name, f))


def save_plan(plan, where):
    with open(os.path.join(where, 'plan.json'), 'w') as f:
        json.dump(plan, f, indent=1, sort_keys=True)


class LabFailed(RuntimeError):
    """A lab that could not be brought up (controller, provisioning, BFD);
    its evidence was saved first (see ControlledLab.save_evidence)."""


def web_urls(ctl):
    """Where the web view of a lab's controller (or of each node of its
    cluster) is: the API's address, /ui/."""
    members = getattr(ctl, 'members', None)
    return [c.url.rsplit('/api', 1)[0] + '/ui/'
            for c in (members.values() if members else [ctl])]


class ControlledLab:
    """A running lab with its controller, logical networks provisioned
    through the API; `artifacts_dir` receives the controller's log. If the
    lab cannot be brought up, the controller's log, every node's daemon
    logs and the plan are saved (in `artifacts_dir`, or
    results/lab-failed/<UTC>/) before teardown, and LabFailed says where."""

    def __init__(self, spec, progress=lambda m: None, artifacts_dir=None,
                 cfm_interval_ms=100):
        self.plan = expand.expand(spec)
        self.cfm_interval_ms = cfm_interval_ms
        self.progress = progress
        self.dir = artifacts_dir
        self.lab = self.ctl = None

    def __enter__(self):
        self.lab = Lab(self.plan, progress=self.progress)
        self.lab.start()
        try:
            self.ctl = clusterlab.make(
                self.plan, cfm_interval_ms=self.cfm_interval_ms).start()
            provision.provision(self.ctl, self.plan, self.progress)
            self.lab.ctl = self.ctl
            self.progress('web view (the lab\'s map, live): '
                          + ' or '.join(web_urls(self.ctl)))
            self.wait_bfd()
        except Exception as exc:
            where = self.dir or results.run_dir('lab-failed')
            try:
                self.save_evidence(where)
            finally:
                self.__exit__(None, None, None)
            raise LabFailed(f"lab {self.plan['name']}: {exc}; evidence "
                            f'(controller.log, logs/<node>/, plan.json) '
                            f'saved in {where}') from exc
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self.lab

    def wait_bfd(self, timeout=None):
        return wait_bfd(self.lab, self.progress, timeout)

    def __exit__(self, *exc):
        """Keeps the logs, then stops the lab whatever happened to them (a
        lab left running blocks the next one)."""
        try:
            if self.dir:
                self.save_evidence(self.dir)
        finally:
            try:
                if self.ctl is not None:
                    self.ctl.stop()
            finally:
                self.lab.stop()

    def save_evidence(self, where):
        """The controller's log (the controller stopped first), every
        node's daemon logs and the plan, into `where`."""
        if self.ctl is not None:
            self.ctl.stop()
        os.makedirs(where, exist_ok=True)
        if self.ctl is not None:
            save_controller_logs(self.ctl, where)
        save_node_logs(self.lab, os.path.join(where, 'logs'))
        save_plan(self.plan, where)

    def save_node_logs(self, where):
        save_node_logs(self.lab, where)

    def controller_errors(self):
        return log_errors(os.path.join(self.dir or '', 'controller.log'))


def save_controller_logs(ctl, where):
    """Every log of the controller (each node's, and each etcd member's,
    in a cluster) into `where` -> the paths of the controllers' logs."""
    saved = []
    for name, path in ctl.logs().items():
        if os.path.exists(path):
            shutil.copy(path, os.path.join(where, name))
            if name.endswith('controller.log'):
                saved.append(os.path.join(where, name))
    return saved


PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'probe.py')


class Streams:
    """UDP probe streams (scenarios/probe.py) between lab hosts:
    flows = [(name, sender, receiver, port[, address to send to, e.g. a
    broadcast address; the receiver's own by default])]. A sender written
    '=NAME' is flow NAME's: one more receiver of the same stream (e.g. a
    second host that gets the same broadcasts). start() starts receivers,
    then senders; finish() waits for both and returns
    {name: (packets sent, [sequence numbers received])}."""

    def __init__(self, lab, flows, seconds, out_dir, rate=1000, tag='probe',
                 new_connections=False):
        self.lab, self.flows, self.seconds = lab, flows, seconds
        self.rate, self.paths = rate, {}
        # each probe a connection of its own (probe.py --new-connections)
        self.fresh = ['--new-connections'] if new_connections else []
        self.recvs, self.sends = {}, {}
        for name, *_ in flows:
            self.paths[name] = os.path.join(out_dir, f'{tag}-{name}.txt')

    def _run(self, node, *args, **kw):
        return subprocess.Popen(['ip', 'netns', 'exec',
                                 self.lab.node(node).ns, sys.executable,
                                 PROBE, *args], **kw)

    def start(self):
        nodes = self.lab.plan['nodes']
        for name, _, dst, port, *_ in self.flows:
            self.recvs[name] = self._run(
                dst, 'recv', '--port', str(port), '--out', self.paths[name],
                '--seconds', str(self.seconds + 3))
        time.sleep(0.5)                     # receivers bound first
        for name, src, dst, port, *addr in self.flows:
            if src.startswith('='):
                continue
            to = addr[0] if addr else nodes[dst]['ip'].split('/')[0]
            self.sends[name] = self._run(
                src, 'send', '--dst', to, '--port', str(port),
                '--rate', str(self.rate), '--seconds', str(self.seconds),
                *self.fresh, stdout=subprocess.PIPE, text=True)
        return self

    def stop(self):
        """End every stream now (senders by PID, then receivers) ->
        {name: [receive times]} of what arrived (for streams run for an
        open-ended time, e.g. the whole of a soak)."""
        for p in self.sends.values():
            p.terminate()
        for p in self.sends.values():
            p.wait(10)
        time.sleep(0.3)                     # the last packets land
        for p in self.recvs.values():
            p.terminate()
            p.wait(10)
        return {name: probe.read(path)[1]
                for name, path in self.paths.items()}

    def finish(self):
        report = {n: probe.sender_report(p.communicate()[0])
                  for n, p in self.sends.items()}
        for name, src, *_ in self.flows:
            if src.startswith('='):
                report[name] = report[src[1:]]
        time.sleep(0.3)                     # the last packets land
        for p in self.recvs.values():
            p.terminate()                   # a clean exit: file complete
            p.wait()
        out = {}
        for name, path in self.paths.items():
            seqs, times = probe.read(path)
            out[name] = Got(*report[name][:1], seqs, times,
                            *report[name][1:])
        return out


class Got(tuple):
    """What one stream delivered: unpacks as (packets sent, [sequence
    numbers received]); .times are their receive times, .lag_ms how far
    the sender fell behind its schedule at worst, .stalls when it was more
    than probe.MAX_LAG_MS late."""

    def __new__(cls, sent, seqs, times=None, lag_ms=None, stalls=None):
        got = super().__new__(cls, (sent, seqs))
        got.times, got.lag_ms, got.stalls = times, lag_ms, stalls
        return got

    def analyse(self, rate):
        """probe.analyse on both clocks, with the sender's lag."""
        return probe.analyse(self[0], self[1], rate, self.times, self.lag_ms,
                             self.stalls)

    def flowing(self, margin=300):
        """Packets arrived from the start and again at the end."""
        sent, seqs = self
        return any(s < margin for s in seqs) and \
            any(s >= sent - margin for s in seqs)


def clocks(got, rate, rename=lambda name: name):
    """Streams' results -> a trial's figures: {'outage_ms' (receive clock),
    'outage_seq_ms' (sequence clock), 'sender_lag_ms': {stream: value},
    'flowing': every stream ran before and after, 'why': what makes the
    trial invalid (streams not flowing), or '', 'sender_ok': no sender
    stalled (more than probe.MAX_LAG_MS) during the silence it measured,
    'stalled': readable list of those that did}. A stall can only lengthen
    the receive clock's silence, never hide one: scenarios report it;
    gateway-failover discards and repeats such trials."""
    out = {'outage_ms': {}, 'outage_seq_ms': {}, 'sender_lag_ms': {}}
    flowing, late = True, []
    for name, g in got.items():
        res, key = g.analyse(rate), rename(name)
        out['outage_ms'][key] = res['outage_ms']
        out['outage_seq_ms'][key] = res['outage_seq_ms']
        out['sender_lag_ms'][key] = res.get('sender_lag_ms')
        flowing = flowing and g.flowing()
        if not res.get('sender_ok', False):
            late.append(f"{key} ({res.get('sender_lag_ms')} ms)")
    why = '' if flowing else ('streams were not flowing before the event, '
                              'or had not resumed by the end of the window')
    out.update(flowing=flowing, sender_ok=not late, stalled=late, why=why)
    return out


def stall_note(fig):
    """Why a trial's outage is not a clean measurement, or ''."""
    if fig['sender_ok']:
        return ''
    return ('a probe sender fell behind its schedule by more than '
            f"{probe.MAX_LAG_MS:.0f} ms at an edge of the outage: "
            f"{', '.join(fig['stalled'])} (the outage is an upper bound)")


def log_errors(path):
    """Controller errors and exceptions in a log (any fails a run, as in
    Faucet's tests)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.strip() for line in f
                if ' ERROR ' in line or line.startswith('Traceback')]


class Captures:
    """tcpdump on capture points, one pcap each in `out_dir`, stopped by
    PID. Points: {node: interface}, or [(name, node, interface[,
    direction 'in'/'out'])] (e.g. vtep_points); frames() is keyed by the
    points' names."""

    def __init__(self, lab, points, out_dir, bpf='', count=None,
                 direction=None, snaplen=256):
        if isinstance(points, dict):
            points = [(n, n, i) for n, i in points.items()]
        self.lab, self.points, self.dir, self.bpf = lab, points, out_dir, bpf
        self.count = count              # stop after this many frames
        self.direction, self.snaplen = direction, snaplen   # 'in'/'out'/None
        self.procs, self.files = {}, {}

    def __enter__(self):
        for name, node, intf, *way in self.points:
            way = way[0] if way else self.direction
            path = os.path.join(self.dir, f'{name}-{intf}.pcap')
            self.files[name] = path
            # a lab's node, or a namespace made on it (a service VM's)
            ns = self.lab.nodes[node].ns if node in self.lab.nodes else \
                records.ns_name(node)
            cmd = ['ip', 'netns', 'exec', ns, 'tcpdump',
                   '-i', intf, '-n', '-U', '--immediate-mode', '-s',
                   str(self.snaplen), '-w', path] + (
                       ['-c', str(self.count)] if self.count else []) + (
                       ['-Q', way] if way else [])
            if self.bpf:
                cmd.append(self.bpf)
            self.procs[name] = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True)
        for node, p in self.procs.items():         # wait until listening
            line = p.stderr.readline()
            if 'listening' not in line:
                raise RuntimeError(f'tcpdump on {node} did not start: {line}')
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        time.sleep(0.5)                 # let the last frames be written
        for p in self.procs.values():
            p.send_signal(signal.SIGINT)
        self.stats = {}
        for node, p in self.procs.items():
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
            self.stats[node] = p.stderr.read().strip()

    def frames(self):
        return {node: decode(path) for node, path in self.files.items()}


def trace_vni(lab, gw, port, vlan):
    """The VNIs (tun_id) a broadcast frame on VLAN `vlan` entering software
    gateway `gw`'s segment port (`port` on its br-int) gets, by
    ofproto/trace: the data plane's own translation."""
    out = lab.node(gw).ns_run([
        'ovs-appctl', 'ofproto/trace', 'br-int',
        f'in_port={port},dl_vlan={vlan},dl_src=02:00:00:00:aa:01,'
        'dl_dst=ff:ff:ff:ff:ff:ff']).stdout
    return sorted({int(v, 16) for v in re.findall(
        r'set_field:0x([0-9a-f]+)->tun_id', out)})


def foreign(recs, host, group_of, mac_of):
    """[(frame, its source host)] of the frames captured at `host` (decoded
    records) whose source MAC is a host of another group (`group_of`:
    {host: logical switch or tenant}; `mac_of`: {host: MAC}): what a
    tenant must never see."""
    owner = {mac: h for h, mac in mac_of.items()}
    return [(r, owner[r['src']]) for r in recs
            if r.get('src') in owner and
            group_of[owner[r['src']]] != group_of[host]]


def decode(path):
    """A pcap -> [frame records]: outer VXLAN (src/dst IP, UDP ports, VNI)
    if any, and the inner Ethernet (src/dst MAC, VLAN, ARP op and addresses, or
    IP addresses and ICMP type)."""
    from scapy.all import (ARP, ICMP, TCP, UDP, Dot1Q, Ether, IP, VXLAN,
                           rdpcap)
    out = []
    for pkt in rdpcap(path):
        rec = {'time': float(pkt.time)}
        inner = pkt
        if pkt.haslayer(VXLAN):
            rec.update(outer_src=pkt[IP].src, outer_dst=pkt[IP].dst,
                       outer_sport=pkt[UDP].sport, outer_dport=pkt[UDP].dport,
                       vni=pkt[VXLAN].vni)
            inner = pkt[VXLAN].payload
        if not isinstance(inner, Ether) and not inner.haslayer(Ether):
            continue
        eth = inner if isinstance(inner, Ether) else inner[Ether]
        rec.update(src=eth.src, dst=eth.dst)
        if eth.haslayer(Dot1Q):
            rec['vlan'] = eth[Dot1Q].vlan
        if eth.haslayer(ARP):
            a = eth[ARP]
            rec.update(arp='request' if a.op == 1 else 'reply', psrc=a.psrc,
                       pdst=a.pdst, hwsrc=a.hwsrc)
        elif eth.haslayer(IP):
            rec.update(ip_src=eth[IP].src, ip_dst=eth[IP].dst,
                       proto=eth[IP].proto)
            if eth.haslayer(ICMP):
                rec['icmp'] = eth[ICMP].type
            elif eth.haslayer(TCP) or eth.haslayer(UDP):
                l4 = eth[TCP] if eth.haslayer(TCP) else eth[UDP]
                rec.update(sport=l4.sport, dport=l4.dport)
        out.append(rec)
    return out


class TrialBar:
    """A progress bar across trials, one line per finished trial (readable
    in a terminal and in a CI log):  [######......] 6/24 crash @10 ms: ..."""

    def __init__(self, total, progress, width=24):
        self.total, self.done = max(1, total), 0
        self.progress, self.width = progress, width

    def step(self, text):
        self.done += 1
        k = round(self.width * self.done / self.total)
        self.progress(f"  [{'#' * k}{'.' * (self.width - k)}] "
                      f'{self.done}/{self.total} {text}')
