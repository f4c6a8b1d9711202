"""Software L2 gateways on one segment elect as the whitepaper says: the
lower CFM ID is active; when it dies the other takes over, on its own, with
the controller down; a VM keeps reaching the physical server."""
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


def test_lower_cfm_id_is_active(lab):
    assert until(lambda: (state(lab, 'gw1'), state(lab, 'gw2')) ==
                 ('active', 'standby'), 5) is not None


def _log(lab, gw, since):
    """[(epoch, words)] of gw's agent log lines after `since`."""
    from scenarios.gateway_failover import agent_log
    return agent_log(lab, gw, since)


def _first(events, words):
    return next((t for t, w in events if w[:len(words)] == words), None)


def test_a_cut_cable_is_signalled_and_the_new_active_announces_the_vms(lab):
    """gw1's agent sees its carrier go (OpenFlow port status) and tells gw2
    (a yield notice); gw2 takes over and sends a RARP per VM MAC into the
    segment. Once the cable is back, gw1 claims, and gw2 stands down
    before gw1 forwards again (break before make)."""
    import time
    assert until(lambda: (state(lab, 'gw1'), state(lab, 'gw2')) ==
                 ('active', 'standby'), 5) is not None
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
                 ('active', 'standby'), 5) is not None
    g1, g2 = _log(lab, 'gw1', t_up), _log(lab, 'gw2', t_up)
    assert _first(g2, ['notice', 'claim']), g2
    standby, active = _first(g2, ['seg1', 'standby']), \
        _first(g1, ['seg1', 'active'])
    assert standby and active and standby <= active, (g1, g2)


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
