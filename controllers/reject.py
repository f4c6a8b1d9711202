"""The distributed firewall's `reject` (pure): the answer a rejected
packet's sender gets, as NSX's DFW sends it ("a destination unreachable
message to the sender": a TCP RST for TCP, ICMP destination unreachable,
code 13 "communication administratively prohibited", for UDP, ICMP and
any other IP protocol), and where the hypervisor sends it.

A reject rule's flow sends the first packet of a new connection to the
controller (its first REJECT_LEN bytes, enough for the headers); the app
(controllers.app) builds the answer here and sends it back into the
switch:

    answer(frame)                  -> the answer frame (bytes) or None
    send_back(table, match)        -> our actions for the packet-out

No answer is made to what must not be answered (RFC 1122 3.2.2, RFC 793):
an ICMP error, a TCP RST, a frame to a group MAC, a fragment after the
first, a source that is no unicast host.
"""
import ipaddress
import struct

from os_ken.lib.packet import ethernet, icmp, ipv4, packet, tcp

from .dfw import EGRESS, INGRESS, REJECT_LEN

# REJECT_LEN (dfw's): how much of a rejected packet the rule's flow sends up
__all__ = ['answer', 'send_back', 'summary', 'REJECT_LEN']
ADMIN_PROHIBITED = 13      # ICMP type 3, RFC 1812
IPV4 = 0x0800
TCP, UDP, ICMP = 6, 17, 1
ICMP_ERRORS = (3, 4, 5, 11, 12)
RST, SYN, FIN, ACK = 0x04, 0x02, 0x01, 0x10


def _unicast_host(addr):
    a = ipaddress.IPv4Address(addr)
    return not (a.is_multicast or a.is_unspecified or a.is_loopback or
                addr == '255.255.255.255')


def answer(frame):
    """The reject answer to `frame` (an Ethernet frame, possibly cut
    after REJECT_LEN bytes) -> bytes, or None when it gets none."""
    try:
        pkt = packet.Packet(frame)
    except Exception:                      # os-ken raises what it meets
        return None
    eth, ip = pkt.get_protocol(ethernet.ethernet), \
        pkt.get_protocol(ipv4.ipv4)
    if eth is None or ip is None or eth.ethertype != IPV4:
        return None
    if int(eth.dst.split(':')[0], 16) & 1 or \
            int(eth.src.split(':')[0], 16) & 1:
        return None
    if ip.offset or not _unicast_host(ip.src) or not _unicast_host(ip.dst):
        return None
    back_eth = ethernet.ethernet(dst=eth.src, src=eth.dst, ethertype=IPV4)
    head = ip.header_length * 4
    if ip.proto == TCP:
        seg = pkt.get_protocol(tcp.tcp)
        if seg is None or seg.bits & RST:
            return None
        return _serialize(back_eth, ipv4.ipv4(
            src=ip.dst, dst=ip.src, proto=TCP, ttl=64), _rst(ip, seg))
    if ip.proto == ICMP:
        at = 14 + head
        if len(frame) <= at or frame[at] in ICMP_ERRORS:
            return None
    original = bytes(frame[14:14 + head + 8])   # its header, 8 bytes more
    return _serialize(back_eth, ipv4.ipv4(src=ip.dst, dst=ip.src,
                                          proto=ICMP, ttl=64),
                      icmp.icmp(type_=icmp.ICMP_DEST_UNREACH,
                                code=ADMIN_PROHIBITED, csum=0,
                                data=icmp.dest_unreach(data=original)))


def _rst(ip, seg):
    """RFC 793 ("Reset Generation", a connection that does not exist):
    the segment had an ACK: <SEQ=SEG.ACK><CTL=RST>; else
    <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, SYN and FIN counting one
    each."""
    if seg.bits & ACK:
        return tcp.tcp(src_port=seg.dst_port, dst_port=seg.src_port,
                       seq=seg.ack, bits=RST)
    data_len = ip.total_length - ip.header_length * 4 - seg.offset * 4
    length = max(data_len, 0) + bool(seg.bits & SYN) + bool(seg.bits & FIN)
    return tcp.tcp(src_port=seg.dst_port, dst_port=seg.src_port, seq=0,
                   ack=(seg.seq + length) & 0xffffffff, bits=RST | ACK)


def _serialize(*protocols):
    out = packet.Packet()
    for p in protocols:
        out.add_protocol(p)
    out.serialize()
    return bytes(out.data)


def send_back(table, match, egress_table=EGRESS, ingress_table=INGRESS):
    """Where the answer goes, as the packet-in says where the packet was
    (`table` the firewall table that rejected it, `match` the packet-in's
    pipeline fields): rejected leaving a VM (egress) -> straight out of
    that VM's port (its own conntrack zone never saw the connection);
    rejected on its way to a VM (ingress) -> into forwarding (table 1)
    on the packet's VNI, which sends it to its sender as any frame to
    that MAC (a tunnel, a gateway, another local port). -> our action
    tuples (controllers.ofdriver), or None for another table."""
    if table == egress_table and 'in_port' in match:
        return [('output', match['in_port'])]
    if table == ingress_table and 'tunnel_id' in match:
        return [('set_tunnel', match['tunnel_id']), ('resubmit', 1)]
    return None


def summary(frame):
    """'tcp 10.1.0.11:40000 -> 10.1.0.15:81' for the log (best effort)."""
    try:
        ver_ihl, proto = frame[14], frame[23]
        src, dst = (str(ipaddress.IPv4Address(frame[o:o + 4]))
                    for o in (26, 30))
        at = 14 + (ver_ihl & 0xf) * 4
        if proto in (TCP, UDP):
            sp, dp = struct.unpack('!HH', frame[at:at + 4])
            name = 'tcp' if proto == TCP else 'udp'
            return f'{name} {src}:{sp} -> {dst}:{dp}'
        return f'proto {proto} {src} -> {dst}'
    except (IndexError, struct.error, ValueError):
        return f'{len(frame)} bytes'
