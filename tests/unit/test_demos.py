"""Demos' pure logic: frames -> arrows, steps judged, diagram model,
topology layout and captions, readable OVS output, CLI argument checks."""
import pytest

from demos import catalog, diagram, readable, steps, topopic, wire
from scenarios import arp_flow, hw_arp_flow
from topologies import expand

PLAN = expand.expand(arp_flow.spec())
N = PLAN['nodes']


def ip(h):
    return wire.addr(N[h]['ip'])


def tip(h):
    return wire.addr(N[h]['tunnel_ip'])


def arp(t, src, dst='ff:ff:ff:ff:ff:ff', op='request', **kw):
    return dict(time=t, src=N[src]['mac'], dst=dst, arp=op,
                psrc=ip('vm1') if op == 'request' else ip('s'),
                pdst=ip('s') if op == 'request' else ip('vm1'), **kw)


def tun(t, a, b, rec):
    return dict(rec, time=t, outer_src=tip(a), outer_dst=tip(b), vni=5001,
                outer_sport=50000, outer_dport=4789)


POINTS = [('vm1', 'vm1', 'host'), ('vm2', 'vm2', 'host'),
          ('hv1', 'hv1', 'uplink'), ('sn1', 'sn1', 'uplink'),
          ('gw1', 'gw1', 'uplink'), ('gw1-seg', 'gw1', 'segment'),
          ('s', 's', 'host')]


def frames():
    req = arp(0, 'vm1')
    rep = arp(0, 's', dst=N['vm1']['mac'], op='reply', hwsrc=N['s']['mac'])
    return {
        'vm1': [dict(req, time=1.000), dict(rep, time=1.010)],
        'vm2': [dict(req, time=1.001)],
        'hv1': [tun(1.001, 'hv1', 'sn1', req), tun(1.009, 'gw1', 'hv1', rep)],
        'sn1': [tun(1.002, 'hv1', 'sn1', req), tun(1.003, 'sn1', 'gw1', req),
                tun(1.003, 'sn1', 'hv2', req)],
        'gw1': [tun(1.004, 'sn1', 'gw1', req), tun(1.008, 'gw1', 'hv1', rep)],
        'gw1-seg': [dict(req, time=1.005, vlan=100),
                    dict(rep, time=1.007, vlan=100)],
        's': [dict(req, time=1.006), dict(rep, time=1.0065)],
    }


def test_one_arrow_per_frame_crossing_two_boxes_seen_at_both_ends():
    got = [(a['src'], a['dst'], a['what']) for a in
           wire.arrows(PLAN, POINTS, frames(), (ip('vm1'), ip('s')))]
    assert got == [('vm1', 'hv1', 'ARP request'),
                   ('hv1', 'vm2', 'ARP request'),
                   ('hv1', 'sn1', 'ARP request'),
                   ('sn1', 'gw1', 'ARP request'),
                   ('sn1', 'hv2', 'ARP request'),
                   ('gw1', 's', 'ARP request'),
                   ('s', 'gw1', 'ARP reply'),
                   ('gw1', 'hv1', 'ARP reply'),
                   ('hv1', 'vm1', 'ARP reply')]


def test_arrows_carry_outer_and_inner_headers_and_the_vlan_tag():
    arrows = wire.arrows(PLAN, POINTS, frames(), (ip('vm1'), ip('s')))
    to_sn = arrows[2]
    assert to_sn['points'] == ['hv1', 'sn1']
    assert to_sn['outer'] == {'src': tip('hv1'), 'dst': tip('sn1'),
                              'sport': 50000, 'dport': 4789}
    assert wire.label(to_sn) == 'ARP request  VNI 5001'
    to_s = arrows[5]
    assert to_s['vlan'] == 100 and to_s['points'] == ['gw1-seg', 's']
    text = '\n'.join(wire.describe(to_sn, arrows[0]['time']))
    assert 'UDP 50000 -> 4789  VXLAN VNI 5001' in text
    assert f"who-has {ip('s')} tell {ip('vm1')}" in text


def test_frames_of_other_hosts_are_not_arrows():
    other = dict(arp(1.0, 'vm3'), psrc=ip('vm3'), pdst=ip('vm2'))
    assert wire.arrows(PLAN, POINTS, {'vm2': [other]},
                       (ip('vm1'), ip('s'))) == []


def test_a_moved_mac_belongs_to_its_new_owner():
    rec = dict(arp(1.0, 's'), src=N['s']['mac'])
    pt = ('vm1', 'vm1', 'host')
    assert wire.observe(PLAN, pt, rec) == ('hv1', 'vm1')
    assert wire.observe(PLAN, pt, rec, {N['s']['mac']: 'vm1'}) == \
        ('vm1', 'hv1')


def test_attachment_of_hosts():
    assert wire.attachment(PLAN, 'vm3') == 'hv2'
    assert wire.attachment(PLAN, 's') == 'gw1'
    for fabric in ('clos', 'vcf'):      # VCF: bm5 is cabled to a leaf
        hw = expand.expand(hw_arp_flow.spec(fabric))
        assert wire.attachment(hw, 'bm5') == 'vtep1'


def test_steps_of_arp_flow_hold_on_the_whitepapers_frames():
    arrows = wire.arrows(PLAN, POINTS, frames(), (ip('vm1'), ip('s')))
    demo = catalog.arp_flow_demo(PLAN)
    sns = {'sn1', 'sn2'}
    held = [steps.judge(s, arrows, sns)[1] for s in demo['acts'][0]['steps']]
    # the fake frames hold no vm3 delivery: only that step differs
    assert [bool(p) for p in held] == [False, False, True, False, False,
                                       False]
    assert 'hv2 -> vm3 ARP request' in held[2][0]
    assert steps.no_copy(demo['acts'][0]['steps'][1], arrows, sns) == [
        ('No copy at hv3', 'Hypervisor 3 hosts no VM on logical switch 1')]


def test_a_copy_that_should_not_exist_is_named():
    arrows = wire.arrows(PLAN, POINTS, frames(), (ip('vm1'), ip('s')))
    arrows.append(dict(arrows[4], dst='hv3'))
    step = catalog.arp_flow_demo(PLAN)['acts'][0]['steps'][1]
    _, problems = steps.judge(step, arrows, {'sn1', 'sn2'})
    assert problems == ['unexpected sn1 -> hv3 ARP request (should not '
                        'happen: Hypervisor 3 hosts no VM on logical '
                        'switch 1)']


def test_exact_counts_are_checked():
    arrows = wire.arrows(PLAN, POINTS, frames(), (ip('vm1'), ip('s')))
    twice = arrows + [dict(arrows[2], dst='sn2')]
    step = catalog.arp_flow_demo(PLAN)['acts'][0]['steps'][0]
    _, problems = steps.judge(step, twice, {'sn1', 'sn2'})
    assert problems == ['expected hv1 -> a service node ARP request VNI '
                        '5001 exactly 1 time(s), observed 2']


def test_diagram_model_has_a_lane_per_box_and_an_arrow_per_frame():
    arrows = wire.arrows(PLAN, POINTS, frames(), (ip('vm1'), ip('s')))
    m = diagram.model(['vm1', 'hv1', 'hv3'], [('ARP', arrows)])
    assert m['lanes'][:3] == ['vm1', 'hv1', 'hv3']
    assert set(m['lanes']) == {'vm1', 'hv1', 'hv3', 'vm2', 'sn1', 'gw1',
                               'hv2', 's'}
    assert len(m['arrows']) == len(arrows) == 9
    assert m['arrows'][2]['label'] == 'ARP request  VNI 5001'
    assert m['no_copy'] == ['hv3']
    assert m['rows'][0] == {'act': 1, 'title': 'ARP'}


def test_topology_layout_tiers_and_gateway_mapping_captions():
    pos = topopic.layout(PLAN)
    assert pos['spine1'][1] > pos['leaf1'][1] > pos['hv1'][1] > \
        pos['seg1'][1] > pos['s'][1]
    assert len({pos[n] for n in N}) == len(N)        # no overlap
    caps = topopic.captions(PLAN)
    assert 'seg1: VLAN 100 -> VNI 5001' in caps['gw1']
    assert tip('hv1') in caps['hv1']
    hw = expand.expand(hw_arp_flow.spec('vcf'))
    assert any('untagged -> VNI 5001' in c
               for c in topopic.captions(hw)['vtep1'])


def test_readable_flows_and_mac_table():
    dump = (' cookie=0x0, duration=5.1s, table=1, n_packets=0, n_bytes=0, '
            'priority=100,tun_id=0x1389,dl_dst=' + N['vm3']['mac'] +
            ',metadata=0 actions=output:1008\n')
    assert readable.flows(PLAN, 'hv1', dump) == [
        'table=1, priority=100,tun_id=0x1389(ls1),dl_dst=' + N['vm3']['mac']
        + '(vm3),metadata=0 actions=output:1008(tunnel->hv2)']
    assert readable.mac_table(PLAN, 'hv1', dump) == [
        f"ls1  {N['vm3']['mac']} (vm3)  ->  tunnel->hv2"]


def test_trace_flows_take_names_and_bad_ones_say_what_is_valid():
    assert readable.resolve_flow(PLAN, 'hv1', 'in_port=vm1,dl_dst=vm3') == \
        f"in_port=2,dl_dst={N['vm3']['mac']}"
    with pytest.raises(ValueError, match='hv1 has no port facing vm3'):
        readable.resolve_flow(PLAN, 'hv1', 'in_port=vm3')
    with pytest.raises(ValueError, match='dl_dst=vm9: not a host'):
        readable.resolve_flow(PLAN, 'hv1', 'dl_dst=vm9')


def test_failure_targets():
    assert readable.failure_target(PLAN, 'gw1') == ('node', 'gw1')
    assert readable.failure_target(PLAN, 'hv1-leaf1') == \
        ('link', 'leaf1', 'hv1', 'hv1', 'leaf1')
    with pytest.raises(ValueError, match='neither a node nor a link'):
        readable.failure_target(PLAN, 'hv1-hv2')


@pytest.mark.parametrize('name', list(catalog.DEMOS))
def test_every_demo_names_boxes_of_its_lab(name):
    spec_of, demo_of = catalog.DEMOS[name]
    plan = expand.expand(spec_of('clos'))
    demo = demo_of(plan)
    assert set(demo['lanes']) <= set(plan['nodes'])
    for act in demo['acts']:
        assert set(act['pair']) <= set(plan['nodes'])
        for s in act['steps']:
            for p in s['expect'] + [p for p, _ in s['never']]:
                for box in (p['src'], p['dst']):
                    assert box in ('*', 'SN') or box in plan['nodes'], box
    assert catalog.summary(name)


def test_round_trip_patterns():
    across = catalog.round_trip('vm1', 'hv1', 'hv2', 'vm3')
    assert [(p['src'], p['dst'], p['n'], p['tag']) for p in across] == [
        ('vm1', 'hv1', None, {}), ('hv1', 'hv2', 1, {'vni': 5001}),
        ('hv2', 'vm3', None, {}), ('vm3', 'hv2', None, {}),
        ('hv2', 'hv1', 1, {'vni': 5001}), ('hv1', 'vm1', None, {})]
    local = catalog.round_trip('vm1', 'hv1', 'hv1', 'vm2')
    assert [(p['src'], p['dst']) for p in local] == [
        ('vm1', 'hv1'), ('hv1', 'vm2'), ('vm2', 'hv1'), ('hv1', 'vm1')]


def test_frames_outside_the_capture_window_are_left_out():
    recs = [{'time': 0.9}, {'time': 1.0}, {'time': 1.5}, {'time': 2.1}]
    assert wire.within(recs, (1.0, 2.0)) == [{'time': 1.0}, {'time': 1.5}]


def test_capture_points_of_the_lanes():
    assert wire.capture_points(PLAN, ['vm1', 'hv1', 'gw1', 'seg1']) == [
        ('vm1', 'vm1', 'host', 'eth0'), ('hv1', 'hv1', 'uplink', 'leaf1'),
        ('gw1', 'gw1', 'uplink', 'leaf2'),
        ('gw1-seg', 'gw1', 'segment', 'seg1')]


def test_the_dfw_demo_sees_a_drop_where_the_frame_stops():
    """Act 2 (bm1 pings vm3, dropped at vm3's port on hv3): holds when
    the request reaches hv3 and goes no further; a copy delivered to vm3
    is named as what the rule should have stopped."""
    step = catalog.dfw_demo(PLAN)['acts'][1]['steps'][0]
    req = 'ICMP echo request'
    seen = [{'src': 'bm1', 'dst': 'vtep1', 'what': req, 'time': 1.0},
            {'src': 'vtep1', 'dst': 'hv3', 'what': req, 'vni': 5001,
             'time': 1.001}]
    assert steps.judge(step, seen, set())[1] == []
    leaked = seen + [{'src': 'hv3', 'dst': 'vm3', 'what': req,
                      'time': 1.002}]
    assert steps.judge(step, leaked, set())[1] == [
        "unexpected hv3 -> vm3 ICMP echo request (should not happen: rule "
        "ls1-deny drops it at VM3's port (ingress))"]
    assert steps.judge(step, seen[:1], set())[1] == [
        'expected vtep1 -> hv3 ICMP echo request VNI 5001, observed 0']


def test_the_dfw_demo_leaves_a_neighbour_probe_alone():
    """A demo run failed act 2 on vm3's kernel confirming its entry for
    bm1 (a unicast ARP probe ~5 s after the warm-up ping used it): the
    firewall filters IP, not ARP, so only the pings are judged."""
    step = catalog.dfw_demo(PLAN)['acts'][1]['steps'][0]
    req = 'ICMP echo request'
    seen = [{'src': 'bm1', 'dst': 'vtep1', 'what': req, 'time': 1.0},
            {'src': 'vtep1', 'dst': 'hv3', 'what': req, 'vni': 5001,
             'time': 1.001},
            {'src': 'vm3', 'dst': 'hv3', 'what': 'ARP request', 'time': 1.06},
            {'src': 'hv3', 'dst': 'vm3', 'what': 'ARP reply', 'time': 1.061}]
    assert steps.judge(step, seen, set())[1] == []
    answered = seen + [{'src': 'vm3', 'dst': 'hv3',
                        'what': 'ICMP echo reply', 'time': 1.003}]
    assert steps.judge(step, answered, set())[1] == [
        'unexpected vm3 -> hv3 ICMP echo reply (should not happen: VM3 '
        'never got it: no reply)']
