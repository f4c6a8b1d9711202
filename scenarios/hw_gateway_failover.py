"""Scenario hw-gateway-failover: a bare-metal server dual-homed (OVS
active-backup bond, carrier detection) to two leaves loses its active leaf
(every data port of that switch goes down, as in a power loss; management
stays, so its database is still readable as evidence).

Whitepaper ("Redundancy/Multihoming", "Virtual Chassis Fabric"): in a VCF
pod both leaves are line cards of one VTEP, so nothing moves but the
server's bond; in an L3 Clos each leaf is its own VTEP, so the server's MAC
moves from one VTEP to the other: the new VTEP learns it (the native device
from the first frame; OVS's emulator polls once a second), reports it in
Ucast_Macs_Local, and the controller re-points every hypervisor and VTEP.
This scenario measures both, side by side. The failed switch forgets what
it learned on its ports by itself when they lose carrier.

per trial, under UDP probe streams at 1,000/s both ways between the server
and a VM behind the surviving leaf: fail the leaf (about a second in);
outage per direction; when (if ever) the VM's hypervisor re-pointed the
server's MAC to another tunnel; then restore the leaf (the bond goes back
to its primary, the MAC moves back) and measure that outage as well.
"""
import os
import random
import re
import time

from controllers import intent
from topologies import labs

from . import failplots, harness, results, stats
from . import watch as watch_

RATE = 1000
SERVER, PEER = 'bm1', 'vm5'
# targets (p95, ms): VCF, where nothing moves but the server's bond; Clos,
# where the MAC moves to the other leaf's VTEP
TARGET_P95_MS = {'vcf': 10, 'clos': 100}


def leaf_of(plan, member='eth0'):
    """The switch behind the server's bond member."""
    return next(i['peer'] for i in plan['nodes'][SERVER]['intfs']
                if i['name'] == member)


def active_member(lab):
    out = lab.node(SERVER).ns_run(['ovs-appctl', 'bond/show',
                                   'bond0']).stdout
    m = re.search(r'active member mac: \S+\((\w+)\)', out)
    return m.group(1) if m else None


def set_ports(lab, node, state):
    """Fail (`down`) or restore (`up`) a switch's every data port at once,
    as a power loss does (one `ip -batch`: a command per port, ~17 ms each,
    would fail its uplinks a hundred ms before its server ports); its
    management stays up, so its database is still readable as evidence."""
    names = [i['name'] for i in lab.plan['nodes'][node]['intfs']
             if not i.get('member')]
    res = lab.node(node).ns_run(
        ['bash', '-c', 'date +%s.%N; exec ip -batch -'], check=True,
        input=''.join(f'link set {name} {state}\n' for name in names))
    return float(res.stdout.split()[0])          # when it happened


def vtep_of_port(plan, ofport):
    for n, p in plan['nodes'].items():
        if p.get('index') is not None and \
                intent.TUNNEL_BASE + p['index'] == ofport:
            return n
    return None


def window(lab, flows, seconds, out_dir, tag, act, watch=None):
    """Streams both ways for `seconds`, act() one second in -> (figures
    per direction (harness.clocks), what act returned)."""
    probes = harness.Streams(lab, flows, seconds, out_dir, RATE, tag).start()
    time.sleep(1.0)
    if watch:
        watch.start()
    acted = act()
    got = probes.finish()
    if watch:
        watch.stop()
    for path in probes.paths.values():
        os.remove(path)
    fig = harness.clocks(got, RATE, lambda name: name.replace(
        SERVER, 'server').replace(PEER, 'vm'))
    return fig, acted


def standby_timeline(frames, t_fault, server_ip):
    """From the frames on the server's standby NIC (captured across a
    failure), in ms after the fault: when the server first sent on it (its
    bond failed over) and when a frame for it first arrived on it (the
    network delivers to it again)."""
    def first(ts):
        return round((min(ts) - t_fault) * 1000, 1) if ts else None
    return {'server_moved_ms': first([r['time'] for r in frames
                                      if r.get('ip_src') == server_ip]),
            'delivered_again_ms': first([r['time'] for r in frames
                                         if r.get('ip_dst') == server_ip])}


def window_s(fabric, vtep_device):
    """Stream window: in a Clos the new VTEP must learn the MAC and report
    it (OVS's emulator polls each second, slower under load)."""
    return 10.0 if fabric == 'clos' and vtep_device == 'ovs-vtep' else 6.0


def run_fabric(fabric, trials, rng, bar, out_dir, progress,
               vtep_device=None):
    seconds = window_s(fabric, vtep_device)
    records, problems = [], []
    env = harness.ControlledLab(labs.with_vtep_device(labs.resolve(fabric),
                                                      vtep_device),
                                progress, out_dir)
    with env as lab:
        plan = lab.plan
        mac = plan['nodes'][SERVER]['mac']
        hv = plan['nodes'][PEER]['intfs'][0]['peer']
        ip = plan['nodes'][PEER]['ip'].split('/')[0]
        server_ip = plan['nodes'][SERVER]['ip'].split('/')[0]
        leaf = leaf_of(plan)
        flows = [(f'{SERVER}->{PEER}', SERVER, PEER, 9300),
                 (f'{PEER}->{SERVER}', PEER, SERVER, 9301)]

        def ready():
            return active_member(lab) == 'eth0' and lab.node(SERVER).ns_run(
                ['ping', '-c', '1', '-W', '1', ip]).returncode == 0 and \
                watch_.mac_output(lab, hv, mac) is not None
        for n in range(1, trials + 1):
            if harness.until(ready, 30, 0.5) is None:
                problems.append(f'{fabric} trial {n}: the server never used '
                                f'{leaf} and reached {PEER} (bond member '
                                f'{active_member(lab)})')
                break
            time.sleep(2.5)                 # link events spaced (docs/platform.md)
            time.sleep(rng.uniform(0, 0.2))
            watch = watch_.FlowWatch(lab, hv, mac)
            with harness.Captures(lab, {SERVER: 'eth1'}, out_dir, 'udp',
                                  count=200) as cap:
                fig, t_fault = window(
                    lab, flows, seconds, out_dir, f'{fabric}-{n}',
                    lambda: set_ports(lab, leaf, 'down'), watch)
            timeline = standby_timeline(cap.frames()[SERVER], t_fault,
                                        server_ip)
            os.remove(cap.files[SERVER])
            member = active_member(lab)
            time.sleep(2.5)
            fig_back, _ = window(lab, flows, seconds, out_dir,
                                      f'{fabric}-{n}-restore',
                                      lambda: set_ports(lab, leaf, 'up'))
            outage, back = fig['outage_ms'], fig_back['outage_ms']
            rec = {'trial': n, 'fabric': fabric, 'failed': leaf,
                   'outage_ms': outage, 'restore_outage_ms': back,
                   'outage_seq_ms': fig['outage_seq_ms'],
                   'restore_outage_seq_ms': fig_back['outage_seq_ms'],
                   'sender_lag_ms': fig['sender_lag_ms'],
                   'sender_stalled': harness.stall_note(fig) or None,
                   'member_after_fault': member,
                   'vtep_before': vtep_of_port(plan, watch.first),
                   'vtep_after': vtep_of_port(plan, watch.last),
                   'repointed_after_ms': None if watch.changed_after()
                   is None else round(watch.changed_after() * 1000, 1),
                   **timeline,
                   'valid': not fig['why'] and not fig_back['why']}
            records.append(rec)
            bar.step(f"{fabric}: {leaf} down, outage "
                     + '/'.join(f'{v:.0f}' for v in outage.values())
                     + f" ms (server on eth1 +{rec['server_moved_ms']}, "
                     f"delivered again +{rec['delivered_again_ms']} ms), "
                     f"server's MAC behind {rec['vtep_after']}, "
                     f"restore " + '/'.join(f'{v:.0f}' for v in back.values())
                     + ' ms')
            why = []
            if member != 'eth1':
                why.append(f'bond did not move to eth1 ({member})')
            why += [w for w in (fig['why'], fig_back['why']) if w]
            if why:
                problems.append(f'{fabric} trial {n}: ' + '; '.join(why))
                break
        problems += [f'{fabric} controller: {e}'
                     for e in env.controller_errors()[:5]]
    return plan['name'], records, problems


def run(fabrics=('vcf', 'clos'), progress=print, trials=20, seed=1,
        vtep_device=None):
    out_dir = results.run_dir('hw-gateway-failover' + (
        f'-{vtep_device}' if vtep_device and vtep_device != 'native'
        else ''))
    rng = random.Random(seed)
    bar = harness.TrialBar(trials * len(fabrics), progress)
    records, problems, names = [], [], []
    for fabric in fabrics:
        if problems:
            break
        sub = os.path.join(out_dir, fabric)
        os.makedirs(sub, exist_ok=True)
        name, recs, probs = run_fabric(fabric, trials, rng, bar, sub,
                                       progress, vtep_device)
        names.append(name)
        records += recs
        problems += probs
    summary = stats.flat(stats.summarize(records, group=lambda t: t['fabric']))
    summary.update(stats.flat(stats.summarize(
        records, 'restore_outage_ms',
        group=lambda t: f"{t['fabric']} restore")))
    targets = [stats.target(summary, k, 'p95', TARGET_P95_MS[k.split()[0]])
               for k in summary if 'restore' not in k]
    # what bounds the outage, per fabric: when the server's bond moved to
    # its standby NIC, and when frames for it arrived there again
    bounds = {}
    for r in records:
        for k in ('server_moved_ms', 'delivered_again_ms',
                  'repointed_after_ms'):
            if r.get(k) is not None:
                bounds.setdefault(f"{r['fabric']} {k}", []).append(r[k])
    bounds = {k: stats.describe(v) for k, v in bounds.items()}
    artifacts = []
    if records:
        artifacts = [os.path.join(out_dir, 'outage-vcf-vs-clos.png'),
                     os.path.join(out_dir, 'outage-cdf.png')]
        panels = {}
        for r in records:
            for d, ms in r['outage_ms'].items():
                panels.setdefault(r['fabric'], {}).setdefault(
                    d, []).append(ms)
        failplots.side_by_side(panels, artifacts[0], 'Dual-homed server, '
                               'active leaf fails: VCF (one VTEP per pod) '
                               'vs L3 Clos (a VTEP per leaf)')
        failplots.cdf({f'{f} {d}': v for f, dirs in panels.items()
                       for d, v in dirs.items()}, artifacts[1],
                      'Leaf failure outage CDF')
    metrics = {'rate_pps': RATE, 'seed': seed, 'pair': [SERVER, PEER],
               'outages': summary, 'targets': targets, 'bounds': bounds,
               'trials': records,
               'problems': problems}
    passed = not problems and len(records) == trials * len(fabrics)
    res = results.result('hw-gateway-failover', ' + '.join(names), passed,
                         metrics, artifacts)
    results.save(res, out_dir)
    return res
