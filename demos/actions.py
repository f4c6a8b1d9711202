"""What a demo makes the lab do, and the evidence it reads from the boxes'
own tables. Thin drivers over the scenarios' helpers; each returns the
lines a trainer reads."""
import subprocess
import time

from controllers import dfw as dfw_mod, intent
from scenarios import dfw, gateway_failover, harness, p2v_migration

from . import readable, wire


def _ip(plan, host):
    return wire.addr(plan['nodes'][host]['ip'])


def intf_up(lab, node, intf):
    r = lab.node(node).ns_run(['cat', f'/sys/class/net/{intf}/operstate'])
    return r.stdout.strip() in ('up', 'unknown')


def ready(lab, demo, ctx):
    """Demo-specific preparation before the first act."""
    for what in demo.get('ready', ()):
        if what == 'gw1-active' and harness.until(
                lambda: gateway_failover.active(lab) == ['gw1'], 30,
                0.3) is None:
            raise RuntimeError('gw1 never became the only active gateway: '
                               'see logs/gw1/gwagent-seg1.log')
        if what == 'vm7-identity':
            p2v_migration.Identity(lab)
        if what == 'dfw-policy':
            # the pairs reach each other first (ARP, flows), then the
            # policy of the dfw scenario
            for src, dst in (('vm1', 'vm3'), ('vm3', 'vm1')):
                notes = warm(lab, ctx, src, dst)
                if notes:
                    raise RuntimeError('; '.join(notes))
            # a hardware VTEP's flows are its own device's: a ping will do
            ip = _ip(lab.plan, 'vm3')
            if harness.until(lambda: lab.node('bm1').ns_run(
                    ['ping', '-c', '1', '-W', '1', ip]).returncode == 0,
                    15, 0.2) is None:
                raise RuntimeError(f'bm1 could not reach vm3 ({ip}) '
                                   'within 15 s')
            dfw.make_policy(lab)
            time.sleep(1.0)                  # every hypervisor pushed


def _known(lab, src, dst):
    """Has `src`'s VTEP a unicast flow for `dst`'s MAC? (A MAC behind
    software gateways has one once the active gateway reported it.)"""
    plan = lab.plan
    edge = wire.attachment(plan, src)
    mac = plan['nodes'][dst]['mac']
    return bool(p2v_migration.edge_outputs(lab, edge, mac))


def warm(lab, ctx, src, dst):
    """Before the captures start: `src` has resolved `dst` (ARP) and, for a
    host behind a hypervisor or hardware VTEP, `src`'s VTEP has a unicast
    flow for its MAC (behind software gateways: once the active one
    reported it), so the captured ping shows known unicast only."""
    plan = lab.plan
    ip = _ip(plan, dst)
    if harness.until(lambda: lab.node(src).ns_run(
            ['ping', '-c', '1', '-W', '1', ip]).returncode == 0, 15,
            0.2) is None:
        return [f'{src} could not reach {dst} ({ip}) within 15 s']
    edge = wire.attachment(plan, dst)
    nodes = plan['nodes']
    on_segment = nodes[nodes[dst]['intfs'][0]['peer']]['role'] == \
        'l2_segment'                           # behind software gateways
    if on_segment or (edge and nodes[edge]['role'] in ('hypervisor',
                                                       'hw_vtep')):
        if harness.until(lambda: _known(lab, src, dst), 15, 0.2) is None:
            return [f"{wire.attachment(plan, src)} has no flow for {dst}'s "
                    'MAC after 15 s']
    return []


def ping(lab, ctx, say, src, dst):
    ip = _ip(lab.plan, dst)
    r = lab.node(src).ns_run(['ping', '-c', '1', '-W', '2', ip])
    return [f'{src}$ ping -c 1 {ip}: '
            + ('answered' if r.returncode == 0 else 'NO ANSWER')]


def probe(lab, ctx, say, src, dst):
    """A ping that may be dropped (no warm-up: the firewall is on)."""
    return ping(lab, ctx, say, src, dst)


def warm_arp(lab, ctx, src, dst, warm_hosts=()):
    """Before the captures: `src` reaches `warm_hosts` (tunnels and the
    underlay's neighbours resolved: userspace OVS drops a tunnelled frame
    whose next hop it has not resolved yet), then every host forgets its
    neighbours, so the captured ARP is the first of its kind."""
    plan, notes = lab.plan, []
    for h in warm_hosts:
        if harness.until(lambda h=h: lab.node(src).ns_run(
                ['ping', '-c', '1', '-W', '1', _ip(plan, h)]).returncode == 0,
                30, 0.2) is None:
            notes.append(f'{src} could not reach {h} within 30 s')
    return notes


def arp(lab, ctx, say, src, dst, warm_hosts=()):
    plan = lab.plan
    for h, p in plan['nodes'].items():
        if p['role'] in ('vm', 'bare_metal'):
            lab.node(h).ns_run(['ip', 'neigh', 'flush', 'all'])
    ip = _ip(plan, dst)
    r = lab.node(src).ns_run(['arping', '-c', '1', '-w', '2', '-I', 'eth0',
                              ip])
    return [f'{src}$ arping -c 1 {ip}: '
            + ('answered' if r.returncode == 0 else 'NO ANSWER')]


def _gateway_event(lab, ctx, event, winner, timeout):
    """Do `event`, then time until `winner` is the only active gateway."""
    t = time.time()
    event()
    took = harness.until(lambda: gateway_failover.active(lab) == [winner],
                         timeout, 0.02)
    ms = None if took is None else round(took * 1000)
    ctx['takeover'] = {'gw': winner, 'since': t, 'ms': ms}
    ctx['headline'] = f'{winner} the only active gateway ' + (
        f'{ms} ms later' if ms is not None else f'NOT within {timeout} s')


def crash(lab, ctx, say, gw):
    _gateway_event(lab, ctx, lambda: gateway_failover.fail(lab, 'crash'),
                   'gw2', 15)
    return [f'kill -9 the ovs-vswitchd of {gw} (pid file in its run dir)']


def restore(lab, ctx, say, gw):
    _gateway_event(lab, ctx, lambda: gateway_failover.repair(lab, 'crash'),
                   'gw1', 20)
    return [f'ovs-vswitchd of {gw} started again']


def migrate(lab, ctx, say, server, vm):
    plan, ctl = lab.plan, lab.ctl
    n = plan['nodes']
    mac, ip = n[server]['mac'], n[server]['ip']
    vtep, port = p2v_migration.server_port(plan, server)
    ls = n[server]['ls']
    ls_id = next(x['id'] for x in ctl.get('/logical-switches')
                 if x['name'] == ls)
    conn = next(c for c in ctl.get('/gateway-connections')
                if (c['gateway'], c['port']) == (vtep, port))
    lab.node(server).ns_run(['ip', 'link', 'set',
                             n[server]['intfs'][0]['name'], 'down'])
    s1, _ = ctl.request('POST', f'/logical-switches/{ls_id}/ports',
                        {'attachment': vm, 'mac': mac, 'ip': ip})
    hv = n[vm]['intfs'][0]['peer']
    vm_port = next(i['ofport'] for i in n[hv]['intfs'] if i['peer'] == vm)
    # the VM announces itself once its vNIC is on the logical switch (a
    # gratuitous ARP sent before its hypervisor is programmed is dropped)
    attached = harness.until(lambda: 'tun_id' in lab.node(hv).ns_run(
        ['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', 'br-int',
         f'table=0,in_port={vm_port}']).stdout, 10, 0.02)
    lab.node(vm).ns_run(['ip', 'neigh', 'flush', 'dev', 'eth0'])
    lab.node(vm).ns_run(['arping', '-U', '-c', '1', '-I', 'eth0',
                         wire.addr(ip)])
    s2, _ = ctl.request('DELETE', f"/gateway-connections/{conn['id']}")
    want = {intent.tunnel_port(n, hv)}
    took = harness.until(lambda: p2v_migration.edge_outputs(
        lab, 'hv1', mac) == want, 15, 0.05)
    ctx['headline'] = (f'hv1 points the MAC at {hv} {round(took * 1000)} ms '
                       'after the POST' if took is not None else
                       f'hv1 NOT pointing at {hv} after 15 s')
    return [f'{server}: link down (powered off)',
            f'POST /logical-switches/{ls_id}/ports {{attachment: {vm}, '
            f'mac: {mac}, ip: {ip}}} -> {s1}',
            f'{hv} programmed {vm}\'s port '
            + (f'{round(attached * 1000)} ms after the POST; '
               if attached is not None else 'NOT within 10 s; ')
            + f'then {vm}$ arping -U -c 1 {wire.addr(ip)} (gratuitous ARP)',
            f"DELETE /gateway-connections/{conn['id']} ({vtep} {port}) "
            f'-> {s2}',
            'hv1 points the MAC at ' + (f'{hv} {round(took * 1000)} ms after '
                                        'the POST' if took is not None else
                                        f'NOT at {hv} after 15 s')]


# the dfw demo's steering: ICMP to group web, at web's ports, through
# the hypervisor's service VM (nothing passes while it is down)
STEER_RULE = {'name': 'web-icmp', 'priority': 10, 'protocol': 'icmp',
              'destination': {'group': 'web'},
              'applied_to': {'group': 'web'}, 'on_failure': 'fail-closed'}


def steer_ready(lab, ctx, src, dst, hv):
    """Before the captures: a service VM on `hv` (registered with the
    controller) and a steering rule sending ICMP to group web through it;
    its counters noted."""
    from topologies.servicevm import ServiceVM
    if 'svm' not in ctx:
        ctx['svm'] = ServiceVM(lab, hv).start(lab.ctl)
    status, body = lab.ctl.request('POST', '/steering-rules', STEER_RULE)
    if status != 201:
        return [f'POST /steering-rules: {status} {body}']
    time.sleep(1.0)                          # every hypervisor pushed
    ctx['svm_before'] = ctx['svm'].counters()
    return []


def steer(lab, ctx, say, src, dst, hv):
    return ping(lab, ctx, say, src, dst)


ACTIONS = {'ping': ping, 'probe': probe, 'arp': arp, 'crash': crash, 'restore': restore,
           'migrate': migrate, 'steer': steer}


PREPARE = {'ping': warm, 'arp': warm_arp, 'steer': steer_ready}


def prepare(lab, what, ctx):
    """Run before the act's captures start -> notes (problems)."""
    fn = PREPARE.get(what[0])
    return fn(lab, ctx, *what[1:]) if fn else []


def do(lab, what, ctx, say):
    return ACTIONS[what[0]](lab, ctx, say, *what[1:])


def _vtep_ctl(lab, vtep, *args):
    db = f'--db={lab.db(vtep)}'
    return subprocess.run(['vtep-ctl', db, *args], capture_output=True,
                          text=True, timeout=10).stdout


def evidence(lab, ev, ctx):
    """(lines, held) for one evidence item of a step."""
    plan = lab.plan
    kind = ev[0]
    if kind == 'flows':
        node, host = ev[1], ev[2]
        mac = plan['nodes'][host]['mac']
        dump = lab.node(node).ns_run(['ovs-ofctl', '-O', 'OpenFlow13',
                                      'dump-flows', 'br-int',
                                      f'dl_dst={mac}']).stdout
        lines = ['  ' + f for f in readable.flows(plan, node, dump)]
        return [f'{node} br-int flows for {host} ({mac}):'] + (
            lines or ['  none']), bool(lines)
    if kind in ('vtep-local', 'vtep-remote'):
        vtep, host = ev[1], ev[2]
        mac, ls = plan['nodes'][host]['mac'], plan['nodes'][host]['ls']
        cmd = 'list-local-macs' if kind == 'vtep-local' else \
            'list-remote-macs'
        t = time.time()
        got = harness.until(lambda: mac in _vtep_ctl(lab, vtep, cmd, ls),
                            10, 0.1)
        lines = [ln.strip() for ln in _vtep_ctl(lab, vtep, cmd, ls)
                 .splitlines() if mac in ln]
        head = f'{vtep}$ vtep-ctl {cmd} {ls}:'
        if got is None:
            return [head, f'  {mac} absent after {time.time() - t:.1f} s'], \
                False
        return [head] + ['  ' + ln for ln in lines], True
    if kind == 'gateways':
        lines = []
        for gw in ('gw1', 'gw2'):
            state = gateway_failover.agent_state(lab, gw) or '?'
            mpids = lab.node(gw).ns_run(
                ['ovs-vsctl', '--timeout=5', 'get', 'interface', 'seg1',
                 'cfm_mpid', 'cfm_remote_mpids']).stdout.split()
            lines.append(f'{gw}: agent {state}; CFM ID '
                         f'{mpids[0] if mpids else "?"}, hears '
                         f'{mpids[1] if len(mpids) > 1 else "?"}')
        return lines, gateway_failover.active(lab) != []
    if kind == 'takeover':
        tk = ctx.get('takeover') or {}
        events = gateway_failover.agent_events(lab, ev[1],
                                               tk.get('since', 0))
        lines = [f"{ev[1]}'s agent: " + ', '.join(
            f'{s} at +{(t - tk["since"]) * 1000:.0f} ms' for t, s in events)
            if events else f"{ev[1]}'s agent logged no change"]
        lines.append(f"{ev[1]} the only active gateway "
                     + (f"{tk['ms']} ms after the event" if tk.get('ms')
                        is not None else 'NOT reached'))
        return lines, tk.get('ms') is not None
    if kind == 'firewall':
        node, vm, rule, way = ev[1:]
        view = lab.ctl.get(f'/transport-nodes/{node}/firewall')
        port = next((q for q in view['ports'] if q['vm'] == vm), None)
        mine = dict(view, ports=[port] if port else [])
        lines = [f'{node}$ dfw (GET /transport-nodes/{node}/firewall), '
                 f'{vm}:'] + ['  ' + ln for ln in dfw_mod.view_text(mine)]
        hit = next((r for r in (port or {}).get('rules', [])
                    if r['name'] == rule), None)
        return lines, bool(hit and hit['packets'] and
                           hit['packets'][way] > 0)
    if kind == 'steered':
        svm = ctx.get('svm')
        if svm is None:
            return ['no service VM was started'], False
        before, after = ctx.get('svm_before', {}), svm.counters()
        seen = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        lines = [f"{svm.name}$ nft list table inet svc (its rules' "
                 'counters, packets during this act):'] + [
            f'  {k}: {v}' for k, v in seen.items()]
        ports = lab.node(ev[1]).ns_run(['ovs-ofctl', 'dump-ports', 'br-int',
                                        'svc-in']).stdout.strip().splitlines()
        lines += [f'{ev[1]}$ ovs-ofctl dump-ports br-int svc-in:'] + [
            '  ' + ln.strip() for ln in ports[1:]]
        return lines, seen.get('allow', 0) + seen.get('established', 0) > 0
    raise ValueError(f'unknown evidence {ev!r}')
