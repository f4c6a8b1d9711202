"""The distributed firewall (controllers.dfw) on clos-small's Store: what
the API takes and refuses, groups resolved to addresses, the flows at a
protected VM port (in rule order, both ways), nothing changed where no
rule applies, and a rule change touching only the firewall's flows."""
import types

import pytest
from fastapi.testclient import TestClient
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controllers import api, dfw, intent, ofdriver
from controllers.model import ApiError
from topologies import expand, labs

from .provisioned import store_for

DP = types.SimpleNamespace(ofproto=ofproto_v1_3,
                           ofproto_parser=ofproto_v1_3_parser)


@pytest.fixture
def st():
    return store_for(expand.expand(labs.resolve('clos-small')))


def ip_of(st, vm):
    return next(p['ip'].split('/')[0] for p in st.list_ports()
                if p['attachment'] == vm)


def flows_of(st, node):
    ctx = intent.context(st.desired(), {'vtep_macs': {}, 'dead': set()})
    sections, _ = intent.node_sections(ctx, node)
    return {k: v for k, v in sections.items() if k[0] == 'dfw'}, ctx


@pytest.mark.parametrize('body,field,status', [
    ({'name': 'x y'}, 'name', 400),
    ({'name': 'g', 'vms': 'vm1'}, 'vms', 400),
    ({'name': 'g', 'vms': ['vm99']}, 'vms[0]', 404),
    ({'name': 'g', 'logical_switches': ['nope']}, 'logical_switches[0]', 404),
    ({'name': 'g', 'tags': 'web'}, 'tags', 400),
    ({'name': 'g', 'tags': ['ok', 'no spaces']}, 'tags[1]', 400),
    ({'name': 'g', 'owner': 'x'}, 'owner', 400),
])
def test_bad_groups_are_refused_naming_the_field(st, body, field, status):
    with pytest.raises(ApiError) as e:
        st.create_group(body)
    assert (e.value.field, e.value.status) == (field, status)
    assert st.list_groups() == []


@pytest.mark.parametrize('body,field', [
    ({'name': 'r', 'action': 'allow'}, 'priority'),
    ({'name': 'r', 'priority': 0, 'action': 'allow'}, 'priority'),
    ({'name': 'r', 'priority': 5}, 'action'),
    ({'name': 'r', 'priority': 5, 'action': 'deny'}, 'action'),
    ({'name': 'r', 'priority': 5, 'action': 'allow', 'protocol': 'gre'},
     'protocol'),
    ({'name': 'r', 'priority': 5, 'action': 'allow', 'port': 80}, 'port'),
    ({'name': 'r', 'priority': 5, 'action': 'allow', 'protocol': 'tcp',
      'port': 70000}, 'port'),
    ({'name': 'r', 'priority': 5, 'action': 'allow',
      'source': {'group': 'nope'}}, 'source.group'),
    ({'name': 'r', 'priority': 5, 'action': 'allow',
      'destination': {'cidr': '10.1.0.0/33'}}, 'destination.cidr'),
    ({'name': 'r', 'priority': 5, 'action': 'allow', 'source': 'all'},
     'source'),
    ({'name': 'r', 'priority': 5, 'action': 'allow', 'applied_to': 'ls9'},
     'applied_to'),
    ({'name': 'r', 'priority': 5, 'action': 'allow',
      'applied_to': {'group': 'nope'}}, 'applied_to.group'),
    ({'name': 'r', 'priority': 5, 'action': 'allow',
      'applied_to': {'group': 'g', 'x': 1}}, 'applied_to.group'),
])
def test_bad_rules_are_refused_naming_the_field(st, body, field):
    with pytest.raises(ApiError) as e:
        st.create_rule(body)
    assert e.value.field == field, e.value.message
    assert st.list_rules() == []


def test_groups_resolve_to_their_members_addresses(st):
    st.create_group({'name': 'web', 'vms': ['vm3', 'vm1']})
    st.create_group({'name': 'tier2', 'logical_switches': ['ls2']})
    st.create_rule({'name': 'a', 'priority': 20, 'source': {'group': 'web'},
                    'destination': {'group': 'tier2'}, 'protocol': 'tcp',
                    'port': 22, 'action': 'allow'})
    st.create_rule({'name': 'b', 'priority': 10,
                    'source': {'cidr': '10.9.0.1/16'}, 'action': 'drop'})
    rules = dfw.resolve(st.desired())
    assert [r['name'] for r in rules] == ['b', 'a']          # priority order
    assert rules[0]['src'] == ['10.9.0.0/16'] and rules[0]['dst'] is None
    assert rules[1]['src'] == sorted(f'{ip_of(st, v)}/32'
                                     for v in ('vm1', 'vm3'))
    ls2 = [p['attachment'] for p in st.list_ports() if p['ls_id'] == 2]
    assert rules[1]['dst'] == sorted(f'{ip_of(st, v)}/32' for v in ls2)


def test_a_group_in_use_and_a_switch_named_are_kept(st):
    g = st.create_group({'name': 'web', 'vms': ['vm3']})
    st.create_rule({'name': 'r', 'priority': 5, 'action': 'allow',
                    'destination': {'group': 'web'}, 'applied_to': 'ls2'})
    with pytest.raises(ApiError) as e:
        st.delete_group(g['id'])
    assert e.value.status == 409 and "rules use group 'web': r" in \
        e.value.message
    with pytest.raises(ApiError) as e:                  # renamed: refused
        st.update_group(g['id'], {'name': 'www', 'vms': ['vm3']})
    assert (e.value.status, e.value.field) == (409, 'name')
    assert st.update_group(g['id'], {'name': 'web', 'vms': ['vm1']})[
        'vms'] == ['vm1']                               # members: fine
    for p in st.list_ports(2):
        st.detach(p['id'])
    with pytest.raises(ApiError) as e:
        st.delete_ls(2)
    assert e.value.status == 409 and 'rule r' in e.value.message


def test_no_rule_no_firewall_flows(st):
    got, _ = flows_of(st, 'hv1')
    assert got and all(f == [] for f in got.values())


def test_a_protected_port_in_both_directions_in_rule_order(st):
    st.create_group({'name': 'web', 'vms': ['vm3']})
    st.create_rule({'name': 'web-in', 'priority': 10, 'protocol': 'tcp',
                    'port': 80, 'destination': {'group': 'web'},
                    'action': 'allow'})
    st.create_rule({'name': 'deny', 'priority': 100, 'action': 'drop',
                    'applied_to': 'ls1'})
    got, ctx = flows_of(st, 'hv3')
    vm3 = next(p for p in st.list_ports() if p['attachment'] == 'vm3')
    flows = got[('dfw', 5001, vm3['mac'])]
    zone = vm3['ofport']
    hook = [f for f in flows if f['table'] in (0, 1) and
            f['match']['eth_type'] == dfw.IPV4]
    assert [f['actions'][-1] for f in hook] == [
        ('ct', zone, dfw.EGRESS, False), ('ct', zone, dfw.INGRESS, False)]
    # unicast IPv6 cannot pass the IPv4 rules by: dropped both ways
    v6 = [f for f in flows if f['match'].get('eth_type') == dfw.IPV6]
    assert [(f['table'], f['actions'], f['goto']) for f in v6] == [
        (0, [], None), (1, [], None)]
    assert v6[1]['match']['eth_dst'] == vm3['mac']
    ingress = sorted((f for f in flows if f['table'] == dfw.INGRESS),
                     key=lambda f: -f['priority'])
    # established and related first, invalid dropped, then the rules
    assert [f['match']['ct_state'] for f in ingress[:3]] == [
        dfw.EST, dfw.REL, dfw.INV]
    web, deny, default = ingress[3:]
    assert web['priority'] > deny['priority'] > default['priority']
    assert web['match']['tcp_dst'] == 80 and \
        web['actions'] == [('ct', zone, None, True), ('output', zone)]
    # back to forwarding from table 2: resubmit (goto only goes forward)
    assert all(f['goto'] is None or f['goto'] > f['table'] for f in flows)
    assert deny['actions'] == [] and deny['goto'] is None
    # egress: web-in's destination is vm3 itself, so only deny applies
    egress = [f for f in flows if f['table'] == dfw.EGRESS and
              f['match'].get('ct_state') == dfw.NEW]
    assert [(f['priority'], bool(f['actions'])) for f in
            sorted(egress, key=lambda f: -f['priority'])] == [
        (50000 - 100, False), (100, True)]
    seen = dfw.port_view(dfw.resolve(st.desired()), dict(
        vm3, ls='ls1', vni=5001))
    assert [(r['name'], r['ways'], r['packets']) for r in seen['rules']] \
        == [('web-in', ['in'], None), ('deny', ['out', 'in'], None)]
    assert dfw.rule_text(seen['rules'][0]).endswith('-> '
                                                    f"{vm3['ip'].split('/')[0]}/32 tcp/80 ALLOW")
    # every flow is one OpenFlow can carry
    for f in flows:
        ofdriver.flow_mod(DP, f).serialize()
    # a VM on ls2 meets web-in only (deny applies to ls1)
    vm6 = next(p for p in st.list_ports() if p['attachment'] == 'vm6')
    six = got[('dfw', 5002, vm6['mac'])]
    assert not any(f['priority'] == 50000 - 100 for f in six)


def test_a_rule_change_recomputes_the_firewall_not_the_rest(st):
    st.create_rule({'name': 'r', 'priority': 5, 'action': 'drop',
                    'protocol': 'udp', 'applied_to': 'ls1'})
    before, ctx0 = flows_of(st, 'hv1')
    rest0 = intent.node_sections(ctx0, 'hv1')[0]
    st.update_rule(1, {'name': 'r', 'priority': 5, 'action': 'drop',
                       'protocol': 'udp', 'port': 53, 'applied_to': 'ls1'})
    after, ctx1 = flows_of(st, 'hv1')
    rest1 = intent.node_sections(ctx1, 'hv1')[0]
    # only the firewall's sections, every VM port's
    keys = intent.changed_sections(ctx0, ctx1)
    assert keys == {('dfw',) + k for k in ctx1['vm_port']}
    assert before != after
    assert {k: v for k, v in rest0.items() if k[0] != 'dfw'} == \
        {k: v for k, v in rest1.items() if k[0] != 'dfw'}
    # the established path is the same flow (same cookie): kept on the
    # switch, and so are the connections riding it
    key = next(k for k, v in after.items() if v)
    est = [f for f in after[key] if f['match'].get('ct_state') == dfw.EST]
    assert all(f in before[key] for f in est) and est


def test_the_api_crud_and_its_errors():
    plan = expand.expand(labs.resolve('clos-small'))
    st = store_for(plan)
    changes = []
    c = TestClient(api.create_app(st, on_change=lambda: changes.append(1)))
    r = c.post('/api/v1/security-groups', json={'name': 'web',
                                                'vms': ['vm3']})
    assert r.status_code == 201 and r.json()['id'] == 1
    r = c.post('/api/v1/firewall-rules', json={
        'name': 'web-in', 'priority': 10, 'protocol': 'tcp', 'port': 80,
        'destination': {'group': 'web'}, 'action': 'allow'})
    assert r.status_code == 201, r.text
    r = c.post('/api/v1/firewall-rules', json={
        'name': 'x', 'priority': 10, 'action': 'deny'})
    assert r.status_code == 400 and r.json()['error']['field'] == 'action'
    r = c.post('/api/v1/firewall-rules', json={
        'name': 'web-in', 'priority': 11, 'action': 'drop'})
    assert r.status_code == 409 and r.json()['error']['field'] == 'name'
    r = c.post('/api/v1/firewall-rules', json={
        'name': 'other', 'priority': 10, 'action': 'drop'})
    assert r.status_code == 409 and r.json()['error']['field'] == 'priority'
    r = c.put('/api/v1/firewall-rules/1', json={
        'name': 'web-in', 'priority': 10, 'protocol': 'tcp', 'port': 443,
        'destination': {'group': 'web'}, 'action': 'allow'})
    assert r.status_code == 200 and r.json()['port'] == 443
    assert [x['port'] for x in c.get('/api/v1/firewall-rules').json()] == \
        [443]
    assert c.delete('/api/v1/security-groups/1').status_code == 409
    assert c.delete('/api/v1/firewall-rules/1').status_code == 204
    assert c.delete('/api/v1/security-groups/1').status_code == 204
    assert c.get('/api/v1/security-groups/1').status_code == 404
    assert len(changes) == 5


def stats_of(st, node, packets):
    """`node`'s intended flows as its switch reports them: os-ken's flow
    statistics, through the app's own conversion (structured matches);
    `packets(flow)` says how many each counted."""
    from controllers import app
    ctx = intent.context(st.desired(), {'vtep_macs': {}, 'dead': set()})
    out = []
    for flows in intent.node_sections(ctx, node)[0].values():
        for f in flows:
            fm = ofdriver.flow_mod(DP, f)
            out.append(app._flow_row(ofproto_v1_3_parser.OFPFlowStats(
                table_id=fm.table_id, priority=fm.priority, match=fm.match,
                instructions=fm.instructions, packet_count=packets(f),
                byte_count=0, cookie=fm.cookie)))
    return out


def test_trace_and_counters_name_the_rule(st):
    st.create_rule({'name': 'web-in', 'priority': 10, 'protocol': 'tcp',
                    'port': 80, 'action': 'allow', 'applied_to': 'ls1'})
    rules = dfw.resolve(st.desired())
    assert dfw.rule_at(rules, dfw.EGRESS, 49990) == 'rule web-in (allow)'
    assert dfw.rule_at(rules, dfw.INGRESS, 65000).startswith('established')
    assert dfw.rule_at(rules, 1, 49990) is None
    # each firewall flow at hv1 counted: egress 3, ingress 4 packets
    raw = stats_of(st, 'hv1', lambda f: {dfw.EGRESS: 3, dfw.INGRESS: 4}.get(
        f['table'], 0) if f['match'].get('eth_type') == dfw.IPV4 else 0)
    view = dfw.node_view(st.desired(), 'hv1', raw)
    vm1 = next(q for q in view['ports'] if q['vm'] == 'vm1')
    assert vm1['protected'] and [r['name'] for r in vm1['rules']] == \
        ['web-in']
    # any to any: one flow each way, vm1's own (not its neighbours')
    assert vm1['rules'][0]['packets'] == {'out': 3, 'in': 4}
    assert vm1['established'] == {'out': 6, 'in': 8}      # est and rel
    assert vm1['default'] == {'out': 3, 'in': 4}
    # a port on ls2 (no rule applies there): not protected, nothing counted
    other = [q for q in view['ports'] if q['ls'] == 'ls2']
    assert all(not q['protected'] and q['rules'] == [] and
               q['default'] == {'out': 0, 'in': 0} for q in other)
    assert dfw.node_view(st.desired(), 'hv1')['ports'][0]['default'] is None
    # as the CLI and `./run.py map --node` print it
    lines = dfw.view_text(view)
    at = lines.index(next(ln for ln in lines if ln.startswith('vm1 (')))
    assert lines[at + 1].endswith('tcp/80 ALLOW (out/in)  packets out 3 '
                                  'in 4') and 'web-in' in lines[at + 1]
    assert lines[at + 2] == '  default allow: out 3 in 4; established: ' \
        'out 6 in 8'
    assert '  no rule applies: not protected' in lines
    assert dfw.view_text(dict(view, rules=[]))[0].startswith(
        'no firewall rule')


def test_the_firewall_endpoint():
    plan = expand.expand(labs.resolve('clos-small'))
    st = store_for(plan)
    asked = []

    def node_flows(name):
        asked.append(name)
        return None                              # the switch did not answer
    c = TestClient(api.create_app(st, node_flows=node_flows))
    st.create_rule({'name': 'r', 'priority': 5, 'action': 'drop',
                    'protocol': 'udp', 'applied_to': 'ls1'})
    r = c.get('/api/v1/transport-nodes/hv3/firewall')
    assert r.status_code == 200 and asked == ['hv3']
    got = r.json()
    assert got['rules'][0]['name'] == 'r' and got['counters'].startswith(
        'unknown')
    vm3 = next(q for q in got['ports'] if q['vm'] == 'vm3')
    assert vm3['rules'][0]['ways'] == ['out', 'in'] and \
        vm3['rules'][0]['packets'] is None
    r = c.get('/api/v1/transport-nodes/vtep1/firewall')
    assert r.status_code == 400 and 'on hypervisors' in \
        r.json()['error']['message']
    assert c.get('/api/v1/transport-nodes/hv99/firewall').status_code == 404


def test_a_rule_applied_to_a_group_protects_its_members_ports_only(st):
    """NSX's "Applied To" a group: the rule's flows at vm3's port only
    (hv3), none at the other VM ports (which stay unprotected); the group
    cannot go while the rule names it."""
    g = st.create_group({'name': 'web', 'vms': ['vm3']})
    st.create_rule({'name': 'r', 'priority': 5, 'action': 'drop',
                    'protocol': 'udp', 'applied_to': {'group': 'web'}})
    assert st.list_rules()[0]['applied_to'] == {'group': 'web'}
    for hv in ('hv1', 'hv2', 'hv3'):
        got, ctx = flows_of(st, hv)
        for (_, vni, mac), fl in got.items():
            vm = next(p['attachment'] for p in st.list_ports()
                      if p['mac'] == mac)
            assert bool(fl) == (vm == 'vm3'), (hv, vm)
    view = dfw.node_view(st.desired(), 'hv3')
    assert [q['vm'] for q in view['ports'] if q['protected']] == ['vm3']
    with pytest.raises(ApiError) as e:
        st.delete_group(g['id'])
    assert e.value.status == 409 and 'r' in e.value.message


def test_a_group_by_tag_follows_the_ports_tags(st):
    """Membership by tag is dynamic: a group of tag tier=web holds no one
    until a port carries the tag, then that port's address (its rule's
    flows at once, nothing else recomputed), and no one again once the
    tag is gone; a port attached with the tag is a member from the
    start."""
    st.create_group({'name': 'web', 'tags': ['tier=web']})
    st.create_rule({'name': 'web-in', 'priority': 10, 'protocol': 'tcp',
                    'port': 80, 'destination': {'group': 'web'},
                    'action': 'allow'})
    assert dfw.resolve(st.desired())[0]['dst'] == []
    assert dfw.group_addresses(st.desired()) == {'web': []}
    vm3 = next(p for p in st.list_ports() if p['attachment'] == 'vm3')
    assert vm3['tags'] == []
    _, ctx0 = flows_of(st, 'hv3')
    got = st.tag_port(vm3['id'], {'tags': ['tier=web', 'pci', 'pci']})
    assert got['tags'] == ['pci', 'tier=web']
    _, ctx1 = flows_of(st, 'hv3')
    assert dfw.resolve(st.desired())[0]['dst'] == [f"{ip_of(st, 'vm3')}/32"]
    assert intent.changed_sections(ctx0, ctx1) == \
        {('dfw',) + k for k in ctx1['vm_port']}
    st.tag_port(vm3['id'], {'tags': []})
    assert dfw.group_addresses(st.desired()) == {'web': []}
    st.detach(vm3['id'])
    st.attach(vm3['ls_id'], {'attachment': 'vm3', 'tags': ['tier=web']})
    assert dfw.group_addresses(st.desired()) == \
        {'web': [f"{ip_of(st, 'vm3')}/32"]}


@pytest.mark.parametrize('body,field', [
    ({}, 'tags'), ({'tags': 'web'}, 'tags'), ({'tags': ['a b']}, 'tags[0]'),
    ({'tags': [str(i) for i in range(31)]}, 'tags'),
    ({'tags': [], 'vm': 'x'}, 'vm'),
])
def test_bad_tags_are_refused_naming_the_field(body, field):
    plan = expand.expand(labs.resolve('clos-small'))
    st = store_for(plan)
    c = TestClient(api.create_app(st))
    port = st.list_ports()[0]
    r = c.put(f"/api/v1/logical-ports/{port['id']}/tags", json=body)
    assert r.status_code == 400 and r.json()['error']['field'] == field, \
        r.text
    assert st.get_port(port['id'])['tags'] == []
    r = c.put('/api/v1/logical-ports/999/tags', json={'tags': []})
    assert r.status_code == 404 and r.json()['error']['field'] == 'id'
    r = c.put(f"/api/v1/logical-ports/{port['id']}/tags",
              json={'tags': ['tier=db']})
    assert r.status_code == 200 and r.json()['tags'] == ['tier=db']
