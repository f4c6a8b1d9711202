"""ovsdbmon.Monitor never ends silently: an exited ovsdb-client is logged
and started again with a backoff; only stop() ends it. The client is faked
with short `sh -c` commands."""
import logging
import time

from controllers.ovsdbmon import Monitor

LINE = '{"headings": ["name", "bfd_status"], "data": [["vx1", ["map", []]]]}'


def wait_for(pred, timeout=1.5):
    end = time.monotonic() + timeout
    while time.monotonic() < end and not pred():
        time.sleep(0.01)
    return pred()


def monitor(script, on_rows=lambda rows: None):
    m = Monitor('unix:/nonexistent', 'Open_vSwitch', 'Interface',
                'name,bfd_status', on_rows)
    m.cmd = ['sh', '-c', script]
    return m


def test_an_exited_client_is_logged_and_restarted(caplog):
    calls = []

    def on_rows(rows):
        calls.append(rows)
        if len(calls) == 1:
            raise KeyError('a bug in the callback')   # the reader goes on

    m = monitor(f"echo '{LINE}'; echo '{LINE}'; echo oops >&2; exit 3",
                on_rows)
    with caplog.at_level(logging.ERROR, logger='nsx.ovsdbmon'):
        m.start()
        assert wait_for(lambda: len(calls) >= 3)    # 2 lines, then again
        m.stop()
    assert calls[0] == [{'name': 'vx1', 'bfd_status': ['map', []]}]
    assert 'exited with status 3 (oops); restarting in 0.5 s' in caplog.text
    assert 'update not handled' in caplog.text
    assert m.restarts >= 1


def test_the_backoff_doubles_up_to_its_limit_until_stopped():
    m = monitor('exit 1')                  # dies at once, says nothing
    delays = []

    def wait(delay):
        delays.append(delay)
        if len(delays) == 6:
            m.stop()
        return m._stop.is_set()
    m._stop.wait = wait
    m._run()                               # returns only once stopped
    assert delays == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_a_run_that_delivered_restarts_quickly_again():
    m = monitor(f"echo '{LINE}'; exit 0")
    delays = []

    def wait(delay):
        delays.append(delay)
        if len(delays) == 3:
            m.stop()
        return m._stop.is_set()
    m._stop.wait = wait
    m._run()
    assert delays == [0.5, 0.5, 0.5]


def test_stop_ends_a_running_client_without_a_restart():
    m = monitor(f"echo '{LINE}'; exec sleep 30")
    rows = []
    m.on_rows = rows.append
    m.start()
    assert wait_for(lambda: rows)
    m.stop()
    assert m.proc.wait(timeout=1) != 0        # terminated
    time.sleep(0.1)
    assert m.restarts == 0
