"""Underlay check decisions: which pairs pass, ECMP counting."""
import json

from topologies import builders, check, expand


def test_endpoints_are_every_vtep():
    plan = expand.expand(builders.clos())
    eps = check.endpoints(plan)
    assert set(eps) == {'vtep1', 'vtep2', 'sn1', 'sn2', 'gw1', 'gw2', 'hv1',
                        'hv2', 'hv3'}


def test_a_pair_passes_only_when_both_directions_answer():
    eps = {'a': '1.0.0.1', 'b': '1.0.0.2', 'c': '1.0.0.3'}
    reached = {'a': {'1.0.0.2', '1.0.0.3'}, 'b': {'1.0.0.1'}, 'c': set()}
    pairs, ok, failing = check.summarize(eps, reached)
    assert (pairs, ok) == (3, 1)
    assert sorted(failing) == [('b', 'c'), ('c', 'a'), ('c', 'b')]


def test_no_vteps_is_not_a_pass():
    assert check.summarize({}, {}) == (0, 0, [])


def test_ecmp_paths_counts_next_hops():
    routes = json.dumps([
        {'dst': '198.19.64.6/31', 'nexthops': [
            {'gateway': '198.19.0.0'}, {'gateway': '198.19.0.4'}]},
        {'dst': '198.19.64.8/31', 'gateway': '198.19.0.0'},
        {'dst': '198.18.0.0/16', 'dev': 'mgmt0'}])
    assert check.ecmp_paths(routes, '198.19.64.6/31') == 2
    assert check.ecmp_paths(routes, '198.19.64.8/31') == 1
    assert check.ecmp_paths(routes, '198.18.0.0/16') == 0
    assert check.ecmp_paths(routes, '10.0.0.0/8') == 0
