"""The measured failure and use-case scenarios, one short run each, as a
user runs them (`./run.py scenario NAME --json`): each must pass its own
checks and leave a result that holds what it measured. Their latency
targets are benchmarks (README), not asserted here."""
import json

import pytest

from .conftest import last_json, run_py


def scenario(*args, timeout=600):
    r = run_py('scenario', *args, '--json', timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = last_json(r.stdout)
    with open(next(a for a in res['artifacts']
                   if a.endswith('result.json'))) as f:
        assert json.load(f) == res
    return res['metrics']


def test_service_node_failover_resumes_bum_without_the_controller():
    """Both sides fail over with the controller frozen: a hypervisor's
    fast-failover group, and a hardware VTEP choosing by BFD (in clos-small
    they prefer different service nodes: trial 1 kills the hypervisor's,
    trial 2 the VTEP's)."""
    m = scenario('service-node-failover', '--trials', '2')
    t1, t2 = m['trials']
    assert t1['victim'] == 'sn1' and t1['resumed_via'] == ['sn2']
    assert t1['affected'] == ['hypervisor']
    assert t1['after_restart_in_use']['hypervisor'] == 'sn1'
    assert 0 < t1['outage_ms']['vm->vm'] < 3000      # it did fail over
    assert 0 < t1['outage_ms']['vm->server'] < 3000
    assert t2['victim'] == t2['in_use']['vtep'] and t2['affected'] == [
        'vtep']
    assert 0 < t2['outage_ms']['server->vm'] < 3000
    assert t2['after_restart_in_use']['vtep'] == t2['victim']
    # the side whose service node lived did not notice: no run of lost
    # packets, nor a silence at its receiver (unless its sender stalled,
    # which makes a silence the network did not)
    assert max(t1['unaffected_outage_seq_ms'].values()) < 100, t1
    stalled = set(t1['sender_stalled'])
    assert all(ms < 100 for name, ms in t1['unaffected_outage_ms'].items()
               if name not in stalled), (t1['unaffected_outage_ms'], stalled)


def test_hw_gateway_failover_vcf_moves_nothing_clos_moves_the_mac():
    m = scenario('hw-gateway-failover', '--trials', '1')
    by = {t['fabric']: t for t in m['trials']}
    assert set(by) == {'vcf', 'clos'}
    assert by['vcf']['vtep_before'] == by['vcf']['vtep_after'] == 'vtep1'
    assert by['vcf']['repointed_after_ms'] is None
    assert (by['clos']['vtep_before'], by['clos']['vtep_after']) == \
        ('vtep1', 'vtep2')
    assert by['clos']['repointed_after_ms'] is not None
    for t in by.values():       # what bounds the outage was measured
        assert t['server_moved_ms'] is not None
        assert t['delivered_again_ms'] is not None


def test_p2v_migration_leaves_no_stale_entry():
    m = scenario('p2v-migration', '--trials', '1')
    (t,) = m['trials']
    assert t['stale_after'] == [] and t['converged_after_s'] is not None
    assert set(t['outage_ms']) == {'vm1->server', 'bm1->server',
                                   'server->vm1', 'server->bm1'}
    # the cut-over was the vNIC plugged on hv3, not an API call
    assert t['plug_after_power_off_ms'] is not None and t['api'] == [204]


@pytest.mark.parametrize('mappings', [4094])
def test_itaas_tenants_are_isolated_and_scale_to_4094_mappings(mappings):
    m = scenario('itaas-isolation', '--mappings', str(mappings))
    assert m['intra_tenant_reached'] == m['intra_tenant_pairs'] == 18
    assert m['cross_tenant_frames'] == 0 and m['frames_captured'] > 0
    for port in m['ports'].values():        # positive controls held
        assert not port['missing_broadcast_from']
        assert not port['missing_flood_from']
    # tenant escape and spoofed VXLAN: no marker crossed, both controls
    # arrived (the captures and the forging path work)
    assert m['attacks_tried'] >= 9 and m['attacks_crossed'] == 0, \
        [a for a in m['attacks'] if a['crossed']]
    assert m['controls_seen'] == 2, m['attacks']
    assert m['scale']['mappings'] == mappings
    assert m['scale']['forwarding_s'] is not None
    assert m['scale']['sample_wrong'] == {}


@pytest.mark.parametrize('name', ['physical-tier', 'attach-appliance',
                                  'dc-interconnect'])
def test_use_cases_reach_with_measured_latency(name):
    m = scenario(name)
    assert m['pairs'] and m['reachable_pairs'] == len(m['pairs'])
    for p in m['pairs']:
        assert p['received'] >= 45 and p['rtt_ms']['p95'] > 0
    if name == 'attach-appliance':        # routed through srv1
        assert {p['next_hop'] for p in m['pairs']} == {'10.1.0.13'}
    if name == 'physical-tier':
        assert m['tcp'] == [{'from': 'vm5', 'to': 'bm2', 'port': 5432,
                             'connected': True}]
