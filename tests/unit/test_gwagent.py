"""The software gateway election (pure): CFM evidence, the agents'
notices (yield / claim / release / deny), and what the agent derives from
br-int's flows."""
from devices.gwagent.election import (
    ACTIVE, CLAIM, DENY, RELEASE, STANDBY, YIELD, Election, announce_list,
    notice, parse_notice, rarp_frame, restore_id)


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


def test_takeover_at_once_when_cfm_loses_the_lower_gateway():
    e = Election()
    assert e.update(0.0, 2, [1], 100) == STANDBY
    # CFM has already waited 3.5 intervals before dropping the lower ID
    assert e.update(3.0, 2, [], 100) == ACTIVE
    assert e.wake_in(3.0, 100) is None


def test_a_yield_notice_is_a_takeover_without_waiting_for_cfm():
    e = Election(peers=1)
    e.update(0.0, 2, [1], 10)
    assert e.on_notice(5.0, YIELD, 1, 10) is None
    # CFM still lists 1 (its 3.5 intervals are not over): it no longer counts
    assert e.update(5.001, 2, [1], 10) == ACTIVE
    # once CFM lost it, a CCM heard afresh counts again
    assert e.update(5.05, 2, [], 10) == ACTIVE
    assert e.update(9.0, 2, [1], 10) == STANDBY


def test_failback_handshake_is_break_before_make():
    gw1, gw2 = Election(peers=1), Election(peers=1)
    gw2.update(0.0, 2, [], 10)
    assert gw2.update(1.0, 2, [], 10) == ACTIVE
    # gw1 is back and ready: it outranks all it hears, so it claims
    assert gw1.update(2.0, 1, [2], 10) == STANDBY and gw1.wants_to_claim()
    assert gw2.on_notice(2.001, CLAIM, 1, 10) == RELEASE
    # the claim counts as hearing 1 (CFM will later): gw2 stands down, and
    # only once its flows are gone does the agent send the release
    assert gw2.update(2.001, 2, [], 10) == STANDBY
    assert gw1.update(2.002, 1, [2], 10) == STANDBY      # no release yet
    gw1.on_notice(2.003, RELEASE, 2, 10)
    assert gw1.update(2.003, 1, [2], 10) == ACTIVE       # no 40 ms hold
    assert not gw1.wants_to_claim()
    # the claim counts long enough for OVS to publish the CFM ID it hears
    assert gw2.update(2.5, 2, [], 10) == STANDBY
    assert gw2.update(2.6, 2, [1], 10) == STANDBY


def test_a_claim_from_a_higher_id_is_denied_and_the_denial_outranks():
    gw1, gw3 = Election(peers=1), Election(peers=1)
    gw1.update(0.0, 1, [], 10)
    assert gw1.update(1.0, 1, [], 10) == ACTIVE
    assert gw1.on_notice(1.0, CLAIM, 3, 10) == DENY
    assert gw1.state == ACTIVE
    gw3.update(1.0, 3, [], 10)
    gw3.on_notice(1.001, DENY, 1, 10)
    assert gw3.update(1.1, 3, [], 10) == STANDBY        # before CFM hears 1


def test_a_claimer_nobody_answers_waits_for_cfm_listening_time():
    e = Election(peers=1)
    assert e.update(0.0, 1, [], 10) == STANDBY
    assert e.update(0.039, 1, [], 10) == STANDBY
    assert e.update(0.04, 1, [], 10) == ACTIVE


def test_not_eligible_means_standby_and_listening_again():
    e = Election()
    e.update(0.0, 1, [], 100)
    assert e.update(1.0, 1, [], 100) == ACTIVE
    assert e.update(1.1, 1, [], 100, eligible=False) == STANDBY   # cable cut
    assert e.update(5.0, 1, [], 100) == STANDBY      # hold starts again
    assert e.update(5.4, 1, [], 100) == ACTIVE
    assert e.update(6.0, None, [], 100) == STANDBY   # ID withheld


def test_a_standby_that_hears_a_lower_id_sleeps_until_news():
    """No timer while outranked: only news can change the state (a zero
    timeout here once made the agent spin a core)."""
    e = Election()
    e.update(0.0, 2, [1], 100)
    assert e.wake_in(0.0, 100) is None
    assert e.wake_in(9.0, 100) is None


def test_notices_on_the_wire_and_garbage():
    data = notice(CLAIM, 9, 'seg1', 3)
    assert parse_notice(data, 'seg1') == (CLAIM, 9, 3)
    assert parse_notice(data, 'seg2') is None           # another segment
    for junk in (b'', b'{', b'[1]', b'{"v": 1, "kind": "x", "id": 1}',
                 b'{"v": 1, "kind": "claim", "id": "9", "seg": "seg1"}'):
        assert parse_notice(junk, 'seg1') is None


def test_withheld_id_returns_unless_the_controller_set_one_since():
    assert restore_id(1, None) == 1
    assert restore_id(1, 3) is None
    assert restore_id(None, None) is None


def test_rarp_frames_untagged_and_tagged():
    f = rarp_frame('02:00:00:02:00:11')
    assert f[:6] == b'\xff' * 6 and f[6:12] == bytes.fromhex('020000020011')
    assert f[12:14] == b'\x80\x35' and len(f) == 60
    t = rarp_frame('02:00:00:02:00:11', 100)
    assert t[12:16] == b'\x81\x00\x00\x64' and t[16:18] == b'\x80\x35'


def test_vm_macs_to_announce_come_from_the_gateway_ports_logical_switches():
    flows = [
        {'table': 0, 'priority': 100, 'match': {'in_port': 2, 'vlan_vid': 100},
         'vni': 5001},
        {'table': 0, 'priority': 100, 'match': {'in_port': 1010}, 'vni': None},
        {'table': 1, 'priority': 100, 'match': {
            'tunnel_id': 5001, 'metadata': 0, 'eth_dst': 'aa:00:00:00:00:01'}},
        {'table': 1, 'priority': 90, 'match': {     # split horizon: not it
            'tunnel_id': 5001, 'metadata': 1, 'eth_dst': 'aa:00:00:00:00:01'}},
        {'table': 1, 'priority': 100, 'match': {    # another switch
            'tunnel_id': 5002, 'metadata': 0, 'eth_dst': 'aa:00:00:00:00:02'}}]
    assert announce_list(flows, 2) == ([('aa:00:00:00:00:01', 100)], True)
    assert announce_list(flows[1:], 2) == ([], False)    # not programmed


def test_heartbeats_keep_a_gateway_cfm_lost_from_being_taken_over():
    """A busy box delays CCMs past CFM's 3.5 intervals: the standby must
    not take over from a gateway whose agent still says it forwards."""
    from devices.gwagent.election import HEARTBEAT
    e = Election(peers=1)
    e.update(0.0, 2, [1], 10)
    e.on_notice(1.0, HEARTBEAT, 1, 10)
    assert e.update(1.01, 2, [], 10) == STANDBY      # CFM lost 1: beats on
    assert e.wake_in(1.01, 10) > 0                   # until they time out
    e.on_notice(1.02, HEARTBEAT, 1, 10)
    assert e.update(1.05, 2, [], 10) == STANDBY
    assert e.update(1.056, 2, [], 10) == ACTIVE      # 35 ms without either
    # a yield wins over heartbeats still in flight
    e2 = Election(peers=1)
    e2.update(0.0, 2, [1], 10)
    e2.on_notice(1.0, HEARTBEAT, 1, 10)
    e2.on_notice(1.001, YIELD, 1, 10)
    e2.on_notice(1.002, HEARTBEAT, 1, 10)
    assert e2.update(1.003, 2, [1], 10) == ACTIVE
