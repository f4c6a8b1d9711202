"""The cable's carrier straight from the kernel (rtnetlink link messages),
for the agent's loop: a cut cable is known the moment the kernel says so,
not when ovs-vswitchd, busy forwarding on a loaded box, gets to it (its
OpenFlow port status came 9 to 33 ms after `ip link set down` here, see
docs/failover.md).

The agent uses it for losses only: a cable that comes back counts once
OVS also says so (its port status), so a gateway never claims a segment
before its data plane can use the port.
"""
import socket
import struct

RTMGRP_LINK = 1
RTM_NEWLINK, RTM_DELLINK = 16, 17
IFF_UP, IFF_LOWER_UP = 0x1, 0x10000
NLMSG_HDR = struct.Struct('=IHHII')          # len, type, flags, seq, pid
IFINFO = struct.Struct('=BxHiII')            # family, type, index, flags,
#                                              change


def parse(data):
    """rtnetlink datagram -> [(ifindex, carrier up?)] of its link
    messages (a deleted link has no carrier)."""
    out, off = [], 0
    while off + NLMSG_HDR.size <= len(data):
        length, kind, _flags, _seq, _pid = NLMSG_HDR.unpack_from(data, off)
        if length < NLMSG_HDR.size or off + length > len(data):
            break
        body = off + NLMSG_HDR.size
        if kind in (RTM_NEWLINK, RTM_DELLINK) and \
                length >= NLMSG_HDR.size + IFINFO.size:
            _fam, _typ, index, flags, _change = IFINFO.unpack_from(data,
                                                                    body)
            up = kind == RTM_NEWLINK and bool(flags & IFF_UP) and \
                bool(flags & IFF_LOWER_UP)
            out.append((index, up))
        off += (length + 3) & ~3
    return out


class Carrier:
    """Link events of one interface: fileno() for the poller, read() ->
    the carrier after the events waiting (None: nothing new)."""

    def __init__(self, ifname):
        self.ifname = ifname
        self.index = socket.if_nametoindex(ifname)
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW,
                                  socket.NETLINK_ROUTE)
        self.sock.bind((0, RTMGRP_LINK))
        self.sock.setblocking(False)

    def fileno(self):
        return self.sock.fileno()

    def read(self):
        last = None
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return last
            except OSError:          # ENOBUFS: events lost; OVS still says
                return last
            for index, up in parse(data):
                if index == self.index:
                    last = up
