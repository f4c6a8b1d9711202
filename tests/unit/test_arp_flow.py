"""arp-flow's verdicts from synthetic captures: the claims fail when the
packets say otherwise."""
from scenarios import arp_flow
from topologies import expand


def setup():
    plan = expand.expand(arp_flow.spec('clos'))
    n = plan['nodes']
    ip = {k: p['tunnel_ip'].split('/')[0] for k, p in n.items()
          if 'tunnel_ip' in p}
    arp = {'psrc': n['vm1']['ip'].split('/')[0],
           'pdst': n['s']['ip'].split('/')[0]}
    return plan, n, ip, arp


def frame(t, src_mac, op, **kw):
    return dict(time=t, src=src_mac, dst='ff:ff:ff:ff:ff:ff', arp=op, **kw)


def good_frames(plan, n, ip, arp):
    req = lambda t, **kw: frame(t, n['vm1']['mac'], 'request', **arp, **kw)
    rep = {'psrc': arp['pdst'], 'pdst': arp['psrc']}
    reply = lambda t, **kw: frame(t, n['s']['mac'], 'reply', **rep, **kw)
    tun = lambda a, b: {'outer_src': ip[a], 'outer_dst': ip[b], 'vni': 5001}
    return {'vm1': [req(1), reply(9)], 'vm2': [req(2)], 'vm3': [req(4)],
            'vm4': [], 'vm5': [], 's': [req(5), reply(6)],
            'hv1': [req(2, **tun('hv1', 'sn1')), reply(8, **tun('gw1', 'hv1'))],
            'sn1': [req(3, **tun('hv1', 'sn1')), req(3, **tun('sn1', 'hv2')),
                    req(3, **tun('sn1', 'gw1'))],
            'sn2': [], 'hv2': [req(4, **tun('sn1', 'hv2'))], 'hv3': [],
            'gw1': [req(4, **tun('sn1', 'gw1')), reply(7, **tun('gw1', 'hv1'))],
            'gw1-seg': [req(5, vlan=100), reply(6, vlan=100)]}


def test_the_whitepaper_flow_passes_every_check():
    plan, n, ip, arp = setup()
    claims = arp_flow.checks(arp_flow.hops(plan, good_frames(plan, n, ip,
                                                             arp)))
    assert [c for c, ok in claims if not ok] == []


def test_flooding_to_hv3_or_replying_via_a_service_node_fails():
    plan, n, ip, arp = setup()
    frames = good_frames(plan, n, ip, arp)
    frames['hv3'].append(dict(frames['hv2'][0], outer_dst=ip['hv3']))
    frames['sn1'].append(dict(frames['sn1'][1], outer_dst=ip['hv3']))
    rep = dict(frames['gw1'][1], outer_dst=ip['sn1'])
    frames['gw1'][1] = rep
    failed = [c for c, ok in arp_flow.checks(arp_flow.hops(plan, frames))
              if not ok]
    assert 'HV3 (no member of logical switch 1) gets nothing' in failed
    assert 'the service node relays it to HV2 and the gateway only' in failed
    assert "S's unicast reply is tunnelled by the gateway straight to HV1" \
        in failed
