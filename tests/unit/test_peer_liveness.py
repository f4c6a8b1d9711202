"""controllers/liveness.py: a peer is dead when its connection ends and
its port refuses, alive when it answers, unknown when silent; a real
listener and watcher on loopback learn a death (the listener closed) in
milliseconds and a return."""
import socket
import threading
import time

from controllers import liveness


def test_verdicts():
    assert liveness.verdict('ok') == 'alive'
    assert liveness.verdict('refused') == 'dead'
    assert liveness.verdict('silent') == 'unknown'


def test_attempt_names_the_outcome():
    def refuse(addr, timeout):
        raise ConnectionRefusedError()

    def hang(addr, timeout):
        raise socket.timeout('timed out')
    assert liveness.attempt('h', 1, connect=refuse) == ('refused', None)
    assert liveness.attempt('h', 1, connect=hang) == ('silent', None)


class Events:
    def __init__(self):
        self.seen, self.cond = [], threading.Condition()

    def add(self, what):
        def on(peer):
            with self.cond:
                self.seen.append((what, peer, time.monotonic()))
                self.cond.notify_all()
        return on

    def wait_for(self, what, timeout=5):
        with self.cond:
            self.cond.wait_for(lambda: any(w == what for w, *_ in self.seen),
                               timeout)
        return next((t for w, _, t in self.seen if w == what), None)


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_a_watcher_learns_a_death_at_once_and_a_return():
    port = free_port()
    listener = liveness.Listener('127.0.0.1', port)
    listener.start()
    ev = Events()
    w = liveness.Watcher('ctl2', '127.0.0.1', port, ev.add('dead'),
                         ev.add('back'), retry_s=0.02)
    w.start()
    try:
        assert ev.wait_for('back') is not None
        time.sleep(0.1)                    # connected and waiting
        gone = time.monotonic()
        # the process dies: its kernel closes the listener and the
        # connections it accepted
        listener.stop()
        for key in list(listener.sel.get_map().values()):
            key.fileobj.close()
        died = ev.wait_for('dead')
        assert died is not None and died - gone < 0.5
        again = liveness.Listener('127.0.0.1', port)     # restarted
        again.start()
        with ev.cond:
            ev.cond.wait_for(lambda: [w for w, *_ in ev.seen].count(
                'back') == 2, 5)
        assert [w for w, *_ in ev.seen] == ['back', 'dead', 'back']
        again.stop()
    finally:
        w.stop()
