"""Does one host reach another, and how (a firewall's allow/deny/reject
matrix): a TCP echo server, a TCP client that says whether the
connection opened and every echo came back (or was refused: a RST),
ping (answered, or "Packet filtered": an ICMP administratively
prohibited), one UDP datagram caught by a socket (or its sender told
"host unreachable": the same ICMP), TCP throughput (iperf3). Each runs
in the hosts' namespaces, by name."""
import json
import select
import subprocess
import sys
import time

from topologies import records

ECHO_SERVER = """
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(('0.0.0.0', int(sys.argv[1])))
s.listen(16)
print('listening', flush=True)
def echo(c):
    while True:
        d = c.recv(64)
        if not d:
            break
        c.sendall(d)
while True:
    c, _ = s.accept()
    threading.Thread(target=echo, args=(c,), daemon=True).start()
"""

CLIENT = """
import socket, sys, time
ip, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    s = socket.create_connection((ip, port), timeout=2)
except OSError as exc:
    print('refused' if isinstance(exc, ConnectionRefusedError) else
          'no answer')
    sys.exit(1)
s.settimeout(1)
sent = got = 0
end = time.monotonic() + seconds
while True:
    s.sendall(b'x')
    sent += 1
    try:
        got += len(s.recv(1)) == 1
    except OSError:
        pass
    if time.monotonic() >= end:
        break
    time.sleep(0.02)
print(f'{sent} {got}')
sys.exit(0 if sent == got else 2)
"""

UDP_CATCH = ('import socket; s = socket.socket(socket.AF_INET, '
             'socket.SOCK_DGRAM); s.bind(("0.0.0.0", %d)); s.settimeout(2); '
             'print(s.recv(9).decode())')
# a connected UDP socket: an ICMP error about its datagrams is the next
# call's error (Linux: administratively prohibited -> EHOSTUNREACH, port
# unreachable -> ECONNREFUSED)
UDP_ASK = """
import errno, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((sys.argv[1], int(sys.argv[2])))
s.settimeout(0.4)
for _ in range(3):
    try:
        s.send(b'hello')
        s.recv(16)
    except socket.timeout:
        continue
    except OSError as exc:
        print(errno.errorcode.get(exc.errno, exc.errno))
        sys.exit(0)
print('sent')
"""
UDP_SEND = ('import socket; s = socket.socket(socket.AF_INET, '
            'socket.SOCK_DGRAM); [s.sendto(b"hello", ("%s", %d)) '
            'for _ in range(3)]')


def ns(node, argv, timeout=30):
    return subprocess.run(['ip', 'netns', 'exec', records.ns_name(node)]
                          + argv, capture_output=True, text=True,
                          timeout=timeout)


def popen(node, argv, **kw):
    return subprocess.Popen(['ip', 'netns', 'exec', records.ns_name(node)]
                            + argv, **kw)


def ip(plan, node):
    return plan['nodes'][node]['ip'].split('/')[0]


def echo_server(node, port=80, timeout=10.0):
    """A TCP echo server in `node` (a Popen: stop it by kill), returned
    once it listens (a probe sent before would read as refused)."""
    proc = popen(node, [sys.executable, '-c', ECHO_SERVER, str(port)],
                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                 text=True)
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if ready and proc.stdout.readline().strip() == 'listening':
        return proc
    proc.kill()
    code = proc.wait(5)
    raise RuntimeError(f'the echo server in {node} (TCP {port}) did not '
                       f'listen within {timeout:.0f} s (exit code {code}: '
                       'is the port taken?)')


def tcp(plan, src, dst, port=80, seconds=0.0):
    """-> (0, 'SENT GOT') every echo back, (1, 'refused' | 'no answer')
    the connection did not open, (2, 'SENT GOT') echoes missing."""
    r = ns(src, [sys.executable, '-c', CLIENT, ip(plan, dst), str(port),
                 str(seconds)], timeout=seconds + 20)
    return r.returncode, r.stdout.strip()


def _ping(plan, src, dst):
    return ns(src, ['ping', '-c', '2', '-i', '0.2', '-W', '1',
                    ip(plan, dst)])


def ping(plan, src, dst):
    return _ping(plan, src, dst).returncode == 0


def udp_reaches(plan, src, dst, port=5353):
    """One datagram src -> dst (sent 3 times), caught by a socket bound in
    dst within 2 s."""
    rx = popen(dst, [sys.executable, '-c', UDP_CATCH % port],
               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    time.sleep(0.3)
    ns(src, [sys.executable, '-c', UDP_SEND % (ip(plan, dst), port)])
    out, _ = rx.communicate(timeout=10)
    return out.strip() == 'hello'


def passes(plan, src, dst, proto, port=None):
    """One probe of the matrix: does `proto` ('tcp', 'udp', 'icmp') get
    from src to dst (and, for tcp and icmp, its answer back)?"""
    if proto == 'tcp':
        return tcp(plan, src, dst, port or 80)[0] == 0
    if proto == 'udp':
        return udp_reaches(plan, src, dst, port or 5353)
    return ping(plan, src, dst)


def outcome(plan, src, dst, proto, port=None):
    """One probe of a matrix that tells drop from reject -> 'pass' (it got
    there, and for tcp and icmp its answer back), 'reject' (the sender
    was told: a TCP RST, an ICMP administratively prohibited), 'drop'
    (nothing came back), or what else the sender saw ('partial': a TCP
    connection that lost echoes; 'closed': UDP port unreachable, nobody
    listening; 'EHOSTUNREACH'-like errors by name)."""
    if proto == 'tcp':
        rc, said = tcp(plan, src, dst, port or 80)
        return 'pass' if rc == 0 else 'reject' if said == 'refused' else \
            'drop' if said == 'no answer' else 'partial'
    if proto == 'udp':
        port = port or 5353
        rx = popen(dst, [sys.executable, '-c', UDP_CATCH % port],
                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                   text=True)
        time.sleep(0.3)
        said = ns(src, [sys.executable, '-c', UDP_ASK, ip(plan, dst),
                        str(port)]).stdout.strip()
        out, _ = rx.communicate(timeout=10)
        if out.strip() == 'hello':
            return 'pass'
        return {'EHOSTUNREACH': 'reject', 'sent': 'drop',
                'ECONNREFUSED': 'closed'}.get(said, said or 'no sender')
    r = _ping(plan, src, dst)
    return 'pass' if r.returncode == 0 else 'reject' if \
        'Packet filtered' in r.stdout else 'drop'


def throughput(plan, src, dst, seconds=3, port=5201):
    """TCP throughput src -> dst by iperf3 (Mbit/s), or (None, why)."""
    server = popen(dst, ['iperf3', '-s', '-1', '-p', str(port)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        r = ns(src, ['iperf3', '-c', ip(plan, dst), '-p', str(port), '-t',
                     str(seconds), '-J'], timeout=seconds + 30)
        try:
            got = json.loads(r.stdout)
        except ValueError:
            return None, f'iperf3 printed no result ({r.stderr.strip()})'
        if 'error' in got:
            return None, f"iperf3: {got['error']}"
        bps = got['end']['sum_received']['bits_per_second']
        return round(bps / 1e6, 1), ''
    finally:
        server.kill()
        server.wait(5)
