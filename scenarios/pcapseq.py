"""Probe sequence numbers in a capture, without a packet library (a
failover window holds thousands of frames per capture point; this reads
them in milliseconds).

A probe (scenarios/probe.py) is a UDP datagram whose payload starts with
its sequence number (4 bytes, network order). It is found in a frame as it
is on the segment (Ethernet, maybe 802.1Q, IPv4, UDP) or as it crosses the
transport network (the same inside VXLAN, UDP port 4789).
"""
import struct

VXLAN_PORT = 4789
PCAP_MAGIC = (0xa1b2c3d4, 0xa1b23c4d)        # microsecond / nanosecond


def _udp(frame, at=0):
    """(dst port, payload offset) of the IPv4 UDP datagram in the Ethernet
    frame starting at `at`, or None."""
    if len(frame) < at + 14:
        return None
    etype = struct.unpack_from('!H', frame, at + 12)[0]
    at += 14
    while etype in (0x8100, 0x88a8) and len(frame) >= at + 4:
        etype = struct.unpack_from('!H', frame, at + 2)[0]
        at += 4
    if etype != 0x0800 or len(frame) < at + 20:
        return None
    ihl = (frame[at] & 0x0f) * 4
    if frame[at + 9] != 17 or len(frame) < at + ihl + 8:
        return None
    dport = struct.unpack_from('!H', frame, at + ihl + 2)[0]
    return dport, at + ihl + 8


def probe_seq(frame, ports):
    """-> (port, sequence number) of the probe a frame carries (outer or
    inside VXLAN) if its UDP port is one of `ports`, else None."""
    got = _udp(frame)
    if got and got[0] == VXLAN_PORT:
        got = _udp(frame, got[1] + 8)
    if not got or got[0] not in ports or len(frame) < got[1] + 4:
        return None
    return got[0], struct.unpack_from('!I', frame, got[1])[0]


def frames(data):
    """(epoch s, frame) for each frame of a pcap file's bytes (either byte
    order, µs or ns timestamps)."""
    if len(data) < 24:
        return
    magic = struct.unpack_from('<I', data)[0]
    order = '<' if magic in PCAP_MAGIC else '>'
    magic = struct.unpack_from(order + 'I', data)[0]
    if magic not in PCAP_MAGIC:
        raise ValueError('not a pcap file')
    scale = 1e-6 if magic == PCAP_MAGIC[0] else 1e-9
    at = 24
    while at + 16 <= len(data):
        sec, frac, incl = struct.unpack_from(order + 'III', data, at)
        yield sec + frac * scale, data[at + 16:at + 16 + incl]
        at += 16 + incl


def seqs_in(path, ports):
    """{port: {probe sequence number: when it was first seen}} in a pcap
    file."""
    out = {p: {} for p in ports}
    with open(path, 'rb') as f:
        data = f.read()
    for t, frame in frames(data):
        got = probe_seq(frame, ports)
        if got:
            out[got[0]].setdefault(got[1], t)
    return out
