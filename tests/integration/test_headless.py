"""Headless operation (short run; `./run.py scenario headless` runs 60 s):
no probe packet lost while the controller is dead or reconciling, and the
restarted controller changes no flow."""
import pytest

from .conftest import last_json, run_py


@pytest.mark.parametrize('topo', ['clos', 'vcf'])
def test_headless_loses_nothing(topo):
    r = run_py('scenario', 'headless', '--topo', topo, '--seconds', '5',
               '--json')
    res = last_json(r.stdout)
    assert r.returncode == 0, res['metrics']
    m = res['metrics']
    assert len(m['streams']) == 3
    for st in m['streams'].values():
        assert st['sent'] >= 20000 and st['lost'] == 0
        assert set(st['by_phase']) == {'before', 'headless', 'reconciling'}
    assert m['flow_changes_after_restart'] == []
    # counted by the controller itself: every switch had its first pass
    assert m['switches_reconciled'] >= 5 and \
        m['switches_not_reconciled'] == []
    assert all(c['passes'] >= 1 for c in
               m['first_pass_after_restart'].values())
