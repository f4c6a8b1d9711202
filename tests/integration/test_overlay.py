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
