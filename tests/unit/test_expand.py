"""Expansion: golden files (spec -> plan) and addressing invariants."""
import ipaddress

import pytest

from topologies import builders, expand, labs

from . import goldens


@pytest.mark.parametrize('lab', ['clos-small', 'vcf-small'])
def test_plan_matches_golden_file(lab):
    assert goldens.matches(f'{lab}.plan.json',
                           expand.expand(labs.resolve(lab)))


@pytest.mark.parametrize('spec', [builders.clos(), builders.vcf(),
                                  builders.clos(spines=4, leaves=8,
                                                hypervisors=24, vms=96)])
def test_addresses_and_macs_are_unique(spec):
    plan = expand.expand(spec)
    nodes = plan['nodes'].values()
    ips = [i['ip'].split('/')[0] for n in nodes for i in n['intfs']
           if i.get('ip')]
    ips += [n['tunnel_ip'].split('/')[0] for n in nodes if 'tunnel_ip' in n]
    ips += [n['mgmt_ip'].split('/')[0] for n in nodes if 'mgmt_ip' in n]
    assert len(ips) == len(set(ips))
    macs = [n[k] for n in nodes for k in ('mac', 'tunnel_mac') if k in n]
    assert len(macs) == len(set(macs))
    for n in nodes:
        names = [i['name'] for i in n['intfs']]
        assert len(names) == len(set(names)), n['name']
        assert all(len(x) <= 15 for x in names)


def test_clos_addressing_follows_the_design():
    plan = expand.expand(builders.clos())
    n = plan['nodes']
    assert n['spine1']['asn'] == n['spine2']['asn'] == 65000
    leaf_asns = [n[x]['asn'] for x in ('leaf1', 'leaf2')]
    assert len(set(leaf_asns)) == 2 and 65000 not in leaf_asns
    hv = n['hv1']
    tunnel = ipaddress.ip_interface(hv['tunnel_ip'])
    assert tunnel.network.prefixlen == 31
    assert ipaddress.ip_address(hv['gateway']) in tunnel.network
    assert tunnel in ipaddress.ip_network('198.19.64.0/18') or \
        tunnel.ip in ipaddress.ip_network('198.19.64.0/18')
    # management: root is .1, nodes from .2; hosts are not on management
    assert plan['mgmt']['root_ip'] == '198.18.0.1/16'
    assert 'mgmt_ip' not in n['vm1']


@pytest.mark.parametrize('device', ['native', 'ovs-vtep'])
def test_vcf_is_one_transport_subnet_with_one_pod_vtep(device):
    plan = expand.expand(builders.vcf(vtep_device=device))
    n = plan['nodes']
    nets = {ipaddress.ip_interface(p['tunnel_ip']).network
            for p in n.values() if 'tunnel_ip' in p}
    assert len(nets) == 1
    assert all('gateway' not in p for p in n.values())
    vtep_ports = [i['name'] for i in n['vtep1']['intfs']
                  if i['kind'] == 'physical']
    assert vtep_ports == ['leaf1p1', 'leaf2p1', 'leaf2p2']
    assert n['bm1']['bond'] and n['bm1']['host_bridge']
    xc = {i['name']: i.get('xconnect') for i in n['leaf1']['intfs']}
    if device == 'ovs-vtep':      # the leaf extends its port to the VTEP
        assert xc['bm1'] == 'xbm1' and xc['xbm1'] == 'bm1'
        assert n['vtep1']['uplink'] == 'spine1'
        return
    # native: the leaves with servers are the pod VTEP's members; its ports
    # are their server ports, and the pod VTEP has no cable of its own
    assert n['vtep1']['pod'] and n['vtep1']['members'] == ['leaf1', 'leaf2']
    assert 'uplink' not in n['vtep1'] and not any(
        lk['a'] == 'vtep1' or lk['b'] == 'vtep1' for lk in plan['links'])
    assert [(i['member'], i['peer_intf']) for i in n['vtep1']['intfs']] == [
        ('leaf1', 'bm1'), ('leaf2', 'bm1'), ('leaf2', 'bm2')]
    assert {i['name']: i.get('pod_port') for i in n['leaf2']['intfs']
            if i['kind'] == 'physical'} == {'bm1': 'leaf2p1',
                                            'bm2': 'leaf2p2'}
    inst = n['leaf1']['pod_vtep']
    assert inst['phy_ofport'] > len(n['leaf1']['intfs'])


def test_hosts_get_ips_from_their_logical_switch():
    plan = expand.expand(builders.clos())
    hosts = [n for n in plan['nodes'].values() if n.get('ls') == 'ls1']
    # members in natural name order take .11, .12, ...
    assert [h['name'] for h in hosts][:1] == ['bm1']
    assert sorted(h['ip'] for h in hosts)[0] == '10.1.0.11/16'
    assert len({h['ip'] for h in hosts}) == len(hosts)
    assert plan['nodes']['vm2']['ip'].startswith('10.2.0.')


@pytest.mark.parametrize('spec', [builders.clos(), builders.vcf()])
def test_link_kinds_follow_the_roles(spec):
    """fabric: spine-leaf; access: fabric-transport node (underlay, MTU
    1600); everything else carries hosts' frames (MTU 1500)."""
    plan = expand.expand(spec)
    roles = {n: p['role'] for n, p in plan['nodes'].items()}
    for n, p in plan['nodes'].items():
        for i in p['intfs']:
            pair = {roles[n], roles[i['peer']]}
            if pair == {'spine', 'leaf'}:
                assert i['kind'] == 'fabric'
            elif i['kind'] == 'access':
                assert pair & {'spine', 'leaf'} and 'uplink' in (
                    p if roles[n] not in ('spine', 'leaf')
                    else plan['nodes'][i['peer']])
            else:
                assert i['kind'] in ('host', 'physical', 'extension'), (n, i)
    for lk in plan['links']:
        kinds = {i['kind'] for i in plan['nodes'][lk['a']]['intfs']
                 if i['name'] == lk['a_intf']}
        assert lk['mtu'] == (plan['mtu'] if kinds & {'fabric', 'access'}
                             else 1500), lk
