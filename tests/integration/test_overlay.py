"""With the controller: VMs of a logical switch reach each other over VXLAN
across hypervisors, other logical switches get no ARP, no controller
error. Provisioned through the NSX API, as run.py always does."""
import pytest

from .conftest import last_json, run_py


@pytest.mark.parametrize('topo', ['clos', 'vcf'])
def test_overlay_through_the_controller(topo):
    r = run_py('topo', '--topo', topo, '--check', '--overlay', '--json')
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = last_json(r.stdout)['metrics']
    assert m["overlay_pairs"] == 5 and m["overlay_reachable"] == 5
    assert m['isolation_probes'] == 2 and m['isolation_leaks'] == []
    assert m['controller_errors'] == []
    assert any(a.endswith('controller.log')
               for a in last_json(r.stdout)['artifacts'])


def test_mid_size_vcf_lab_with_the_controller_settles():
    """25 transport nodes (19 hypervisors, 3 service nodes: each edge runs
    BFD to 2 of them), 76 VMs: every VM pair, no leak, then a settled lab:
    no BFD/CFM flap, no service node declared down, CPU bounded (loosely:
    the figure is the benchmark's, ./run.py bench boot --overlay)."""
    r = run_py('topo', '--topo', 'vcf', '--spines', '2', '--leaves', '8',
               '--hypervisors', '19', '--vms', '76', '--service-nodes', '3',
               '--gateways', '2', '--check', '--overlay', '--idle', '20',
               '--json')
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    m = last_json(r.stdout)['metrics']
    assert m['transport_nodes'] == 25 and m['vms'] == 76
    assert m['overlay_pairs'] >= 74 and \
        m['overlay_reachable'] == m['overlay_pairs']
    assert m['isolation_leaks'] == [] and m['controller_errors'] == []
    assert m['idle_s'] >= 19 and m['idle_by_kind'], m
    assert m['idle_bfd_flaps'] == 0 and m['idle_cfm_flaps'] == 0, m
    assert m['idle_service_node_down_events'] == 0, m
    assert 0 < m['idle_cpu_pct'] < 100, m['idle_by_kind']
