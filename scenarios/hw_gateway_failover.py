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
import threading
import time

from controllers import intent
from topologies import labs

from . import failplots, harness, probe, results, stats

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
    """Fail (`down`) or restore (`up`) a switch's every data port; its
    management stays up, so its database is still readable as evidence."""
    n = lab.node(node)
    for intf in lab.plan['nodes'][node]['intfs']:
        n.ns_run(['ip', 'link', 'set', intf['name'], state], check=True)


def tunnel_to(lab, hv, mac):
    """The ofport the hypervisor sends `mac` to, or None."""
    out = lab.node(hv).ns_run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows',
                               'br-int', f'dl_dst={mac},metadata=0/0xff'
                               ]).stdout
    m = re.search(r'actions=output:(\d+)', out)
    return int(m.group(1)) if m else None


def vtep_of_port(plan, ofport):
    for n, p in plan['nodes'].items():
        if p.get('index') is not None and \
                intent.TUNNEL_BASE + p['index'] == ofport:
            return n
    return None


class Watch(threading.Thread):
    """Polls, every 20 ms from start, where `hv` sends `mac`: records the
    first change (seconds after t0) and the last value seen."""

    def __init__(self, lab, hv, mac, seconds):
        super().__init__(daemon=True)
        self.lab, self.hv, self.mac, self.seconds = lab, hv, mac, seconds
        self.first = tunnel_to(lab, hv, mac)
        self.changed_after, self.last, self.t0 = None, self.first, None

    def run(self):
        self.t0 = time.time()
        while time.time() - self.t0 < self.seconds:
            now = tunnel_to(self.lab, self.hv, self.mac)
            if now != self.first and self.changed_after is None and now:
                self.changed_after = time.time() - self.t0
            self.last = now or self.last
            time.sleep(0.02)


def window(lab, flows, seconds, out_dir, tag, act, watch=None):
    probes = harness.Streams(lab, flows, seconds, out_dir, RATE, tag).start()
    time.sleep(1.0)
    if watch:
        watch.start()
    act()
    got = probes.finish()
    if watch:
        watch.join()
    outage, ok = {}, True
    for name, (sent, seqs) in got.items():
        res = probe.analyse(sent, seqs, RATE)
        outage[name.replace(SERVER, 'server').replace(PEER, 'vm')] = \
            res['outage_ms']
        ok = ok and any(s < 300 for s in seqs) and \
            any(s >= sent - 300 for s in seqs)
        os.remove(probes.paths[name])
    return outage, ok


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
        leaf = leaf_of(plan)
        flows = [(f'{SERVER}->{PEER}', SERVER, PEER, 9300),
                 (f'{PEER}->{SERVER}', PEER, SERVER, 9301)]

        def ready():
            return active_member(lab) == 'eth0' and lab.node(SERVER).ns_run(
                ['ping', '-c', '1', '-W', '1', ip]).returncode == 0 and \
                tunnel_to(lab, hv, mac) is not None
        for n in range(1, trials + 1):
            if harness.until(ready, 30, 0.5) is None:
                problems.append(f'{fabric} trial {n}: the server never used '
                                f'{leaf} and reached {PEER} (bond member '
                                f'{active_member(lab)})')
                break
            time.sleep(2.5)                 # link events spaced (DESIGN.md)
            time.sleep(rng.uniform(0, 0.2))
            watch = Watch(lab, hv, mac, seconds - 1.0)
            outage, ok = window(lab, flows, seconds, out_dir, f'{fabric}-{n}',
                                lambda: set_ports(lab, leaf, 'down'), watch)
            member = active_member(lab)
            time.sleep(2.5)
            back, ok_back = window(lab, flows, seconds, out_dir,
                                   f'{fabric}-{n}-restore',
                                   lambda: set_ports(lab, leaf, 'up'))
            rec = {'trial': n, 'fabric': fabric, 'failed': leaf,
                   'outage_ms': outage, 'restore_outage_ms': back,
                   'member_after_fault': member,
                   'vtep_before': vtep_of_port(plan, watch.first),
                   'vtep_after': vtep_of_port(plan, watch.last),
                   'repointed_after_ms': None if watch.changed_after is None
                   else round(watch.changed_after * 1000, 1),
                   'valid': ok and ok_back}
            records.append(rec)
            bar.step(f"{fabric}: {leaf} down, outage "
                     + '/'.join(f'{v:.0f}' for v in outage.values())
                     + f" ms, server's MAC behind {rec['vtep_after']}, "
                     f"restore " + '/'.join(f'{v:.0f}' for v in back.values())
                     + ' ms')
            why = []
            if member != 'eth1':
                why.append(f'bond did not move to eth1 ({member})')
            if not rec['valid']:
                why.append('streams not flowing before the fault or not '
                           'resumed by the end of a window')
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
               'outages': summary, 'targets': targets, 'trials': records,
               'problems': problems}
    passed = not problems and len(records) == trials * len(fabrics)
    res = results.result('hw-gateway-failover', ' + '.join(names), passed,
                         metrics, artifacts)
    results.save(res, out_dir)
    return res
