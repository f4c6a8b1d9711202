"""Event-driven liveness between controller nodes (#13, docs/cluster.md):
each node listens on a peer port; every other node keeps one idle TCP
connection to it. When a node's process dies (SIGKILL included) its
kernel closes both that connection and the listener at once, so a peer
learns it within milliseconds, without polling: the connection ends, and
a new connection is refused. Only that pair is a death: a connection
that ends while the port still answers is a restart or a glitch, and
silence (a partition, a frozen process) says nothing; the membership
lease decides those.

The connection carries no data in either direction (so no TLS): it only
tells the other end that this process is alive.

    Listener(host, port).start()          answer peers, keep them
    watch(peer, host, port, on_dead, on_back)   a started Watcher
    verdict(outcome)                      the pure decision
"""
import logging
import selectors
import socket
import threading

LOG = logging.getLogger('nsx.liveness')

PEER_PORT = 6654
CONNECT_TIMEOUT_S = 0.2
RETRY_S = 0.1
# a connection whose peer went silent (partitioned, then maybe dead
# without our hearing its FIN) ends after this, and is made again
KEEPALIVE = {'TCP_KEEPIDLE': 1, 'TCP_KEEPINTVL': 1, 'TCP_KEEPCNT': 3}


def verdict(outcome):
    """What a watcher concludes from a connection attempt's `outcome`
    ('ok', 'refused', 'silent'), made when its connection ended or while
    it had none -> 'alive', 'dead' or 'unknown'. A refusal is a death:
    the kernel answers for a port nobody listens on, so the process (and
    its listener) is gone, or not up yet; silence (no route, no answer)
    is left to the lease."""
    return {'ok': 'alive', 'refused': 'dead'}.get(outcome, 'unknown')


class Listener(threading.Thread):
    """Accept peers' connections on (host, port) and hold them open,
    closing each when its peer closes it."""

    def __init__(self, host, port=PEER_PORT):
        super().__init__(name='liveness-listener', daemon=True)
        self.sock = socket.create_server((host, port), reuse_port=False)
        self.sock.setblocking(False)
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ, None)
        self._stop = threading.Event()

    def run(self):
        while not self._stop.is_set():
            for key, _ in self.sel.select(timeout=1.0):
                if key.fileobj is self.sock:
                    try:
                        conn, _addr = self.sock.accept()
                    except OSError:         # e.g. out of descriptors
                        self._stop.wait(0.1)
                        continue
                    conn.setblocking(False)
                    keepalive(conn)         # a peer gone silent: closed
                    self.sel.register(conn, selectors.EVENT_READ, 'peer')
                    continue
                try:
                    data = key.fileobj.recv(64)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b''
                if not data:            # the peer closed (or is gone)
                    self.sel.unregister(key.fileobj)
                    key.fileobj.close()

    def stop(self):
        self._stop.set()
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def keepalive(sock):
    """End `sock` after a few seconds of a silent peer (KEEPALIVE)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for opt, value in KEEPALIVE.items():
        sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, opt), value)


def attempt(host, port, timeout=CONNECT_TIMEOUT_S, connect=None):
    """-> (outcome 'ok' | 'refused' | 'silent', the socket or None)."""
    connect = connect or socket.create_connection
    try:
        return 'ok', connect((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return 'refused', None
    except OSError:
        return 'silent', None


class Watcher(threading.Thread):
    """Hold a connection to one peer's Listener; call on_dead(peer) when
    it dies (verdict 'dead'), on_back(peer) when it answers again."""

    def __init__(self, peer, host, port, on_dead, on_back,
                 connect=None, retry_s=RETRY_S):
        super().__init__(name=f'liveness-{peer}', daemon=True)
        self.peer, self.host, self.port = peer, host, port
        self.on_dead, self.on_back = on_dead, on_back
        self.connect, self.retry_s = connect, retry_s
        self.state = 'unknown'
        self.sock = None
        self._stop = threading.Event()

    def stop(self):
        self._stop.set()
        sock = self.sock
        if sock is not None:            # wakes the recv below
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _conclude(self, closed, outcome):
        state = verdict(outcome)
        if state == self.state or state == 'unknown':
            return
        self.state = state
        if state == 'dead':
            LOG.info('%s: its process is gone (connection %s, port '
                     'refuses)', self.peer, 'ended' if closed else 'refused')
            self.on_dead(self.peer)
        else:
            self.on_back(self.peer)

    def run(self):
        closed = False
        while not self._stop.is_set():
            outcome, sock = attempt(self.host, self.port,
                                    connect=self.connect)
            self._conclude(closed, outcome)
            if sock is None:
                closed = False
                self._stop.wait(self.retry_s)
                continue
            self.sock = sock
            try:
                sock.settimeout(None)
                keepalive(sock)
                while not self._stop.is_set():
                    if not sock.recv(64):          # ended: FIN or RST
                        break
            except OSError:
                pass
            finally:
                self.sock = None
                sock.close()
            closed = True


def watch(peer, host, port, on_dead, on_back):
    """A started Watcher (what cluster.Replica's `watcher` is)."""
    w = Watcher(peer, host, port, on_dead, on_back)
    w.start()
    return w
