"""hw-gateway-failover's pure helpers, on the shipped labs' plans."""
from controllers import intent
from scenarios import hw_gateway_failover as hgf
from topologies import expand, labs


def test_the_failed_switch_is_the_one_behind_the_bond_primary():
    clos = expand.expand(labs.resolve('clos'))
    vcf = expand.expand(labs.resolve('vcf'))
    assert hgf.leaf_of(clos) == 'vtep1'       # a VTEP per leaf
    assert hgf.leaf_of(vcf) == 'leaf1'        # a line card of the pod VTEP
    assert hgf.leaf_of(clos, 'eth1') == 'vtep2'


def test_tunnel_ports_map_back_to_their_vtep():
    plan = expand.expand(labs.resolve('clos'))
    port = intent.TUNNEL_BASE + plan['nodes']['vtep2']['index']
    assert hgf.vtep_of_port(plan, port) == 'vtep2'
    assert hgf.vtep_of_port(plan, None) is None


def test_the_peer_vm_sits_behind_the_surviving_leaf():
    for topo in ('clos', 'vcf'):
        plan = expand.expand(labs.resolve(topo))
        hv = plan['nodes'][hgf.PEER]['intfs'][0]['peer']
        assert plan['nodes'][hv]['intfs'][0]['peer'] == 'leaf2'
        assert plan['nodes'][hgf.PEER]['ls'] == \
            plan['nodes'][hgf.SERVER]['ls']
