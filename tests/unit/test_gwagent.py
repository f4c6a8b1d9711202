"""The software gateway election (pure state machine) and how the agent
reads OVSDB monitor rows."""
from devices.gwagent import (ACTIVE, STANDBY, Election, JsonLines,
                                 parse_row,
                                 restore_id, segment_flows)


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


def test_a_restarted_data_plane_listens_again_before_taking_over():
    e = Election()
    e.update(0.0, 1, [], 100)
    assert e.update(1.0, 1, [], 100) == ACTIVE
    e.restart()
    assert e.state == STANDBY
    assert e.update(5.0, 1, [], 100) == STANDBY      # hold starts again
    assert e.update(5.4, 1, [], 100) == ACTIVE


def test_only_an_active_gateway_bridges_cable_and_br_int():
    assert segment_flows(ACTIVE) == ['priority=10,in_port=1,actions=output:2',
                                     'priority=10,in_port=2,actions=output:1']
    assert segment_flows(STANDBY) == []


def test_withheld_id_returns_unless_the_controller_set_one_since():
    assert restore_id('1', None) == '1'
    assert restore_id('1', 3) is None
    assert restore_id('', None) is None


def test_a_standby_that_hears_a_lower_id_sleeps_until_news():
    """No timer while outranked: only an OVSDB update can change the state
    (a zero timeout here once made the agent spin a core)."""
    e = Election()
    e.update(0.0, 2, [1], 100)
    assert e.wake_in(0.0, 100) is None
    assert e.wake_in(9.0, 100) is None


def test_every_complete_line_of_a_read_is_delivered_at_once():
    lines = JsonLines()
    assert lines.feed(b'{"a": 1}\n{"b": 2}\n{"c"') == [{'a': 1}, {'b': 2}]
    assert lines.feed(b': 3}\nnot json\n') == [{'c': 3}]
    assert lines.feed(b'') == []
