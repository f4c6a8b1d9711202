"""What a Clos underlay's routers report (the map's underlay as the
devices see it, `./run.py map --underlay`): each eBGP session's state as
both ends see it (FRR's `show ip bgp summary json`), and the next hops
each leaf's kernel chose towards every VTEP on another leaf (`ip -j
route`: one per spine when ECMP works). The controller holds no session
to the underlay (it is FRR's), so this is read in the routers' own
namespaces, as root, like the lab CLI's `vtysh`.

`sessions` and `next_hops` are pure (parsed JSON in, named data out);
`read` asks the running lab's routers.
"""
import ipaddress
import json
import os
import subprocess

from topologies import records


def _address_owner(plan):
    """{interface IP: (node, its interface)} of every spine-leaf cable."""
    out = {}
    for n, p in plan['nodes'].items():
        if p['role'] not in ('spine', 'leaf'):
            continue
        for i in p['intfs']:
            if i.get('ip') and i.get('kind') == 'fabric':
                out[i['ip'].split('/')[0]] = (n, i['name'])
    return out


def sessions(plan, summaries):
    """One entry per spine-leaf cable: {'a', 'b', 'a_state', 'b_state'
    (FRR's state as each end sees it; None when that end's summary
    lacks the peer or was not read), 'uptime_s', 'prefixes' (received
    by a)}. `summaries`: {router: parsed `show ip bgp summary json`}."""
    owner = _address_owner(plan)
    seen = {}
    for node, summary in summaries.items():
        peers = ((summary or {}).get('ipv4Unicast') or {}).get('peers', {})
        for ip, peer in peers.items():
            other = owner.get(ip, (ip, None))[0]
            seen[(node, other)] = peer
    out = []
    for ln in plan['links']:
        roles = {plan['nodes'][ln['a']]['role'], plan['nodes'][ln['b']]['role']}
        if roles != {'spine', 'leaf'}:
            continue
        a, b = sorted((ln['a'], ln['b']), key=lambda n: plan['nodes'][n][
            'role'] != 'leaf')                      # the leaf first
        pa, pb = seen.get((a, b)), seen.get((b, a))
        out.append({'a': a, 'b': b,
                    'a_state': pa and pa.get('state'),
                    'b_state': pb and pb.get('state'),
                    'uptime_s': pa and pa.get('peerUptimeMsec', 0) / 1000,
                    'prefixes': pa and pa.get('pfxRcd')})
    return out


def _covering(routes, ip):
    """The most specific route of `routes` (ip -j route) covering ip."""
    addr = ipaddress.ip_address(ip)
    best = None
    for r in routes:
        dst = r.get('dst')
        if dst in (None, 'default'):
            net = ipaddress.ip_network('0.0.0.0/0')
        else:
            net = ipaddress.ip_network(dst if '/' in dst else dst + '/32',
                                       strict=False)
        if addr in net and (best is None or net.prefixlen > best[0]):
            best = (net.prefixlen, r)
    return best and best[1]


def next_hops(plan, routes):
    """{leaf: [{'vtep', 'ip', 'prefix', 'via': [spines]}]} for every VTEP
    (transport node or hardware VTEP) on another leaf: the routers its
    kernel route to that tunnel IP goes through (`routes`: {leaf: parsed
    `ip -j route`}); 'via' empty where no route covers it."""
    owner = _address_owner(plan)
    out = {}
    for leaf, table in sorted(routes.items()):
        rows = []
        for n, p in sorted(plan['nodes'].items(),
                           key=lambda kv: kv[1]['index']):
            if not p.get('tunnel_ip') or p.get('uplink') == leaf or \
                    leaf in (p.get('members') or ()):
                continue
            ip = p['tunnel_ip'].split('/')[0]
            r = _covering(table or [], ip)
            hops = [] if r is None else r.get('nexthops') or \
                ([{'gateway': r['gateway']}] if r.get('gateway') else [])
            rows.append({'vtep': n, 'ip': ip, 'prefix': r and r.get('dst'),
                         'via': [owner.get(h['gateway'], (h['gateway'],))[0]
                                 for h in hops if h.get('gateway')]})
        out[leaf] = rows
    return out


def text(state):
    """Lines: each session (both ends' states), each leaf's next hops."""
    out = ['eBGP sessions (as each end sees them):']
    for s in state['sessions']:
        up = s['a_state'] == s['b_state'] == 'Established'
        out.append(f"  {s['a']} - {s['b']}: {s['a_state'] or 'not seen'} / "
                   f"{s['b_state'] or 'not seen'}"
                   + (f", up {s['uptime_s']:.0f} s, {s['prefixes']} prefixes "
                      f"received by {s['a']}" if up else '  <- DOWN'))
    out.append('ECMP next hops to the VTEPs on other leaves:')
    for leaf, rows in state['next_hops'].items():
        ways = {}
        for r in rows:
            ways.setdefault(tuple(r['via']), []).append(r['vtep'])
        for via, vteps in sorted(ways.items()):
            out.append(f"  {leaf} -> {', '.join(vteps)}: via "
                       f"{', '.join(via) or 'NO ROUTE'} ({len(via)} "
                       f"path{'s' if len(via) != 1 else ''})")
    return out


def _ns_json(node, argv):
    r = subprocess.run(['ip', 'netns', 'exec', records.ns_name(node)]
                       + argv, capture_output=True, text=True, timeout=15)
    if r.returncode:
        raise RuntimeError(f"{node}: {' '.join(argv)} failed: "
                           f'{r.stderr.strip() or r.stdout.strip()}')
    return json.loads(r.stdout or 'null')


def read(plan, run_root=None):
    """The running lab's underlay state (sessions, next_hops), asked of
    its routers now. RuntimeError when the lab is not a Clos or a router
    does not answer."""
    if plan['fabric'] != 'clos':
        raise RuntimeError(f"lab {plan['name']!r} has a {plan['fabric']} "
                           'underlay: BGP and ECMP state exist on a Clos '
                           '(a VCF fabric is one L2 domain per pod)')
    root = run_root or records.RUN_ROOT
    routers = sorted(n for n, p in plan['nodes'].items()
                     if p['role'] in ('spine', 'leaf'))
    summaries = {n: _ns_json(n, ['vtysh', '--vty_socket',
                                 os.path.join(root, n), '-c',
                                 'show ip bgp summary json'])
                 for n in routers}
    routes = {n: _ns_json(n, ['ip', '-j', 'route']) for n in routers
              if plan['nodes'][n]['role'] == 'leaf'}
    return {'sessions': sessions(plan, summaries),
            'next_hops': next_hops(plan, routes)}
