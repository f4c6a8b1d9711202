"""The dfw scenario's judgement (scenarios/dfw.py, pure parts): the
matrix's verdicts, rule counters, and the rule-change latency read off a
stream of new connections; probe.py's source ports for them."""
import pytest

from scenarios import dfw, probe
from topologies import expand, labs

RATE = 200
IV = 1.0 / RATE


def stream(t0, t1, gaps=()):
    """Receive times every interval from t0 to t1, none inside `gaps`."""
    out, t = [], t0
    while t < t1:
        if not any(a <= t < b for a, b in gaps):
            out.append(round(t, 6))
        t += IV
    return out


def test_the_matrix_is_judged_only_where_it_passed_without_rules():
    rows = [('vm1', 'vm3', 'tcp', True, 'web-in'),
            ('vm1', 'vm3', 'udp', False, 'ls1-deny'),
            ('vm3', 'vm1', 'tcp', False, 'ls1-deny'),
            ('vm2', 'vm6', 'icmp', True, None),
            ('vm5', 'vm1', 'tcp', 'reject', 'edge-reject'),
            ('bm1', 'vm3', 'udp', 'reject', 'udp-reject')]
    before = {'vm1->vm3 tcp': 'pass', 'vm1->vm3 udp': 'pass',
              'vm3->vm1 tcp': 'drop', 'vm2->vm6 icmp': 'pass',
              'vm5->vm1 tcp': 'pass', 'bm1->vm3 udp': 'pass'}
    after = {'vm1->vm3 tcp': 'pass', 'vm1->vm3 udp': 'pass',
             'vm3->vm1 tcp': 'drop', 'vm2->vm6 icmp': 'pass',
             'vm5->vm1 tcp': 'reject', 'bm1->vm3 udp': 'drop'}
    got, problems = dfw.judge_matrix(before, after, rows)
    assert [r['held'] for r in got] == [True, False, False, True, True,
                                        False]
    assert [r['expected'] for r in got] == ['pass', 'drop', 'drop', 'pass',
                                            'reject', 'reject']
    assert 'vm1->vm3 udp: pass under the policy, where ls1-deny says ' \
        'drop' in problems
    # dropped where a reject must answer the sender: not the same
    assert 'bm1->vm3 udp: drop under the policy, where udp-reject says ' \
        'reject' in problems
    # dropped under the policy, but it never passed: no verdict on it
    assert any(p.startswith('vm3->vm1 tcp: did not pass without any rule')
               for p in problems)
    assert len(problems) == 3
    # a probe missing from a run is not a pass
    assert not dfw.judge_matrix({}, {}, rows[:1])[0][0]['held']


def test_the_policy_names_only_groups_it_makes_and_rules_the_matrix_uses():
    groups = {g['name'] for g in dfw.GROUPS}
    for r in dfw.POLICY:
        for end in ('source', 'destination'):
            if isinstance(r.get(end), dict):
                assert r[end]['group'] in groups, r
    assert {row[4] for row in dfw.MATRIX if row[4]} <= \
        {r['name'] for r in dfw.POLICY}
    assert {row[3] for row in dfw.MATRIX} == set(dfw.EXPECTED)
    assert any(g.get('tags') for g in dfw.GROUPS) and all(
        set(t) & {x for g in dfw.GROUPS for x in g.get('tags', ())}
        for t in dfw.TAGGED.values())


def test_rule_counters_add_up_over_ports_and_ways():
    views = [{'ports': [
        {'rules': [{'name': 'web-in', 'packets': {'out': 0, 'in': 3}},
                   {'name': 'deny', 'packets': {'out': 2, 'in': 0}}]},
        {'rules': [{'name': 'deny', 'packets': None}]}]},
        {'ports': [{'rules': [{'name': 'deny',
                               'packets': {'out': 1, 'in': 1}}]}]}]
    assert dfw.rules_seen(views) == {'web-in': 3, 'deny': 4}


def test_enforced_and_lifted_are_read_off_the_stream():
    # rule made at 10.0, enforced at 10.042 (nothing from then on);
    # deleted at 11.0, passing again from 11.013
    times = stream(9.0, 12.0, gaps=[(10.042, 11.013)])
    fig = dfw.trial_figures(times, 10.0, 11.0, 12.0, IV)
    assert fig['why'] == ''
    # the last probe that passed, plus one interval: an upper bound
    assert 40 <= fig['enforce_ms'] <= 42 + 5
    assert 13 <= fig['lift_ms'] <= 13 + 5


def test_a_change_that_did_not_take_is_no_figure():
    never = stream(9.0, 12.0)                      # never stopped
    fig = dfw.trial_figures(never, 10.0, 11.0, 12.0, IV)
    assert fig['enforce_ms'] is None and 'still passing' in fig['why']
    stuck = stream(9.0, 10.05)                     # never passed again
    fig = dfw.trial_figures(stuck, 10.0, 11.0, 12.0, IV)
    assert fig['lift_ms'] is None and 'not passing again' in fig['why']
    silent = stream(11.2, 12.0)                    # nothing before
    assert 'not flowing before' in dfw.trial_figures(
        silent, 10.0, 11.0, 12.0, IV)['why']
    # enforced before the first probe after the change: within one
    # interval
    at_once = stream(9.0, 12.0, gaps=[(10.0, 11.01)])
    assert dfw.trial_figures(at_once, 10.0, 11.0, 12.0, IV)[
        'enforce_ms'] == 5.0


def test_a_sender_stall_inside_the_window_is_seen():
    assert dfw.stalled([(10.5, 10.52)], 10.0, 11.0)
    assert not dfw.stalled([(12.5, 12.52)], 10.0, 11.0)
    assert not dfw.stalled(None, 10.0, 11.0)


def test_a_stall_counts_only_where_it_makes_the_figures():
    """Rule made at 10.0 (enforced 40 ms later), deleted at 11.0 (lifted
    30 ms later), next trial at 12.0: a stall around either instant
    spoils the trial; one while the rule held (everything dropped
    anyway) or after the lift does not; a missing figure takes its span."""
    fig = {'enforce_ms': 40.0, 'lift_ms': 30.0}
    spoiled = dfw.spoiled
    assert spoiled([(10.02, 10.03)], 10.0, 11.0, 12.0, fig)
    assert spoiled([(9.95, 9.96)], 10.0, 11.0, 12.0, fig)      # just before
    assert spoiled([(11.01, 11.02)], 10.0, 11.0, 12.0, fig)
    assert not spoiled([(10.5, 10.6)], 10.0, 11.0, 12.0, fig)  # held
    assert not spoiled([(11.5, 11.6)], 10.0, 11.0, 12.0, fig)  # after
    assert not spoiled([], 10.0, 11.0, 12.0, fig)
    assert spoiled([(11.5, 11.6)], 10.0, 11.0, 12.0,
                   {'enforce_ms': 40.0, 'lift_ms': None})
    assert spoiled([(10.5, 10.6)], 10.0, 11.0, 12.0,
                   {'enforce_ms': None, 'lift_ms': 30.0})


def test_new_connections_never_reuse_a_source_port_within_a_run():
    ports = [probe.sport(s) for s in range(probe.SPORTS)]
    assert len(set(ports)) == probe.SPORTS
    assert min(ports) >= 1024 and max(ports) < 65536
    # 200/s for 60 s: 12,000 probes, each its own connection
    assert probe.SPORTS > RATE * 60


@pytest.mark.parametrize('lab,want', [
    ('clos-small', ['vm1', 'vm5', 'vm3']), ('vcf-small', ['vm1', 'vm5', 'vm3'])])
def test_one_target_per_hypervisor_on_the_senders_switch(lab, want):
    plan = expand.expand(labs.resolve(lab))
    assert dfw.pick_targets(plan) == want


def test_a_large_lab_gives_ten_hypervisors_in_their_order():
    plan = expand.expand(labs.resolve('clos-pod'))
    got = dfw.pick_targets(plan)
    hvs = [dfw.hypervisor_of(plan, vm) for vm in got]
    assert len(got) == 10 == len(set(hvs))
    assert all(plan['nodes'][vm]['ls'] == 'ls1' for vm in got)
    assert [int(h[2:]) for h in hvs] == sorted(int(h[2:]) for h in hvs)
    assert hvs[0] == 'hv1' and plan['nodes'][dfw.SENDER]['ls'] == 'ls1'


def test_a_streams_loss_is_counted_from_the_first_rule_change_on():
    rate = 1000
    # started at 100.0: slots 0-80 lost (start-up), 5000-5002 later
    seqs = [k for k in range(10000) if k > 80 and k not in (5000, 5001,
                                                            5002)]
    times = [100.0 + k / rate + 0.0003 for k in seqs]
    assert dfw.lost_after(10000, seqs, times, rate, 102.0) == 3
    assert dfw.lost_after(10000, seqs, times, rate, 100.0) == 84
    assert dfw.lost_after(10, [], [], rate, 100.0) == 10


def test_a_rules_push_is_the_first_one_sent_to_its_switch_in_the_window():
    pushes = [{'node': 'hv1', 'gen': 9, 'msgs': 2, 'sent': 99.0,
               'acked': 99.01},                  # before the change
              {'node': 'hv2', 'gen': 10, 'msgs': 4, 'sent': 100.02,
               'acked': 100.05},                 # another switch
              {'node': 'hv1', 'gen': 11, 'msgs': 4, 'sent': 100.3,
               'acked': 100.45},                 # a later pass
              {'node': 'hv1', 'gen': 10, 'msgs': 4, 'sent': 100.03,
               'acked': 100.2},
              {'node': 'hv1', 'gen': 12, 'msgs': 4, 'sent': None,
               'acked': 100.25},                 # sent time not known
              {'node': 'hv1', 'gen': 13, 'msgs': 4, 'sent': 101.0,
               'acked': 101.1}]                  # the next change's
    assert dfw.push_times(pushes, 'hv1', 100.0, 101.0) == {
        'sent_ms': 30.0, 'confirmed_ms': 200.0}
    assert dfw.push_times(pushes, 'hv2', 100.0, 101.0) == {
        'sent_ms': 20.0, 'confirmed_ms': 50.0}
    assert dfw.push_times(pushes, 'hv3', 100.0, 101.0) is None
    assert dfw.push_times([], 'hv1', 100.0, 101.0) is None


def test_a_change_splits_into_controller_switch_tables_and_datapath():
    records = [
        {'enforce_ms': {'hv1': 120.0, 'hv2': 300.0}, 'lift_ms': {'hv1': 80.0},
         'pushed': {'hv1': {'sent_ms': 20.0, 'confirmed_ms': 50.0},
                    'hv2': {'sent_ms': 30.0, 'confirmed_ms': 250.0}},
         'unpushed': {'hv1': {'sent_ms': 10.0, 'confirmed_ms': 30.0},
                      'hv2': {'sent_ms': 10.0, 'confirmed_ms': 30.0}}},
        # a push not recorded, a figure voided (a stall): not a sample
        {'enforce_ms': {'hv2': 90.0}, 'lift_ms': {},
         'pushed': {'hv1': {'sent_ms': 5.0, 'confirmed_ms': 9.0},
                    'hv2': None}, 'unpushed': {}}]
    assert dfw.split(records) == {
        'flow mods sent': [20.0, 30.0], 'switch confirmed': [50.0, 250.0],
        'confirmed -> enforced': [70.0, 50.0]}
    assert dfw.split(records, 'lift') == {
        'flow mods sent': [10.0], 'switch confirmed': [30.0],
        'confirmed -> lifted': [50.0]}


def test_a_few_voided_samples_are_reported_more_fail_the_run():
    def trial(voided):
        return {'voided': {f'hv{i}': 'the sender fell behind meanwhile'
                           for i in range(voided)}}
    # 20 trials x 3 hypervisors: 6 voided are 10 %, 7 are too many
    few = [trial(3), trial(3)] + [trial(0)] * 18
    assert dfw.too_many_voided(few, 3) == []
    many = few[:-1] + [trial(1)]
    got = dfw.too_many_voided(many, 3)
    assert len(got) == 1 and got[0].startswith('7 of 60 samples voided')
    assert dfw.too_many_voided([], 3) == []
    assert dfw.too_many_voided([{}], 3) == []
