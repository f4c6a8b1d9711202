"""A UDP probe stream with sequence numbers (the scenarios' measuring tape).

    python3 probe.py recv --port 9000 --out FILE --seconds S
    python3 probe.py send --dst IP --port 9000 --rate 1000 --seconds S

Run inside lab namespaces (stdlib only, so any python3). The receiver
writes one line per packet: "<seq> <receive time>". `analyse` (pure) turns
what was sent and received into losses and the outage: the longest run of
missing sequence numbers, in milliseconds at the probe's rate.
"""
import argparse
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct('!Id')        # sequence number, send time


def first_seq(epoch, now, rate):
    """With a shared --epoch, sequence numbers are slots of wall-clock time
    since the epoch, so a sender started later (on the VM a server was
    migrated to) continues the same numbering: its first slot."""
    return max(0, int((now - epoch) * rate + 0.999999))


def send(dst, port, rate, seconds, epoch=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)  # BUM probes
    # SIGTERM (the server is powered off) stops sending at once
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    interval = 1.0 / rate
    total = int(rate * seconds)
    start = 0
    t0 = time.monotonic()
    if epoch is not None:
        start = first_seq(epoch, time.time(), rate)
        t0 -= time.time() - epoch          # slot k is due at epoch + k/rate
    for seq in range(start, total):
        due = t0 + seq * interval
        now = time.monotonic()
        if due > now:                 # one wake-up per packet, no spinning
            time.sleep(due - now)
        try:
            s.sendto(HEADER.pack(seq, time.time()) + b'\0' * 32,
                     (dst, port))
        except OSError:
            pass                      # no route for a moment: counts as lost
    print(total, flush=True)
    return total


def recv(port, out, seconds):
    # SIGTERM ends the capture cleanly (the file is closed and complete)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('0.0.0.0', port))
    s.settimeout(0.2)
    end = time.monotonic() + seconds
    with open(out, 'w') as f:
        while time.monotonic() < end:
            try:
                data = s.recv(2048)
            except socket.timeout:
                continue
            seq, _sent = HEADER.unpack_from(data)
            f.write(f'{seq} {time.time():.6f}\n')


def analyse(sent, received_seqs, rate):
    """sent: how many were sent (seq 0..sent-1); received_seqs: what
    arrived. -> dict: received, lost, duplicates, longest gap (in packets
    and ms), gaps [(first missing seq, length)]."""
    got = set()
    dups = 0
    for s in received_seqs:
        if s in got:
            dups += 1
        got.add(s)
    gaps, run_start = [], None
    for seq in range(sent):
        if seq not in got:
            if run_start is None:
                run_start = seq
        elif run_start is not None:
            gaps.append((run_start, seq - run_start))
            run_start = None
    if run_start is not None:
        gaps.append((run_start, sent - run_start))
    longest = max((n for _, n in gaps), default=0)
    return {'sent': sent, 'received': len(got & set(range(sent))),
            'lost': sent - len(got & set(range(sent))), 'duplicates': dups,
            'longest_gap_packets': longest,
            'outage_ms': round(longest * 1000.0 / rate, 1),
            'gaps': gaps[:50]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest='cmd', required=True)
    a = sub.add_parser('send')
    a.add_argument('--dst', required=True)
    a.add_argument('--port', type=int, default=9000)
    a.add_argument('--rate', type=int, default=1000)
    a.add_argument('--seconds', type=float, required=True)
    a.add_argument('--epoch', type=float, default=None,
                   help='number packets by time slot since this Unix time')
    b = sub.add_parser('recv')
    b.add_argument('--port', type=int, default=9000)
    b.add_argument('--out', required=True)
    b.add_argument('--seconds', type=float, required=True)
    args = p.parse_args(argv)
    if args.cmd == 'send':
        send(args.dst, args.port, args.rate, args.seconds, args.epoch)
    else:
        recv(args.port, args.out, args.seconds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
