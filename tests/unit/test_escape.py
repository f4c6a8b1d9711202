"""The tenant-escape phase's attacks and verdict (pure; the lab run is
tests/integration/test_measured_scenarios.py)."""
from scapy.all import VXLAN, Dot1Q, Ether, IP

from scenarios import escape
from topologies import expand, labs


def plan():
    return expand.expand(labs.resolve('itaas'))


def test_every_attack_carries_its_own_marker_and_is_well_formed():
    p = plan()
    got = escape.attacks(p)
    ids = [a['id'] for a in got]
    assert len(ids) == len(set(ids)) >= 11
    for a in got:
        raw = bytes.fromhex(a['hex'][0])
        assert escape.MARK + a['id'].encode() in raw
        if a['send'][0] == 'packets':         # an IPv4 packet to a VTEP
            pkt = IP(raw)
            assert pkt[VXLAN].vni in (6002, escape.PROBE_LS['vni'])
            assert a['send'][1] == pkt.dst
        else:
            Ether(raw)
    by = {a['id']: a for a in got}
    hop = Ether(bytes.fromhex(by['server-double-tag']['hex'][0]))
    assert [hop[Dot1Q].vlan, hop[Dot1Q].payload.vlan] == [101, 102]
    forged = IP(bytes.fromhex(by['underlay-forged-nonmember']['hex'][0]))
    assert forged.src == p['nodes']['hv1']['tunnel_ip'].split('/')[0]
    assert {a['judge'] for a in got} == {'foreign', 'absent', 'control'}


def test_judge_flags_a_crossing_and_a_missing_control():
    p = plan()
    got = escape.attacks(p)
    tenant_of = {h: q['ls'] for h, q in p['nodes'].items()
                 if q['role'] in ('vm', 'bare_metal')}
    clean = {'vm-spoofed-source': {'ta2', 'tap'},
             'control-service-node': {'gw1-seg1'},
             'control-forged-member': {'tb2'}}
    v = {x['id']: x for x in escape.judge(got, clean, tenant_of)}
    assert all(x['ok'] for x in v.values())
    assert v['vm-spoofed-source']['seen_at'] == ['ta2', 'tap']
    dirty = dict(clean, **{'server-vlan-hop': {'tbp'},
                           'underlay-forged-nonmember': {'gw1-seg1'},
                           'underlay-no-vtep': {'tb2'}})
    dirty.pop('control-forged-member')
    v = {x['id']: x for x in escape.judge(got, dirty, tenant_of)}
    assert v['server-vlan-hop']['crossed'] == ['tbp']
    assert v['underlay-forged-nonmember']['crossed'] == ['gw1-seg1']
    assert v['underlay-no-vtep']['crossed'] == ['tb2']
    assert not v['control-forged-member']['ok']
    assert v['control-service-node']['ok']
