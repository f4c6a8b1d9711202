"""Overlay verification, with the controller running: VMs of one logical
switch reach each other across hypervisors (VXLAN), and an ARP request for a
VM of another logical switch gets no answer (L2 isolation).

`pairs` and `isolation_probes` are pure; `verify` runs ping/arping inside the
VMs' namespaces.
"""
import time
from concurrent.futures import ThreadPoolExecutor

# probes in flight at once: each mostly waits (a ping that gets no answer
# waits 1 s, an arping that must get none 2 s)
WORKERS = 16


def _ip(plan, vm):
    return plan['nodes'][vm]['ip'].split('/')[0]


def _vms_by_ls(plan):
    out = {}
    for name, p in plan['nodes'].items():
        if p['role'] == 'vm' and p.get('ls'):
            out.setdefault(p['ls'], []).append(name)
    return out


def _bridged_hosts(plan):
    """Physical hosts on a segment that a software gateway bridges."""
    nodes = plan['nodes']
    return sorted(n for n, p in nodes.items()
                  if p['role'] in ('bare_metal', 'appliance') and p.get('ls')
                  and nodes[p['intfs'][0]['peer']]['role'] == 'l2_segment')


def pairs(plan):
    """(src, dst) pairs to ping: the first VM of each logical switch to
    every other VM of it (covers every hypervisor hosting that switch) and
    to every physical host bridged into it by a software gateway."""
    out = []
    by_ls = _vms_by_ls(plan)
    for ls, vms in sorted(by_ls.items()):
        out += [(vms[0], d) for d in vms[1:]]
    for host in _bridged_hosts(plan):
        vms = by_ls.get(plan['nodes'][host]['ls'])
        if vms:
            out.append((vms[0], host))
    return out


def isolation_probes(plan):
    """(src, dst) where src must get no ARP answer for dst's address:
    the first VM of each logical switch against one VM of each other."""
    by_ls = sorted(_vms_by_ls(plan).items())
    return [(a[1][0], b[1][-1]) for a in by_ls for b in by_ls
            if a[0] != b[0]]


def verify(lab, deadline_s=None, progress=lambda m: None):
    """Ping every pair of pairs() in rounds (each round retries the pairs
    that failed) until all reached or `deadline_s` (default: 30 s, or 0.3 s
    per pair in a large lab) has passed. A lab's first tunnelled frames to
    a VTEP are dropped while its userspace OVS resolves the underlay next
    hop (docs/platform.md), so the first round misses pairs in a fresh
    lab; `overlay_first_round` says how many it reached."""
    plan = lab.plan
    todo = pairs(plan)
    ok = set()
    rounds, first = 0, None
    if deadline_s is None:
        deadline_s = max(30.0, 0.3 * len(todo))
    t0 = time.monotonic()

    def ping(pair):
        src, dst = pair
        r = lab.node(src).ns_run(['ping', '-c', '1', '-W', '1',
                                  _ip(plan, dst)], timeout=10)
        return pair, r.returncode == 0

    while True:
        with ThreadPoolExecutor(WORKERS) as pool:
            ok |= {p for p, good in pool.map(ping, [p for p in todo
                                                    if p not in ok]) if good}
        rounds += 1
        first = len(ok) if first is None else first
        progress(f'  overlay: {len(ok)}/{len(todo)} VM pairs reachable '
                 f'(round {rounds}, {time.monotonic() - t0:.1f} s)')
        if len(ok) == len(todo):
            reached_s = round(time.monotonic() - t0, 3)
            break
        if time.monotonic() - t0 > deadline_s:
            reached_s = None
            break
        time.sleep(0.5)

    def arping(pair):
        src, dst = pair
        r = lab.node(src).ns_run(['arping', '-c', '2', '-w', '2', '-I',
                                  'eth0', _ip(plan, dst)], timeout=10)
        return pair, r.returncode == 0 and ' from ' in r.stdout

    with ThreadPoolExecutor(WORKERS) as pool:
        leaks = [p for p, answered in pool.map(arping,
                                               isolation_probes(plan))
                 if answered]
    return {'overlay_pairs': len(todo), 'overlay_reachable': len(ok),
            'overlay_first_round': first, 'overlay_rounds': rounds,
            'overlay_reached_s': reached_s,
            'overlay_failing': [f'{a}->{b}' for a, b in todo
                                if (a, b) not in ok],
            'isolation_probes': len(isolation_probes(plan)),
            'isolation_leaks': [f'{a}->{b}' for a, b in leaks],
            'overlay_verify_s': round(time.monotonic() - t0, 3)}
