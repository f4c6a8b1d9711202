"""vtepplan.plan() on fake `have` tables: which operations, in which order.
Every plan is also applied to a model of the database that checks, after
each operation, that no row references a missing logical switch and that
the result is what was wanted (a second plan is then empty)."""
import copy

from controllers.vtepplan import plan

BFD = {'enable': 'true', 'min_rx': '100', 'min_tx': '100'}
SN1, SN2, HV1, HV2 = '1.0.0.1', '1.0.0.2', '1.0.0.11', '1.0.0.12'
MAC1, MAC2, MAC3 = '02:00:00:00:00:01', '02:00:00:00:00:02', \
    '02:00:00:00:00:03'


def want(**kw):
    """Two logical switches on vtep1: ls1 (service node replication, bound
    untagged on bm1) and ls2 (source node, VLAN 100 on bm2)."""
    out = {'logical_switches': {'ls1': {'vni': 5001, 'mode': 'service_node'},
                                'ls2': {'vni': 5002, 'mode': 'source_node'}},
           'bindings': {('bm1', 0): 'ls1', ('bm2', 100): 'ls2'},
           'ucast_remote': {('ls1', MAC1): HV1, ('ls1', MAC2): HV1,
                            ('ls2', MAC3): HV2},
           'mcast_remote': {'ls1': [SN1, SN2], 'ls2': [HV2]},
           'bfd': {SN1: dict(BFD), SN2: dict(BFD)}}
    out.update(kw)
    return out


def empty(**kw):
    """A VTEP as its switch sets it up: ports, no logical switch."""
    out = {'logical_switches': {}, 'bindings': {}, 'ucast_remote': {},
           'mcast_remote': {}, 'ports': {'bm1', 'bm2'}, 'local_refs': set(),
           'tunnels': {}}
    out.update(kw)
    return out


def holding(w, **kw):
    """A VTEP whose database holds exactly `w` (and tunnels with BFD)."""
    out = empty(logical_switches=copy.deepcopy(w['logical_switches']),
                bindings=dict(w['bindings']),
                ucast_remote=dict(w['ucast_remote']),
                mcast_remote={ls: sorted(ips) for ls, ips in
                              w['mcast_remote'].items() if ips},
                tunnels={ip: dict(p) for ip, p in w['bfd'].items()})
    out.update(kw)
    return out


def apply(have, ops):
    """Run plan operations on a model of the database; fail on an
    operation that leaves a reference to a missing logical switch, binds a
    missing port or replaces a missing row."""
    db = copy.deepcopy(have)
    for op in ops:
        kind, *args = op
        if kind in ('add_ls', 'set_ls'):
            ls, vni, mode = args
            assert (ls in db['logical_switches']) == (kind == 'set_ls'), op
            db['logical_switches'][ls] = {'vni': vni, 'mode': mode}
        elif kind == 'del_ls':
            del db['logical_switches'][args[0]]
        elif kind == 'bind':
            port, vlan, ls = args
            assert port in db['ports'], op
            db['bindings'][(port, vlan)] = ls
        elif kind == 'unbind':
            del db['bindings'][tuple(args)]
        elif kind in ('add_ucast', 'set_ucast'):
            ls, mac, ip = args
            assert ((ls, mac) in db['ucast_remote']) == (kind == 'set_ucast')
            db['ucast_remote'][(ls, mac)] = ip
        elif kind == 'del_ucast':
            del db['ucast_remote'][tuple(args)]
        elif kind == 'set_mcast':
            assert args[1], 'a locator set has at least one locator'
            db['mcast_remote'][args[0]] = list(args[1])
        elif kind == 'del_mcast':
            del db['mcast_remote'][args[0]]
        elif kind == 'set_bfd':
            assert args[0] in db['tunnels'], op
            db['tunnels'][args[0]] = args[1]
        else:
            raise AssertionError(f'unknown operation {op!r}')
        used = set(db['bindings'].values()) | set(db['mcast_remote']) | \
            {ls for ls, _mac in db['ucast_remote']} | db['local_refs']
        assert used <= set(db['logical_switches']), op
    return db


def converges(w, have):
    """plan(w, have) applied; -> (ops, the database after them)."""
    ops = plan(w, have)
    db = apply(have, ops)
    assert plan(w, db) == [], 'a second pass changes nothing'
    return ops, db


def test_an_empty_vtep_gets_everything_in_order():
    ops, db = converges(want(), empty())
    assert ops == [
        ('add_ls', 'ls1', 5001, 'service_node'),
        ('add_ls', 'ls2', 5002, 'source_node'),
        ('bind', 'bm1', 0, 'ls1'), ('bind', 'bm2', 100, 'ls2'),
        ('add_ucast', 'ls1', MAC1, HV1), ('add_ucast', 'ls1', MAC2, HV1),
        ('add_ucast', 'ls2', MAC3, HV2),
        ('set_mcast', 'ls1', (SN1, SN2)), ('set_mcast', 'ls2', (HV2,))]
    for key in ('logical_switches', 'bindings', 'ucast_remote',
                'mcast_remote'):
        assert db[key] == want()[key]


def test_a_vtep_that_holds_the_intent_gets_nothing():
    assert plan(want(), holding(want())) == []
    # the unknown-dst set is compared as a set
    assert plan(want(mcast_remote={'ls1': [SN2, SN1], 'ls2': [HV2]}),
                holding(want())) == []


def test_a_moved_mac_gets_a_new_locator():
    w = want(ucast_remote={('ls1', MAC1): HV2, ('ls1', MAC2): HV1,
                           ('ls2', MAC3): HV2})
    ops, _ = converges(w, holding(want()))
    assert ops == [('set_ucast', 'ls1', MAC1, HV2)]


def test_a_changed_unknown_dst_set_is_a_new_set():
    # sn1 died: ls1 floods to sn2 only
    w = want(mcast_remote={'ls1': [SN2], 'ls2': [HV2]})
    ops, _ = converges(w, holding(want()))
    assert ops == [('set_mcast', 'ls1', (SN2,))]
    # nowhere to flood (no member left in source node mode): no row
    w = want(mcast_remote={'ls1': [SN1, SN2], 'ls2': []})
    ops, db = converges(w, holding(want()))
    assert ops == [('del_mcast', 'ls2')] and 'ls2' not in db['mcast_remote']


def test_a_removed_logical_switch_goes_after_its_rows():
    w = want(logical_switches={'ls1': want()['logical_switches']['ls1']},
             bindings={('bm1', 0): 'ls1'},
             ucast_remote={('ls1', MAC1): HV1, ('ls1', MAC2): HV1},
             mcast_remote={'ls1': [SN1, SN2]})
    ops, db = converges(w, holding(want()))
    assert ops == [('del_ucast', 'ls2', MAC3), ('del_mcast', 'ls2'),
                   ('unbind', 'bm2', 100), ('del_ls', 'ls2')]
    assert set(db['logical_switches']) == {'ls1'}


def test_a_logical_switch_the_vtep_still_uses_waits_for_it():
    """The switch's own rows (a MAC it learned, its unknown-dst) reference
    the logical switch until it has torn down the binding: deleting it
    before would fail the whole transaction."""
    w = want(logical_switches={'ls1': want()['logical_switches']['ls1']},
             bindings={('bm1', 0): 'ls1'},
             ucast_remote={('ls1', MAC1): HV1, ('ls1', MAC2): HV1},
             mcast_remote={'ls1': [SN1, SN2]})
    ops, db = converges(w, holding(want(), local_refs={'ls2'}))
    assert ops == [('del_ucast', 'ls2', MAC3), ('del_mcast', 'ls2'),
                   ('unbind', 'bm2', 100)]
    db['local_refs'] = set()               # the switch let go of it
    assert converges(w, db)[0] == [('del_ls', 'ls2')]


def test_replication_mode_and_vni_changes_update_the_switch():
    lss = want()['logical_switches']
    w = want(logical_switches={
        'ls1': {'vni': 5001, 'mode': 'source_node'},
        'ls2': {'vni': 6002, 'mode': 'source_node'}})
    ops, _ = converges(w, holding(want()))
    assert ops == [('set_ls', 'ls1', 5001, 'source_node'),
                   ('set_ls', 'ls2', 6002, 'source_node')]
    # an unset replication_mode (the schema's default) is written out
    have = holding(want())
    have['logical_switches']['ls1'] = {'vni': 5001, 'mode': None}
    assert plan(want(logical_switches=lss), have) == [
        ('set_ls', 'ls1', 5001, 'service_node')]


def test_bfd_goes_to_service_node_tunnels_only():
    have = holding(want(), tunnels={
        SN1: {},                               # new: switch just made it
        SN2: dict(BFD),                        # already right
        HV1: dict(BFD),                        # not wanted: cleared
        HV2: {'enable': 'false'}})             # not ours to touch
    ops, db = converges(want(), have)
    assert ops == [('set_bfd', SN1, BFD), ('set_bfd', HV1, {})]
    assert db['tunnels'][HV2] == {'enable': 'false'}
    # a tunnel the switch has not created yet: nothing to write
    assert plan(want(), holding(want(), tunnels={})) == []
    # changed timers are written back
    slow = dict(BFD, min_rx='1000')
    assert plan(want(), holding(want(), tunnels={SN1: slow, SN2: BFD})) == [
        ('set_bfd', SN1, BFD)]


def test_bindings_follow_the_intent():
    w = want(bindings={('bm1', 0): 'ls2', ('bm2', 200): 'ls1',
                       ('bm3', 0): 'ls1'})
    ops, db = converges(w, holding(want()))
    # bm1 moves to ls2, bm2/100 goes, bm2/200 is new; bm3 does not exist
    # (yet): its binding waits for the switch to create the port
    assert ops == [('unbind', 'bm2', 100), ('bind', 'bm1', 0, 'ls2'),
                   ('bind', 'bm2', 200, 'ls1')]
    assert ('bm3', 0) not in db['bindings']
    db['ports'].add('bm3')
    assert converges(w, db)[0] == [('bind', 'bm3', 0, 'ls1')]


def test_everything_at_once_keeps_a_valid_order():
    """From one intent to a very different one in one transaction."""
    w = {'logical_switches': {'ls3': {'vni': 5003, 'mode': 'service_node'},
                              'ls2': {'vni': 5002, 'mode': 'service_node'}},
         'bindings': {('bm1', 0): 'ls3', ('bm2', 100): 'ls3'},
         'ucast_remote': {('ls3', MAC1): HV2, ('ls2', MAC3): HV1},
         'mcast_remote': {'ls3': [SN2], 'ls2': [SN1]},
         'bfd': {SN2: dict(BFD)}}
    ops, db = converges(w, holding(want()))
    assert ops.index(('add_ls', 'ls3', 5003, 'service_node')) < \
        ops.index(('bind', 'bm1', 0, 'ls3'))
    assert ops[-2:] == [('del_ls', 'ls1'), ('set_bfd', SN1, {})]
    assert set(db['logical_switches']) == {'ls2', 'ls3'}
