"""A Clos underlay as its routers report it (topologies.routing): the
routes are leaf1's `ip -j route` captured on a running clos-small lab
(`./run.py cli --topo clos`, then `leaf1 ip -j route`, 2026-12-01); the
BGP summaries are FRR's `show ip bgp summary json` shape, cut to the
fields read."""
import json
import os

import pytest

from topologies import expand, labs, routing

DATA = os.path.join(os.path.dirname(__file__), 'data')


@pytest.fixture(scope='module')
def plan():
    return expand.expand(labs.resolve('clos'))


def peer(state, up_ms=3000, pfx=9):
    return {'state': state, 'peerUptimeMsec': up_ms, 'pfxRcd': pfx}


def summary(peers):
    return {'ipv4Unicast': {'peers': peers}}


def test_each_cable_has_its_session_as_both_ends_see_it(plan):
    summaries = {
        'leaf1': summary({'198.19.0.0': peer('Established'),
                          '198.19.0.4': peer('Established')}),
        'spine1': summary({'198.19.0.1': peer('Established', pfx=8),
                           '198.19.0.3': peer('Active', 0, 0)}),
        'leaf2': summary({'198.19.0.2': peer('Connect', 0, 0)})}
    got = {(s['a'], s['b']): s for s in routing.sessions(plan, summaries)}
    assert set(got) == {('leaf1', 'spine1'), ('leaf1', 'spine2'),
                        ('leaf2', 'spine1'), ('leaf2', 'spine2')}
    s = got[('leaf1', 'spine1')]
    assert (s['a_state'], s['b_state'], s['uptime_s'], s['prefixes']) == \
        ('Established', 'Established', 3.0, 9)
    assert got[('leaf1', 'spine2')]['b_state'] is None     # spine2 unread
    assert (got[('leaf2', 'spine1')]['a_state'],
            got[('leaf2', 'spine1')]['b_state']) == ('Connect', 'Active')
    lines = routing.text({'sessions': list(got.values()), 'next_hops': {}})
    assert '  leaf1 - spine1: Established / Established, up 3 s, 9 ' \
        'prefixes received by leaf1' in lines
    assert '  leaf2 - spine1: Connect / Active  <- DOWN' in lines


def test_a_leaf_reaches_the_other_leafs_vteps_over_both_spines(plan):
    with open(os.path.join(DATA, 'clos-small-leaf1-routes.json')) as f:
        routes = json.load(f)
    hops = routing.next_hops(plan, {'leaf1': routes})['leaf1']
    elsewhere = {n for n, p in plan['nodes'].items()
                 if p.get('tunnel_ip') and p.get('uplink') == 'leaf2'}
    assert {h['vtep'] for h in hops} == elsewhere and elsewhere
    assert all(h['via'] == ['spine1', 'spine2'] for h in hops), hops
    assert all(h['prefix'].endswith('/31') for h in hops)
    lines = routing.text({'sessions': [], 'next_hops': {'leaf1': hops}})
    assert lines[-1].endswith('via spine1, spine2 (2 paths)')


def test_a_lost_route_and_a_single_path_show(plan):
    with open(os.path.join(DATA, 'clos-small-leaf1-routes.json')) as f:
        routes = json.load(f)
    hv2 = plan['nodes']['hv2']['tunnel_ip'].split('/')[0]
    cut = []
    for r in routes:                   # spine2 gone from hv2's route
        if r.get('nexthops') and routing._covering([r], hv2):
            r = dict(r, nexthops=r['nexthops'][:1])
        cut.append(r)
    hops = {h['vtep']: h for h in
            routing.next_hops(plan, {'leaf1': cut})['leaf1']}
    assert hops['hv2']['via'] == ['spine1']
    hops = {h['vtep']: h for h in routing.next_hops(
        plan, {'leaf1': [r for r in routes if r.get('dst') !=
                         hops['hv2']['prefix']]})['leaf1']}
    assert hops['hv2']['via'] == [] and hops['hv2']['prefix'] is None
    text = '\n'.join(routing.text({'sessions': [], 'next_hops': {
        'leaf1': list(hops.values())}}))
    assert 'hv2: via NO ROUTE (0 paths)' in text


def test_a_vcf_lab_is_refused_with_the_reason():
    vcf = expand.expand(labs.resolve('vcf'))
    with pytest.raises(RuntimeError, match='vcf underlay'):
        routing.read(vcf)
