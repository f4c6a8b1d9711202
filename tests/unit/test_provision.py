"""Provisioning a lab through the API: the requests, in order."""
import pytest

from controllers import core, model, provision
from topologies import builders, expand, labs


def test_requests_create_switches_then_attach_every_vm():
    plan = expand.expand(builders.clos())
    reqs = provision.requests_for(plan)
    assert reqs[0] == ('POST', '/logical-switches', [
        {'name': 'ls1', 'vni': 5001, 'subnet': '10.1.0.0/16'},
        {'name': 'ls2', 'vni': 5002, 'subnet': '10.2.0.0/16'}])
    ports = {path: [b['attachment'] for b in bodies]
             for _, path, bodies in reqs if path.endswith('/ports')}
    assert sorted(sum(ports.values(), [])) == ['vm1', 'vm2', 'vm3', 'vm4',
                                               'vm5', 'vm6']
    assert 'vm1' in ports['/logical-switches/{ls:ls1}/ports']
    # srv1 is on seg1 in VLAN 100 (ls1): both gateways bridge it; the
    # hardware VTEPs bind their server ports (bm1 dual-homed: on both)
    assert reqs[-1] == ('POST', '/gateway-connections', [
        {'ls_id': '{ls:ls1}', 'gateway': g, 'port': 'seg1', 'vlan': 100}
        for g in ('gw1', 'gw2')] + [
        {'ls_id': '{ls:ls1}', 'gateway': v, 'port': port, 'vlan': 0}
        for v, port in (('vtep1', 'bm1'), ('vtep2', 'bm1'), ('vtep2', 'bm2'))])


def test_inventory_locates_each_vm_on_its_hypervisor_port():
    plan = expand.expand(builders.clos())
    inv, nodes = core.inventory_from_plan(plan)
    hv1_ports = {i['peer']: i['ofport'] for i in
                 plan['nodes']['hv1']['intfs']}
    assert inv['vm1'] == {'transport_node': 'hv1', 'ofport': hv1_ports['vm1'],
                          'mac': plan['nodes']['vm1']['mac'],
                          'ip': plan['nodes']['vm1']['ip']}
    assert nodes['hv1']['dpid'] == plan['nodes']['hv1']['index'] + 1
    assert set(nodes) == {n for n, p in plan['nodes'].items()
                          if 'tunnel_ip' in p}


@pytest.mark.parametrize('topo', sorted(labs.shipped()))
def test_every_shipped_lab_provisions_within_the_api_rules(topo):
    """What the API refuses (controllers.model) no shipped lab asks for:
    names, subnets, and each VM's MAC and address in its switch's subnet."""
    plan = expand.expand(labs.resolve(topo))
    for name, ls in plan['logical_switches'].items():
        model.check_name(name)
        subnet = model.check_subnet(ls.get('subnet'))
        for vm, p in plan['nodes'].items():
            if p['role'] == 'vm' and p.get('ls') == name:
                model.check_mac(p['mac'])
                if p.get('ip'):
                    model.check_ip(p['ip'], subnet, [])
