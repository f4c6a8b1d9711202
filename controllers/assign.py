"""Which controller node drives which device (pure; the whitepaper's
"Controller Cluster": for every device one active and one standby node;
when the active fails the standby takes over at once and a new standby is
chosen; when both fail, a live node takes over while the devices keep
forwarding on their own).

    live(heartbeats, now, lease_s)       nodes whose lease has not run out
    assign(devices, nodes, previous)     {device: Roles(active, standby)}
    changes(old, new)                    what moved, for logs and the API

Rules, in order: a live active keeps its device (a takeover costs the
device a new OpenFlow master and the controller a reconciliation); a dead
active is replaced by its standby if that one lives; a device with no live
active or standby gets the live node with the fewest actives. Standbys
carry no traffic, so they are placed afresh each time: the live node other
than the active with the fewest standbys. Ties go to a hash of (device,
node), so the same inputs give the same answer on every node of the
cluster, and devices spread evenly at the start.
"""
import hashlib
from typing import NamedTuple, Optional


class Roles(NamedTuple):
    active: Optional[str]        # None: no live node at all
    standby: Optional[str]       # None: fewer than two live nodes


def live(heartbeats, now, lease_s):
    """The nodes whose last heartbeat ({node: time}) is less than
    `lease_s` old at `now`, sorted."""
    if lease_s <= 0:
        raise ValueError('lease_s: a lease lasts a positive number of '
                         f'seconds, not {lease_s}')
    return sorted(n for n, t in heartbeats.items() if now - t < lease_s)


def _rank(device, node):
    return hashlib.sha256(f'{device}\0{node}'.encode()).digest()


def _least(device, candidates, load):
    return min(candidates, key=lambda n: (load[n], _rank(device, n)))


def assign(devices, nodes, previous=None):
    """{device: Roles} for `devices` over the live controller `nodes`,
    keeping what `previous` ({device: Roles}) can keep (see the rules
    above)."""
    nodes = sorted(set(nodes))
    previous = previous or {}
    if not nodes:
        return {d: Roles(None, None) for d in sorted(devices)}
    alive = set(nodes)
    actives = {}
    for d in sorted(devices):               # keep, then promote
        old = previous.get(d)
        if old is not None and old.active in alive:
            actives[d] = old.active
        elif old is not None and old.standby in alive:
            actives[d] = old.standby
    load = {n: 0 for n in nodes}
    for n in actives.values():
        load[n] += 1
    for d in sorted(devices):               # no live active or standby
        if d not in actives:
            actives[d] = _least(d, nodes, load)
            load[actives[d]] += 1
    standby_load = {n: 0 for n in nodes}
    out = {}
    for d in sorted(devices):
        others = [n for n in nodes if n != actives[d]]
        standby = _least(d, others, standby_load) if others else None
        if standby is not None:
            standby_load[standby] += 1
        out[d] = Roles(actives[d], standby)
    return out


def changes(old, new):
    """[(device, role, before, after)] for every role that moved between
    two assignments, sorted."""
    out = []
    for d in sorted(set(old) | set(new)):
        a, b = old.get(d, Roles(None, None)), new.get(d, Roles(None, None))
        for role in Roles._fields:
            if getattr(a, role) != getattr(b, role):
                out.append((d, role, getattr(a, role), getattr(b, role)))
    return out
