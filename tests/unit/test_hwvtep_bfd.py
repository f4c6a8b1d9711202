"""BFD to the service nodes for a switch of one or more members: who runs
the sessions, what their status means, what the switch reports."""
from devices.hwvtep import bfd

SN1, SN2 = '10.0.0.1', '10.0.0.2'
UP = {'forwarding': 'true', 'state': 'up'}
DOWN = {'forwarding': 'false', 'state': 'down'}


def test_the_first_qualifying_member_runs_them_and_keeps_them():
    c = bfd.choose(None, ['leaf1', 'leaf2'], [], None, now=0)
    assert c == bfd.Choice('leaf1', True, None)
    # leaf1 came back after leaf2 took over: the sessions stay on leaf2
    c = bfd.choose('leaf2', ['leaf1', 'leaf2'], ['leaf2'], None, now=5)
    assert c.member == 'leaf2' and c.trusted


def test_a_member_that_loses_its_uplinks_is_not_believed_then_replaced():
    c = bfd.choose('leaf1', ['leaf2'], ['leaf1'], None, now=10.0)
    assert c == bfd.Choice('leaf1', False, 10.0)        # not at once
    c = bfd.choose('leaf1', ['leaf2'], ['leaf1'], c.since, now=11.0)
    assert c == bfd.Choice('leaf1', False, 10.0)
    c = bfd.choose('leaf1', ['leaf2'], ['leaf1'], c.since, now=12.0)
    assert c == bfd.Choice('leaf2', True, None)        # moved


def test_with_no_member_left_the_sessions_stay_unbelieved():
    c = bfd.choose('vtep1', [], ['vtep1'], 0.0, now=60.0)
    assert c == bfd.Choice('vtep1', False, 0.0)
    assert bfd.choose('vtep1', ['vtep1'], ['vtep1'], 0.0, now=61.0) == \
        bfd.Choice('vtep1', True, None)


def test_a_restarted_device_keeps_the_member_that_already_runs_them():
    c = bfd.choose(None, ['leaf1', 'leaf2'], ['leaf2'], None, now=0)
    assert c.member == 'leaf2'


def test_a_service_node_is_dead_only_after_its_session_was_up():
    live, seen = bfd.liveness({}, set(), {SN1: DOWN, SN2: UP}, True)
    assert live == {SN2: True} and seen == {SN2}       # SN1: starting up
    live, seen = bfd.liveness(live, seen, {SN1: UP, SN2: DOWN}, True)
    assert live == {SN1: True, SN2: False}
    # an unbelieved member's view changes nothing
    assert bfd.liveness(live, seen, {SN1: DOWN, SN2: DOWN}, False) == (
        live, seen)


def test_the_nvc_enables_bfd_per_tunnel_and_the_switch_reports_it():
    config = {'bfd': {SN1: {'enable': 'true', 'min_rx': '100',
                            'min_tx': '100'},
                      SN2: {}, '10.9.9.9': {'enable': 'true'}},
              'bfd_remote': {SN1: {'bfd_dst_ip': '169.254.1.1'}}}
    assert bfd.wanted(config, {SN1, SN2}) == {SN1: {
        'enable': 'true', 'min_rx': '100', 'min_tx': '100',
        'bfd_dst_ip': '169.254.1.1'}}
    assert bfd.bfd_status({}, False) == {}
    assert bfd.bfd_status({}, True) == {'enabled': 'true'}
    assert bfd.bfd_status({**UP, 'flap_count': '1'}, True) == {
        'enabled': 'true', 'forwarding': 'true', 'state': 'up'}
