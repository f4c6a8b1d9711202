"""A UDP probe stream with sequence numbers (the scenarios' measuring tape).

    python3 probe.py recv --port 9000 --out FILE --seconds S
    python3 probe.py send --dst IP --port 9000 --rate 1000 --seconds S
                          [--new-connections]

Run inside lab namespaces (stdlib only, so any python3). The receiver
writes one line per packet: "<seq> <receive time>", the time the kernel
took the packet in (SO_TIMESTAMPNS), so a receiver that is starved for CPU
and reads a burst late does not shift it. The sender prints how many it
sent and how far it ever fell behind its schedule, in ms.

`analyse` (pure) turns that into losses and the outage on two clocks:
  receive clock   the longest silence between two packets that arrived,
                  minus one probe interval (what the receiver lived through);
  sequence clock  the longest run of missing sequence numbers times the
                  probe interval.
They differ when the sender stalls: a starved sender catches up in a burst
(its numbers show no hole while nothing flowed). The receive clock is the
outage; a run whose sender fell behind by more than MAX_LAG_MS measured
nothing trustworthy and says so (`sender_ok`).

`--new-connections` sends each probe from its own source port (in turn
from FIRST_SPORT on, none used twice in SPORTS probes): each is a new
connection to a stateful firewall, which judges it afresh by its rules
(one socket, one source port, would be a single connection, established
after its first probe and let through whatever the rules become).
"""
import argparse
import os
import signal
import socket
import struct
import sys
import time

HEADER = struct.Struct('!Id')        # sequence number, send time
MAX_LAG_MS = 5.0                     # a sender later than this: invalid run
TIMESPEC = struct.Struct('@qq')      # SCM_TIMESTAMPNS: seconds, nanoseconds
# Linux's SO_TIMESTAMPNS (= SCM_TIMESTAMPNS); Python names it from 3.14 on
SO_TIMESTAMPNS = getattr(socket, 'SO_TIMESTAMPNS', 35)
FIRST_SPORT, SPORTS = 20000, 40000   # --new-connections' source ports


def first_seq(epoch, now, rate):
    """With a shared --epoch, sequence numbers are slots of wall-clock time
    since the epoch, so a sender started later (on the VM a server was
    migrated to) continues the same numbering: its first slot."""
    return max(0, int((now - epoch) * rate + 0.999999))


def realtime(priority=20):
    """Run this process (the `send` command) under SCHED_FIFO when allowed
    (root): a probe is the measuring tape, and on a 2-core box busy with
    OVS a normal process wakes up late by several ms. It sleeps between
    packets, so it takes a few % of a core. Only the command line does
    this, and with SCHED_RESET_ON_FORK: a caller that imported send() (a
    test) once turned real-time itself, and every lab it started after
    inherited it (bgpd spinning at real-time priority starved the box)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK,
                              os.sched_param(priority))
        return True
    except (OSError, AttributeError):
        return False


def sport(seq):
    """--new-connections: the source port probe `seq` is sent from."""
    return FIRST_SPORT + seq % SPORTS


def _fresh(seq, data, to):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as one:
        one.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        one.bind(('0.0.0.0', sport(seq)))
        one.sendto(data, to)


def send(dst, port, rate, seconds, epoch=None, new_connections=False):
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
    lag, stalls = 0.0, []
    for seq in range(start, total):
        due = t0 + seq * interval
        now = time.monotonic()
        late = now - due
        if late < 0:                  # one wake-up per packet, no spinning
            time.sleep(-late)
        else:
            lag = max(lag, late)
        if late > MAX_LAG_MS / 1000:
            wall = time.time()            # [when it was due, now], merged
            if stalls and stalls[-1][1] >= wall - late:
                stalls[-1][1] = wall
            else:
                stalls.append([wall - late, wall])
        data = HEADER.pack(seq, time.time()) + b'\0' * 32
        try:
            if new_connections:
                _fresh(seq, data, (dst, port))
            else:
                s.sendto(data, (dst, port))
        except OSError:
            pass                      # no route for a moment: counts as lost
    print(total, f'{lag * 1000:.3f}', flush=True)
    for a, b in stalls[:100]:
        print('stall', f'{a:.6f}', f'{b:.6f}', flush=True)
    return total


def sender_report(text):
    """A sender's output -> (packets sent, ms it fell behind at worst,
    [(start, end)] of the times it was more than MAX_LAG_MS late)."""
    lines = (text or '').splitlines()
    parts = lines[0].split() if lines else []
    stalls = [(float(a), float(b)) for kind, a, b in
              (line.split() for line in lines[1:] if line.strip())
              if kind == 'stall']
    return (int(parts[0]) if parts else 0,
            float(parts[1]) if len(parts) > 1 else None, stalls)


def recv(port, out, seconds):
    # SIGTERM ends the capture cleanly (the file is closed and complete)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind(('0.0.0.0', port))
    s.settimeout(0.2)
    end = time.monotonic() + seconds
    with open(out, 'w') as f:
        while time.monotonic() < end:
            try:
                data, anc, _flags, _addr = s.recvmsg(2048, 64)
            except socket.timeout:
                continue
            seq, _sent = HEADER.unpack_from(data)
            f.write(f'{seq} {kernel_time(anc):.6f}\n')


def kernel_time(ancillary):
    """When the kernel received the packet (SCM_TIMESTAMPNS), else now."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = TIMESPEC.unpack_from(data)
            return sec + nsec / 1e9
    return time.time()


def read(path):
    """A receiver's file -> ([sequence numbers], [receive times])."""
    seqs, times = [], []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2:
                seqs.append(int(parts[0]))
                times.append(float(parts[1]))
    return seqs, times


def longest_silence(times):
    """(seconds, last arrival before it, first after it) of the longest
    time between two arrivals; (0, None, None) with fewer than two."""
    ts = sorted(times)
    return max(((b - a, a, b) for a, b in zip(ts, ts[1:])),
               default=(0.0, None, None))


def silences(times, min_s):
    """[(last arrival before, first arrival after)] of every time between
    two arrivals of at least `min_s` seconds, in order."""
    ts = sorted(times)
    return [(a, b) for a, b in zip(ts, ts[1:]) if b - a >= min_s]


def silence_ms(times, rate):
    """The receive clock: the longest time between two arrivals, minus one
    probe interval (a stream without loss has 0)."""
    return round(max(0.0, longest_silence(times)[0] * 1000.0
                     - 1000.0 / rate), 1)


def stalled_during(stalls, start, end, slack=MAX_LAG_MS / 1000):
    """Did the sender stall (more than MAX_LAG_MS late) at an edge of the
    silence [start, end] at the receiver (give or take the slack)? A stall
    at its start ends the arrivals early, one at its end delays the first
    arrival after it: either mixes the sender's stall into the network's
    outage, and the figure is not a measurement. A stall inside a longer
    silence changes nothing: nothing would have arrived anyway."""
    if start is None:
        return False
    return any(a < edge + slack and b > edge - slack
               for a, b in stalls for edge in (start, end))


LOSS_STALL_SHARE = 0.1           # of a window a sender may spend behind
FAULT_MARGIN_S = 0.2             # around a fault, no stall allowed


def loss_countable(sent, stalls, seconds, at=(), margin=FAULT_MARGIN_S):
    """Does a stream's loss count measure its window (`seconds` long,
    `sent` probes, `stalls` [(start, end)] wall times when the sender was
    more than MAX_LAG_MS late)? A stalled sender catches up, so every
    sequence number is still sent and a loss is still seen; what a stall
    takes away is the traffic in flight at that moment. So: the sender
    sent, and was behind for at most LOSS_STALL_SHARE of the window and
    of the span around each fault instant in `at` (wall times, +-
    margin; a kill's own burst on the box can hold the sender a few ms
    right then): -> (ok, why not). Not for an outage's duration: a stall
    at its edge changes that (stalled_during)."""
    if sent <= 0:
        return False, 'nothing sent'
    behind = sum(b - a for a, b in stalls or ())
    if behind > LOSS_STALL_SHARE * seconds:
        return False, (f'sender behind for {behind:.2f} s of '
                       f'{seconds:.0f} s')
    for t in at:
        near = sum(max(0.0, min(b, t + margin) - max(a, t - margin))
                   for a, b in stalls or ())
        if near > LOSS_STALL_SHARE * 2 * margin:
            return False, (f'sender behind for {near * 1000:.0f} ms of '
                           f'the {2 * margin * 1000:.0f} ms around the '
                           'fault')
    return True, ''


def analyse(sent, received_seqs, rate, times=None, sender_lag_ms=None,
            stalls=None):
    """sent: how many were sent (seq 0..sent-1); received_seqs: what
    arrived; times: their receive times (same order), if known;
    sender_lag_ms: how far the sender fell behind at worst; stalls: when
    it was more than MAX_LAG_MS late. -> dict: received, lost, duplicates,
    longest gap (in packets and ms), gaps [(first missing seq, length)],
    the outage on both clocks (outage_ms is the receive clock when times
    are given), sender_ok: the sender did not stall at an edge of the
    outage (stalled_during; with no stall times: it never fell behind by
    more than MAX_LAG_MS). A stall elsewhere is reported, not fatal."""
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
    by_seq = round(longest * 1000.0 / rate, 1)
    out = {'sent': sent, 'received': len(got & set(range(sent))),
           'lost': sent - len(got & set(range(sent))), 'duplicates': dups,
           'longest_gap_packets': longest, 'outage_seq_ms': by_seq,
           'outage_ms': by_seq, 'gaps': gaps[:50]}
    silence = (0.0, None, None)
    if times is not None:
        inside = [t for s, t in zip(received_seqs, times) if 0 <= s < sent]
        silence = longest_silence(inside)
        out['outage_rx_ms'] = out['outage_ms'] = silence_ms(inside, rate)
    if sender_lag_ms is not None:
        out['sender_lag_ms'] = round(sender_lag_ms, 1)
        out['sender_ok'] = sender_lag_ms <= MAX_LAG_MS
    if stalls is not None and times is not None:
        out['sender_stalls'] = len(stalls)
        out['sender_ok'] = not stalled_during(stalls, *silence[1:])
    return out


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
    a.add_argument('--new-connections', action='store_true',
                   help='each probe from its own source port (a new '
                   'connection to a stateful firewall)')
    b = sub.add_parser('recv')
    b.add_argument('--port', type=int, default=9000)
    b.add_argument('--out', required=True)
    b.add_argument('--seconds', type=float, required=True)
    args = p.parse_args(argv)
    if args.cmd == 'send':
        realtime()
        send(args.dst, args.port, args.rate, args.seconds, args.epoch,
             args.new_connections)
    else:
        recv(args.port, args.out, args.seconds)
    return 0


if __name__ == '__main__':
    sys.exit(main())
