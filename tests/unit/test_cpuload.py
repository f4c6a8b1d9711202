"""Idle-window arithmetic: CPU per process kind, flaps, service-node-down
events; and the boot benchmark's overlay targets."""
from scenarios import bench_boot, cpuload


def test_breakdown_groups_by_role_and_program_and_drops_partial_processes():
    before = {1: ('ovs-vswitchd', 100), 2: ('ovs-vswitchd', 50),
              3: ('ovsdb-server', 10), 4: ('ovs-vswitchd', 0)}
    after = {1: ('ovs-vswitchd', 160), 2: ('ovs-vswitchd', 70),
             3: ('ovsdb-server', 15),
             5: ('ping', 500)}                  # started inside the window
    roles = {1: 'hypervisor', 2: 'hypervisor', 3: 'hypervisor', 4: 'leaf',
             5: 'vm'}
    got = cpuload.breakdown(before, after, roles, seconds=10, hz=100)
    assert got['by_kind'] == [
        {'role': 'hypervisor', 'program': 'ovs-vswitchd', 'pct': 8.0,
         'processes': 2},
        {'role': 'hypervisor', 'program': 'ovsdb-server', 'pct': 0.5,
         'processes': 1}]
    assert got['total_pct'] == 8.5


def test_flap_counts_sum_bfd_and_cfm():
    rows = [['vxsn1', ['map', [['flap_count', '3'], ['forwarding', 'true']]],
             ['set', []]],
            ['vxhv2', ['map', []], ['set', []]],
            ['seg1', ['map', []], 2]]
    assert cpuload.flap_counts(rows) == {'bfd': 3, 'cfm': 2}


def test_service_node_down_events_ignore_recoveries():
    log = ('x nsx.core INFO service nodes down: none\n'
           "x nsx.core INFO service nodes down: ['sn2']\n"
           "x nsx.core INFO service nodes down: ['sn1', 'sn2']\n")
    assert cpuload.service_node_down_events(log) == 2


def _row(fabric, **kw):
    row = {'fabric': fabric, 'transport_nodes': 100, 'vms': 400,
           'nodes': 539, 'start_s': 20, 'boot_s': 40, 'peak_rss_mb': 2500,
           'reachable_pairs': 4950, 'vtep_pairs': 4950, 'passed': True,
           'overlay_boot_s': 70, 'overlay_reachable': 394,
           'overlay_pairs': 394, 'idle_cpu_pct': 40.0,
           'idle_by_kind': [{'role': 'hypervisor', 'program': 'ovs-vswitchd',
                             'pct': 20.0, 'processes': 92}],
           'idle_bfd_flaps': 0, 'idle_cfm_flaps': 0,
           'idle_service_node_down_events': 0, 'bfd_interval_ms': 1300}
    row.update(kw)
    return row


def test_overlay_targets_at_100_transport_nodes():
    rows = [_row('vcf'), _row('clos', overlay_boot_s=None),
            _row('vcf', transport_nodes=10)]
    got = {t['what']: t['met'] for t in bench_boot.targets(rows, True)}
    assert got == {'vcf boot to overlay verified, s': True,
                   'vcf memory, MiB': True,
                   'vcf settled idle CPU, % of one core': False,
                   'clos boot to overlay verified, s': False,
                   'clos memory, MiB': True,
                   'clos settled idle CPU, % of one core': False}
    table = bench_boot.table(rows, True)
    assert table[1][-3:] == ('hypervisor ovs-vswitchd 20.0', 0, 0)
