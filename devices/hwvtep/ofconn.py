"""One persistent OpenFlow 1.3 channel to a bridge, driven by the device's
ovs.poller loop (no threads).

The device connects to the bridge's management socket
(<OVS_RUNDIR>/<bridge>.mgmt, which OVS always creates) and asks for
asynchronous messages with a SET_CONFIG (a service connection gets no
packet-in, flow-removed or port-status otherwise). Nothing is configured in
OVSDB, so no Controller row can flush the bridge's flows; the bridge is
fail_mode=secure, so it never forwards on its own. When ovs-vswitchd dies
the channel sees EOF at once and retries quickly while it restarts; a
restarted bridge has no flows, and the handler reinstalls them.

handler: on_connected(conn, features), on_message(conn, msg) (also an
error answering a request); a lost channel is not reported from inside
send() or run() (the handler may be in the middle of a change): the owner
asks take_lost() once per loop.
"""
import logging
import socket

import ovs.poller
import ovs.timeval

from . import ofmsg

LOG = logging.getLogger('hwvtep.of')
FRAMES_PER_RUN = 200        # then the device's other sockets get a turn
POLLIN, POLLOUT = ovs.poller.POLLIN, ovs.poller.POLLOUT


class OFConn:
    def __init__(self, name, path, handler, probe_ms=5000,
                 backoff_ms=(50, 1000)):
        self.name, self.path, self.handler = name, path, handler
        self.probe_ms = probe_ms
        self.backoff_min, self.backoff_max = backoff_ms
        self.backoff = self.backoff_min
        self.sock, self.out = None, bytearray()
        self.reader = ofmsg.FrameReader()
        self.ready, self.next_try = False, 0
        self.last_rx, self.echo_sent = 0, None
        self.pending = {}                    # xid -> callback(msg)
        self.connects = 0
        self.lost = None                     # why, until take_lost()

    def send(self, msg, on_reply=None):
        xid, raw = ofmsg.encode(msg)
        if on_reply:
            self.pending[xid] = on_reply
        self.out += raw
        self._flush()
        return xid

    def _flush(self):
        while self.sock and self.out:
            try:
                n = self.sock.send(self.out)
            except BlockingIOError:
                return
            except OSError as exc:
                self._drop(f'send: {exc}')
                return
            del self.out[:n]

    def _attach(self, sock):
        sock.setblocking(False)
        self.sock, self.out = sock, bytearray()
        self.reader = ofmsg.FrameReader()
        self.ready, self.pending, self.echo_sent = False, {}, None
        self.last_rx = ovs.timeval.msec()
        self.send(ofmsg.hello())

    def _drop(self, why):
        if self.sock:
            self.sock.close()
        was = self.ready
        self.sock, self.ready = None, False
        self.next_try = ovs.timeval.msec() + self.backoff
        self.backoff = min(self.backoff * 2, self.backoff_max)
        if was:
            LOG.warning('%s: OpenFlow channel lost (%s)', self.name, why)
            self.lost = why

    def take_lost(self):
        """Why the channel was lost since the last call (None: it was
        not)."""
        why, self.lost = self.lost, None
        return why

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock, self.ready = None, False

    def run(self):
        now = ovs.timeval.msec()
        if self.sock is None and now >= self.next_try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                self._attach(sock)
            except OSError:
                sock.close()
                self.next_try = now + self.backoff
                self.backoff = min(self.backoff * 2, self.backoff_max)
        budget = FRAMES_PER_RUN
        while self.sock and budget > 0:
            for frame in self.reader.frames(budget):
                budget -= 1
                self._dispatch(frame)
                if self.sock is None:
                    return
            if budget <= 0:
                break
            try:
                data = self.sock.recv(262144)
            except BlockingIOError:
                break
            except OSError as exc:
                self._drop(f'recv: {exc}')
                return
            if not data:
                self._drop('ovs-vswitchd closed the connection')
                return
            self.last_rx, self.echo_sent = now, None
            self.reader.feed(data)
        if self.sock and now - self.last_rx >= self.probe_ms:
            if self.echo_sent is None:
                self.echo_sent = now
                self.send(ofmsg.echo_request())
            elif now - self.echo_sent >= self.probe_ms:
                self._drop('no answer to an echo request')
        self._flush()

    def wait(self, poller):
        if self.sock and self.reader.pending():
            poller.immediate_wake()         # frames left over by the budget
        if self.sock:
            poller.fd_wait(self.sock, POLLIN | (POLLOUT if self.out else 0))
            poller.timer_wait_until((self.echo_sent or self.last_rx)
                                    + self.probe_ms)
        else:
            poller.timer_wait_until(self.next_try)

    def _dispatch(self, frame):
        if frame[1] == 0:                    # HELLO, whatever its version
            self.send(ofmsg.features_request())
            return
        msg = ofmsg.decode(frame)
        if msg is None:
            return
        p = ofmsg.parser
        if isinstance(msg, p.OFPEchoRequest):
            self.send(ofmsg.echo_reply(msg))
        elif isinstance(msg, p.OFPEchoReply):
            pass
        elif isinstance(msg, p.OFPSwitchFeatures):
            self.ready, self.backoff = True, self.backoff_min
            self.connects += 1
            self.send(ofmsg.set_config())
            self.handler.on_connected(self, msg)
        elif msg.xid in self.pending and \
                not isinstance(msg, p.OFPErrorMsg):
            more = isinstance(msg, p.OFPMultipartReply) and \
                msg.flags & ofmsg.ofp.OFPMPF_REPLY_MORE
            cb = self.pending[msg.xid] if more else self.pending.pop(msg.xid)
            cb(msg)
        else:
            self.handler.on_message(self, msg)
