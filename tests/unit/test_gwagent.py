"""The software gateway election (pure state machine) and how the agent
reads OVSDB monitor rows."""
from controllers.gwagent import ACTIVE, STANDBY, Election, parse_row


def test_lowest_id_becomes_active_after_four_intervals():
    e = Election()
    assert e.update(0.0, 1, [], 100) == STANDBY      # just started: listen
    assert abs(e.wake_in(0.0, 100) - 0.4) < 1e-6
    assert e.update(0.39, 1, [], 100) == STANDBY
    assert e.update(0.40, 1, [2], 100) == ACTIVE     # only higher IDs heard


def test_hearing_a_lower_id_means_standby_at_once():
    e = Election()
    e.update(0.0, 2, [], 100)
    assert e.update(1.0, 2, [], 100) == ACTIVE
    assert e.update(1.1, 2, [1], 100) == STANDBY     # preemptive failback
    assert e.update(5.0, 2, [1, 3], 100) == STANDBY


def test_takeover_at_once_when_the_lower_gateway_disappears():
    e = Election()
    assert e.update(0.0, 2, [1], 100) == STANDBY
    # CFM has already waited 3.5 intervals before dropping the lower ID
    assert e.update(3.0, 2, [], 100) == ACTIVE
    assert e.wake_in(3.0, 100) is None


def test_no_id_no_election():
    e = Election()
    assert e.update(0.0, None, [], 100) == STANDBY
    assert e.update(9.0, None, [], 100) == STANDBY


def test_parse_monitor_rows():
    row = {'name': 'seg1', 'cfm_mpid': 11, 'cfm_remote_mpids': 12,
           'other_config': ['map', [['cfm_interval', '100']]]}
    assert parse_row(row) == (11, [12], 100)
    row = {'name': 'seg1', 'cfm_mpid': ['set', []],
           'cfm_remote_mpids': ['set', [14, 12]], 'other_config': ['map', []]}
    assert parse_row(row) == (None, [12, 14], 1000)
