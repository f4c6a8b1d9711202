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
import ssl

from os_ken.lib import hub

LOG = logging.getLogger('nsx.of')
HANDSHAKE_S = 10        # a peer that connects and says nothing is dropped
ECHO_S, ECHO_MISSES = 2.0, 5


def reason(exc):
    """A TLS handshake error in a few words: what the certificate check
    said, else OpenSSL's reason, else the error itself."""
    return getattr(exc, 'verify_message', None) or \
        getattr(exc, 'reason', None) or str(exc) or type(exc).__name__


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
                handle(tls, addr)    # os-ken sets its own timeout on it
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
