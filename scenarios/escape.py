"""Tenant escape and spoofed VXLAN, on the itaas lab (a phase of the
itaas-isolation scenario): an attacker in one tenant (a VM, a physical
server) or on the transport network crafts frames to reach another tenant;
tcpdump runs on every tenant host's port and on gw1's cable to the
physical segment; each crafted frame carries a marker, and the verdict is
where each marker was seen (raw bytes, not decoded fields).

Attacks (see ATTACKS' texts) from ta1 (a VM of tenant ta), tap (ta's
physical server, an access port of VLAN 101) and sn1's host stack (a
kernel on the transport network, beside its OVS: raw IP with any source).
Controls, which must be seen where stated or the phase cannot judge and
fails: the transport-network path delivers VXLAN that a member sends
(forged from the host of a member; VXLAN carries no authentication, so a
host that can forge a member VTEP's address reaches that member's VNIs:
the transport network is trusted, as in the whitepaper), and a VNI the
gateway carries, sent from a service node, reaches the gateway's cable.

`attacks` and `judge` are pure (unit-tested); `run_phase` needs a lab.
"""
import os
import sys
import time

from . import harness

FRAMEGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'framegen.py')
MARK = b'NSXL-ESCAPE-'
PROBE_LS = {'name': 'escape-probe', 'vni': 6099}
PROBE_VLAN = 104
BCAST = 'ff:ff:ff:ff:ff:ff'
FORGED_MAC = '02:ee:5c:00:00:01'
NO_VTEP_IP = '198.19.128.250'


def _ip(node):
    return node['tunnel_ip'].split('/')[0]


def attacks(plan, probe_vni=PROBE_LS['vni']):
    """[{id, attacker, tenant (the attacker's, or None), send: ('frames',
    intf) | ('packets', dst IP), hex: [frames or packets], judge:
    'foreign' (seen at no host of another tenant) | 'absent' (seen at no
    capture point in `at`) | 'control' (seen at every point in `at`),
    at: [capture points], text}]"""
    from scapy.all import IP, UDP, VXLAN, Dot1Q, Ether, Raw
    n = plan['nodes']

    def inner(aid, src=FORGED_MAC, dst=BCAST, vlans=()):
        frame = Ether(src=src, dst=dst)
        for vlan in vlans:                    # outermost first
            frame = frame / Dot1Q(vlan=vlan)
        return (frame / IP(src='10.0.0.66', dst='10.0.0.255') /
                UDP(sport=9999, dport=9999) / Raw(MARK + aid.encode()))

    def vxlan(aid, src_ip, dst_ip, vni):
        return bytes(IP(src=src_ip, dst=dst_ip, ttl=64) /
                     UDP(sport=49152, dport=4789, chksum=0) /
                     VXLAN(vni=vni, flags=0x08) / inner(aid))

    ta1, tap = n['ta1'], n['tap']
    hv1, hv2, gw1, sn1 = n['hv1'], n['hv2'], n['gw1'], n['sn1']
    out = []

    def add(aid, attacker, send, pkts, judge, text, at=()):
        out.append({'id': aid, 'attacker': attacker,
                    'tenant': n[attacker].get('ls') if n[attacker].get(
                        'role') in ('vm', 'bare_metal') else None,
                    'send': send, 'hex': [bytes(p).hex() for p in pkts],
                    'judge': judge, 'at': list(at), 'text': text})

    eth = inner
    add('vm-spoofed-source', 'ta1', ('frames', 'eth0'),
        [eth('vm-spoofed-source', src=n['tb1']['mac'])], 'foreign',
        "a VM sends broadcast with tenant tb's VM MAC as its source")
    add('vm-unicast-foreign-mac', 'ta1', ('frames', 'eth0'),
        [eth('vm-unicast-foreign-mac', src=ta1['mac'], dst=n['tb2']['mac'])],
        'foreign', "a VM sends unicast to tenant tb's VM MAC")
    add('vm-vlan-tag', 'ta1', ('frames', 'eth0'),
        [eth('vm-vlan-tag', src=ta1['mac'], vlans=(102,))], 'foreign',
        "a VM tags its frame with tenant tb's VLAN (102), hoping the "
        'gateway puts it on that VLAN')
    add('vm-vxlan-to-gateway', 'ta1', ('frames', 'eth0'),
        [Ether(src=ta1['mac'], dst=gw1['tunnel_mac']) /
         IP(src='10.0.0.66', dst=_ip(gw1)) /
         UDP(sport=49152, dport=4789, chksum=0) / VXLAN(vni=6002, flags=8) /
         inner('vm-vxlan-to-gateway')], 'foreign',
        "a VM sends VXLAN for tenant tb's VNI to the gateway's tunnel "
        'address and MAC')
    add('server-vlan-hop', 'tap', ('frames', 'eth0'),
        [eth('server-vlan-hop', src=tap['mac'], vlans=(102,))], 'foreign',
        "a physical server tags its frame with tenant tb's VLAN (102) on "
        'its access port (VLAN 101)')
    add('server-double-tag', 'tap', ('frames', 'eth0'),
        [eth('server-double-tag', src=tap['mac'], vlans=(101, 102))],
        'foreign',
        'a physical server double-tags (101 outside, 102 inside)')
    add('server-spoofed-source', 'tap', ('frames', 'eth0'),
        [eth('server-spoofed-source', src=n['tbp']['mac'])], 'foreign',
        "a physical server sends broadcast with tenant tb's server MAC")
    points = sorted(h for h, p in n.items()
                    if p['role'] in ('vm', 'bare_metal'))
    add('underlay-no-vtep', 'sn1', ('packets', _ip(hv2)),
        [vxlan('underlay-no-vtep', NO_VTEP_IP, _ip(hv2), 6002)], 'absent',
        f'a transport-network host sends VXLAN (VNI 6002, tenant tb) to '
        f'hv2 from {NO_VTEP_IP}, an address that is no VTEP', at=points)
    add('underlay-forged-nonmember', 'sn1', ('packets', _ip(gw1)),
        [vxlan('underlay-forged-nonmember', _ip(hv1), _ip(gw1), probe_vni)],
        'absent', f"a transport-network host forges hv1's address and sends "
        f'gw1 a VNI ({probe_vni}) that hv1 carries no member of',
        at=['gw1-seg1'])
    add('control-service-node', 'sn1', ('packets', _ip(gw1)),
        [vxlan('control-service-node', _ip(sn1), _ip(gw1), probe_vni)],
        'control', f'control: VNI {probe_vni} from the service node sn1 '
        "reaches gw1's cable (VLAN %d)" % PROBE_VLAN, at=['gw1-seg1'])
    add('control-forged-member', 'sn1', ('packets', _ip(hv2)),
        [vxlan('control-forged-member', _ip(hv1), _ip(hv2), 6002)],
        'control', "control (and the limit): VNI 6002 forged with hv1's "
        'address, a member of it, reaches tenant tb on hv2', at=['tb2'])
    return out


def judge(attack_list, seen, tenant_of):
    """seen: {attack id: set of capture points where its marker was}. ->
    [{id, attacker, text, seen_at, crossed: [points of another tenant or
    forbidden], ok}] in attack order."""
    out = []
    for a in attack_list:
        at = sorted(seen.get(a['id'], ()))
        if a['judge'] == 'foreign':
            bad = [p for p in at if p in tenant_of and
                   tenant_of[p] != a['tenant']]
            ok = not bad
        elif a['judge'] == 'absent':
            bad = [p for p in at if p in a['at']]
            ok = not bad
        else:
            bad = []
            ok = set(a['at']) <= set(at)
        out.append({'id': a['id'], 'attacker': a['attacker'],
                    'text': a['text'], 'kind': a['judge'], 'seen_at': at,
                    'crossed': bad, 'ok': ok})
    return out


def markers_in(path):
    """{attack id} whose marker is in any frame of pcap `path`."""
    from scapy.all import rdpcap
    found = set()
    for pkt in rdpcap(path):
        raw = bytes(pkt)
        i = raw.find(MARK)
        if i >= 0:
            tail = raw[i + len(MARK):]
            aid = tail.split(b'\x00')[0].decode('ascii', 'replace')
            found.add(''.join(c for c in aid if c.isalnum() or c == '-'))
    return found


def _send(lab, a):
    kind, where = a['send']
    cmd = [sys.executable, FRAMEGEN, kind] + (
        ['--intf', where] if kind == 'frames' else ['--dst', where]) + \
        ['--repeat', '3'] + a['hex']
    r = lab.node(a['attacker']).ns_run(cmd, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"sending {a['id']} from {a['attacker']} failed: "
                           f'{r.stderr.strip()[-300:]}')


def run_phase(lab, ctl, out_dir, progress):
    """-> (verdicts, pcaps, problems)."""
    plan = lab.plan
    s1, ls = ctl.request('POST', '/logical-switches', PROBE_LS)
    if s1 != 201:
        return [], [], [f'escape: creating {PROBE_LS}: {s1} {ls}']
    s2, conn = ctl.request('POST', '/gateway-connections', {
        'ls_id': ls['id'], 'gateway': 'gw1', 'port': 'seg1',
        'vlan': PROBE_VLAN})
    if s2 != 201:
        return [], [], [f'escape: binding the probe switch: {s2} {conn}']
    # ready when gw1's data plane puts a broadcast on the probe VLAN into
    # the probe VNI and floods it (ofproto/trace: its own translation)
    cable = next(i for i in plan['nodes']['gw1']['intfs']
                 if i['kind'] == 'physical' and i['name'] == 'seg1')
    ready = harness.until(lambda: harness.trace_vni(
        lab, 'gw1', cable['ofport'], PROBE_VLAN) == [PROBE_LS['vni']],
        20, 0.2)
    if ready is None:
        return [], [], [f'escape: gw1 never installed VNI '
                        f"{PROBE_LS['vni']}"]
    hosts = sorted(h for h, p in plan['nodes'].items()
                   if p['role'] in ('vm', 'bare_metal'))
    tenant_of = {h: plan['nodes'][h]['ls'] for h in hosts}
    todo = attacks(plan)
    points = [(h, h, 'eth0') for h in hosts] + [('gw1-seg1', 'gw1', 'seg1')]
    caps = harness.Captures(lab, points, out_dir, snaplen=512)
    with caps:
        for a in todo:
            progress(f"  escape: {a['id']}: {a['text']}")
            _send(lab, a)
        time.sleep(0.5)
    seen = {}
    for name, path in caps.files.items():
        for aid in markers_in(path):
            seen.setdefault(aid, set()).add(name)
    verdicts = judge(todo, seen, tenant_of)
    problems = []
    for v in verdicts:
        if v['kind'] == 'control' and not v['ok']:
            problems.append(f"escape: control {v['id']} was not seen at "
                            f"its point (seen at {v['seen_at']}): the "
                            'phase cannot judge')
        elif not v['ok']:
            problems.append(f"escape: {v['id']} crossed to {v['crossed']}")
    return verdicts, sorted(caps.files.values()), problems
