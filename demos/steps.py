"""Steps of a demo and how one is judged against what was observed. Pure.

A step says what the whitepaper says happens (`quote`, with its figure),
which arrows show it (`expect`: each pattern must match at least one
observed arrow, or exactly `n`), and which must not exist (`never`: each
with the reason the whitepaper gives: that box gets no copy, and why).

A pattern is (src, dst, what, tag): src and dst are box names, '*' (any
box) or 'SN' (any service node); what is e.g. 'ARP request' or '*'; tag is
{} or {'vni': 5001} or {'vlan': 100}.
"""


def P(src, dst, what, n=None, **tag):
    return {'src': src, 'dst': dst, 'what': what, 'tag': tag, 'n': n}


def Step(title, quote, expect=(), never=(), evidence=(), figure=''):
    return {'title': title, 'quote': quote, 'figure': figure,
            'expect': list(expect), 'never': list(never),
            'evidence': list(evidence)}


def _box(pat, box, sns):
    return pat == '*' or pat == box or (pat == 'SN' and box in sns)


def matches(pat, a, sns):
    return _box(pat['src'], a['src'], sns) and \
        _box(pat['dst'], a['dst'], sns) and \
        pat['what'] in ('*', a['what']) and \
        all(a.get(k) == v for k, v in pat['tag'].items())


def judge(step, arrows, sns):
    """-> (arrows the step shows, problems). Problems name each expected
    pattern not seen (or seen the wrong number of times) and each arrow
    that should not exist."""
    shown, problems = [], []
    for pat in step['expect']:
        hit = [a for a in arrows if matches(pat, a, sns)]
        shown += [a for a in hit if a not in shown]
        if not hit or (pat['n'] is not None and len(hit) != pat['n']):
            problems.append(f"expected {pattern_text(pat)}"
                            + (f" exactly {pat['n']} time(s)"
                               if pat['n'] is not None else '')
                            + f', observed {len(hit)}')
    for pat, why in step['never']:
        for a in arrows:
            if matches(pat, a, sns):
                problems.append(f"unexpected {a['src']} -> {a['dst']} "
                                f"{a['what']} (should not happen: {why})")
    return sorted(shown, key=lambda a: a['time']), problems


def no_copy(step, arrows, sns):
    """[(text, why)] for the step's `never` patterns aimed at one box that
    held: 'No copy at hv3' (from anyone) or 'Nothing from gw2 to srv1',
    with the whitepaper's reason."""
    out = []
    for pat, why in step['never']:
        if pat['dst'] in ('*', 'SN') or any(matches(pat, a, sns)
                                            for a in arrows):
            continue
        out.append((f"No copy at {pat['dst']}" if pat['src'] in ('*', 'SN')
                    else f"Nothing from {pat['src']} to {pat['dst']}", why))
    return out


def pattern_text(pat):
    src = 'a service node' if pat['src'] == 'SN' else pat['src']
    dst = 'a service node' if pat['dst'] == 'SN' else pat['dst']
    tag = ''.join(f' {k.upper()} {v}' for k, v in pat['tag'].items())
    return f"{src} -> {dst} {pat['what']}{tag}"
