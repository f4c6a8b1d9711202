"""Liveness sessions sized to the lab (pure): which service nodes each edge
runs BFD to, and how often BFD runs.

Every BFD packet wakes every userspace ovs-vswitchd it crosses, and each
wake-up costs that process a pass over all its ports (docs/scale.md, measured:
about 1 ms of CPU per BFD packet across a VCF pod's hops). So the lab's BFD
packet rate, not its node count, is what saturates 2 cores:

- an edge (hypervisor, software gateway) runs BFD to SN_CHOICES service
  nodes, not to all of them: its flooding needs one live service node and
  one to fail over to. Edges are spread over the service nodes (edge k starts
  at service node k mod n), so a service node carries its share of sessions.
  A hardware VTEP runs BFD to every service node (the controller writes its
  Tunnel bfd_params; it picks one itself).
- the interval (a lab parameter, `bfd_interval_ms`) defaults to the
  smallest multiple of 100 ms that keeps the lab's BFD packets within
  BUDGET_PPS: 100 ms for the small labs (their failover figures), longer for
  large ones. Detection takes 3 intervals (OVS's detect multiplier).
"""
import math

SN_CHOICES = 2
BUDGET_PPS = 300          # BFD packets/s across the whole lab (both ways)
MIN_MS, MAX_MS = 100, 10000
EDGE_ROLES = ('hypervisor', 'sw_gateway')


def edge_service_nodes(sns, k):
    """The service nodes (in failover order) that the edge with position k
    among the edges runs BFD to and floods through; `sns` sorted by index."""
    if len(sns) <= SN_CHOICES:
        return list(sns)
    return [sns[(k + i) % len(sns)] for i in range(SN_CHOICES)]


def service_nodes_of_edges(nodes):
    """{edge: [service nodes it runs BFD to, in failover order]} for
    `nodes`: {name: {'role', 'index'}} (a plan's or the controller's)."""
    def ordered(roles):
        return sorted((n for n, p in nodes.items() if p['role'] in roles),
                      key=lambda n: nodes[n]['index'])
    sns = ordered(('service_node',))
    return {e: edge_service_nodes(sns, k)
            for k, e in enumerate(ordered(EDGE_ROLES))}


def reporters(nodes, at_least=5, watchers=3):
    """The edges whose BFD view the controller follows: the first
    `at_least` edges by index, or more until `watchers` of them watch each
    service node (edges watch only their own, service_nodes_of_edges)."""
    chosen = service_nodes_of_edges(nodes)
    out, votes = [], {}
    for edge in sorted(chosen, key=lambda n: nodes[n]['index']):
        if len(out) >= at_least and min(votes.values(), default=0) >= \
                watchers:
            break
        out.append(edge)
        for sn in chosen[edge]:
            votes[sn] = votes.get(sn, 0) + 1
    return out


def bfd_sessions(roles):
    """How many BFD sessions a lab runs; `roles`: {node: role}."""
    sns = sum(1 for r in roles.values() if r == 'service_node')
    edges = sum(1 for r in roles.values() if r in EDGE_ROLES)
    vteps = sum(1 for r in roles.values() if r == 'hw_vtep')
    return edges * min(sns, SN_CHOICES) + vteps * sns


def default_interval_ms(roles):
    """bfd_interval_ms for a lab that does not set it (see module doc)."""
    pps_at_1s = 2 * bfd_sessions(roles)          # each end sends
    ms = math.ceil(1000 * pps_at_1s / BUDGET_PPS / 100) * 100
    return min(MAX_MS, max(MIN_MS, ms))
