"""The binding counters of vtep(5)'s Logical_Binding_Stats (pure): which
flows count what, and the totals. A binding's classify flow counts the
frames it sends into its logical switch (packets_from_local), its egress
flow those the switch sends out of it (packets_to_local); counters of flows
that were replaced or removed are banked (flow-removed carries them)."""
from . import pipeline as pl
from .ofmsg import cookie


def stat_map(sections, port_of):
    """{cookie: ((port, vlan), 'from' | 'to')} of the counting flows among
    a member's sections; port_of: {ofport: port name}."""
    out = {}
    for flows in sections.values():
        for f in flows:
            if not f.get('count'):
                continue
            if f['table'] == pl.CLASSIFY:
                bid = next(a[2] for a in f['actions']
                           if a[:2] == ('set_reg', 1))
                kind = 'from'
            else:
                bid, kind = f['match']['reg3'], 'to'
            ofport, vlan = pl.split_binding(bid)
            out[cookie(f)] = ((port_of[ofport], vlan), kind)
    return out


def carried_over(stat_of, counts, dumped):
    """After a member's channel came back: {cookie: (packets, bytes)} of
    its counting flows now, and [(stat, packets, bytes)] to bank: those
    that went (a restarted bridge) or restarted from zero, with what they
    had counted. counts: as last read; dumped: as read now."""
    bank_out = []
    for c, (pk, by) in counts.items():
        now = dumped.get(c)
        if c in stat_of and (now is None or now[0] < pk):
            bank_out.append((stat_of[c], pk, by))
    return {c: v for c, v in dumped.items() if c in stat_of}, bank_out


def bank(banked, stat, packets, nbytes):
    """A counting flow went away with these counts: keep them."""
    (pp, vlan), kind = stat
    b = banked.setdefault((pp, vlan, kind), [0, 0])
    b[0] += packets
    b[1] += nbytes


def totals(banked, members):
    """{(port, vlan): Logical_Binding_Stats columns} from the banked counts
    and each member's (stat_of, {cookie: (packets, bytes)})."""
    stats = {}
    for (pp, vlan, kind), (pk, by) in banked.items():
        _add(stats, pp, vlan, kind, pk, by)
    for stat_of, counts in members:
        for c, (pk, by) in counts.items():
            if c in stat_of:
                (pp, vlan), kind = stat_of[c]
                _add(stats, pp, vlan, kind, pk, by)
    return stats


def _add(stats, pp, vlan, kind, packets, nbytes):
    c = stats.setdefault((pp, vlan), {})
    side = 'from_local' if kind == 'from' else 'to_local'
    c[f'packets_{side}'] = c.get(f'packets_{side}', 0) + packets
    c[f'bytes_{side}'] = c.get(f'bytes_{side}', 0) + nbytes
