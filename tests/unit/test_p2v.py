"""p2v-migration's pure parts: what counts as the cut-over downtime, and
what is a stale entry."""
from scenarios import p2v_migration as p2v


def analysis(gaps):
    return {'gaps': gaps}


def test_downtime_is_the_longest_gap_from_the_cut_over_on():
    # epoch 100.0, cut at 102.0 = slot 2000 (1,000 slots per second)
    res = analysis([(300, 40), (2005, 120), (4000, 30)])
    assert p2v.cutover_gap(res, 100.0, 102.0) == {
        'downtime_ms': 120.0, 'downtime_seq_ms': 120.0, 'clean_before': True}
    times = [101.99, 102.12]
    assert p2v.cutover_gap(dict(res, times=times), 100.0, 102.0) == {
        'downtime_ms': 129.0, 'downtime_seq_ms': 120.0, 'clean_before': True,
        'sender_ok': True}
    # the new sender stalled as that silence ended: not a measurement
    stalled = dict(res, times=times, stalls=[(102.11, 102.13)])
    assert p2v.cutover_gap(stalled, 100.0, 102.0)['sender_ok'] is False
    # inside it, the stall shaped nothing
    inside = dict(res, times=times, stalls=[(102.05, 102.07)])
    assert p2v.cutover_gap(inside, 100.0, 102.0)['sender_ok'] is True
    # a stall long after it changes nothing
    later = dict(res, times=times, stalls=[(105.0, 105.02)])
    assert p2v.cutover_gap(later, 100.0, 102.0)['sender_ok'] is True


def test_losses_in_the_second_before_the_cut_make_the_trial_unclean():
    res = analysis([(1500, 60), (2001, 80)])
    assert p2v.cutover_gap(res, 100.0, 102.0)['clean_before'] is False
    # a gap already running well before the server went away is not
    # clean either; one starting just before it is a late sender's
    assert not p2v.cutover_gap(analysis([(1700, 400)]), 100.0,
                               102.0)['clean_before']
    assert p2v.cutover_gap(analysis([(1940, 200)]), 100.0, 102.0)[
        'downtime_ms'] == 200.0
    # start-up losses long before the cut do not matter
    assert p2v.cutover_gap(analysis([(0, 700)]), 100.0, 102.0)[
        'downtime_ms'] == 0.0


def test_downtime_on_the_receive_clock_sees_a_stalled_sender():
    # the new sender stalled 90 ms after the cut-over at 102.0, then caught
    # up in a burst: no sequence number is missing, yet nothing arrived
    times = [101.9 + i / 1000 for i in range(101)] + \
        [102.091 + i / 100000 for i in range(90)] + \
        [102.092 + i / 1000 for i in range(100)]
    res = {'gaps': [], 'times': times}
    cut = p2v.cutover_gap(res, 100.0, 102.0)
    assert cut['downtime_seq_ms'] == 0.0
    assert 89.0 <= cut['downtime_ms'] <= 90.0
    # silences well before the cut-over are not the cut-over's
    res = {'gaps': [], 'times': [100.0, 100.5] + times}
    assert p2v.cutover_gap(res, 100.0, 102.0)['downtime_ms'] < 91


def test_stale_entries_name_each_device_still_pointing_elsewhere():
    flows = {'hv1': {1003}, 'hv2': {1009}, 'hv3': {4}}
    expect = {'hv1': 1003, 'hv2': 1003, 'hv3': 4}
    vteps = {'vtep1': ('198.19.64.9', False), 'vtep2': ('198.19.64.9', True)}
    out = p2v.stale_entries(flows, vteps, expect, '198.19.64.9')
    assert out == ['hv2: MAC sent to ports [1009], expected 1003',
                   'vtep2: still lists the MAC in Ucast_Macs_Local']
    assert p2v.stale_entries({'hv1': {1003}}, {}, {'hv1': 1003}, 'x') == []
