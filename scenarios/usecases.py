"""Scenarios physical-tier, attach-appliance and dc-interconnect: the
whitepaper's use cases ("Use Cases": physical tiers of a multi-tier app,
physical appliances, DC interconnect) as reachability and latency checks
on the small labs. Each is data: which hosts play which role, which pairs
must reach each other (ICMP echo, 50 per pair at 20 ms intervals, RTT
p50/p95/max), and an optional set-up step.

physical-tier     web VMs (vm1, vm3) -> app VM (vm5) -> a database on bare
                  metal behind a hardware VTEP (bm2): web->app, app->db,
                  and a TCP connection app->db:5432 (a listener on bm2).
attach-appliance  the physical server behind the software gateways (srv1)
                  acts as the VMs' router: it forwards, holds an "outside"
                  address (203.0.113.1, TEST-NET-3, on its loopback: the
                  packets never leave the lab) and the VMs use it as their
                  default gateway; each VM reaches the outside address
                  with the appliance as its next hop (checked per VM).
dc-interconnect   the physical, VLAN-based side (srv1 on VLAN 100 behind
                  the software gateways; bm1, bm2 behind hardware VTEPs,
                  the EX9200/QFX edge role) and the virtualized side (every
                  VM of the same logical switch) reach each other.
"""
import os
import re
import statistics
import threading

from topologies import labs

from . import harness, results, stats

OUTSIDE = '203.0.113.1'
CASES = {
    'physical-tier': {'pairs': [('vm1', 'vm5'), ('vm3', 'vm5'),
                                ('vm5', 'bm2')],
                      'tcp': [('vm5', 'bm2', 5432)]},
    'attach-appliance': {'pairs': [('vm1', OUTSIDE), ('vm3', OUTSIDE),
                                   ('vm5', OUTSIDE)],
                         'appliance': 'srv1'},
    'dc-interconnect': {'pairs': [(vm, phys) for vm in ('vm1', 'vm3', 'vm5')
                                  for phys in ('srv1', 'bm1', 'bm2')]},
}


def rtts(ping_output):
    """Per-reply RTTs (ms) and the TTL of the replies, from ping's output."""
    times = [float(t) for t in re.findall(r'time=([\d.]+) ms', ping_output)]
    ttls = sorted({int(t) for t in re.findall(r'ttl=(\d+)', ping_output)})
    return times, ttls


def latency(values):
    if not values:
        return None
    out = stats.describe(values)
    out['mean'] = round(statistics.fmean(values), 3)
    return out


def _ip(plan, host):
    return host if host[0].isdigit() else \
        plan['nodes'][host]['ip'].split('/')[0]


def setup_appliance(lab, appliance):
    """The appliance routes: forwarding on, an outside address, and every
    VM of its logical switch sends non-local traffic to it."""
    plan = lab.plan
    gw_ip = _ip(plan, appliance)
    node = lab.node(appliance)
    node.ns_run(['sysctl', '-qw', 'net.ipv4.ip_forward=1'], check=True)
    node.ns_run(['ip', 'addr', 'replace', f'{OUTSIDE}/32', 'dev', 'lo'],
                check=True)
    ls = plan['nodes'][appliance]['ls']
    for vm, p in plan['nodes'].items():
        if p['role'] == 'vm' and p.get('ls') == ls:
            lab.node(vm).ns_run(['ip', 'route', 'replace', 'default', 'via',
                                 gw_ip], check=True)


def tcp_check(lab, client, server, port):
    """A listener on `server`, one connection from `client`."""
    listener = ('import socket,sys;s=socket.socket();s.setsockopt(socket.'
                'SOL_SOCKET,socket.SO_REUSEADDR,1);s.bind(("0.0.0.0",%d));'
                's.listen();s.settimeout(10);c,_=s.accept();c.sendall(b"ok")'
                % port)
    srv = threading.Thread(target=lambda: lab.node(server).ns_run(
        ['python3', '-c', listener], timeout=15))
    srv.start()
    ip = _ip(lab.plan, server)
    client_code = ('import socket,time\nfor i in range(50):\n try:\n  '
                   'c=socket.create_connection(("%s",%d),1);print(c.recv(2)'
                   '.decode());break\n except OSError:\n  time.sleep(0.1)'
                   % (ip, port))
    r = lab.node(client).ns_run(['python3', '-c', client_code], timeout=15)
    srv.join()
    return r.stdout.strip() == 'ok'


def run(name, fabric='clos', progress=print, count=50, vtep_device=None):
    case = CASES[name]
    out_dir = results.run_dir(harness.run_name(name, fabric, vtep_device))
    env = harness.ControlledLab(labs.with_vtep_device(labs.resolve(fabric),
                                                      vtep_device),
                                progress, out_dir)
    pairs, problems = [], []
    with env as lab:
        if case.get('appliance'):
            setup_appliance(lab, case['appliance'])
        for a, b in case['pairs']:
            ip = _ip(lab.plan, b)
            lab.node(a).ns_run(['ping', '-c', '3', '-W', '1', ip])  # warm
            r = lab.node(a).ns_run(['ping', '-c', str(count), '-i', '0.02',
                                    '-W', '1', ip], timeout=60)
            times, ttls = rtts(r.stdout)
            rec = {'from': a, 'to': b, 'address': ip, 'sent': count,
                   'received': len(times), 'rtt_ms': latency(times),
                   'reply_ttl': ttls}
            pairs.append(rec)
            rtt = rec['rtt_ms']
            progress(f"  {a} -> {b} ({ip}): {len(times)}/{count} replies"
                     + (f", RTT p50 {rtt['p50']} ms, p95 {rtt['p95']} ms"
                        if rtt else ''))
            if len(times) < count * 0.9:
                problems.append(f'{a} -> {b}: {len(times)}/{count} replies')
            if case.get('appliance'):
                via = _ip(lab.plan, case['appliance'])
                route = lab.node(a).ns_run(['ip', 'route', 'get',
                                            ip]).stdout.split()
                rec['next_hop'] = route[route.index('via') + 1] \
                    if 'via' in route else None
                if rec['next_hop'] != via:
                    problems.append(f'{a} -> {b}: next hop '
                                    f"{rec['next_hop']}, not the appliance "
                                    f'{via}')
        tcp = []
        for a, b, port in case.get('tcp', []):
            ok = tcp_check(lab, a, b, port)
            tcp.append({'from': a, 'to': b, 'port': port, 'connected': ok})
            progress(f"  TCP {a} -> {b}:{port}: "
                     f"{'connected' if ok else 'FAILED'}")
            if not ok:
                problems.append(f'TCP {a} -> {b}:{port} failed')
        problems += [f'controller: {e}' for e in env.controller_errors()[:5]]
        topo = lab.plan['name']
    rtt = {f"{p['from']} -> {p['to']}": p['rtt_ms'] for p in pairs
           if p['rtt_ms']}
    metrics = {'pairs': pairs, 'tcp': tcp, 'latency': rtt,
               'reachable_pairs': sum(1 for p in pairs if p['received']),
               'problems': problems}
    res = results.result(name, topo, not problems and pairs, metrics,
                         [os.path.join(out_dir, 'controller.log')])
    results.save(res, out_dir)
    return res
