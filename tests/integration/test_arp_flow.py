"""Figures 9-11 reproduced with packets, on both fabrics."""
import os

import pytest

from .conftest import last_json, run_py


@pytest.mark.parametrize('topo', ['clos', 'vcf'])
def test_arp_flow_matches_the_whitepaper(topo):
    r = run_py('scenario', 'arp-flow', '--topo', topo, '--json')
    res = last_json(r.stdout)
    assert r.returncode == 0, '\n'.join(res['metrics']['hops']) + str(
        res['metrics']['checks'])
    assert res['passed'] and len(res['metrics']['checks']) == 9
    assert all(c['held'] for c in res['metrics']['checks'])
    pcaps = [a for a in res['artifacts'] if a.endswith('.pcap')]
    assert len(pcaps) == 13 and all(os.path.getsize(p) > 24 for p in pcaps
                                    if 'vm4' not in p and 'vm5' not in p)
