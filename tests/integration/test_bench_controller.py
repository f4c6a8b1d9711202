"""CI's short controller push benchmark: 1 and 10 hypervisors, 3 changes
of each kind. Each change must be confirmed by every hypervisor (barrier
replies the controller recorded) and cost OpenFlow messages; the latency
target is read from the result (a benchmark), not asserted here."""
from .conftest import last_json, run_py


def test_short_controller_push_benchmark():
    r = run_py('bench', 'controller', '--sizes', '1,10', '--trials', '3',
               '--json', timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = last_json(r.stdout)['metrics']
    kinds = {(x['kind'], x['hypervisors']) for x in m['records']}
    assert kinds == {('api', 1), ('api', 10), ('vif', 10)}
    for x in m['records']:
        assert len(x['per_node_ms']) == x['hypervisors'], x
        assert all(0 < ms < 5000 for ms in x['per_node_ms']), x
        assert x['msgs'] >= x['hypervisors'], x
    assert set(m['summary']) == {'api to 1', 'api to 10', 'vif to 10'}
