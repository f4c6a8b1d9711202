"""Probe stream analysis: losses, duplicates, the outage (longest gap)."""
from scenarios import headless, probe


def test_no_loss():
    r = probe.analyse(5, [0, 1, 2, 3, 4], 1000)
    assert (r['lost'], r['outage_ms'], r['gaps']) == (0, 0.0, [])


def test_longest_run_of_missing_numbers_is_the_outage():
    r = probe.analyse(10, [0, 1, 4, 5, 6, 8, 9, 9], 1000)
    assert r['gaps'] == [(2, 2), (7, 1)]
    assert (r['lost'], r['duplicates'], r['longest_gap_packets'],
            r['outage_ms']) == (3, 1, 2, 2.0)


def test_loss_at_the_end_and_numbers_never_sent_are_ignored():
    r = probe.analyse(6, [0, 1, 2, 99], 500)
    assert r['gaps'] == [(3, 3)] and r['outage_ms'] == 6.0
    assert r['received'] == 3


def test_phases_follow_the_measured_instants():
    span = headless.phases(3, 60, 15, t_kill=103.2, t_restart=163.5,
                           t0=100.0)
    assert span == {'before': (0, 3200), 'headless': (3200, 63500),
                    'reconciling': (63500, 78000)}
