"""CI's short run of `./run.py bench vtep`: both hardware VTEP devices on
the same lab, every measurement taken and written (the figures themselves
are the benchmark's, in the README, not asserted here)."""
import json
import os

from .conftest import last_json, run_py


def test_bench_vtep_measures_both_devices():
    # small scale steps: OVS's emulator, polling each second, took 22 s
    # for 1,000 MACs and 63 s for 100 bindings (the suite's budget)
    r = run_py('bench', 'vtep', '--macs', '10', '--changes', '5', '--idle',
               '5', '--scale-macs', '200', '--scale-bindings', '20',
               '--json', timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = last_json(r.stdout)
    m = res['metrics']
    assert set(m['summary']) == {'native', 'ovs-vtep'}
    for device, fig in m['devices'].items():
        assert len(fig['learn']) == 10 and fig['learn_complete'], device
        assert all(x['installed_ms'] is not None for x in fig['learn'])
        assert [x['change'] for x in fig['remote']] == ['add', 'delete'] * 5
        assert all(x['applied_ms'] is not None for x in fig['remote'])
        assert fig['scale']['remote_macs']['applied_s'] is not None
        assert fig['scale']['bindings']['applied_s'] is not None
        assert fig['scale']['bindings']['reported'] == 20
        assert fig['idle_cpu_pct']['device'] >= 0
    assert {t['what'] for t in m['targets']} >= {
        'learned -> installed on every hypervisor, p95 ms',
        'Ucast_Macs_Remote change -> forwarding, p95 ms'}
    for a in res['artifacts']:
        assert os.path.getsize(a) > 0, a
    with open(next(a for a in res['artifacts']
                   if a.endswith('result.json'))) as f:
        assert json.load(f)['metrics']['summary'] == m['summary']
