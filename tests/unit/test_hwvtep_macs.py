"""The switch's learned-MAC table: learn, move, age, flush, limit; frames
held for their port's carrier."""
from devices.hwvtep.macs import (FULL, INVALID, MOVED, NEW, SAME, Entry,
                                 Held, MacTable)

M1, M2 = '02:00:00:00:00:01', '02:00:00:00:00:02'


def test_learn_then_same_then_move():
    t = MacTable()
    assert t.learn('ls1', M1, 'vtep1', 'bm1', 0) == NEW
    assert t.learn('ls1', M1.upper(), 'vtep1', 'bm1', 0) == SAME
    assert t.learn('ls1', M1, 'vtep1', 'bm2', 100) == MOVED
    assert t.entries[('ls1', M1)] == Entry('vtep1', 'bm2', 100)
    assert t.local_keys() == {('ls1', M1)}


def test_multicast_and_zero_sources_are_never_learned():
    t = MacTable()
    assert t.learn('ls1', '01:00:5e:00:00:01', 'v', 'p', 0) == INVALID
    assert t.learn('ls1', 'ff:ff:ff:ff:ff:ff', 'v', 'p', 0) == INVALID
    assert t.learn('ls1', '00:00:00:00:00:00', 'v', 'p', 0) == INVALID
    assert not t.entries


def test_aging_forgets_only_if_the_mac_is_still_there():
    t = MacTable()
    t.learn('ls1', M1, 'v', 'bm1', 0)
    t.learn('ls1', M1, 'v', 'bm2', 0)          # moved before the old aged
    assert not t.aged('ls1', M1, 'v', 'bm1', 0)
    assert t.aged('ls1', M1, 'v', 'bm2', 0)
    assert not t.entries


def test_carrier_loss_flushes_that_port_and_power_loss_the_member():
    t = MacTable()
    t.learn('ls1', M1, 'leaf1', 'leaf1p1', 0)
    t.learn('ls1', M2, 'leaf1', 'leaf1p2', 0)
    t.learn('ls2', M1, 'leaf2', 'leaf2p1', 0)
    assert t.flush('leaf1', 'leaf1p1') == [('ls1', M1)]
    assert t.flush('leaf1') == [('ls1', M2)]
    assert t.local_keys() == {('ls2', M1)}


def test_a_full_table_refuses_new_macs_but_still_moves_known_ones():
    t = MacTable(limit=1)
    assert t.learn('ls1', M1, 'v', 'p', 0) == NEW
    assert t.learn('ls1', M2, 'v', 'p', 0) == FULL
    assert t.full() and ('ls1', M2) not in t.entries
    assert t.learn('ls1', M1, 'v', 'q', 0) == MOVED


def test_unbinding_drops_what_was_learned_there():
    t = MacTable()
    t.learn('ls1', M1, 'v', 'bm1', 0)
    t.learn('ls1', M2, 'v', 'bm2', 100)
    assert t.unbound({('v', 'bm1', 0): 'ls1'}) == [('ls1', M2)]
    assert t.forget_ls({'ls2'}) == [('ls1', M1)]


def test_a_mac_the_nvc_placed_elsewhere_is_forgotten_here():
    """A dual-homed server's bond fails back to its other switch: that
    switch learns it anew, the NVC places it there, and this switch must
    stop delivering to it locally (found by the fault soak: its stale entry
    kept the server's replies on the backup link until it aged out)."""
    t = MacTable()
    t.learn('ls1', '02:00:00:00:00:0e', 'vtep2', 'bm1', 0)
    t.learn('ls1', '02:00:00:00:00:0f', 'vtep2', 'bm2', 0)
    gone = t.placed_elsewhere([('ls1', '02:00:00:00:00:0e'),
                               ('ls1', '02:00:00:00:00:99')])
    assert gone == [('ls1', '02:00:00:00:00:0e')]
    assert t.local_keys() == {('ls1', '02:00:00:00:00:0f')}
    assert t.learn('ls1', '02:00:00:00:00:0e', 'vtep2', 'bm1', 0) == NEW


def test_frames_before_the_port_status_are_learned_if_carrier_returns():
    h = Held(within=1.0, limit=2)
    assert h.hold('v', 'bm2', 'ls1', M2.upper(), 0, now=10.0)
    assert h.hold('v', 'bm2', 'ls1', M1, 0, now=9.8)
    assert not h.hold('v', 'bm2', 'ls2', M1, 0, now=10.0)    # at its limit
    assert h.hold('v', 'bm3', 'ls1', M1, 0, now=10.0)
    # carrier back at 10.5: both fresh, oldest first; the port holds nothing
    assert h.release('v', 'bm2', now=10.5) == [('ls1', M1, 0),
                                               ('ls1', M2, 0)]
    assert h.release('v', 'bm2', now=10.6) == []
    # too old, or its member's data plane went away: forgotten
    assert h.release('v', 'bm3', now=11.5) == []
    h.hold('v', 'bm3', 'ls1', M1, 0, now=20.0)
    h.drop('v')
    assert h.release('v', 'bm3', now=20.1) == []
