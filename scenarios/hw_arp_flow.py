"""Scenario hw-arp-flow: the whitepaper's figures 14-16 (hardware L2
gateway), proved with packets and with the VTEP's own tables.

    VM IP1 (vm1) and IP2 (vm2) on Hypervisor 1, VM3 on Hypervisor 2, all in
    logical switch 1 (VNI 5001); bare-metal server IP5 (bm5) on the hardware
    VTEP (the lab's native device, or OVS's emulator, driven by the
    controller over hardware_vtep).

setup: lab, controller, provisioning through the API; act 1: IP1 ARPs for
IP5 (steps 1-6); measure: captures, then how long until MAC5 appears in
Ucast_Macs_Local (step 6) and until the controller has installed it on the
hypervisors (step 7); act 2: IP1 pings IP5 (steps 8-11); verify each step;
teardown: always, evidence saved (pcaps, VTEP tables, controller log).
"""
import os
import subprocess
import threading
import time

from . import arp_flow, harness, results

VNI1 = 5001
VTEPS = ['hv1', 'hv2', 'sn1', 'sn2', 'vtep1']
HOSTS = ['vm1', 'vm2', 'vm3', 'bm5']


def spec(fabric='clos', vtep_device='native'):
    nodes = {'spine1': {'role': 'spine'}, 'spine2': {'role': 'spine'},
             'leaf1': {'role': 'leaf'}, 'leaf2': {'role': 'leaf'},
             'hv1': {'role': 'hypervisor'}, 'hv2': {'role': 'hypervisor'},
             'sn1': {'role': 'service_node'},
             'sn2': {'role': 'service_node'}, 'vtep1': {'role': 'hw_vtep'},
             'vm1': {'role': 'vm', 'ls': 'ls1'},
             'vm2': {'role': 'vm', 'ls': 'ls1'},
             'vm3': {'role': 'vm', 'ls': 'ls1'},
             'bm5': {'role': 'bare_metal', 'ls': 'ls1'}}
    links = [f'{s}-{lf}' for s in ('spine1', 'spine2')
             for lf in ('leaf1', 'leaf2')]
    links += ['leaf1-hv1', 'leaf2-hv2', 'leaf1-sn1', 'leaf2-sn2',
              'hv1-vm1', 'hv1-vm2', 'hv2-vm3']
    if fabric == 'clos':        # the VTEP is leaf2's function
        links += ['leaf2-vtep1', 'vtep1-bm5']
    else:                       # the pod VTEP; IP5 cabled to leaf2
        links += ['leaf2-bm5']
        if vtep_device != 'native':     # OVS's emulator hangs off spine1
            links.append('spine1-vtep1')
    return {'name': f'hw-arp-flow-{fabric}', 'fabric': fabric,
            'vtep_device': vtep_device, 'nodes': nodes, 'links': links,
            'logical_switches': {'ls1': {'vni': VNI1,
                                         'subnet': '10.1.0.0/24'}}}


def _ip(plan, n):
    return plan['nodes'][n]['ip'].split('/')[0]


def checks(arp_hops, ip_hops, local_macs, mac5, installed):
    def sent(hops, node, what):
        return [(h['outer_dst'], h['vni']) for h in hops
                if h['at'] == node and h.get('outer_src') == node and
                h['arp'] == what]

    def got(hops, node, what):
        return [h for h in hops if h['at'] == node and 'vni' not in h and
                h['arp'] == what]
    to_sn = sent(arp_hops, 'hv1', 'request')
    relayed = sorted(d for sn in ('sn1', 'sn2')
                     for d, v in sent(arp_hops, sn, 'request') if v == VNI1)
    return [
        ('2. HV1 encapsulates the ARP request (VNI 5001) to one service node',
         len(to_sn) == 1 and to_sn[0] in (('sn1', VNI1), ('sn2', VNI1))),
        ('3. the service node replicates it to HV2 and the hardware VTEP',
         relayed == ['hv2', 'vtep1']),
        ('4. the hardware VTEP decapsulates it and IP5 receives it',
         len(got(arp_hops, 'bm5', 'request')) == 1),
        ("6. the VTEP tunnels IP5's reply straight to HV1",
         sent(arp_hops, 'vtep1', 'reply') == [('hv1', VNI1)] and
         not any(sent(arp_hops, sn, 'reply') for sn in ('sn1', 'sn2'))),
        ('6. the VTEP learns MAC5 into Ucast_Macs_Local',
         mac5 in local_macs),
        ('7. the controller installs MAC5 -> VTEP on every hypervisor',
         installed),
        ('9. IP1 -> IP5 unicast is tunnelled straight to the hardware VTEP',
         sent(ip_hops, 'hv1', 'ip') == [('vtep1', VNI1)]),
        ('10-11. IP5 receives it; no service node carries it',
         len(got(ip_hops, 'bm5', 'ip')) >= 1 and
         not any(sent(ip_hops, sn, 'ip') for sn in ('sn1', 'sn2'))),
    ]


def _mac_flow_installed(lab, hv, mac, tunnel_port):
    flows = lab.node(hv).ns_run(['ovs-ofctl', '-O', 'OpenFlow13',
                                 'dump-flows', 'br-int', 'table=1']).stdout
    return any(f'dl_dst={mac}' in f and f'output:{tunnel_port}' in f
               for f in flows.splitlines())


def run(fabric='clos', progress=print, vtep_device=None):
    from controllers import intent
    device = vtep_device or 'native'
    out_dir = results.run_dir(harness.run_name('hw-arp-flow', fabric,
                                               device))
    env = harness.ControlledLab(spec(fabric, device), progress, out_dir)
    metrics, evidence = {}, []
    with env as lab:
        plan = lab.plan
        ip5, mac5 = _ip(plan, 'bm5'), plan['nodes']['bm5']['mac']
        db = lab.db('vtep1')
        vtep_port = intent.tunnel_port(plan['nodes'], 'vtep1')
        ready = harness.until(lambda: lab.node('vm1').ns_run(
            ['ping', '-c', '1', '-W', '1', _ip(plan, 'vm3')]).returncode == 0
            and 'ls1' in subprocess.run(
                ['vtep-ctl', f'--db={db}', 'list-bindings', 'vtep1',
                 plan['nodes']['vtep1']['intfs'][-1]['name']],
                capture_output=True, text=True).stdout, 30) is not None
        # IP5 has never spoken: the VTEP has not learned MAC5 yet
        for h in HOSTS:
            lab.node(h).ns_run(['ip', 'neigh', 'flush', 'all'])
        points = harness.vtep_points(plan, VTEPS)
        hosts = {h: 'eth0' for h in HOSTS}
        def local():
            return subprocess.run(['vtep-ctl', f'--db={db}',
                                   'list-local-macs', 'ls1'],
                                  capture_output=True, text=True).stdout
        # watch steps 6 and 7 while they happen (wall-clock instants)
        seen = {}

        def watch():
            if harness.until(lambda: mac5 in local(), 10, 0.02) is not None:
                seen['learned'] = time.time()
                if harness.until(lambda: all(_mac_flow_installed(
                        lab, hv, mac5, vtep_port) for hv in ('hv1', 'hv2')),
                        10, 0.02) is not None:
                    seen['installed'] = time.time()
        watcher = threading.Thread(target=watch, daemon=True)
        with harness.Captures(lab, points, out_dir, 'udp port 4789') as c1, \
                harness.Captures(lab, hosts, out_dir, 'arp') as c2:
            watcher.start()
            progress('  steps 1-6: IP1 sends one ARP request for IP5')
            answered = lab.node('vm1').ns_run(
                ['arping', '-c', '1', '-w', '2', '-I', 'eth0', ip5])
        watcher.join(12)
        arp_hops = arp_flow.hops(plan, {**harness.by_vtep(c1.frames()),
                                        **c2.frames()}, 'vm1', 'bm5')
        evidence += list(c1.files.values()) + list(c2.files.values())
        replied = [h['time'] for h in arp_hops
                   if h['at'] == 'bm5' and h['arp'] == 'reply']
        learned = round(seen['learned'] - replied[0], 3) \
            if 'learned' in seen and replied else None
        installed = round(seen['installed'] - seen['learned'], 3) \
            if 'installed' in seen else None
        # step 6: the native VTEP learns from the first frame; OVS's
        # emulator polls its bridge once a second
        metrics.update(mac5_learned_after_reply_s=learned,
                       mac5_installed_after_learned_s=installed)
        local_macs = local()
        tables = os.path.join(out_dir, 'vtep1-tables.txt')
        with open(tables, 'w') as f:
            f.write(local_macs + subprocess.run(
                ['vtep-ctl', f'--db={db}', 'list-remote-macs', 'ls1'],
                capture_output=True, text=True).stdout)
        evidence.append(tables)
        ip_dir = os.path.join(out_dir, 'unicast')
        os.makedirs(ip_dir, exist_ok=True)
        with harness.Captures(lab, points, ip_dir, 'udp port 4789') as c3, \
                harness.Captures(lab, {'bm5': 'eth0'}, ip_dir, 'icmp') as c4:
            progress('  steps 8-11: IP1 pings IP5')
            pinged = lab.node('vm1').ns_run(['ping', '-c', '1', '-W', '2',
                                             ip5])
        ip_hops = arp_flow.hops(plan, {**harness.by_vtep(c3.frames()),
                                       **c4.frames()}, 'vm1', 'bm5',
                                kind='ip')
        evidence += list(c3.files.values()) + list(c4.files.values())
    claims = checks(arp_hops, ip_hops, local_macs, mac5,
                    installed is not None)
    errors = env.controller_errors()
    passed = ready and answered.returncode == 0 and \
        pinged.returncode == 0 and all(ok for _, ok in claims) and not errors
    metrics.update(ready=ready, arping_answered=answered.returncode == 0,
                   ping_answered=pinged.returncode == 0,
                   hops=[arp_flow.describe(h) for h in arp_hops + ip_hops],
                   checks=[{'claim': c, 'held': ok} for c, ok in claims],
                   controller_errors=errors[:20])
    res = results.result('hw-arp-flow', plan['name'], passed, metrics,
                         sorted(evidence) + [os.path.join(out_dir,
                                                          'controller.log')])
    results.save(res, out_dir)
    return res
