"""Raw Ethernet frames from inside a lab namespace (stdlib only):

    python3 framegen.py macs --intf eth0 --count 50 --interval 0.2 \
        --prefix 02:42:00:00:00
        one broadcast frame from each of `count` new source MACs
        (<prefix>:01, :02, ...), `interval` s apart; prints "<mac> <epoch
        s just before the send>" per frame: a host that appears on a
        switch port, as many times as wanted
    python3 framegen.py stream --intf eth0 --dst MAC --rate 1000 \
        --seconds 30
        frames from the interface's own MAC to `dst` at `rate`/s until
        killed or `seconds` pass (a sender whose destination moves); a
        sender stopped (SIGSTOP) and continued sends on at its rate, with
        no burst to catch up
    python3 framegen.py frames --intf eth0 --repeat 3 HEX [HEX ...]
        send the given Ethernet frames (hex) as they are, `repeat` times,
        10 ms apart (crafted frames: spoofed sources, VLAN tags)
    python3 framegen.py packets --dst IP --repeat 3 HEX [HEX ...]
        send the given IPv4 packets (hex, header included: any source
        address) through the namespace's routing (a raw IP socket)

Frames carry the local-experimental EtherType 0x88b5: no host answers
them, switches forward them like any other frame.
"""
import argparse
import signal
import socket
import sys
import time

ETHERTYPE = b'\x88\xb5'


def mac_bytes(mac):
    return bytes(int(x, 16) for x in mac.split(':'))


def own_mac(intf):
    with open(f'/sys/class/net/{intf}/address') as f:
        return f.read().strip()


def frame(dst, src, payload=b'nsxl-bench'):
    return mac_bytes(dst) + mac_bytes(src) + ETHERTYPE + payload.ljust(46,
                                                                       b'.')


def macs(intf, count, interval, prefix):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((intf, 0))
    t0 = time.monotonic()
    for k in range(1, count + 1):
        mac = f'{prefix}:{k:02x}'
        delay = t0 + (k - 1) * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        now = time.time()
        s.send(frame('ff:ff:ff:ff:ff:ff', mac))
        print(mac, f'{now:.6f}', flush=True)


def stream(intf, dst, rate, seconds):
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((intf, 0))
    data = frame(dst, own_mac(intf))
    end = time.monotonic() + seconds
    due = time.monotonic()
    while time.monotonic() < end:
        s.send(data)
        due += 1.0 / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        elif delay < -0.01:             # was stopped: no catching up
            due = time.monotonic()


def frames(intf, repeat, hexes):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((intf, 0))
    for _ in range(repeat):
        for h in hexes:
            s.send(bytes.fromhex(h))
        time.sleep(0.01)


def packets(dst, repeat, hexes):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for _ in range(repeat):
        for h in hexes:
            s.sendto(bytes.fromhex(h), (dst, 0))
        time.sleep(0.01)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest='cmd', required=True)
    m = sub.add_parser('macs')
    m.add_argument('--intf', required=True)
    m.add_argument('--count', type=int, default=50)
    m.add_argument('--interval', type=float, default=0.2)
    m.add_argument('--prefix', default='02:42:00:00:00')
    st = sub.add_parser('stream')
    st.add_argument('--intf', required=True)
    st.add_argument('--dst', required=True)
    st.add_argument('--rate', type=float, default=1000)
    st.add_argument('--seconds', type=float, default=30)
    fr = sub.add_parser('frames')
    fr.add_argument('--intf', required=True)
    fr.add_argument('--repeat', type=int, default=3)
    fr.add_argument('hex', nargs='+')
    pk = sub.add_parser('packets')
    pk.add_argument('--dst', required=True)
    pk.add_argument('--repeat', type=int, default=3)
    pk.add_argument('hex', nargs='+')
    a = p.parse_args(argv)
    if a.cmd == 'macs':
        macs(a.intf, a.count, a.interval, a.prefix)
    elif a.cmd == 'stream':
        stream(a.intf, a.dst, a.rate, a.seconds)
    elif a.cmd == 'frames':
        frames(a.intf, a.repeat, a.hex)
    else:
        packets(a.dst, a.repeat, a.hex)


if __name__ == '__main__':
    main()
