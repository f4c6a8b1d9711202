"""The fault catalog and the soak's oracle (pure parts)."""
import pytest

from scenarios import faults, soak
from topologies import builders, expand


@pytest.fixture(scope='module')
def plan():
    return expand.expand(builders.clos())


def test_the_same_seed_gives_the_same_faults(plan):
    a = faults.schedule(plan, 100, seed=7)
    assert a == faults.schedule(plan, 100, seed=7)
    assert a != faults.schedule(plan, 100, seed=8)
    assert len(a) == 100
    kinds = {f['kind'] for f in a}
    # one controller: nothing to isolate from the others
    assert kinds == set(faults.KINDS) - {'isolate'}, kinds
    for f in a:
        faults.check(f, plan)                 # every target exists
        if f['kind'] == 'several':
            ts = [p['target'] for p in f['faults']]
            assert len(ts) == len(set(ts)) >= 2
            assert 'controller' not in {p['kind'] for p in f['faults']}


def test_targets_are_the_labs_devices_and_links(plan):
    t = faults.targets(plan)
    assert 'hv1' in t['crash'] and 'vtep1' in t['crash']
    assert 'vm1' not in t['crash'] and 'spine1' not in t['crash']
    assert any(x.startswith('spine1-') for x in t['cut'])
    assert t['controller'] == ['controller']


def test_a_clusters_nodes_are_targets_and_one_controller_keeps_its_draws(
        plan):
    cplan = expand.expand(dict(builders.clos(), controllers=3))
    t = faults.targets(cplan)
    assert t['controller'] == t['isolate'] == ['ctl1', 'ctl2', 'ctl3']
    assert faults.targets(plan)['isolate'] == []
    assert faults.describe({'kind': 'controller', 'target': 'ctl2'}) == \
        'kill controller node ctl2 (controller and etcd member)'
    assert faults.describe({'kind': 'isolate', 'target': 'ctl2'}) == \
        'cut controller node ctl2 off from the other nodes'
    ip = {n: c['mgmt_ip'].split('/')[0]
          for n, c in cplan['controllers'].items()}
    assert faults.isolation_routes(cplan, 'ctl2') == [
        ('ctl2', ip['ctl1']), ('ctl1', ip['ctl2']),
        ('ctl2', ip['ctl3']), ('ctl3', ip['ctl2'])]
    with pytest.raises(ValueError, match="no target 'ctl1'"):
        faults.check({'kind': 'isolate', 'target': 'ctl1'}, plan)


@pytest.mark.parametrize('bad, text', [
    ({'kind': 'melt', 'target': 'hv1'}, 'kind must be one of'),
    ({'kind': 'crash', 'target': 'vm1'}, "no target 'vm1'"),
    ({'kind': 'cut', 'target': 'hv1-hv2'}, "no target 'hv1-hv2'"),
    ({'kind': 'several', 'faults': [{'kind': 'crash', 'target': 'hv1'}]},
     'two or more'),
])
def test_a_bad_fault_is_named(plan, bad, text):
    with pytest.raises(ValueError, match=text):
        faults.check(bad, plan)


def test_describe_reads_like_what_happens():
    assert faults.describe({'kind': 'several', 'faults': [
        {'kind': 'crash', 'target': 'gw1'},
        {'kind': 'cut', 'target': 'leaf1-hv1'}]}) == \
        'crash gw1 (kill -9) + cut link leaf1-hv1'


def test_pairs_stay_inside_a_logical_switch(plan):
    ps = soak.pairs(plan)
    n = plan['nodes']
    assert ps and all(n[a]['ls'] == n[b]['ls'] for a, b, _ in ps)
    assert len({(a, b) for a, b, _ in ps}) == len(ps)


def test_a_frame_from_another_switch_is_foreign(plan):
    n = plan['nodes']
    ls1 = [h for h, p in n.items() if p.get('ls') == 'ls1'
           and p['role'] == 'vm']
    ls2 = [h for h, p in n.items() if p.get('ls') == 'ls2'
           and p['role'] == 'vm']
    frames = {ls1[0]: [{'src': n[ls1[1]]['mac']}, {'src': n[ls2[0]]['mac']},
                       {'src': '02:99:99:99:99:99'}]}
    got = soak.foreign_frames(frames, plan)
    assert len(got) == 1 and ls2[0] in got[0]


def test_switch_problems_name_the_switch_and_the_difference(plan):
    sws = [n for n, p in plan['nodes'].items()
           if p['role'] in soak.SWITCH_ROLES]
    status = {'switches': {n: {'connected': True, 'flows': 10}
                           for n in sws}}
    assert soak.switch_problems(status, {n: 10 for n in sws}, plan) == []
    status['node_ovsdb'] = {'nodes': {'hv1': {'connected': False}}}
    assert soak.switch_problems(status, {n: 10 for n in sws}, plan) == [
        'hv1: no OVSDB session to the controller']
    status.pop('node_ovsdb')
    status['switches'][sws[0]]['flows'] = None
    status['switches'].pop(sws[1])
    got = soak.switch_problems(status, dict({n: 10 for n in sws},
                                            **{sws[2]: 12}), plan)
    assert sorted(got) == sorted([
        f'{sws[0]}: not reconciled yet',
        f'{sws[1]}: no OpenFlow session to the controller',
        f'{sws[2]}: 12 flows on br-int, the controller installed 10'])


def test_vtep_problems_compare_tables_with_the_controllers_view(plan):
    vteps = sorted(n for n, p in plan['nodes'].items()
                   if p['role'] == 'hw_vtep')
    assert len(vteps) >= 1

    def ok(name):
        return {'name': name, 'connected': True, 'pending_ops': 0,
                'counts': {'remote_macs': 7}}
    status = {'hardware_vteps': [ok(v) for v in vteps]}
    assert soak.vtep_problems(status, {v: 7 for v in vteps}, plan) == []
    first = status['hardware_vteps'][0]
    first['pending_ops'] = 2
    assert soak.vtep_problems(status, {v: 7 for v in vteps}, plan) == [
        f"{vteps[0]}: 2 change(s) between its tables and the controller's "
        'view']
    first['pending_ops'] = 0
    # the database, read directly, disagrees with the controller's replica
    # (or could not be read)
    assert soak.vtep_problems(status, {vteps[0]: 9}, plan)[0] == \
        f"{vteps[0]}: 9 remote MACs in its database, the controller's " \
        'replica has 7'
    first['pending_ops'] = None
    assert soak.vtep_problems(status, {v: 7 for v in vteps}, plan)[0] == \
        f'{vteps[0]}: not compared with the controller yet'
    # a VTEP the controller does not follow, or no session
    assert soak.vtep_problems({'hardware_vteps': []}, {}, plan) == [
        f'{v}: no OVSDB session to the controller' for v in vteps]


def test_report_and_timeline_from_a_soak_log(tmp_path):
    log = [{'index': 1, 'fault': {'kind': 'crash', 'target': 'hv1'},
            'what': 'crash hv1 (kill -9)', 'applied': 1.0, 'repaired': 3.0,
            'healed_s': 2.5},
           {'index': 2, 'fault': {'kind': 'cut', 'target': 'leaf1-hv1'},
            'what': 'cut link leaf1-hv1', 'applied': 7.0, 'repaired': 9.0,
            'healed_s': None}]
    gaps = soak.probe_gaps({'vm1-vm3': [100.0, 101.0, 101.01, 109.5]},
                           100.0, log, 60)
    m = {'seed': 1, 'faults_survived': 1, 'faults_planned': 2,
         'permanent_losses': 1, 'cross_tenant_frames': 0,
         'frames_captured': 40, 'pairs': 12, 'faults': log,
         'by_kind': soak._by_kind(log), 'problems': ['fault 2 not healed'],
         'probe': {'rate': 100, 'min_gap_ms': 100.0,
                   'streams': {'vm1-vm3': 4}, 'gaps': gaps,
                   'by_kind': soak.gaps_by_kind(gaps)}}
    md = open(soak.report(m, 'clos', str(tmp_path))).read()
    assert '| crash | 1 | 1 | 2.5 / 2.5 / 2.5 |' in md
    assert '| cut | 1 | 0 | - |' in md and 'fault 2 not healed' in md
    # 100.0 -> 101.0 before any fault; 101.01 -> 109.5 during the crash
    assert '| outside faults | 1 | 1000 |' in md
    assert '| crash | 1 | 8490 |' in md
    assert '| vm1-vm3 | 1.0 | 8490 | 1 |' in md
    png = soak.timeline(log, str(tmp_path), gaps)
    assert open(png, 'rb').read(8) == b'\x89PNG\r\n\x1a\n'


def test_probe_gaps_fall_in_the_fault_they_happened_in():
    log = [{'index': 1, 'fault': {'kind': 'crash'}, 'applied': 10.0,
            'repaired': 12.0, 'healed_s': 1.0},
           {'index': 2, 'fault': {'kind': 'cut'}, 'applied': 20.0,
            'repaired': 22.0, 'healed_s': None},
           {'index': 3, 'fault': {'kind': 'down'}, 'error': 'no such'}]
    assert soak.fault_windows(log, 60) == [(1, 'crash', 10.0, 13.0),
                                           (2, 'cut', 20.0, 82.0)]
    t0 = 1000.0
    times = {'a-b': [t0 + x for x in (1.0, 1.01, 10.5, 10.51, 16.0)],
             'c-d': [t0 + x for x in (1.0, 1.01, 1.02)]}
    gaps = soak.probe_gaps(times, t0, log, 60)
    assert gaps == [
        {'stream': 'a-b', 'at': 1.01, 'ms': 9490.0, 'fault': None,
         'kind': None},
        {'stream': 'a-b', 'at': 10.51, 'ms': 5490.0, 'fault': 1,
         'kind': 'crash'}]
    assert soak.gaps_by_kind(gaps) == {
        'outside faults': {'gaps': 1, 'longest_ms': 9490.0},
        'crash': {'gaps': 1, 'longest_ms': 5490.0}}


def test_a_stream_that_delivered_nothing_at_an_end_fails_the_soak():
    ts = {'a-b': [100.5, 150.0, 199.0], 'c-d': [100.5, 120.0],
          'e-f': []}
    assert soak.stream_problems(ts, 100.0, 200.0) == [
        'probe stream c-d: nothing arrived in its last 10 s',
        'probe stream e-f: nothing arrived in its first 10 s',
        'probe stream e-f: nothing arrived in its last 10 s']


def test_one_probe_stream_per_logical_switch(plan):
    todo = soak.pairs(plan)
    got = soak.probe_pairs(plan, todo)
    n = plan['nodes']
    assert len({n[a]['ls'] for a, _ in got}) == len(got) >= 2
    assert all(n[a]['ls'] == n[b]['ls'] for a, b in got)
    assert len(soak.probe_pairs(plan, todo, most=1)) == 1
