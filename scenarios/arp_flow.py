"""Scenario arp-flow: the whitepaper's figures 9-11 (software L2 gateway),
proved with packets.

    logical switch 1 (VNI 5001): VM1, VM2 on HV1; VM3 on HV2; server S on
                                 VLAN 100 behind the software gateway GW1
    logical switch 2 (VNI 5002): VM4 on HV2; VM5 on HV3 (so HV3 has no
                                 member of logical switch 1)

setup: the lab, its controller, provisioning through the API; act: VM1
ARPs for S (one request); measure: captures on every VTEP's uplink, on
every host, and on the gateway's cable into the segment; verify the hops
the whitepaper describes; teardown: always, pcaps and the controller's log
saved next to result.json.
"""
import os

from . import harness, results

VNI1, VNI2, VLAN = 5001, 5002, 100
HOSTS = ['vm1', 'vm2', 'vm3', 'vm4', 'vm5', 's']
VTEPS = ['hv1', 'hv2', 'hv3', 'sn1', 'sn2', 'gw1']


def spec(fabric='clos'):
    nodes = {'spine1': {'role': 'spine'}, 'spine2': {'role': 'spine'},
             'leaf1': {'role': 'leaf'}, 'leaf2': {'role': 'leaf'},
             'hv1': {'role': 'hypervisor'}, 'hv2': {'role': 'hypervisor'},
             'hv3': {'role': 'hypervisor'}, 'sn1': {'role': 'service_node'},
             'sn2': {'role': 'service_node'}, 'gw1': {'role': 'sw_gateway'},
             'seg1': {'role': 'l2_segment'},
             's': {'role': 'bare_metal', 'ls': 'ls1'},
             'vm1': {'role': 'vm', 'ls': 'ls1'},
             'vm2': {'role': 'vm', 'ls': 'ls1'},
             'vm3': {'role': 'vm', 'ls': 'ls1'},
             'vm4': {'role': 'vm', 'ls': 'ls2'},
             'vm5': {'role': 'vm', 'ls': 'ls2'}}
    links = [f'{s}-{lf}' for s in ('spine1', 'spine2')
             for lf in ('leaf1', 'leaf2')]
    links += ['leaf1-hv1', 'leaf2-hv2', 'leaf1-hv3', 'leaf1-sn1',
              'leaf2-sn2', 'leaf2-gw1', 'hv1-vm1', 'hv1-vm2', 'hv2-vm3',
              'hv2-vm4', 'hv3-vm5', 'seg1-gw1',
              {'link': 'seg1-s', 'vlan': VLAN}]
    return {'name': f'arp-flow-{fabric}', 'fabric': fabric, 'nodes': nodes,
            'links': links,
            'logical_switches': {'ls1': {'vni': VNI1,
                                         'subnet': '10.1.0.0/24'},
                                 'ls2': {'vni': VNI2,
                                         'subnet': '10.2.0.0/24'}}}


def _ip(plan, n):
    return plan['nodes'][n]['ip'].split('/')[0]


def hops(plan, frames, asker='vm1', target='s', kind='arp'):
    """Observed hops of the ARP exchange (or, kind='ip', the IP packets)
    between hosts `asker` and `target`: who sent/received what, how."""
    vtep_of = {p['tunnel_ip'].split('/')[0]: n
               for n, p in plan['nodes'].items() if 'tunnel_ip' in p}
    mac_of = {p['mac']: n for n, p in plan['nodes'].items() if 'mac' in p}
    ours = {_ip(plan, asker), _ip(plan, target)}
    out = []
    for point, recs in frames.items():
        for r in recs:
            if kind == 'arp' and (r.get('arp') is None or
                                  {r['psrc'], r['pdst']} != ours):
                continue
            if kind == 'ip' and {r.get('ip_src'), r.get('ip_dst')} != ours:
                continue
            hop = {'at': point, 'arp': r.get('arp', 'ip'),
                   'time': r['time'], 'from': mac_of.get(r['src'], r['src'])}
            if 'vni' in r:
                hop.update(vni=r['vni'], outer_src=vtep_of.get(
                    r['outer_src'], r['outer_src']),
                    outer_dst=vtep_of.get(r['outer_dst'], r['outer_dst']))
            if 'vlan' in r:
                hop['vlan'] = r['vlan']
            out.append(hop)
    return sorted(out, key=lambda h: h['time'])


def checks(hops_):
    """The whitepaper's claims, each (claim, held?)."""
    def sent(node, arp):
        return [(h['outer_dst'], h['vni']) for h in hops_
                if h['at'] == node and h.get('outer_src') == node and
                h['arp'] == arp]

    def got(node, arp):
        return [h for h in hops_ if h['at'] == node and 'vni' not in h and
                h['arp'] == arp]
    tunnelled_to = {n: [h for h in hops_ if h.get('outer_dst') == n and
                        h['at'] == n] for n in VTEPS}
    return [
        ('VM2 gets the request locally on HV1 (no tunnel)',
         len(got('vm2', 'request')) == 1),
        ('HV1 sends it encapsulated, VNI 5001, to one service node only',
         len(sent('hv1', 'request')) == 1 and
         sent('hv1', 'request')[0][0] in ('sn1', 'sn2') and
         sent('hv1', 'request')[0][1] == VNI1),
        ('the service node relays it to HV2 and the gateway only',
         sorted(d for sn in ('sn1', 'sn2') for d, v in sent(sn, 'request')
                if v == VNI1) == ['gw1', 'hv2']),
        ('HV3 (no member of logical switch 1) gets nothing',
         not tunnelled_to['hv3']),
        ('VM3 gets it; VM4 and VM5 (logical switch 2) get nothing',
         len(got('vm3', 'request')) == 1 and not got('vm4', 'request')
         and not got('vm5', 'request')),
        ('the gateway sends it untunnelled on VLAN 100 to S',
         any(h['at'] == 'gw1-seg' and h['arp'] == 'request' and
             h.get('vlan') == VLAN for h in hops_) and
         len(got('s', 'request')) == 1),
        ("S's unicast reply is tunnelled by the gateway straight to HV1",
         sent('gw1', 'reply') == [('hv1', VNI1)]),
        ('no service node carries the reply',
         not any(sent(sn, 'reply') for sn in ('sn1', 'sn2'))),
        ('the reply reaches VM1 only',
         len(got('vm1', 'reply')) == 1 and not any(
             got(v, 'reply') for v in ('vm2', 'vm3', 'vm4', 'vm5'))),
    ]


def describe(h):
    what = 'IP packet' if h['arp'] == 'ip' else f"ARP {h['arp']}"
    if 'vni' in h:
        return (f"{h['outer_src']} -> {h['outer_dst']}  VXLAN VNI "
                f"{h['vni']}  {what} from {h['from']}  (seen at {h['at']})")
    tag = f", VLAN {h['vlan']}" if 'vlan' in h else ''
    if h['at'] == 'gw1-seg':
        return f"on gw1's cable into seg1: {what} from {h['from']}{tag}"
    if h['at'] == h['from']:
        return f"{h['at']} sends {what}{tag}"
    return f"{h['at']} receives {what} from {h['from']}{tag}"


def run(fabric='clos', progress=print):
    out_dir = results.run_dir(f'arp-flow-{fabric}')
    env = harness.ControlledLab(spec(fabric), progress, out_dir)
    with env as lab:
        plan = lab.plan
        s_ip = _ip(plan, 's')
        ready = all(harness.until(lambda ip=ip: lab.node('vm1').ns_run(
            ['ping', '-c', '1', '-W', '1', ip]).returncode == 0, 30)
            is not None for ip in (s_ip, _ip(plan, 'vm3')))
        for h in HOSTS:
            lab.node(h).ns_run(['ip', 'neigh', 'flush', 'all'])
        points = {n: plan['nodes'][n]['uplink'] for n in VTEPS}
        host_points = {h: 'eth0' for h in HOSTS}
        with harness.Captures(lab, points, out_dir, 'udp port 4789') as c1, \
                harness.Captures(lab, host_points, out_dir, 'arp') as c2, \
                harness.Captures(lab, {'gw1': 'seg1'}, out_dir,
                                 'not ether proto 0x8902') as c3:
            progress('  VM1 sends one ARP request for S')
            reply = lab.node('vm1').ns_run(['arping', '-c', '1', '-w', '2',
                                            '-I', 'eth0', s_ip])
        frames = {**c1.frames(), **c2.frames()}
        frames['gw1-seg'] = c3.frames()['gw1']
        hop_list = hops(plan, frames)
        pcaps = list(c1.files.values()) + list(c2.files.values()) + \
            list(c3.files.values())
    claims = checks(hop_list)
    errors = env.controller_errors()
    passed = ready and reply.returncode == 0 and all(ok for _, ok in claims) \
        and not errors
    metrics = {'ready': ready, 'arping_answered': reply.returncode == 0,
               'hops': [describe(h) for h in hop_list],
               'checks': [{'claim': c, 'held': ok} for c, ok in claims],
               'controller_errors': errors[:20]}
    artifacts = sorted(pcaps) + [os.path.join(out_dir, 'controller.log')]
    res = results.result('arp-flow', plan['name'], passed, metrics,
                         artifacts)
    results.save(res, out_dir)
    return res
