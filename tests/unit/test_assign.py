"""controllers/assign.py: one active and one standby controller node per
device, spread, stable, with immediate takeover by the standby (the
whitepaper's controller cluster), and liveness from leases at `now`."""
import collections

import pytest

from controllers.assign import Roles, assign, changes, live

DEVICES = [f'hv{i}' for i in range(1, 10)]
NODES = ['ctl1', 'ctl2', 'ctl3']


def count(a, role):
    return collections.Counter(getattr(r, role) for r in a.values())


def test_devices_spread_evenly_with_a_distinct_standby():
    a = assign(DEVICES, NODES)
    assert count(a, 'active') == {'ctl1': 3, 'ctl2': 3, 'ctl3': 3}
    assert count(a, 'standby') == {'ctl1': 3, 'ctl2': 3, 'ctl3': 3}
    assert all(r.active != r.standby for r in a.values())
    # every node of the cluster computes the same answer
    assert assign(list(reversed(DEVICES)), list(reversed(NODES))) == a


def test_the_standby_takes_over_and_a_new_standby_is_chosen():
    a = assign(DEVICES, NODES)
    b = assign(DEVICES, ['ctl2', 'ctl3'], a)
    for d, r in a.items():
        if r.active == 'ctl1':
            assert b[d].active == r.standby      # immediate takeover
        else:
            assert b[d].active == r.active       # nothing else moves
        assert b[d].standby in ('ctl2', 'ctl3') and \
            b[d].standby != b[d].active
    moved = [c for c in changes(a, b) if c[1] == 'active']
    assert sorted(c[0] for c in moved) == sorted(
        d for d, r in a.items() if r.active == 'ctl1')
    assert all(c[2] == 'ctl1' for c in moved)


def test_when_active_and_standby_both_die_the_third_takes_over():
    a = assign(DEVICES, NODES)
    b = assign(DEVICES, ['ctl3'], a)
    assert all(r == Roles('ctl3', None) for r in b.values())
    # a node that returns gets standbys at once, actives only as needed
    c = assign(DEVICES, NODES, b)
    assert all(r.active == 'ctl3' for r in c.values())
    standbys = count(c, 'standby')
    assert set(standbys) == {'ctl1', 'ctl2'}
    assert sorted(standbys.values()) == [4, 5]      # spread


def test_new_devices_go_to_the_least_loaded_node():
    a = assign(DEVICES[:6], ['ctl1', 'ctl2'])
    b = assign(DEVICES, NODES, a)
    assert all(b[d].active == a[d].active for d in a)
    assert [b[d].active for d in DEVICES[6:]] == ['ctl3'] * 3


def test_no_live_node():
    assert assign(['hv1'], []) == {'hv1': Roles(None, None)}


def test_leases_at_now():
    beats = {'ctl1': 100.0, 'ctl2': 97.0, 'ctl3': 95.0}
    assert live(beats, 100.0, 5.0) == ['ctl1', 'ctl2']
    assert live(beats, 100.0, 5.01) == ['ctl1', 'ctl2', 'ctl3']
    assert live(beats, 200.0, 5.0) == []
    with pytest.raises(ValueError, match='lease_s'):
        live(beats, 100.0, 0)


def test_changes_name_device_role_before_after():
    a = {'hv1': Roles('ctl1', 'ctl2')}
    b = {'hv1': Roles('ctl2', 'ctl3'), 'hv2': Roles('ctl1', None)}
    assert changes(a, b) == [('hv1', 'active', 'ctl1', 'ctl2'),
                             ('hv1', 'standby', 'ctl2', 'ctl3'),
                             ('hv2', 'active', None, 'ctl1')]
