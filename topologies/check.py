"""Underlay verification: every pair of VTEP tunnel IPs must reach each
other with full-size encapsulated frames (1600-byte IP packets, don't
fragment), and on a Clos every leaf must have ECMP over every spine.

Pure helpers (`endpoints`, `summarize`, `ecmp_paths`) decide; `verify` is the
thin driver that runs fping inside the lab's namespaces until everything
passes or the deadline expires.
"""
import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

IP_OVERHEAD = 28          # IPv4 + ICMP headers


def endpoints(plan):
    """{node: tunnel IP} for every VTEP (hypervisors, service nodes,
    gateways, hardware VTEPs), in plan order."""
    return {n: p['tunnel_ip'].split('/')[0] for n, p in plan['nodes'].items()
            if 'tunnel_ip' in p}


def probe_points(plan, node):
    """The namespaces a VTEP's probes leave from: its own, or, for a VCF
    pod VTEP run natively, every member leaf (each carries the pod's tunnel
    IP on its br-phy, and each must reach every other VTEP)."""
    p = plan['nodes'][node]
    return list(p['members']) if p.get('pod') else [node]


def summarize(eps, reached):
    """eps: {node: ip}; reached: {src node: set of dst IPs that answered}.
    Returns (vtep_pairs, reachable_pairs, failing [(src, dst)]): a pair is
    reachable when both directions answered."""
    names = list(eps)
    pairs, ok, failing = 0, 0, []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            pairs += 1
            fwd = eps[b] in reached.get(a, set())
            rev = eps[a] in reached.get(b, set())
            if fwd and rev:
                ok += 1
            else:
                failing += [(x, y) for x, y, good in ((a, b, fwd), (b, a, rev))
                            if not good]
    return pairs, ok, failing


def ecmp_paths(route_json, prefix):
    """Number of next hops of `prefix` in `ip -j route` output (0 if none)."""
    for r in json.loads(route_json or '[]'):
        if r.get('dst') == prefix:
            return len(r.get('nexthops', [])) or (1 if r.get('gateway')
                                                  else 0)
    return 0


def _fping(lab, src, src_ip, targets, mtu):
    if not targets:
        return src, set()
    res = lab.node(src).ns_run(
        ['fping', '-a', '-M', '-b', str(mtu - IP_OVERHEAD), '-r', '2',
         '-t', '500', '-i', '2', '-S', src_ip] + sorted(targets), timeout=60)
    return src, set(res.stdout.split())


def announce(lab, eps):
    """Each VTEP sends one gratuitous ARP for its tunnel IP (as a host does
    when its link comes up), so the all-pairs probe is not an ARP storm.
    arping waits a whole second after sending, so all run at once."""
    procs = [subprocess.Popen(
        ['ip', 'netns', 'exec', lab.node(ns).ns, 'arping', '-U', '-c', '1',
         '-w', '1', '-I', 'br-phy', ip], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL) for n, ip in eps.items()
        for ns in probe_points(lab.plan, n)]
    for p in procs:
        p.wait(timeout=30)


def verify(lab, deadline_s=90, progress=None):
    """Probe every VTEP pair until all pass or `deadline_s` passes.
    Returns a dict of results (pairs, failing pairs, ECMP, time taken)."""
    progress = progress or (lambda msg: None)
    plan = lab.plan
    eps = endpoints(plan)
    reached = {n: set() for n in eps}
    t0 = time.monotonic()
    if plan['fabric'] == 'vcf':      # one L2 transport subnet
        announce(lab, eps)
    attempt = 0
    # (VTEP, namespace it probes from) -> tunnel IPs that answered
    got_at = {(n, ns): set() for n in eps for ns in probe_points(plan, n)}
    while True:
        attempt += 1
        todo = {(n, ns): {ip for d, ip in eps.items() if d != n} - seen
                for (n, ns), seen in got_at.items()}
        with ThreadPoolExecutor(4) as pool:
            for key, got in pool.map(
                    lambda k: (k, _fping(lab, k[1], eps[k[0]], todo[k],
                                         plan['mtu'])[1]),
                    [k for k in got_at if todo[k]]):
                got_at[key] |= got
        for n in eps:
            reached[n] = set.intersection(*[got_at[(n, ns)] for ns in
                                            probe_points(plan, n)])
        pairs, ok, failing = summarize(eps, reached)
        progress(f'  underlay probe {attempt}: {ok}/{pairs} VTEP pairs '
                 f'reachable ({time.monotonic() - t0:.1f} s)')
        if not failing or time.monotonic() - t0 > deadline_s:
            break
        time.sleep(0.5)
    result = {'vtep_pairs': pairs, 'reachable_pairs': ok,
              'failing': failing, 'reached': reached, 'endpoints': eps}
    if plan['fabric'] == 'clos':
        # BGP may install the last equal-cost path a moment after the first.
        while True:
            result['ecmp'] = clos_ecmp(lab)
            paths = result['ecmp']['min_paths'].values()
            if min(paths, default=0) >= result['ecmp']['spines'] or \
                    time.monotonic() - t0 > deadline_s:
                break
            time.sleep(0.5)
    result['verify_s'] = round(time.monotonic() - t0, 3)
    return result


def clos_ecmp(lab):
    """{leaf: fewest next hops over its routes to other leaves' VTEPs}."""
    plan = lab.plan
    spines = [n for n, p in plan['nodes'].items() if p['role'] == 'spine']
    out = {}
    for leaf, p in plan['nodes'].items():
        if p['role'] != 'leaf':
            continue
        remote = [q['tunnel_ip'].split('/')[0] for q in plan['nodes'].values()
                  if 'tunnel_ip' in q and q.get('gateway') and
                  _leaf_of(plan, q) != leaf]
        routes = lab.node(leaf).ns_run(['ip', '-j', 'route']).stdout
        nets = [_net31(ip) for ip in remote]
        counts = [ecmp_paths(routes, n) for n in nets]
        out[leaf] = min(counts) if counts else len(spines)
    return {'spines': len(spines), 'min_paths': out}


def _leaf_of(plan, tn):
    return next(i['peer'] for i in tn['intfs'] if i['name'] == tn['uplink'])


def _net31(ip):
    a, b, c, d = (int(x) for x in ip.split('.'))
    return f'{a}.{b}.{c}.{d & ~1}/31'
