"""Benchmarks' pure helpers."""
from scenarios import bench_vtep
from scenarios.bench_boot import steal_pct


def test_steal_is_the_share_of_cpu_time_the_hypervisor_kept():
    # user nice system idle iowait irq softirq steal guest guest_nice
    before = [100, 0, 50, 800, 0, 0, 0, 50, 10, 0]
    after = [160, 0, 80, 890, 0, 0, 0, 70, 20, 0]   # 200 ticks, 20 stolen
    assert steal_pct(before, after) == 10.0
    assert steal_pct(before, before) is None


def test_the_bench_table_shows_every_device_and_steal():
    s = {'p50': 1, 'p95': 2, 'max': 3}
    rows = bench_vtep.table({'native': {
        'learn local_ms': s, 'learn installed_ms': s,
        'remote applied_ms': s, 'idle_cpu_pct': 0.1, 'cpu_steal_pct': 4.0}})
    assert rows[0][-1] == 'CPU steal %'
    assert rows[1] == ('native', '1 / 2 / 3', '-', '1 / 2 / 3', '1 / 2 / 3',
                       0.1, 4.0)


def test_the_controllers_share_is_row_seen_to_every_hypervisor():
    fig = {'learn': [{'local_ms': 5.0, 'installed_ms': 20.0},
                     {'local_ms': 7.0, 'installed_ms': 30.5},
                     {'local_ms': 6.0, 'installed_ms': None}],
           'remote': []}
    s = bench_vtep.summarize(fig)
    assert s['learn local_to_installed_ms']['max'] == 23.5
    assert s['learn local_to_installed_ms']['p50'] in (15.0, 23.5)
    assert s['learn installed_ms missing'] == 1
