"""Figures 14-16 reproduced with packets and the VTEP's tables, on both
fabrics."""
import pytest

from .conftest import last_json, run_py


@pytest.mark.parametrize('topo', ['clos', 'vcf'])
def test_hw_arp_flow_matches_the_whitepaper(topo):
    r = run_py('scenario', 'hw-arp-flow', '--topo', topo, '--json')
    res = last_json(r.stdout)
    assert r.returncode == 0, '\n'.join(res['metrics']['hops']) + str(
        res['metrics']['checks'])
    m = res['metrics']
    assert len(m['checks']) == 8 and all(c['held'] for c in m['checks'])
    assert m['mac5_learned_after_reply_s'] is not None
    assert m['mac5_installed_after_learned_s'] is not None
    assert any(a.endswith('vtep1-tables.txt') for a in res['artifacts'])
