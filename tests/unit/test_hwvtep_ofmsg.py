"""The device's OpenFlow encoding and framing (no switch needed)."""
from devices.hwvtep import ofmsg, pipeline as pl


def test_frames_are_cut_whole_and_at_most_as_many_as_asked():
    one = ofmsg.encode(ofmsg.echo_request())[1]
    raw = one * 5
    r = ofmsg.FrameReader()
    r.feed(raw[:len(one) + 3])            # a message and a bit
    assert len(list(r.frames())) == 1 and not r.pending()
    r.feed(raw[len(one) + 3:])
    assert r.pending()
    assert len(list(r.frames(2))) == 2    # the budget
    assert len(list(r.frames())) == 2 and not r.pending()


def test_counting_flows_are_found_by_their_cookie_bit():
    counting = pl._flow(pl.EGRESS, 100, {'reg3': 4096}, count=True)
    plain = pl._flow(pl.EGRESS, 100, {'reg3': 4097})
    assert ofmsg.cookie(counting) & ofmsg.COUNTING
    assert not ofmsg.cookie(plain) & ofmsg.COUNTING
    req = ofmsg.flow_stats_request(counting=True)
    assert req.cookie == req.cookie_mask == ofmsg.COUNTING


def test_a_tag_with_vid_0_is_matched_as_a_tag_not_as_untagged():
    tagged = ofmsg._match({'vlan_tag': 0})
    untagged = ofmsg._match({'vlan_vid': 0})
    assert tagged['vlan_vid'] == ofmsg.ofp.OFPVID_PRESENT
    assert untagged['vlan_vid'] == ofmsg.ofp.OFPVID_NONE
