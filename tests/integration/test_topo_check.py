"""`./run.py topo --check --json` on both small labs, as a user runs it."""
import pytest

from topologies import records

from .conftest import last_json, run_py


@pytest.mark.parametrize('topo', ['clos', 'vcf'])
def test_topo_check_passes_and_reports_metrics(topo):
    r = run_py('topo', '--topo', topo, '--check', '--json')
    assert r.returncode == 0, r.stdout + r.stderr
    res = last_json(r.stdout)
    assert res['name'] == 'topo-check' and res['passed'] is True
    assert res['topology'] == f'{topo}-small'
    m = res['metrics']
    for key in ('boot_s', 'nodes', 'links', 'vtep_pairs', 'reachable_pairs',
                'peak_rss_mb'):
        assert key in m, key
    assert m['vtep_pairs'] > 0 and m['reachable_pairs'] == m['vtep_pairs']
    assert m['boot_s'] > 0 and m['peak_rss_mb'] > 0
    if topo == 'clos':
        assert m['ecmp_min_paths'] == m['spines'] == 2
    assert res['artifacts'] and res['artifacts'][0].endswith('result.json')
    left = records.leftovers()
    assert not left['namespaces'] and not left['links'], left
