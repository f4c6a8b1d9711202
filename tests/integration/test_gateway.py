"""Software L2 gateways on one segment elect as the whitepaper says: the
lower CFM ID is active; when it dies the other takes over, on its own, with
the controller down; a VM keeps reaching the physical server."""
import re

import pytest

from controllers import provision
from controllers.service import Controller
from scenarios.harness import until
from topologies import expand, labs
from topologies.lab import Lab


def state(lab, gw):
    return lab.node(gw).ns_run(['ovs-vsctl', 'get', 'bridge', 'br-seg1',
                                'external_ids:l2gw-state']).stdout.strip()


@pytest.fixture(scope='module')
def lab():
    plan = expand.expand(labs.resolve('clos'))
    with Lab(plan) as lab:
        ctl = Controller(plan).start()
        try:
            provision.provision(ctl, plan)
            lab.ctl = ctl
            yield lab
        finally:
            ctl.stop()


# settling after the lab and the controller start, or after a cable is
# back (the agents get their gateway connection, hear each other's CFM,
# elect): not a figure (scenario gateway-failover measures it), so roomy
# for a loaded CI box (it once took more than 5 s there)
SETTLE_S = 20


def test_lower_cfm_id_is_active(lab):
    assert until(lambda: (state(lab, 'gw1'), state(lab, 'gw2')) ==
                 ('active', 'standby'), SETTLE_S) is not None


def _log(lab, gw, since):
    """[(epoch, words)] of gw's agent log lines after `since`."""
    from scenarios.gateway_failover import agent_log
    return agent_log(lab, gw, since)


def _first(events, words):
    return next((t for t, w in events if w[:len(words)] == words), None)


def test_a_cut_cable_is_signalled_and_the_new_active_announces_the_vms(lab):
    """gw1's agent sees its carrier go (a kernel link event) and tells gw2
    (a yield notice); gw2 takes over and sends a RARP per VM MAC into the
    segment. Once the cable is back, gw1 claims, and gw2 stands down
    before gw1 forwards again (break before make)."""
    import time
    assert until(lambda: (state(lab, 'gw1'), state(lab, 'gw2')) ==
                 ('active', 'standby'), SETTLE_S) is not None
    t_cut = time.time()
    lab.node('gw1').ns_run(['ip', 'link', 'set', 'seg1', 'down'], check=True)
    assert until(lambda: state(lab, 'gw2') == 'active', 3) is not None
    until(lambda: _first(_log(lab, 'gw2', t_cut), ['notice', 'yield']), 2)
    g1, g2 = _log(lab, 'gw1', t_cut), _log(lab, 'gw2', t_cut)
    assert _first(g1, ['seg1', 'carrier', 'down']), g1
    assert _first(g2, ['notice', 'yield']), g2
    assert _first(g2, ['seg1', 'announced']), g2          # the RARPs
    time.sleep(2.5)                   # link events spaced (docs/platform.md)
    t_up = time.time()
    lab.node('gw1').ns_run(['ip', 'link', 'set', 'seg1', 'up'], check=True)
    assert until(lambda: (state(lab, 'gw1'), state(lab, 'gw2')) ==
                 ('active', 'standby'), SETTLE_S) is not None
    g1, g2 = _log(lab, 'gw1', t_up), _log(lab, 'gw2', t_up)
    assert _first(g2, ['notice', 'claim']), g2
    standby, active = _first(g2, ['seg1', 'standby']), \
        _first(g1, ['seg1', 'active'])
    assert standby and active and standby <= active, (g1, g2)


def _reported(lab, gw):
    return {m['mac'] for g in lab.ctl.get('/l2-gateways')
            if g['name'] == gw for m in g['macs']}


def _to_mac(lab, hv, mac):
    """The output actions of hv's unicast flow(s) towards `mac`."""
    out = lab.node(hv).ns_run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows',
                               'br-int', f'dl_dst={mac}']).stdout
    return [line.split('actions=')[1] for line in out.splitlines()
            if 'actions=' in line and re.search(r'metadata=0[,/ ]', line)]


def test_gateways_report_the_servers_they_learn_and_the_mac_follows(lab):
    """The active gateway learns srv1's MAC on its cable and publishes it;
    the controller places it behind that gateway (GET /l2-gateways) and
    the VM's hypervisor sends unicast to srv1 to it and to gw2, the other
    gateway of the segment (which drops it while standing by), not
    through a service node. When gw2 takes over (gw1's cable cut), the
    MAC moves to gw2 with the first frames from srv1 that arrive there."""
    import time
    from controllers import intent
    plan = lab.plan
    srv = plan['nodes']['srv1']['ip'].split('/')[0]
    srv_mac = plan['nodes']['srv1']['mac']
    vm = next(n for n, p in plan['nodes'].items()
              if p['role'] == 'vm' and p.get('ls') == 'ls1')
    hv = plan['nodes'][vm]['intfs'][0]['peer']
    port = {gw: f"output:{intent.TUNNEL_BASE + plan['nodes'][gw]['index']}"
            for gw in ('gw1', 'gw2')}
    both = {'gw1': f"{port['gw1']},{port['gw2']}",
            'gw2': f"{port['gw2']},{port['gw1']}"}
    assert until(lambda: (state(lab, 'gw1'), state(lab, 'gw2')) ==
                 ('active', 'standby'), 10) is not None

    def ping():
        return lab.node(vm).ns_run(['ping', '-c', '3', '-i', '0.2', '-W',
                                    '1', srv])
    assert until(lambda: ping().returncode == 0, 15) is not None
    assert until(lambda: srv_mac in _reported(lab, 'gw1'), 5), \
        lab.ctl.get('/l2-gateways')
    assert srv_mac not in _reported(lab, 'gw2')
    assert until(lambda: _to_mac(lab, hv, srv_mac) == [both['gw1']], 5), \
        lab.node(hv).ns_run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows',
                             'br-int', f'dl_dst={srv_mac}']).stdout
    lab.node('gw1').ns_run(['ip', 'link', 'set', 'seg1', 'down'], check=True)
    try:
        assert until(lambda: state(lab, 'gw2') == 'active', 3) is not None
        assert until(lambda: ping().returncode == 0, 10) is not None
        assert until(lambda: srv_mac in _reported(lab, 'gw2'), 5), \
            lab.ctl.get('/l2-gateways')
        assert srv_mac not in _reported(lab, 'gw1')
        assert until(lambda: _to_mac(lab, hv, srv_mac) == [both['gw2']],
                     5), _to_mac(lab, hv, srv_mac)
    finally:
        time.sleep(2.5)               # link events spaced (platform.md)
        lab.node('gw1').ns_run(['ip', 'link', 'set', 'seg1', 'up'],
                               check=True)
    assert until(lambda: (state(lab, 'gw1'), state(lab, 'gw2')) ==
                 ('active', 'standby'), SETTLE_S) is not None


def test_standby_takes_over_with_the_controller_down(lab):
    plan = lab.plan
    srv = plan['nodes']['srv1']['ip'].split('/')[0]
    vm = next(n for n, p in plan['nodes'].items()
              if p['role'] == 'vm' and p.get('ls') == 'ls1')
    assert until(lambda: lab.node(vm).ns_run(
        ['ping', '-c', '1', '-W', '1', srv]).returncode == 0, 15) is not None
    lab.ctl.stop()                                   # headless from here
    with open(lab.node('gw1').run_dir + '/ovs-vswitchd.pid') as f:
        pid = int(f.read())
    lab.node('gw1').ns_run(['kill', '-9', str(pid)])  # silent crash
    assert until(lambda: state(lab, 'gw2') == 'active', 3) is not None
    # the server answers through gw2 (ARP re-resolves via the new gateway)
    ok = lab.node(vm).ns_run(['ping', '-c', '5', '-i', '0.3', '-W', '1',
                              srv])
    assert ' 0 received' not in ok.stdout, ok.stdout
