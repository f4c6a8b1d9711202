"""os-ken's OpenFlow listener, made to say what it refuses and to notice
switches that are gone (controllers.main installs both before os-ken
starts).

- TLS refusals: os-ken wraps each accepted socket in its TLS context in a
  thread of its own; with its native hub that thread swallows every
  exception, so a switch whose certificate the lab's CA did not sign was
  refused without a word. `Listener` does the same wrap (same context,
  same settings) and reports each refusal to `on_refused(address,
  reason)` (the core logs and counts it; GET /status shows it).
- Gone switches: when a switch closes its session, os-ken's native hub
  leaves the datapath waiting on its send queue until something is sent
  to it, so the app never heard that it left. Echo requests every
  ECHO_S (os-ken's own keepalive) send something: a closed session is
  seen within ECHO_S, a switch that stops answering after ECHO_MISSES
  requests.
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


def install(on_refused, conf):
    """Before os-ken's OpenFlow controller starts: its listener reports
    refusals to `on_refused`, and it sends echo requests (`conf`: os-ken's
    cfg.CONF, already parsed)."""
    import os_ken.controller.controller as ofc
    ofc.StreamServer = listener_class(on_refused)
    conf.set_override('echo_request_interval', ECHO_S)
    conf.set_override('maximum_unreplied_echo_requests', ECHO_MISSES)
