"""The OpenFlow driver's diff: cookies are a hash of the whole flow, the
memo gives the same cookies as the hash, and a pass adds only what is
missing and deletes only what is no longer wanted."""
from controllers import intent, ofdriver


def flows(n):
    return [intent._flow(1, 100, {'tunnel_id': 5001,
                                  'eth_dst': '02:42:00:00:00:%02x' % i},
                         [('output', 2)]) for i in range(n)]


def test_memo_gives_the_hash_of_the_flow():
    memo = ofdriver.Cookies()
    for f in flows(5):
        assert memo(f) == ofdriver.cookie(f)
        assert memo(dict(f)) == ofdriver.cookie(f)       # served from memo
    assert len(memo) == 5


def test_memo_is_emptied_at_its_limit_and_stays_right():
    memo = ofdriver.Cookies(limit=3)
    fs = flows(7)
    assert [memo(f) for f in fs] == [ofdriver.cookie(f) for f in fs]
    assert len(memo) <= 3


def test_equal_flows_built_in_another_order_share_a_cookie():
    a = intent._flow(0, 100, {'in_port': 1, 'vlan_vid': 10})
    b = intent._flow(0, 100, {'vlan_vid': 10, 'in_port': 1})
    memo = ofdriver.Cookies()
    assert repr(a) != repr(b)
    assert memo(a) == memo(b) == ofdriver.cookie(a)


def test_diff_adds_the_missing_and_deletes_the_unwanted():
    memo = ofdriver.Cookies()
    old, new = flows(3), flows(4)[1:]
    installed = {ofdriver.cookie(f) for f in old}
    add, delete, want = ofdriver.diff(new, installed, memo)
    assert add == [new[-1]]
    assert delete == [ofdriver.cookie(old[0])]
    assert want == {ofdriver.cookie(f) for f in new}
    assert ofdriver.diff(new, want, memo)[:2] == ([], [])


def replaced():
    """Flows a (MAC m1 to port 2), a2 (m1 moved to port 1001: a's slot)
    and b (m2)."""
    from controllers import intent
    a = intent._flow(1, 100, {'tunnel_id': 5, 'eth_dst': 'm1'},
                     [('output', 2)])
    a2 = intent._flow(1, 100, {'tunnel_id': 5, 'eth_dst': 'm1'},
                      [('output', 1001)])
    b = intent._flow(1, 100, {'tunnel_id': 5, 'eth_dst': 'm2'},
                     [('output', 3)])
    return a, a2, b


def test_a_whole_switch_pass_sends_a_replaced_flow_as_its_add_alone():
    """A switch another controller wrote (a takeover): the flow whose
    output changed takes its slot with the add; the delete goes only to
    the flow whose slot nothing takes."""
    a, a2, b = replaced()
    ck = ofdriver.cookie
    assert ofdriver.slot_of(ck(a)) == ofdriver.slot_of(ck(a2)) != \
        ofdriver.slot_of(ck(b)) and ck(a) != ck(a2)
    add, delete, want = ofdriver.diff([a2], {ck(a), ck(b)})
    assert add == [a2] and delete == [ck(b)] and want == {ck(a2)}


def test_a_change_recomputes_only_its_sections():
    from controllers.ofdriver import cookie, diff_sections, slot
    a, a2, b = replaced()
    sent = {('mac', 5, 'm1'): {cookie(a): slot(a)},
            ('mac', 5, 'm2'): {cookie(b): slot(b)}}
    installed = {cookie(a), cookie(b), 77}
    # a2 takes a's slot: added, and a needs no delete
    add, delete, after = diff_sections({('mac', 5, 'm1'): [a2]}, sent,
                                       installed)
    assert add == [a2] and delete == []
    assert after == {cookie(a2), cookie(b), 77}
    assert sent == {('mac', 5, 'm1'): {cookie(a2): slot(a2)},
                    ('mac', 5, 'm2'): {cookie(b): slot(b)}}
    # a section that is now empty goes, with its flows
    add, delete, after = diff_sections({('mac', 5, 'm2'): []}, sent, after)
    assert add == [] and delete == [cookie(b)] and \
        ('mac', 5, 'm2') not in sent and after == {cookie(a2), 77}
    # unchanged: nothing sent
    assert diff_sections({('mac', 5, 'm1'): [a2]}, sent, after)[:2] == \
        ([], [])


def test_a_flow_mod_is_built_once_for_every_switch():
    from os_ken.ofproto import ofproto_v1_3 as ofp
    from os_ken.ofproto import ofproto_v1_3_parser as parser
    from controllers import intent
    from controllers.ofdriver import Wire, cookie, flow_mod

    class DP:
        ofproto, ofproto_parser = ofp, parser
    f = intent._flow(1, 100, {'tunnel_id': 5, 'eth_dst': '02:00:00:00:00:01',
                              'metadata': 0}, [('output', 1005)])
    wire = Wire()
    buf = wire.add(DP(), f, cookie(f))
    assert wire.add(DP(), f, cookie(f)) is buf            # built once
    ref = flow_mod(DP(), f, ck=cookie(f))
    ref.set_xid(0)
    ref.serialize()
    assert buf == bytes(ref.buf)
    import struct
    # OpenFlow header: any switch, xid 0; a flow mod's cookie follows it
    assert struct.unpack_from('!BBHI', buf) == (ofp.OFP_VERSION,
                                                ofp.OFPT_FLOW_MOD, len(buf), 0)
    assert struct.unpack_from('!Q', buf, 8)[0] == cookie(f)
    dbuf = wire.delete(DP(), cookie(f))
    assert struct.unpack_from('!Q', dbuf, 8)[0] == cookie(f)
    assert dbuf[25] == ofp.OFPFC_DELETE          # after table_id
