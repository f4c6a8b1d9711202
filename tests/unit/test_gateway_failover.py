"""gateway-failover's statistics (pure)."""
from scenarios import gateway_failover as gf


def test_nearest_rank_percentiles():
    vals = list(range(1, 21))            # 1..20
    assert gf.percentile(vals, 50) == 10
    assert gf.percentile(vals, 95) == 19
    assert gf.percentile([7], 95) == 7


def test_summary_per_fault_kind_and_direction():
    trials = [{'fault': 'crash', 'outage_ms': {'vm->server': 50.0,
                                                'server->vm': 60.0}},
              {'fault': 'crash', 'outage_ms': {'vm->server': 70.0,
                                                'server->vm': 40.0}},
              {'fault': 'link', 'outage_ms': {'vm->server': 5.0,
                                               'server->vm': 6.0}}]
    s = gf.summarize(trials)
    assert s['crash']['vm->server'] == {'n': 2, 'p50': 50.0, 'p95': 70.0,
                                        'max': 70.0}
    assert s['link']['server->vm']['max'] == 6.0
