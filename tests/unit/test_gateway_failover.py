"""Failure-scenario statistics and gateway-failover's pure parts."""
from scenarios import gateway_failover as gf
from scenarios import stats
from scenarios.harness import TrialBar


def test_nearest_rank_percentiles():
    vals = list(range(1, 21))            # 1..20
    assert stats.percentile(vals, 50) == 10
    assert stats.percentile(vals, 95) == 19
    assert stats.percentile([7], 95) == 7


TRIALS = [{'fault': 'crash', 'outage_ms': {'vm->server': 50.0,
                                           'server->vm': 60.0},
           'failback_outage_ms': {'vm->server': 30.0, 'server->vm': 0.0}},
          {'fault': 'crash', 'outage_ms': {'vm->server': 70.0,
                                           'server->vm': 40.0}},
          {'fault': 'link', 'outage_ms': {'vm->server': 5.0,
                                          'server->vm': 6.0}}]


def test_summary_per_fault_kind_and_direction():
    s = stats.summarize(TRIALS)
    assert s['crash']['vm->server'] == {'n': 2, 'p50': 50.0, 'p95': 70.0,
                                        'max': 70.0}
    assert s['link']['server->vm']['max'] == 6.0
    back = stats.summarize(TRIALS, 'failback_outage_ms')
    assert back == {'crash': {'vm->server': stats.describe([30.0]),
                              'server->vm': stats.describe([0.0])}}


def test_targets_read_the_flat_summary():
    flat = stats.flat(stats.summarize(TRIALS))
    assert set(flat) == {'crash vm->server', 'crash server->vm',
                         'link vm->server', 'link server->vm'}
    t = stats.target(flat, 'crash vm->server', 'p95', 100)
    assert t == {'key': 'crash vm->server', 'stat': 'p95', 'limit_ms': 100,
                 'measured_ms': 70.0, 'met': True}
    assert not stats.target(flat, 'link vm->server', 'p95', 4)['met']
    missing = stats.target(flat, 'nothing', 'p95', 4)
    assert missing['measured_ms'] is None and not missing['met']


def test_stream_window_covers_cfm_detection():
    assert gf.window_s(10) == 2.58
    # 1,000 ms CFM: detection may take up to 7 s; the window must hold it
    assert gf.window_s(1000) > 1.2 + 7.0


def test_progress_bar_counts_trials():
    lines = []
    bar = TrialBar(4, lines.append, width=8)
    bar.step('a')
    bar.step('b')
    assert lines == ['  [##......] 1/4 a', '  [####....] 2/4 b']
