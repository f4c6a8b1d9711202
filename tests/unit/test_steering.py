"""Service steering (controllers.steering) on clos-small's Store: what the
API takes and refuses, the flows that redirect a VM port's matching
traffic (its requests and their replies, both ways) through its
hypervisor's service VM and bring it back, the fast-failover groups that
decide fail-open / fail-closed, and what happens without a service VM."""
import types

import pytest
from fastapi.testclient import TestClient
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controllers import api, intent, ofdriver, steering, writes
from controllers.dfw import MAX_PRIORITY
from controllers.model import ApiError
from topologies import expand, labs

from .provisioned import store_for

DP = types.SimpleNamespace(ofproto=ofproto_v1_3,
                           ofproto_parser=ofproto_v1_3_parser)
SVM = {'name': 'svc-hv3', 'transport_node': 'hv3', 'in_port': 900,
       'out_port': 901}
WEB = {'name': 'to-web', 'priority': 10, 'protocol': 'tcp', 'port': 80,
       'destination': {'group': 'web'}, 'on_failure': 'fail-closed'}


@pytest.fixture
def st():
    s = store_for(expand.expand(labs.resolve('clos-small')))
    s.create_group({'name': 'web', 'vms': ['vm3']})
    return s


def ip_of(st, vm):
    return next(p['ip'].split('/')[0] for p in st.list_ports()
                if p['attachment'] == vm)


def port_of(st, vm):
    return next(p for p in st.list_ports() if p['attachment'] == vm)


def steered(st, node):
    ctx = intent.context(st.desired(), {'vtep_macs': {}, 'dead': set()})
    sections, groups = intent.node_sections(ctx, node)
    flows = [f for k, v in sections.items() if k[0] == 'dfw' for f in v
             if f['priority'] > steering.PRIO_BASE - MAX_PRIORITY]
    return flows, groups, ctx


@pytest.mark.parametrize('body,field,status', [
    ({'name': 's', 'transport_node': 'hv9', 'in_port': 1, 'out_port': 2},
     'transport_node', 404),
    ({'name': 's', 'transport_node': 'leaf1', 'in_port': 1, 'out_port': 2},
     'transport_node', 404),
    ({'name': 's', 'transport_node': [], 'in_port': 1, 'out_port': 2},
     'transport_node', 404),        # found by the fuzzer: was a TypeError
    ({'name': 's', 'transport_node': 'hv3', 'in_port': 0, 'out_port': 2},
     'in_port', 400),
    ({'name': 's', 'transport_node': 'hv3', 'in_port': 900,
      'out_port': 900}, 'out_port', 400),
    ({'name': 's', 'transport_node': 'hv3', 'in_port': 900}, 'out_port',
     400),
    ({'name': 's', 'transport_node': 'hv3', 'in_port': 9, 'out_port': 8,
      'mgmt': 1}, 'mgmt', 400),
])
def test_bad_service_vms_are_refused_naming_the_field(st, body, field,
                                                      status):
    with pytest.raises(ApiError) as e:
        st.create_service_vm(body)
    assert (e.value.field, e.value.status) == (field, status)
    assert st.list_service_vms() == []


def test_one_service_vm_per_hypervisor(st):
    st.create_service_vm(SVM)
    with pytest.raises(ApiError) as e:
        st.create_service_vm(dict(SVM, name='another'))
    assert (e.value.field, e.value.status) == ('transport_node', 409)
    assert 'svc-hv3' in e.value.message
    st.update_service_vm(1, dict(SVM, in_port=902))    # itself: fine
    assert st.get_service_vm(1)['in_port'] == 902


@pytest.mark.parametrize('body,field', [
    (dict(WEB, action='allow'), 'action'),
    ({k: v for k, v in WEB.items() if k != 'on_failure'}, 'on_failure'),
    (dict(WEB, on_failure='fail-sometimes'), 'on_failure'),
    (dict(WEB, port=70000), 'port'),
    (dict(WEB, destination={'group': 'nope'}), 'destination.group'),
    (dict(WEB, priority=0), 'priority'),
    (dict(WEB, colour='red'), 'colour'),
])
def test_bad_steering_rules_are_refused_naming_the_field(st, body, field):
    with pytest.raises(ApiError) as e:
        st.create_steering_rule(body)
    assert e.value.field == field, e.value.message
    assert st.list_steering_rules() == []


def test_a_group_a_steering_rule_uses_is_kept(st):
    st.create_steering_rule(WEB)
    with pytest.raises(ApiError) as e:
        st.delete_group(1)
    assert e.value.status == 409 and 'to-web' in e.value.message
    with pytest.raises(ApiError):
        st.create_steering_rule(dict(WEB, name='other'))    # same priority


def test_requests_and_replies_both_ways_through_the_service_vm(st):
    st.create_service_vm(SVM)
    st.create_steering_rule(WEB)
    flows, groups, _ = steered(st, 'hv3')
    p = port_of(st, 'vm3')            # the web server, on hv3
    mine = [f for f in flows if f['match'].get('in_port') == p['ofport'] or
            f['match'].get('eth_dst') == p['mac'] or
            f['match'].get('eth_src') == p['mac']]
    ways = {(f['table'], f['match'].get('tcp_dst'), f['match'].get(
        'tcp_src')): f['actions'] for f in mine
        if f['priority'] < steering.PRIO_BACK}
    out, into = steering.GROUPS[('out', 'fail-closed')], \
        steering.GROUPS[('in', 'fail-closed')]
    # to the server (table 1, dport 80) and its replies (table 0, sport 80)
    assert ways == {(1, 80, None): [('group', into)],
                    (0, None, 80): [('group', out)]}
    for f in mine:
        if f['priority'] < steering.PRIO_BACK:
            assert f['match']['reg0'] == 0 and f['match']['eth_type'] == \
                0x0800
    back = {f['match']['in_port']: f['actions'] for f in mine
            if f['priority'] == steering.PRIO_BACK}
    assert back[901] == [('set_reg0', 1), ('set_in_port', p['ofport']),
                         ('resubmit', 0)]
    assert back[900][-1] == ('resubmit', 1)
    # the client side, vm1 on hv1 (the rule applies to every VM port): no
    # service VM there, fail-closed drops
    flows1, groups1, _ = steered(st, 'hv1')
    c = port_of(st, 'vm1')
    client = [f for f in flows1 if f['match'].get('in_port') == c['ofport']]
    assert [(f['match']['tcp_dst'], f['match']['ipv4_dst'], f['actions'])
            for f in client] == [(80, ip_of(st, 'vm3'), [])]
    assert not [g for g in groups1 if g['group_id'] >= steering.ALWAYS]
    # every flow and group encodes to OpenFlow
    for f in flows:
        ofdriver.flow_mod(DP, f)
    for g in groups:
        ofdriver.group_mod(DP, g, False)


def test_fail_open_passes_unsteered_without_a_service_vm(st):
    st.create_steering_rule(dict(WEB, on_failure='fail-open'))
    flows, groups, _ = steered(st, 'hv1')
    assert flows == [] and not [g for g in groups if g['group_id'] >= steering.ALWAYS]


def test_the_groups_decide_by_the_service_vms_link(st):
    gs = {g['group_id']: g for g in steering.groups(SVM)}
    closed = gs[steering.GROUPS[('out', 'fail-closed')]]
    assert closed['type'] == 'fast_failover'
    assert closed['buckets'] == [{'watch_port': 900,
                                  'actions': [('output', 900)]}]
    opened = gs[steering.GROUPS[('in', 'fail-open')]]
    assert opened['buckets'][0] == {'watch_port': 901,
                                    'actions': [('output', 901)]}
    assert opened['buckets'][1] == {'watch_group': steering.ALWAYS,
                                    'actions': [('set_reg0', 1),
                                                ('resubmit', 1)]}
    assert gs[steering.ALWAYS] == {'group_id': steering.ALWAYS,
                                   'type': 'all', 'buckets': [
                                       {'actions': []}]}
    assert steering.groups(None) == []


def test_a_steering_change_recomputes_only_the_port_sections(st):
    st.create_service_vm(SVM)
    ctx0 = steered(st, 'hv3')[2]
    st.create_steering_rule(WEB)
    ctx1 = steered(st, 'hv3')[2]
    assert intent.changed_sections(ctx0, ctx1) == \
        {('dfw',) + k for k in ctx1['vm_port']}
    # incremental equals full (other hypervisors' ports: [] here)
    full, _ = intent.node_sections(ctx1, 'hv3')
    part, _ = intent.node_sections(ctx1, 'hv3',
                                   intent.changed_sections(ctx0, ctx1))
    assert {k: v for k, v in part.items() if v} == \
        {k: v for k, v in full.items() if k in part and v}
    assert any(part.values())


def test_the_api_and_the_writes():
    plan = expand.expand(labs.resolve('clos-small'))
    st = store_for(plan)
    c = TestClient(api.create_app(st))
    r = c.post('/api/v1/service-vms', json=SVM)
    assert r.status_code == 201, r.text
    r = c.post('/api/v1/steering-rules', json=dict(WEB, destination='any'))
    assert r.status_code == 201 and r.json()['on_failure'] == 'fail-closed'
    r = c.post('/api/v1/steering-rules', json=dict(WEB, name='x',
                                                    action='drop'))
    assert r.status_code == 400
    assert c.get('/api/v1/steering-rules').json()[0]['name'] == 'to-web'
    assert c.delete('/api/v1/service-vms/1').status_code == 204
    assert c.get('/api/v1/service-vms').json() == []
    assert {'create_service_vm', 'delete_steering_rule'} <= set(writes.OPS)


def test_group_addresses_follow_membership_and_the_long_poll_returns():
    plan = expand.expand(labs.resolve('clos-small'))
    st = store_for(plan)
    c = TestClient(api.create_app(st))
    first = c.get('/api/v1/security-groups/addresses').json()
    assert first['groups'] == {}
    st.create_group({'name': 'web', 'vms': ['vm3', 'vm5']})
    got = c.get('/api/v1/security-groups/addresses',
                params={'after': first['generation'], 'wait': 5}).json()
    assert got['generation'] > first['generation']
    assert got['groups'] == {'web': sorted(
        ip_of(st, v) + '/32' for v in ('vm3', 'vm5'))}
    # nothing changes: the long poll answers at its end, same generation
    again = c.get('/api/v1/security-groups/addresses',
                  params={'after': got['generation'], 'wait': 0.2}).json()
    assert again == got


def test_applied_to_the_servers_group_steers_at_their_ports_only(st):
    st.create_service_vm(SVM)
    st.create_steering_rule(dict(WEB, applied_to={'group': 'web'}))
    assert steered(st, 'hv1')[0] == []          # the client's: untouched
    assert steered(st, 'hv3')[0]
