"""Liveness sized to the lab: which service nodes an edge runs BFD to (and
floods through), and the BFD interval a lab gets by default."""
from controllers import intent, model
from topologies import expand, labs, liveness

from .fakeofswitch import forward

BCAST = 'ff:ff:ff:ff:ff:ff'


def nodes(n_sn, n_hv):
    out = {f'sn{i}': {'role': 'service_node', 'index': i,
                      'tunnel_ip': f'1.0.0.{i}'} for i in range(1, n_sn + 1)}
    out.update({f'hv{i}': {'role': 'hypervisor', 'index': 10 + i,
                           'tunnel_ip': f'1.0.1.{i}'}
                for i in range(1, n_hv + 1)})
    out['vtep1'] = {'role': 'hw_vtep', 'index': 50, 'tunnel_ip': '1.0.2.1',
                    'ports': {}}
    return out


def test_two_service_nodes_every_edge_uses_both_in_index_order():
    chosen = liveness.service_nodes_of_edges(nodes(2, 3))
    assert chosen == {f'hv{i}': ['sn1', 'sn2'] for i in (1, 2, 3)}


def test_with_more_service_nodes_each_edge_uses_two_spread_evenly():
    chosen = liveness.service_nodes_of_edges(nodes(4, 8))
    assert all(len(v) == 2 and len(set(v)) == 2 for v in chosen.values())
    assert chosen['hv1'] == ['sn1', 'sn2'] and chosen['hv4'] == ['sn4', 'sn1']
    primaries = [v[0] for v in chosen.values()]
    assert {s: primaries.count(s) for s in set(primaries)} == {
        'sn1': 2, 'sn2': 2, 'sn3': 2, 'sn4': 2}


def test_default_interval_keeps_small_labs_at_100_ms_and_grows_with_size():
    def interval(topo):
        return expand.expand(labs.resolve(topo))['bfd_interval_ms']
    assert interval('clos') == interval('vcf') == 100
    assert 100 < interval('clos-large') < interval('vcf-large') <= 10000
    big = expand.expand(labs.resolve('vcf-large'))
    roles = {n: p['role'] for n, p in big['nodes'].items()}
    pps = 2 * liveness.bfd_sessions(roles) * 1000 / big['bfd_interval_ms']
    assert pps <= liveness.BUDGET_PPS
    # 92 hypervisors + 3 gateways to 2 service nodes each, the pod VTEP to 4
    assert liveness.bfd_sessions(roles) == 95 * 2 + 4


def test_a_lab_can_set_its_interval():
    spec = labs.resolve('clos')
    spec = dict(spec, bfd_interval_ms=250)
    assert expand.expand(spec)['bfd_interval_ms'] == 250


def _store(n):
    s = model.Store(inventory={
        'vm1': {'transport_node': 'hv4', 'ofport': 2,
                'mac': '02:00:00:00:00:01'},
        'vm2': {'transport_node': 'hv5', 'ofport': 2,
                'mac': '02:00:00:00:00:02'}}, nodes=n)
    ls = s.create_ls({'name': 'ls1', 'vni': 5001})
    for vm in ('vm1', 'vm2'):
        s.attach(ls['id'], {'attachment': vm})
    return s


def test_edge_runs_bfd_and_floods_only_through_its_own_service_nodes():
    n = nodes(4, 5)
    desired = _store(n).desired()
    t = intent.tunnels(desired, 'hv4')              # 4th edge: sn4, sn1
    assert {p for p, x in t.items() if x['bfd']} == {'sn4', 'sn1'}
    flows, groups = intent.device_intent(desired, 'hv4')
    port = {s: intent.tunnel_port(n, s) for s in n}
    out = forward(flows, groups, {'in_port': 2, 'eth_dst': BCAST})
    assert out == [(port['sn4'], 5001)]
    live = {2, port['sn1'], port['sn2'], port['sn3']}   # sn4 down
    out = forward(flows, groups, {'in_port': 2, 'eth_dst': BCAST}, live)
    assert out == [(port['sn1'], 5001)]
    # the service nodes' side matches: BFD towards the edges that chose
    # them, and towards every hardware VTEP
    sn4 = intent.tunnels(desired, 'sn4')
    assert {p for p, x in sn4.items() if x['bfd']} == {'hv3', 'hv4',
                                                        'vtep1'}


def test_hardware_vtep_gets_the_lab_interval_for_every_service_node():
    n = nodes(4, 2)
    want = intent.vtep_intent(_store(n).desired(), 'vtep1', bfd_ms=1300)
    assert want['bfd'] == {f'1.0.0.{i}': {'enable': 'true', 'min_rx': '1300',
                                          'min_tx': '1300'}
                           for i in range(1, 5)}


def test_reporters_cover_each_service_node_three_times():
    assert liveness.reporters(nodes(2, 8)) == [f'hv{i}' for i in range(1, 6)]
    got = liveness.reporters(nodes(4, 20))
    chosen = liveness.service_nodes_of_edges(nodes(4, 20))
    assert len(got) == 7 and all(
        sum(sn in chosen[e] for e in got) >= 3 for sn in ('sn1', 'sn2', 'sn3',
                                                          'sn4'))
