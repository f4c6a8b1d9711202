"""Scenario itaas-isolation: IT as a service (whitepaper, "Use Cases"):
tenants with overlapping IP ranges, each with its own logical switch mapped
to its own VLAN on one shared software gateway (VXLAN-to-VLAN).

Lab `itaas`: tenants ta, tb, tc, each 10.0.0.0/24: two VMs (on two
hypervisors) and a physical server on VLAN 101/102/103 behind gw1.

isolation  every ordered pair inside a tenant pings (overlapping
           addresses: ta1, tb1 and tc1 are all 10.0.0.11). While tcpdump
           runs on every tenant-facing port (each host's interface), every
           host sends unicast (the pings), broadcast UDP (to 10.0.0.255),
           ARP requests (for an absent address) and unknown-unicast floods
           (UDP to a MAC nobody has). Verify: zero frames whose source is
           another tenant's host on any port, and, as a positive control,
           every port saw the broadcasts and floods of every other host of
           its own tenant (a capture that saw nothing would prove nothing).
escape     tenant escape and spoofed VXLAN (scenarios/escape.py): crafted
           frames from a VM, a physical server and a transport-network
           host, each with a marker, captured on every tenant port and
           gw1's cable: no marker may reach another tenant; two controls
           must arrive where stated.
scale      through the API (bulk requests), map the remaining VLANs of
           gw1's segment port to new logical switches: 4,094 mappings in
           all. Measure the time to provision (API) and until gw1's data
           plane classifies every VLAN; sample isolation across them with
           ofproto/trace (a frame on VLAN v gets VNI(v) and no other).
"""
import os
import random
import threading
import time

from topologies import labs

from . import escape, harness, results

LAB = 'itaas'
TARGET_S = 10.0
UNKNOWN_MAC = '02:ee:00:00:00:{:02x}'


def tenants_of(plan):
    """{tenant (logical switch): [its hosts]} for hosts with an address."""
    out = {}
    for n, p in sorted(plan['nodes'].items()):
        if p['role'] in ('vm', 'bare_metal') and p.get('ls'):
            out.setdefault(p['ls'], []).append(n)
    return out


def judge(frames, tenant_of, mac_of):
    """frames: {host: [decoded frames captured on its port]}. -> per host:
    frames, foreign (frames sourced by another tenant's host), and the
    same-tenant peers whose broadcast and unknown-unicast flood it saw."""
    owner = {mac_of[h]: h for h in mac_of}
    out = {}
    for host, recs in frames.items():
        t = tenant_of[host]
        foreign = [f"{r['src']} ({src}, tenant {tenant_of[src]}) -> "
                   f"{r.get('dst')}" for r, src in
                   harness.foreign(recs, host, tenant_of, mac_of)]
        bcast, flood = set(), set()
        for r in recs:
            src = owner.get(r.get('src'))
            if src and src != host and tenant_of[src] == t:
                if r.get('dst') == 'ff:ff:ff:ff:ff:ff' and \
                        r.get('ip_dst', '').endswith('.255'):
                    bcast.add(src)
                if r.get('dst', '').startswith(UNKNOWN_MAC[:12]):
                    flood.add(src)
        peers = {h for h, tt in tenant_of.items() if tt == t and h != host}
        out[host] = {'frames': len(recs), 'foreign': foreign,
                     'missing_broadcast_from': sorted(peers - bcast),
                     'missing_flood_from': sorted(peers - flood)}
    return out


def traffic(lab, host, peers_ip, k):
    """Every kind of frame a tenant host can send (see module doc)."""
    node = lab.node(host)
    reached = {}
    for peer, ip in peers_ip.items():
        reached[peer] = node.ns_run(['ping', '-c', '2', '-i', '0.2', '-W',
                                     '1', ip]).returncode == 0
    py = ['python3', harness.PROBE, 'send', '--rate', '50', '--seconds',
          '0.2', '--port', '9500']
    node.ns_run(py + ['--dst', '10.0.0.255'])
    node.ns_run(['arping', '-c', '2', '-w', '1', '-I', 'eth0', '10.0.0.99'])
    node.ns_run(['ip', 'neigh', 'replace', '10.0.0.98', 'lladdr',
                 UNKNOWN_MAC.format(k), 'dev', 'eth0', 'nud', 'permanent'])
    node.ns_run(py + ['--dst', '10.0.0.98'])
    return reached


def isolation(lab, out_dir):
    plan = lab.plan
    n = plan['nodes']
    tens = tenants_of(plan)
    tenant_of = {h: t for t, hs in tens.items() for h in hs}
    mac_of = {h: n[h]['mac'] for h in tenant_of}
    ip_of = {h: n[h]['ip'].split('/')[0] for h in tenant_of}
    for h in tenant_of:                  # warm up: ARP, hw/sw learning
        peers = [p for p in tens[tenant_of[h]] if p != h]
        lab.node(h).ns_run(['ping', '-c', '1', '-W', '2', ip_of[peers[0]]])
    caps = harness.Captures(lab, {h: 'eth0' for h in tenant_of}, out_dir)
    reach = {}
    with caps:
        threads = []
        for k, h in enumerate(sorted(tenant_of)):
            peers = {p: ip_of[p] for p in tens[tenant_of[h]] if p != h}
            th = threading.Thread(target=lambda h=h, peers=peers, k=k:
                                  reach.update({h: traffic(lab, h, peers,
                                                           k)}))
            threads.append(th)
            th.start()
        for th in threads:
            th.join()
        time.sleep(0.5)
    verdict = judge(caps.frames(), tenant_of, mac_of)
    return tens, reach, verdict, sorted(caps.files.values())


def flows_with_vlan(lab, gw):
    out = lab.node(gw).ns_run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows',
                               'br-int', 'table=0']).stdout
    return out.count('dl_vlan=')


def scale(lab, rng, total, progress, samples=30):
    plan, ctl = lab.plan, lab.ctl
    gw = 'gw1'
    cable = next(i for i in plan['nodes'][gw]['intfs']
                 if i['kind'] == 'physical')
    seg_port, ofport = cable['name'], cable['ofport']
    used = {c['vlan'] for c in ctl.get('/gateway-connections')
            if c['gateway'] == gw}
    vlans = [v for v in range(1, 4095) if v not in used][:total - len(used)]
    base = 100000
    before = flows_with_vlan(lab, gw)
    progress(f'  scale: {len(vlans)} new mappings on {gw} port {seg_port} '
             f'(+{len(used)} tenant ones = {len(vlans) + len(used)})')
    t0 = time.time()
    s1, lss = ctl.request('POST', '/logical-switches', [
        {'name': f'map{v}', 'vni': base + v} for v in vlans])
    t_ls = time.time() - t0
    if s1 != 201:
        return {'problem': f'bulk logical switches: {s1} {lss}'}
    s2, conns = ctl.request('POST', '/gateway-connections', [
        {'ls_id': ls['id'], 'gateway': gw, 'port': seg_port, 'vlan': v}
        for ls, v in zip(lss, vlans)])
    t_api = time.time() - t0
    if s2 != 201:
        return {'problem': f'bulk gateway connections: {s2} {conns}'}
    want = before + len(vlans)
    fwd = harness.until(lambda: flows_with_vlan(lab, gw) >= want, 60, 0.2)
    t_fwd = None if fwd is None else round(time.time() - t0, 3)
    progress(f'  scale: API {t_api:.2f} s, every VLAN classified by {gw} '
             f'after {t_fwd} s')
    picks = rng.sample(vlans, min(samples, len(vlans))) + sorted(used)
    vni_of = {v: base + v for v in vlans}
    vni_of.update({c['vlan']: next(ls['vni'] for ls in ctl.get(
        '/logical-switches') if ls['id'] == c['ls_id'])
        for c in ctl.get('/gateway-connections') if c['vlan'] in used})
    wrong = {}
    for v in picks:
        got = harness.trace_vni(lab, gw, ofport, v)
        if got != [vni_of[v]]:
            wrong[v] = got
    return {'mappings': len(vlans) + len(used), 'new_mappings': len(vlans),
            'logical_switches_s': round(t_ls, 3), 'api_s': round(t_api, 3),
            'forwarding_s': t_fwd, 'sampled_vlans': len(picks),
            'sample_wrong': wrong}


def run(fabric='vcf', progress=print, trials=1, seed=1, mappings=4094):
    out_dir = results.run_dir('itaas-isolation')
    rng = random.Random(seed)
    env = harness.ControlledLab(labs.resolve(LAB), progress, out_dir)
    problems = []
    with env as lab:
        progress('isolation: captures on every tenant port, every kind of '
                 'frame from every host')
        tens, reach, verdict, pcaps = isolation(lab, out_dir)
        for h, ok in sorted(reach.items()):
            for peer, good in ok.items():
                if not good:
                    problems.append(f'{h} cannot reach {peer} (same tenant)')
        for h, v in sorted(verdict.items()):
            if v['foreign']:
                problems.append(f"{h}: {len(v['foreign'])} frame(s) from "
                                f"other tenants, e.g. {v['foreign'][0]}")
            if v['missing_broadcast_from'] or v['missing_flood_from']:
                problems.append(
                    f"{h}: positive control failed, no broadcast from "
                    f"{v['missing_broadcast_from']} or flood from "
                    f"{v['missing_flood_from']}")
        progress('escape: crafted frames from a tenant VM, a tenant server '
                 'and the transport network')
        attacks, escape_pcaps, escape_problems = escape.run_phase(
            lab, lab.ctl, out_dir, progress)
        problems += escape_problems
        pcaps += escape_pcaps
        progress('scale: bulk provisioning through the API')
        sc = scale(lab, rng, mappings, progress)
        if 'problem' in sc:
            problems.append(sc['problem'])
        else:
            if sc['forwarding_s'] is None:
                problems.append('gw1 never classified every VLAN')
            if sc['sample_wrong']:
                problems.append(f"VLANs mapped to the wrong VNI: "
                                f"{sc['sample_wrong']}")
        problems += [f'controller: {e}' for e in env.controller_errors()[:5]]
        name = lab.plan['name']
    pairs = sum(len(v) for v in reach.values())
    metrics = {
        'tenants': {t: hs for t, hs in tens.items()},
        'intra_tenant_pairs': pairs,
        'intra_tenant_reached': sum(sum(v.values()) for v in reach.values()),
        'isolation_ports': len(verdict),
        'frames_captured': sum(v['frames'] for v in verdict.values()),
        'cross_tenant_frames': sum(len(v['foreign'])
                                   for v in verdict.values()),
        'ports': verdict, 'scale': sc,
        'attacks': attacks,
        'attacks_tried': sum(a['kind'] != 'control' for a in attacks),
        'attacks_crossed': sum(bool(a['crossed']) for a in attacks),
        'controls_seen': sum(a['ok'] for a in attacks
                             if a['kind'] == 'control'),
        'targets': [] if 'problem' in sc else [
            {'key': f"provision {sc['mappings']} mappings (API)",
             'stat': 'time', 'limit_ms': TARGET_S * 1000,
             'measured_ms': round(sc['api_s'] * 1000),
             'met': sc['api_s'] <= TARGET_S},
            {'key': f"{sc['mappings']} mappings forwarding on gw1",
             'stat': 'time', 'limit_ms': TARGET_S * 1000,
             'measured_ms': None if sc['forwarding_s'] is None
             else round(sc['forwarding_s'] * 1000),
             'met': sc['forwarding_s'] is not None and
             sc['forwarding_s'] <= TARGET_S}],
        'problems': problems}
    res = results.result('itaas-isolation', name, not problems, metrics,
                         pcaps + [os.path.join(out_dir, 'controller.log')])
    results.save(res, out_dir)
    return res
