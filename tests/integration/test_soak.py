"""The fault soak, short (`./run.py soak --faults 100` is the full run):
seeded faults, each healed (every pair of a logical switch reaches, every
switch reconciled with the flows the controller installed, no controller
error), no frame across logical switches; --replay runs the same
sequence."""
import json

from .conftest import last_json, run_py


def test_a_short_soak_heals_every_fault_and_replays():
    r = run_py('soak', '--faults', '6', '--seed', '3', '--json', timeout=900)
    res = last_json(r.stdout)
    m = res['metrics']
    assert r.returncode == 0, m['problems']
    assert m['faults_planned'] == m['faults_survived'] == 6
    assert m['permanent_losses'] == 0 and m['cross_tenant_frames'] == 0
    assert m['frames_captured'] > 0 and m['pairs'] >= 10
    assert all(f['healed_s'] is not None and f['oracle']['unreached'] == []
               and f['oracle']['vteps'] == [] for f in m['faults'])
    # probe streams ran the whole soak (one per logical switch, 100/s),
    # and each gap names the fault it fell in (or none)
    p = m['probe']
    assert len(p['streams']) == 2 and all(n > 1000 for n in
                                          p['streams'].values()), p
    indices = {f['index'] for f in m['faults']}
    assert all(g['fault'] in indices | {None} and g['ms'] >= 100
               for g in p['gaps'])
    path = next(a for a in res['artifacts'] if a.endswith('result.json'))
    assert any(a.endswith('timeline.png') for a in res['artifacts'])
    r2 = run_py('soak', '--replay', path, '--json', timeout=900)
    m2 = last_json(r2.stdout)['metrics']
    assert r2.returncode == 0, m2['problems']
    with open(path) as f:
        assert m2['sequence'] == json.load(f)['metrics']['sequence']
    assert [f['what'] for f in m2['faults']] == \
        [f['what'] for f in m['faults']]
