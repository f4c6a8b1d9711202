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


def test_epoch_numbering_lets_a_later_sender_continue_the_stream():
    from scenarios.probe import first_seq
    assert first_seq(100.0, 100.0, 1000) == 0
    assert first_seq(100.0, 101.2505, 1000) == 1251
    assert first_seq(100.0, 99.0, 1000) == 0
