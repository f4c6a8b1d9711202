"""`./run.py bench vtep`: the hardware VTEP devices side by side, the lab's
native device and OVS's emulator ovs-vtep, each in its own run of the same
lab (clos-small, controller, provisioned through the API):

  learn   N hosts appear behind vtep2's port bm2 (one frame each, from a
          new MAC, 200 ms apart): first frame -> the MAC in vtep2's
          Ucast_Macs_Local -> a flow for it on every hypervisor of the
          logical switch (each stamped when the device pushed it: an OVSDB
          replica, OpenFlow flow monitors)
  remote  a MAC appears in vtep2's Ucast_Macs_Remote (attached through the
          API to VM vm7 on hv3) and disappears (detached), M times each,
          under a 1,000/s frame stream from bm2 to it: database change ->
          vtep2 sends the stream to the new place (first frame seen on its
          uplink: to hv3, then back to a service node as unknown unicast)
  idle    the device's CPU over 60 s of the settled lab (ovs-vtep: with
          the commands it runs)
  scale   controller stopped: 10,000 remote MACs in one transaction into
          vtep1's database, then (removed) 4,094 VLAN bindings, each to its
          own logical switch, on one port: time until the device applied
          them (flows for the MACs; a Logical_Binding_Stats row for every
          binding), device and ovs-vswitchd memory
Targets (issue): learned -> installed p95 <= 30 ms and >= 20x faster than
ovs-vtep; remote change -> forwarding p95 <= 10 ms; idle CPU <= 1 % of a
core.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

from topologies import labs

from . import harness, results, stats, watch
from .bench_boot import cpu_times, machine, steal_pct

FRAMEGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'framegen.py')
VTEP, PORT, HOST, SPARE = 'vtep2', 'bm2', 'bm2', 'vm7'
SCALE_VTEP, SCALE_PORT = 'vtep1', 'bm1'
MOVING_MAC = '02:43:00:00:00:01'
SETTLE_S = 5
REMOTE_TIMEOUT_S = 15        # a remote change not forwarded by then: missing
TARGETS = {'installed_p95_ms': 30, 'speedup': 20, 'remote_p95_ms': 10,
           'idle_cpu_pct': 1.0}


def _ip(plan, n, key='tunnel_ip'):
    return plan['nodes'][n][key].split('/')[0]


def _ns(lab, node, *cmd, **kw):
    return subprocess.Popen(['ip', 'netns', 'exec', lab.node(node).ns,
                             *cmd], **kw)


def members(plan, ls):
    """Hypervisors with a VM on logical switch `ls`."""
    return sorted({p['intfs'][0]['peer'] for p in plan['nodes'].values()
                   if p['role'] == 'vm' and p.get('ls') == ls})


# -- learn --------------------------------------------------------------
def learn(lab, count, progress):
    """-> per MAC {mac, local_ms, installed_ms} (None: not within 20 s)."""
    plan = lab.plan
    hvs = members(plan, plan['nodes'][HOST]['ls'])
    local = watch.LocalMacTimes(lab, VTEP)
    flows = {hv: watch.FlowTimes(lab, hv) for hv in hvs}
    for w in [local] + list(flows.values()):
        w.start()
    intf = plan['nodes'][HOST]['intfs'][0]['name']
    gen = _ns(lab, HOST, sys.executable, FRAMEGEN, 'macs', '--intf', intf,
              '--count', str(count), '--interval', '0.2', stdout=subprocess.PIPE,
              text=True)
    sent = {}
    for line in gen.stdout:
        mac, t = line.split()
        sent[mac] = float(t)
    gen.wait()
    progress(f'  learn: {len(sent)} MACs sent, waiting for them')
    done = harness.until(lambda: all(
        all(m in f.times for f in flows.values()) for m in sent), 20, 0.2)
    for w in [local] + list(flows.values()):
        w.stop()
    out = []
    for mac, t in sorted(sent.items()):
        got = [f.times.get(mac) for f in flows.values()]
        out.append({'mac': mac,
                    'local_ms': _ms(local.times.get(mac), t),
                    'installed_ms': _ms(max(got), t) if None not in got
                    else None})
    return out, done is not None


def _ms(t, t0):
    return None if t is None else round((t - t0) * 1000, 1)


# -- remote -------------------------------------------------------------
class UplinkFrames:
    """Every frame for MOVING_MAC that vtep2 tunnels out of its uplink:
    [(epoch s, outer destination IP)], read live from tcpdump (a BPF
    filter on the inner destination MAC)."""

    def __init__(self, lab):
        node = lab.plan['nodes'][VTEP]
        hi, lo = MOVING_MAC.replace(':', '')[:8], MOVING_MAC.replace(
            ':', '')[8:]
        bpf = (f'udp dst port 4789 and udp[16:4] = 0x{hi} and '
               f'udp[20:2] = 0x{lo}')
        self.proc = _ns(lab, VTEP, 'tcpdump', '-l', '-n', '-tt', '-i',
                        node['uplink'], bpf, stdout=subprocess.PIPE,
                        stderr=subprocess.DEVNULL, text=True)
        self.frames = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            m = re.match(r'(\d+\.\d+) IP \S+ > (\d+\.\d+\.\d+\.\d+)\.4789:',
                         line)
            if m:
                self.frames.append((float(m.group(1)), m.group(2)))

    def first_after(self, t, want):
        return next((ft for ft, dst in self.frames
                     if ft >= t and want(dst)), None)

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def remote(lab, changes, progress):
    """-> [{'change': 'add'|'delete', 'applied_ms'}] (None: not within
    REMOTE_TIMEOUT_S)."""
    plan, ctl = lab.plan, lab.ctl
    ls = plan['nodes'][HOST]['ls']
    ls_id = next(x['id'] for x in ctl.get('/logical-switches')
                 if x['name'] == ls)
    hv = plan['nodes'][SPARE]['intfs'][0]['peer']
    hv_ip = _ip(plan, hv)
    view = watch.VtepWatch(lab, VTEP, ls, MOVING_MAC).start()
    up = UplinkFrames(lab)
    intf = plan['nodes'][HOST]['intfs'][0]['name']
    gen = _ns(lab, HOST, sys.executable, FRAMEGEN, 'stream', '--intf', intf,
              '--dst', MOVING_MAC, '--rate', '1000', '--seconds', '3600')
    # the stream runs only around each change: while the MAC is unknown it
    # is flooded to every member of the logical switch, a load that would
    # sit on the machine being measured
    paused = stream_pauser(gen)
    out = []
    try:
        time.sleep(1.0)
        for k in range(changes):
            with paused:
                status, port = ctl.request(
                    'POST', f'/logical-switches/{ls_id}/ports',
                    {'attachment': SPARE, 'mac': MOVING_MAC})
                if status != 201:
                    raise RuntimeError(f'attach {MOVING_MAC}: {status} '
                                       f'{port}')
                out.append(_applied(view, up, 'add', hv_ip,
                                    lambda d: d == hv_ip))
            with paused:
                status, _ = ctl.request('DELETE',
                                        f"/logical-ports/{port['id']}")
                out.append(_applied(view, up, 'delete', None,
                                    lambda d: d != hv_ip))
            if (k + 1) % 10 == 0:
                progress(f'  remote: {k + 1}/{changes} add + delete')
    finally:
        gen.terminate()
        os.kill(gen.pid, signal.SIGCONT)
        gen.wait()
        up.stop()
        view.stop()
    return out


class stream_pauser:
    """`with paused:` lets the stream run (SIGCONT) for 50 ms before and
    during the block, then stops it (SIGSTOP)."""

    def __init__(self, proc):
        self.proc = proc
        time.sleep(0.3)                 # started, then stopped
        os.kill(proc.pid, signal.SIGSTOP)

    def __enter__(self):
        os.kill(self.proc.pid, signal.SIGCONT)
        time.sleep(0.05)

    def __exit__(self, *exc):
        os.kill(self.proc.pid, signal.SIGSTOP)


def _applied(view, up, change, want_ip, goes_to):
    """Wait for the database to show the change, then for the uplink to
    carry the stream to its new place; -> record."""
    harness.until(lambda: view.value()[0] == want_ip, 10, 0.005)
    t_row = next((t for t, v in reversed(view.changes) if v[0] == want_ip),
                 None)
    if t_row is None:
        return {'change': change, 'applied_ms': None, 'row': False}
    harness.until(lambda: up.first_after(t_row, goes_to) is not None,
                  REMOTE_TIMEOUT_S, 0.005)
    t = up.first_after(t_row, goes_to)
    time.sleep(0.05)
    return {'change': change, 'row': True, 'applied_ms': _ms(t, t_row)}


# -- idle ---------------------------------------------------------------
def device_pid(lab, device, node=VTEP):
    name = 'hwvtep.pid' if device == 'native' else 'ovs-vtep.pid'
    with open(os.path.join(lab.node(node).run_dir, name)) as f:
        return int(f.read().strip())


def cpu_s(pid, children=False):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf('SC_CLK_TCK')


def idle(lab, device, seconds):
    """% of one core the device used over `seconds` of a settled lab (and
    the node's ovs-vswitchd and ovsdb-server, for context)."""
    pids = {'device': device_pid(lab, device)}
    for d in ('ovs-vswitchd', 'ovsdb-server'):
        with open(os.path.join(lab.node(VTEP).run_dir, f'{d}.pid')) as f:
            pids[d] = int(f.read().strip())
    before = {k: cpu_s(p, children=k == 'device') for k, p in pids.items()}
    time.sleep(seconds)
    return {k: round(100 * (cpu_s(p, children=k == 'device') - before[k])
                     / seconds, 2) for k, p in pids.items()}


# -- scale --------------------------------------------------------------
def flow_count(lab, node, match=None):
    """Flows on every bridge of the node (match: only those at least as
    specific as this ovs-ofctl match, e.g. to the scale MACs: the count
    does not move with other flows, such as MACs learned earlier aging)."""
    n = lab.node(node)
    total = 0
    for br in n.ns_run(['ovs-vsctl', 'list-br']).stdout.split():
        out = n.ns_run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-aggregate',
                        br] + ([match] if match else [])).stdout
        m = re.search(r'flow_count=(\d+)', out)
        total += int(m.group(1)) if m else 0
    return total


def scale(lab, device, n_macs, n_bindings, progress, timeout=300):
    """The controller is stopped; rows go straight into the database, as
    an NVC writes them. -> figures."""
    from . import vtepscale
    lab.ctl.stop()
    plan = lab.plan
    db = vtepscale.Db(lab.db(SCALE_VTEP))
    pid = device_pid(lab, device, SCALE_VTEP)
    pids = {'device': pid, 'ovs-vswitchd': _pidfile(lab, 'ovs-vswitchd')}
    out = {'memory_before_mb': {k: results.pss_mb([p])
                                for k, p in pids.items()}}
    base = flow_count(lab, SCALE_VTEP)
    per_mac = 2 if device == 'native' else 1
    to_scale = f'dl_dst={vtepscale.MAC_PREFIX}:00:00:00:00/ff:ff:ff:00:00:00'

    def scale_flows():
        return flow_count(lab, SCALE_VTEP, to_scale)
    ips = [_ip(plan, n) for n, p in plan['nodes'].items()
           if p['role'] == 'hypervisor']
    t0 = db.add_remote_macs(plan['nodes'][SCALE_PORT]['ls'], n_macs, ips)
    progress(f'  scale: {n_macs} remote MACs committed, waiting for the '
             'device')
    took = harness.until(lambda: scale_flows() >= per_mac * n_macs,
                         timeout, 0.2)
    out['remote_macs'] = {'n': n_macs, 'applied_s': _since(t0, took),
                          'flows_added': scale_flows()}
    out['memory_with_macs_mb'] = {k: results.pss_mb([p])
                                  for k, p in pids.items()}
    db.delete_remote_macs(n_macs)
    harness.until(lambda: scale_flows() == 0, timeout, 0.5)
    already = db.binding_stats(SCALE_PORT)
    t0 = db.add_bindings(SCALE_VTEP, SCALE_PORT, n_bindings)
    progress(f'  scale: {n_bindings} bindings committed, waiting for the '
             'device')
    took = harness.until(lambda: db.binding_stats(SCALE_PORT) >=
                         already + n_bindings, timeout, 0.5)
    out['bindings'] = {'n': n_bindings, 'applied_s': _since(t0, took),
                       'reported': db.binding_stats(SCALE_PORT) - already,
                       'flows_added': flow_count(lab, SCALE_VTEP) - base}
    out['memory_with_bindings_mb'] = {k: results.pss_mb([p])
                                      for k, p in pids.items()}
    db.close()
    return out


def _since(t0, took):
    """Seconds from a commit until the device had applied it (`took`:
    what harness.until returned, None if it never did)."""
    return None if took is None else round(time.time() - t0, 2)


def _pidfile(lab, daemon):
    with open(os.path.join(lab.node(SCALE_VTEP).run_dir,
                           f'{daemon}.pid')) as f:
        return int(f.read().strip())


# -- the run ------------------------------------------------------------
def run_device(device, count, changes, idle_s, n_macs, n_bindings, out_dir,
               progress):
    sub = os.path.join(out_dir, device)
    os.makedirs(sub, exist_ok=True)
    spec = labs.with_vtep_device(labs.resolve('clos'), device)
    env = harness.ControlledLab(spec, progress, sub)
    fig = {'device': device}
    ticks = cpu_times()
    with env as lab:
        time.sleep(SETTLE_S)        # the lab's start-up work is over
        progress(f'{device}: learning {count} MACs')
        fig['learn'], fig['learn_complete'] = learn(lab, count, progress)
        progress(f'{device}: {changes} remote MAC changes each way')
        fig['remote'] = remote(lab, changes, progress)
        progress(f'{device}: idle CPU over {idle_s} s')
        time.sleep(5)
        fig['idle_cpu_pct'] = idle(lab, device, idle_s)
        if n_macs or n_bindings:
            progress(f'{device}: scale ({n_macs} remote MACs, {n_bindings} '
                     'bindings)')
            fig['scale'] = scale(lab, device, n_macs, n_bindings, progress)
        fig['controller_errors'] = env.controller_errors()[:5]
    fig['cpu_steal_pct'] = steal_pct(ticks, cpu_times())
    return fig


def summarize(fig):
    """Percentiles of one device's figures (pure)."""
    out = {}
    for key in ('local_ms', 'installed_ms'):
        vals = [r[key] for r in fig['learn'] if r[key] is not None]
        out[f'learn {key}'] = stats.describe(vals) if vals else None
        out[f'learn {key} missing'] = sum(1 for r in fig['learn']
                                          if r[key] is None)
    # the controller's share: the row seen -> flows on every hypervisor
    vals = [round(r['installed_ms'] - r['local_ms'], 1) for r in fig['learn']
            if r['installed_ms'] is not None and r['local_ms'] is not None]
    out['learn local_to_installed_ms'] = stats.describe(vals) \
        if vals else None
    for change in ('add', 'delete'):
        vals = [r['applied_ms'] for r in fig['remote']
                if r['change'] == change and r['applied_ms'] is not None]
        out[f'remote {change} applied_ms'] = stats.describe(vals) \
            if vals else None
        out[f'remote {change} missing'] = sum(
            1 for r in fig['remote'] if r['change'] == change and
            r['applied_ms'] is None)
    vals = [r['applied_ms'] for r in fig['remote']
            if r['applied_ms'] is not None]
    out['remote applied_ms'] = stats.describe(vals) if vals else None
    return out


def targets(summary):
    """The issue's targets, measured (pure)."""
    nat, ref = summary.get('native', {}), summary.get('ovs-vtep', {})
    inst = (nat.get('learn installed_ms') or {}).get('p95')
    ref_inst = (ref.get('learn installed_ms') or {}).get('p95')
    rem = (nat.get('remote applied_ms') or {}).get('p95')
    cpu = nat.get('idle_cpu_pct')
    out = [{'what': 'learned -> installed on every hypervisor, p95 ms',
            'limit': TARGETS['installed_p95_ms'], 'measured': inst,
            'met': inst is not None and inst <= TARGETS['installed_p95_ms']}]
    if ref_inst is not None and inst:
        speed = round(ref_inst / inst, 1)
        out.append({'what': 'faster than ovs-vtep (p95 ratio)',
                    'limit': TARGETS['speedup'], 'measured': speed,
                    'met': speed >= TARGETS['speedup']})
    out.append({'what': 'Ucast_Macs_Remote change -> forwarding, p95 ms',
                'limit': TARGETS['remote_p95_ms'], 'measured': rem,
                'met': rem is not None and rem <= TARGETS['remote_p95_ms']})
    out.append({'what': 'idle CPU of the device, % of one core',
                'limit': TARGETS['idle_cpu_pct'], 'measured': cpu,
                'met': cpu is not None and cpu <= TARGETS['idle_cpu_pct']})
    return out


def run(devices=('native', 'ovs-vtep'), count=50, changes=50, idle_s=60,
        n_macs=10000, n_bindings=4094, progress=print):
    out_dir = results.run_dir('bench-vtep')
    figs, summary = {}, {}
    for device in devices:
        figs[device] = run_device(device, count, changes, idle_s, n_macs,
                                  n_bindings, out_dir, progress)
        summary[device] = summarize(figs[device])
        summary[device]['idle_cpu_pct'] = figs[device]['idle_cpu_pct'][
            'device']
        summary[device]['cpu_steal_pct'] = figs[device]['cpu_steal_pct']
        if 'scale' in figs[device]:
            summary[device]['scale'] = figs[device]['scale']
    artifacts = [plot(figs, os.path.join(out_dir, 'bench-vtep.png'))]
    problems = []
    for device, fig in figs.items():
        s = summary[device]
        if not fig['learn_complete']:
            problems.append(f"{device}: {s['learn installed_ms missing']} of "
                            f'{count} learned MACs never reached every '
                            'hypervisor')
        missing = s['remote add missing'] + s['remote delete missing']
        if missing:
            problems.append(f'{device}: {missing} remote MAC changes never '
                            'reached the data plane within '
                            f'{REMOTE_TIMEOUT_S} s')
        problems += [f'{device} controller: {e}'
                     for e in fig['controller_errors']]
    metrics = {'machine': machine(), 'summary': summary,
               'targets': targets(summary), 'devices': figs,
               'problems': problems}
    res = results.result('bench-vtep', 'clos-small', not problems, metrics,
                         artifacts)
    results.save(res, out_dir)
    res['table'] = table(summary)
    return res


def table(summary):
    rows = [('device', 'learned -> Ucast_Macs_Local',
             'Ucast_Macs_Local -> every HV', 'learned -> every HV',
             'remote change -> forwarding', 'idle CPU %', 'CPU steal %')]

    def fmt(st):
        return '-' if not st else f"{st['p50']} / {st['p95']} / {st['max']}"
    for device, s in summary.items():
        rows.append((device, fmt(s.get('learn local_ms')),
                     fmt(s.get('learn local_to_installed_ms')),
                     fmt(s.get('learn installed_ms')),
                     fmt(s.get('remote applied_ms')),
                     s.get('idle_cpu_pct'), s.get('cpu_steal_pct')))
    return rows


def plot(figs, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for device, f in figs.items():
        vals = sorted(r['installed_ms'] for r in f['learn']
                      if r['installed_ms'] is not None)
        if vals:
            axes[0].plot(vals, [(i + 1) / len(vals) for i in
                                range(len(vals))], label=device)
        vals = sorted(r['applied_ms'] for r in f['remote']
                      if r['applied_ms'] is not None)
        if vals:
            axes[1].plot(vals, [(i + 1) / len(vals) for i in
                                range(len(vals))], label=device)
    axes[0].set_title('MAC learned on the VTEP -> on every hypervisor')
    axes[1].set_title('Ucast_Macs_Remote change -> VTEP forwards')
    for ax in axes:
        ax.set_xscale('log')
        ax.set_xlabel('ms (log)')
        ax.set_ylabel('fraction')
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
