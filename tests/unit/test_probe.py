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


def test_receiver_stopped_by_sigterm_keeps_every_packet(tmp_path):
    """Streams stop receivers with SIGTERM once senders are done: what they
    received must be on disk (loopback only)."""
    import socket
    import subprocess
    import sys
    import time
    from scenarios import probe as probe_mod
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    out = tmp_path / 'recv.txt'
    rx = subprocess.Popen([sys.executable, probe_mod.__file__, 'recv',
                           '--port', str(port), '--out', str(out),
                           '--seconds', '30'])
    time.sleep(0.5)
    sent = probe_mod.send('127.0.0.1', port, 1000, 0.05)
    time.sleep(0.2)
    rx.terminate()
    assert rx.wait(5) == 0
    assert len(out.read_text().splitlines()) == sent == 50
    seqs, times = probe_mod.read(str(out))
    assert seqs == list(range(50))
    # kernel receive times: in order, within the 50 ms the stream lasted
    assert times == sorted(times) and 0.04 < times[-1] - times[0] < 1.0


def test_epoch_numbering_lets_a_later_sender_continue_the_stream():
    from scenarios.probe import first_seq
    assert first_seq(100.0, 100.0, 1000) == 0
    assert first_seq(100.0, 101.2505, 1000) == 1251
    assert first_seq(100.0, 99.0, 1000) == 0


def test_both_clocks_and_a_late_sender():
    # 10 packets at 1,000/s; the sender stalled 30 ms after packet 4 then
    # sent 5..9 at once: no number is missing, yet nothing arrived for 30 ms
    seqs = list(range(10))
    times = [0.000, 0.001, 0.002, 0.003, 0.004,
             0.034, 0.0341, 0.0342, 0.0343, 0.0344]
    r = probe.analyse(10, seqs, 1000, times, sender_lag_ms=29.0)
    assert r['outage_seq_ms'] == 0.0
    assert r['outage_rx_ms'] == r['outage_ms'] == 29.0
    assert r['sender_lag_ms'] == 29.0 and r['sender_ok'] is False
    r = probe.analyse(10, seqs, 1000, [i / 1000 for i in seqs], 0.3)
    assert (r['outage_ms'], r['sender_ok']) == (0.0, True)
    # with its stall times: only a stall during the outage disqualifies
    r = probe.analyse(10, seqs, 1000, times, 29.0, [(0.0045, 0.0335)])
    assert r['sender_ok'] is False and r['sender_stalls'] == 1
    r = probe.analyse(10, seqs, 1000, times, 29.0, [(0.2, 0.23)])
    assert r['sender_ok'] is True


def test_a_stall_inside_a_long_outage_changes_nothing():
    from scenarios.probe import stalled_during
    # silence from 1.0 to 3.0 s: a stall at 2.0 s did not shape it; one
    # across its end delayed the first arrival after it; one across its
    # start ended the arrivals before it early
    assert not stalled_during([(2.0, 2.02)], 1.0, 3.0)
    assert stalled_during([(2.99, 3.01)], 1.0, 3.0)
    assert stalled_during([(0.99, 1.003)], 1.0, 3.0)
    assert not stalled_during([], 1.0, 3.0)
    assert not stalled_during([(2.0, 2.02)], None, None)


def test_receive_clock_ignores_numbers_never_sent():
    r = probe.analyse(3, [0, 1, 2, 7], 1000, [0.0, 0.001, 0.012, 5.0], 0.0)
    assert r['outage_rx_ms'] == 10.0 and r['outage_seq_ms'] == 0.0


def test_sender_report_and_receiver_file(tmp_path):
    assert probe.sender_report('1000 2.500\n') == (1000, 2.5, [])
    assert probe.sender_report('1000\n') == (1000, None, [])
    assert probe.sender_report('') == (0, None, [])
    assert probe.sender_report('9 7.1\nstall 1.5 1.6\n') == (
        9, 7.1, [(1.5, 1.6)])
    f = tmp_path / 'r.txt'
    f.write_text('3 10.5\n4 10.6\n\n')
    assert probe.read(str(f)) == ([3, 4], [10.5, 10.6])


def test_kernel_receive_time_is_used_when_the_kernel_gives_one():
    import socket
    import struct
    anc = [(socket.SOL_SOCKET, probe.SO_TIMESTAMPNS,
            struct.pack('@qq', 1700000000, 250000000))]
    assert probe.kernel_time(anc) == 1700000000.25


def test_sending_from_python_leaves_the_caller_s_scheduling_alone():
    """send() imported and called in-process (as a test does) must not make
    the caller real-time: its children would inherit it."""
    import os
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    before = os.sched_getscheduler(0)
    probe.send('127.0.0.1', port, 1000, 0.01)
    assert os.sched_getscheduler(0) == before
    s.close()


def test_silences_are_the_gaps_of_at_least_min_s():
    assert probe.silences([3.0, 1.0, 1.05, 2.8], 0.5) == [(1.05, 2.8)]
    assert probe.silences([1.0, 1.1], 0.5) == [] == probe.silences([], 0.1)


def test_a_loss_count_stands_unless_the_sender_was_behind_at_the_fault():
    """A stalled sender catches up (every sequence number is sent), so a
    short stall leaves a window's loss count a measurement; a sender
    behind for much of the span around the fault or of the window, or
    nothing sent, does not."""
    kill = 1000.0
    ok = probe.loss_countable
    assert ok(6000, [], 6.0, [kill]) == (True, '')
    assert ok(6000, [(kill + 2.0, kill + 2.008)], 6.0, [kill])[0]
    # around the fault (+- 0.2 s): 40 ms behind of the 400 at most
    assert ok(6000, [(kill - 0.1, kill + 0.01)], 6.0, [kill]) == \
        (False, 'sender behind for 110 ms of the 400 ms around the fault')
    assert ok(6000, [(kill + 0.15, kill + 0.2)], 6.0, [kill])[0] is False
    assert ok(6000, [(kill, kill + 0.008)], 6.0, [kill])[0]   # a kill's blip
    assert ok(6000, [(kill + 1, kill + 1.7)], 6.0, [kill])[1].startswith(
        'sender behind for 0.70 s')
    assert ok(0, [], 6.0, [kill]) == (False, 'nothing sent')
    assert ok(6000, [(kill, kill + 0.01)], 6.0)[0]     # no fault instant
