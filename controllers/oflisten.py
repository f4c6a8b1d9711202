"""os-ken's OpenFlow listener, made to say what it refuses and to notice
switches that are gone (controllers.main installs both before os-ken
starts).

- TLS refusals: os-ken wraps each accepted socket in its TLS context in a
  thread of its own; with its native hub that thread swallows every
  exception, so a switch whose certificate the lab's CA did not sign was
  refused without a word. `Listener` does the same wrap (same context,
  same settings) and reports each refusal to `on_refused(address,
  reason)` (the core logs and counts it; GET /status shows it).
- Gone switches: when a switch closes its session, os-ken's receive loop
  ends, but its native hub cannot stop the send loop (hub.kill does
  nothing there), which waits on its queue until something is sent, and
  the datapath is declared dead only once both ended: the app heard that
  a switch left only at the next echo request (seconds; seen: a crashed
  gateway shown as connected for 3.6 s). When the receive loop ends,
  `wake_sender` declares the datapath dead (what os-ken's connection
  handler, or the echo loop, would do later) and puts one last (empty)
  message on the queue, so the send loop ends at once too (the echo loop
  ends at its next wake-up, within ECHO_S, and finds the datapath dead;
  a repeated DEAD is ignored by os-ken's set_state). Echo requests every
  ECHO_S (os-ken's own keepalive) still find a switch that stops
  answering without closing (after ECHO_MISSES requests).
"""
import logging
import select
import socket
import ssl
import threading
import time

from os_ken.lib import hub

LOG = logging.getLogger('nsx.of')
HANDSHAKE_S = 10        # a peer that connects and says nothing is dropped
ECHO_S, ECHO_MISSES = 2.0, 5
WAIT_SLICE_S = 0.5      # LockedTLS: a waiting reader tries again this often


def reason(exc):
    """A TLS handshake error in a few words: what the certificate check
    said, else OpenSSL's reason, else the error itself."""
    return getattr(exc, 'verify_message', None) or \
        getattr(exc, 'reason', None) or str(exc) or type(exc).__name__


class LockedTLS:
    """A TLS socket that one thread may read while another writes.

    os-ken's datapath reads its socket in one thread and writes it in
    another; with the native hub those are OS threads, and OpenSSL
    forbids calling SSL_read and SSL_write on one connection at once
    (CPython 3.11 releases the GIL around both and adds no lock). Seen
    here: switches' sessions dropped every minute or two under load, the
    switch logging "SSL_read: unexpected eof" (`docs/security.md`). This
    keeps the TLS object non-blocking and calls it under one lock; a
    reader waits for data with select() outside the lock, so a writer is
    never held behind a read that has nothing to read. Timeouts
    (settimeout) are kept as os-ken expects: socket.timeout after that
    long without progress. Everything else goes to the TLS socket."""

    def __init__(self, tls):
        self._tls = tls
        self._lock = threading.Lock()
        self._timeout = tls.gettimeout()
        tls.setblocking(False)

    def settimeout(self, value):
        self._timeout = value

    def gettimeout(self):
        return self._timeout

    def _wait(self, deadline, want_write):
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise socket.timeout('timed out')
        r, w = ([], [self._tls]) if want_write else ([self._tls], [])
        try:    # in slices: a write may have taken in what a read waits for
            select.select(r, w, [], WAIT_SLICE_S if left is None else
                          min(left, WAIT_SLICE_S))
        except ValueError as exc:
            # closed meanwhile (its fd is -1): os-ken's loops end on OSError
            raise OSError(f'TLS socket closed: {exc}') from exc

    def _call(self, op, *args):
        """op(*args) on the TLS object under the lock, retried (waiting
        outside it) while OpenSSL wants the socket readable or
        writable."""
        deadline = None if self._timeout is None else \
            time.monotonic() + self._timeout
        while True:
            with self._lock:
                try:
                    return op(*args)
                except ssl.SSLWantReadError:
                    want_write = False
                except ssl.SSLWantWriteError:
                    want_write = True
            self._wait(deadline, want_write)

    def recv(self, n):
        return self._call(self._tls.recv, n)

    def send(self, data):
        return self._call(self._tls.send, data)

    def sendall(self, data):
        view = memoryview(data)
        while view:
            view = view[self.send(view):]

    def shutdown(self, how):
        with self._lock:
            self._tls.shutdown(how)

    def close(self):
        with self._lock:
            self._tls.close()

    def __getattr__(self, name):
        return getattr(self._tls, name)


def listener_class(on_refused):
    """A StreamServer for os-ken's OpenFlowController that reports every
    TLS session it refuses."""

    class Listener(hub.StreamServer):
        def __init__(self, listen_info, handle=None, **ssl_args):
            ctx = ssl_args.get('ssl_ctx')
            super().__init__(listen_info, handle, **ssl_args)
            if ctx is None:              # plain TCP: nothing to refuse
                return

            def wrap(sock, addr):
                sock.settimeout(HANDSHAKE_S)
                try:
                    tls = ctx.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    sock.close()
                    on_refused(addr[0], reason(exc))
                    return
                # os-ken sets its own timeout on it
                handle(LockedTLS(tls), addr)
            self.handle = wrap

    return Listener


def wake_sender(recv_loop):
    """os-ken's Datapath._recv_loop, then a wake-up of the send loop
    (see the module's doc)."""
    def recv_then_wake(datapath):
        try:
            recv_loop(datapath)
        finally:
            datapath.close()          # the app hears DEAD_DISPATCHER now
            try:
                datapath.send(b'', close_socket=True)
            except AttributeError:    # the send loop ended meanwhile: its
                pass                  # queue is gone, nothing to wake
    recv_then_wake.wakes_sender = True
    return recv_then_wake


def install(on_refused, conf):
    """Before os-ken's OpenFlow controller starts: its listener reports
    refusals to `on_refused`, a datapath whose switch left is declared
    dead at once (wake_sender), and it sends echo requests (`conf`:
    os-ken's cfg.CONF, already parsed)."""
    import os_ken.controller.controller as ofc
    ofc.StreamServer = listener_class(on_refused)
    if not getattr(ofc.Datapath._recv_loop, 'wakes_sender', False):
        ofc.Datapath._recv_loop = wake_sender(ofc.Datapath._recv_loop)
    conf.set_override('echo_request_interval', ECHO_S)
    conf.set_override('maximum_unreplied_echo_requests', ECHO_MISSES)
