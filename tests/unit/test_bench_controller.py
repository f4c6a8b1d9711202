"""bench controller's pure parts: the labs it builds and its summary."""
from scenarios import bench_controller as bc
from topologies import expand


def test_every_hypervisor_has_two_vms_of_the_one_logical_switch():
    for n in (1, 10, 100):
        plan = expand.expand(bc.lab_spec(n))
        hvs = bc.hypervisors(plan)
        assert len(hvs) == n
        on = {}
        for name, p in plan['nodes'].items():
            if p['role'] == 'vm':
                assert p['ls'] == 'ls1'
                hv = p['intfs'][0]['peer']
                on[hv] = on.get(hv, 0) + 1
        assert on == {hv: 2 for hv in hvs}


def test_summary_to_all_and_per_hypervisor():
    recs = [bc.figures('api', 2, {'hv1': 5.0, 'hv2': 7.0}, 4),
            bc.figures('api', 2, {'hv1': 6.0, 'hv2': 9.0}, 4),
            bc.figures('vif', 2, {'hv1': 8.0, 'hv2': 8.5}, 6)]
    s = bc.summarize(recs)
    assert s['api to 2']['to all'] == {'n': 2, 'p50': 7.0, 'p95': 9.0,
                                       'max': 9.0}
    assert s['api to 2']['per hypervisor']['n'] == 4
    assert s['vif to 2']['messages per change']['p50'] == 6


def test_when_the_controller_had_sent_is_kept_beside_the_acks():
    rec = bc.figures('api', 2, {'hv1': 5.0, 'hv2': 9.0}, 4,
                     {'hv1': 1.5, 'hv2': 2.5})
    assert rec['sent_all_ms'] == 2.5 and rec['to_all_ms'] == 9.0
    s = bc.summarize([rec])
    assert s['api to 2']['sent to all']['p50'] == 2.5
    assert bc.summarize([bc.figures('api', 1, {'hv1': 1.0}, 2)])[
        'api to 1']['sent to all'] == {}


def test_the_first_change_waits_for_sessions_up_long_enough():
    status = {'switches': {'hv1': {'connected': True, 'since': 100.0},
                           'hv2': {'connected': True, 'since': 104.0}}}
    assert bc.sessions_stable(status, ['hv1', 'hv2'], 110.0)
    assert not bc.sessions_stable(status, ['hv1', 'hv2'], 107.0)
    status['switches']['hv2']['connected'] = False
    assert not bc.sessions_stable(status, ['hv1', 'hv2'], 120.0)
    assert not bc.sessions_stable(status, ['hv1', 'hv3'], 120.0)
