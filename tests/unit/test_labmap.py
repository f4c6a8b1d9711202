"""The lab's map (controllers.labmap): golden maps of the small labs as the
controller provisions them, each endpoint's path, and what the controller
knows (BFD, dead service nodes, moved VMs, a cluster's roles) showing in it;
GET /api/v1/map."""
import json
import threading
import types

import pytest
from fastapi.testclient import TestClient

from controllers import api, core, labmap
from topologies import expand, labs

from . import goldens
from .provisioned import store_for


def lab_state(lab, **extra):
    plan = expand.expand(labs.resolve(lab))
    st = store_for(plan)
    state = {'logical_switches': st.list_ls(), 'ports': st.list_ports(),
             'gateway_connections': st.list_connections(), **extra}
    return plan, state


@pytest.mark.parametrize('lab', ['clos-small', 'vcf-small'])
def test_map_matches_golden_file(lab):
    assert goldens.matches(f'{lab}.map.json', labmap.build(*lab_state(lab)))


CLOS_LS1 = 'ls1 VNI 5001 -> members gw1, gw2, hv1, hv2, hv3, vtep1, vtep2'
VCF_LS1 = 'ls1 VNI 5001 -> members gw1, gw2, hv1, hv2, hv3, vtep1'


@pytest.mark.parametrize('lab,name,lines', [
    ('clos', 'vm5', [f'vm5 -> hv2 (port 3; leaf2, 198.19.64.17) -> '
                     f'{CLOS_LS1}']),
    ('clos', 'bm1', [
        f'bm1 -> vtep1 (port bm1; leaf1, 198.19.64.1) VLAN 0 <-> VNI 5001 '
        f'-> {CLOS_LS1}',
        f'bm1 -> vtep2 (port bm1; leaf2, 198.19.64.11) VLAN 0 <-> VNI 5001 '
        f'-> {CLOS_LS1}']),
    ('clos', 'srv1', [f'srv1 -> seg1 port srv1 VLAN 100 -> gw1, gw2 <-> VNI '
                      f'5001 -> {CLOS_LS1}']),
    ('vcf', 'bm2', [f'bm2 -> leaf2 port bm2 = vtep1 leaf2p2 VLAN 0 <-> VNI '
                    f'5001 -> {VCF_LS1}']),
    ('vcf', 'vm2', ['vm2 -> hv2 (port 2; leaf2, 198.19.128.7) -> ls2 VNI '
                    '5002 -> members hv1, hv2, hv3']),
    # no logical switch in the lab file: cabled, not bound
    ('clos', 'vm7', ['vm7 (cabled to hv3 port 4) -> no bound logical port '
                     '-> no logical switch (not created)']),
])
def test_an_endpoints_path_names_its_switch_port_vtep_and_members(
        lab, name, lines):
    m = labmap.build(*lab_state(lab))
    assert labmap.path_of(m, name) == lines
    assert labmap.text(m, vm=name) == lines


def test_a_moved_vm_shows_where_the_controller_bound_it():
    plan, state = lab_state('clos')
    state['ports'] = [dict(p, transport_node='hv1', ofport=9)
                      if p['attachment'] == 'vm5' else p
                      for p in state['ports']]
    m = labmap.build(plan, state)
    assert labmap.path_of(m, 'vm5') == [
        'vm5 -> hv1 (port 9; leaf1, 198.19.64.7) -> ls1 VNI 5001 -> members '
        'gw1, gw2, hv1, hv3, vtep1, vtep2']      # hv2 has no member left
    # unbound (its VIF gone): plugged nowhere, hv2 not a member either
    state['ports'] = [dict(p, transport_node=None, ofport=None)
                      if p['attachment'] == 'vm5' else p
                      for p in state['ports']]
    m = labmap.build(plan, state)
    assert labmap.path_of(m, 'vm5')[0].startswith(
        'vm5 (cabled to hv2 port 3) -> no bound logical port -> ls1')
    assert 'hv2' not in m['logical_switches'][0]['members']


def test_an_endpoints_logical_switch_is_the_controllers_not_the_lab_files():
    """vm7 (no logical switch in the lab file) attached to ls2 through
    the API is on ls2; vm5 detached is on none, though its lab file says
    ls1; its port, unbound, is still listed under ls1 until deleted."""
    plan, state = lab_state('clos')
    ls2 = next(ls['id'] for ls in state['logical_switches']
               if ls['name'] == 'ls2')
    state['ports'] = [p for p in state['ports'] if p['attachment'] != 'vm5']
    state['ports'].append({'id': 99, 'ls_id': ls2, 'attachment': 'vm7',
                           'transport_node': 'hv3', 'ofport': 4,
                           'mac': '02:00:00:02:00:17', 'ip': None})
    m = labmap.build(plan, state)
    eps = {e['name']: e for e in m['endpoints']}
    assert (eps['vm7']['ls'], eps['vm7']['planned_ls']) == ('ls2', None)
    assert (eps['vm5']['ls'], eps['vm5']['planned_ls']) == (None, 'ls1')
    assert labmap.path_of(m, 'vm7') == [
        'vm7 -> hv3 (port 4; leaf1, 198.19.64.9) -> ls2 VNI 5002 -> members '
        'hv1, hv2, hv3']
    assert labmap.path_of(m, 'vm5') == [
        'vm5 (cabled to hv2 port 3) -> no bound logical port -> no logical '
        'switch (not created)']
    # a server's switch is its gateway binding's
    assert eps['srv1']['ls'] == 'ls1' and eps['bm2']['ls'] == 'ls1'


def test_a_logical_switch_lists_its_unbound_ports_too():
    plan, state = lab_state('clos')
    state['ports'] = [dict(p, transport_node=None, ofport=None)
                      if p['attachment'] == 'vm2' else p
                      for p in state['ports']]
    ls2 = labmap.build(plan, state)['logical_switches'][1]
    assert {p['attachment']: p['transport_node'] for p in ls2['ports']} == \
        {'vm2': None, 'vm4': 'hv1', 'vm6': 'hv3'}
    assert ls2['members'] == ['hv1', 'hv3']


def test_bfd_state_and_a_dead_service_node_show_in_the_map():
    plan, state = lab_state('clos', bfd={('hv1', 'sn1'): False,
                                         ('hv2', 'sn1'): True},
                            dead={'sn1'})
    m = labmap.build(plan, state)
    tun = {(t['a'], t['b']): t for t in m['tunnels']}
    assert tun[('hv1', 'sn1')] == {'a': 'hv1', 'b': 'sn1', 'bfd': True,
                                   'state': 'down'}
    assert tun[('hv2', 'sn1')]['state'] == 'up'
    assert tun[('hv1', 'hv2')] == {'a': 'hv1', 'b': 'hv2', 'bfd': False,
                                   'state': None}       # nobody reports it
    vt = {v['name']: v for v in m['vteps']}
    assert vt['hv1']['service_nodes'] == ['sn1', 'sn2']
    assert vt['hv1']['service_node_in_use'] == 'sn2'
    assert vt['sn1']['dead'] and not vt['sn2']['dead']
    lines = labmap.text(m)
    assert 'tunnels: 35, 14 with BFD, 2 followed by the controller, 1 ' \
        'down: hv1-sn1' in lines
    assert '  hypervisor hv1 198.19.64.7 on leaf1, floods via sn2 ' \
        '(sn1 > sn2)' in lines
    assert '  service_node sn1 198.19.64.13 on leaf2, DEAD' in lines


def test_a_clusters_roles_and_learned_macs_show_in_the_map():
    roles = {'hv1': {'active': 'ctl2', 'standby': 'ctl3'}}
    plan, state = lab_state('vcf', roles=roles,
                            vtep_macs={(5001, '02:00:00:00:00:99'): 'gw1'})
    m = labmap.build(plan, state)
    vt = {v['name']: v for v in m['vteps']}
    assert vt['hv1']['controller'] == {'active': 'ctl2', 'standby': 'ctl3'}
    assert 'controller' not in vt['hv2']
    assert m['learned_macs'] == [{'vni': 5001, 'mac': '02:00:00:00:00:99',
                                  'behind': 'gw1'}]
    assert vt['vtep1']['leaf'] == ['leaf1', 'leaf2']    # the pod VTEP
    assert m['underlay']['pods'] == [{'vtep': 'vtep1',
                                      'members': ['leaf1', 'leaf2']}]
    assert 'bgp' not in m['underlay']
    assert '  hypervisor hv1 198.19.128.3 on leaf1, floods via sn1 ' \
        '(sn1 > sn2), controller ctl2 (standby ctl3)' in labmap.text(m)


def test_a_gateways_published_role_per_segment_shows_in_the_map():
    plan, state = lab_state('clos', gateway_states={
        'gw1': {'seg1': 'active'}, 'gw2': {'seg1': 'standby'}})
    m = labmap.build(plan, state)
    vt = {v['name']: v for v in m['vteps']}
    assert vt['gw1']['segments'] == {'seg1': 'active'}
    assert vt['gw2']['segments'] == {'seg1': 'standby'}
    assert 'segments' not in vt['hv1']
    lines = labmap.text(m)
    assert '  sw_gateway gw1 198.19.64.15 on leaf2, floods via sn1 ' \
        '(sn1 > sn2), seg1 active' in lines
    # a gateway whose session is lost is left out: its role is unknown
    del state['gateway_states']['gw2']
    vt = {v['name']: v for v in labmap.build(plan, state)['vteps']}
    assert 'segments' not in vt['gw2']


def test_a_lost_session_marks_the_device_down():
    plan, state = lab_state('clos', sessions={
        'gw1': {'openflow': False, 'ovsdb': True},
        'hv1': {'openflow': True, 'ovsdb': True}}, dead={'sn2'})
    m = labmap.build(plan, state)
    vt = {v['name']: v for v in m['vteps']}
    assert vt['gw1']['health'] == 'down'
    assert vt['hv1']['health'] == 'up'
    assert vt['sn2']['health'] == 'down'        # declared dead, no session
    assert vt['hv2']['health'] is None          # nothing known
    assert '  sw_gateway gw1 198.19.64.15 on leaf2, floods via sn1 ' \
        '(sn1 > sn2), openflow session DOWN' in labmap.text(m)


def test_gateway_states_come_from_the_bridges_the_agent_writes():
    from controllers import nodedb
    rows = [{'name': 'br-seg1', 'external_ids': {'l2gw-state': 'active'}},
            {'name': 'br-seg2', 'external_ids': {}},
            {'name': 'br-int', 'external_ids': {'iface-id': 'x'}},
            {'name': 'br-seg3', 'external_ids': {'l2gw-state': 'down'}}]
    assert nodedb.gateway_states_of(rows) == {'seg1': 'active',
                                              'seg3': 'down'}


def test_the_clos_underlay_has_one_ebgp_session_per_spine_leaf_cable():
    m = labmap.build(*lab_state('clos'))
    u = m['underlay']
    assert [(s['a'], s['a_asn'], s['b'], s['b_asn']) for s in u['bgp']] == [
        ('spine1', 65000, 'leaf1', 65001), ('spine1', 65000, 'leaf2', 65002),
        ('spine2', 65000, 'leaf1', 65001), ('spine2', 65000, 'leaf2', 65002)]
    # no cable to a VM or server is underlay
    assert not [ln for ln in u['links']
                if {ln['a'], ln['b']} & {'vm1', 'bm1', 'srv1'}]


def test_one_logical_switch_is_described_with_its_endpoints_and_bindings():
    m = labmap.build(*lab_state('clos'))
    lines = labmap.text(m, ls='ls2')
    assert lines[:2] == ['ls2: VNI 5002, service_node replication, '
                         '10.2.0.0/16', '  members: hv1, hv2, hv3']
    assert '  vm vm2 10.2.0.11 02:00:00:02:00:12 at hv2:2' in lines
    assert not [x for x in lines if 'binding' in x]
    ls1 = labmap.text(m, ls='ls1')
    assert '  binding: gw1 port seg1 VLAN 100 <-> VNI 5001' in ls1


@pytest.mark.parametrize('kw,field', [({'vm': 'vm99'}, 'VM or server'),
                                      ({'ls': 'nope'}, 'logical switch')])
def test_an_unknown_name_says_what_the_lab_has(kw, field):
    m = labmap.build(*lab_state('clos'))
    with pytest.raises(KeyError) as e:
        labmap.text(m, **kw)
    assert field in str(e.value) and ('vm5' in str(e.value) or
                                      'ls1, ls2' in str(e.value))


def test_members_sort_naturally():
    assert sorted(['hv10', 'hv2', 'gw1', 'hv1'], key=labmap.natural) == \
        ['gw1', 'hv1', 'hv2', 'hv10']


def test_the_core_gives_the_map_what_it_knows():
    plan, _ = lab_state('clos')
    fake = types.SimpleNamespace(
        store=store_for(plan), lock=threading.RLock(), replica=None,
        observed={'vtep_macs': {(5001, '02:00:00:00:00:99'): 'vtep1'},
                  'dead': {'sn2'}},
        liveness={('hv1', 'sn1'): True},
        follower=types.SimpleNamespace(
            gateway_states=lambda: {'gw1': {'seg1': 'active'}},
            sessions=lambda: {'nodes': {'gw1': {'connected': True}},
                              'loop_restarts': 0}),
        switches={'gw1': {'connected': False}},
        vtep_sessions={'vtep1': types.SimpleNamespace(
            status=lambda: {'connected': True})})
    state = core.Core.map_state(fake)
    assert state['sessions'] == {'gw1': {'openflow': False, 'ovsdb': True},
                                 'vtep1': {'ovsdb': True}}
    assert state['dead'] == {'sn2'} and state['roles'] is None
    assert state['gateway_states'] == {'gw1': {'seg1': 'active'}}
    assert state['bfd'] == {('hv1', 'sn1'): True}
    assert {p['attachment'] for p in state['ports']} == {
        'vm1', 'vm2', 'vm3', 'vm4', 'vm5', 'vm6'}
    m = labmap.build(plan, state)
    json.dumps(m)                                  # plain data
    assert 'vtep1' in m['logical_switches'][0]['members']


def test_get_map_serves_it_and_says_why_when_there_is_none():
    plan, state = lab_state('clos')
    m = labmap.build(plan, state)
    c = TestClient(api.create_app(store_for(plan), lab_map=lambda: m))
    r = c.get(api.PREFIX + '/map')
    assert r.status_code == 200 and r.json()['lab'] == 'clos-small'
    assert r.json() == json.loads(json.dumps(m))
    r = TestClient(api.create_app(store_for(plan))).get(api.PREFIX + '/map')
    assert r.status_code == 404
    assert r.json()['error']['field'] == 'map'
    assert '--plan' in r.json()['error']['message']


def test_the_map_carries_each_endpoints_path_and_the_role_colours():
    from topologies.colours import ROLE_COLOURS
    m = labmap.build(*lab_state('clos'))
    assert m['paths']['vm5'] == labmap.path_of(m, 'vm5')
    assert set(m['paths']) == {e['name'] for e in m['endpoints']}
    assert m['colours'] == ROLE_COLOURS


def test_the_web_view_is_served_beside_the_api():
    plan, state = lab_state('clos')
    c = TestClient(api.create_app(store_for(plan),
                                  lab_map=lambda: labmap.build(plan, state)))
    r = c.get('/', follow_redirects=False)
    assert r.status_code == 307 and r.headers['location'] == '/ui/'
    page = c.get('/ui/')
    assert page.status_code == 200 and 'app.js' in page.text
    for f in ('app.js', 'style.css', 'vendor/cytoscape.min.js'):
        assert c.get('/ui/' + f).status_code == 200, f
    # the event stream is no operation of the documented API (and so not
    # fuzzed: it never ends)
    assert '/api/v1/map/events' not in c.get('/openapi.json').json()['paths']


def test_the_event_stream_sends_the_map_then_each_change_within_1_s():
    """A real server on loopback (the test client cannot read an endless
    response): the first event at once, the next after a change."""
    import socket
    import time
    import urllib.request
    import uvicorn
    plan, state = lab_state('clos')
    dead = set()
    srv_sock = socket.socket()
    srv_sock.bind(('127.0.0.1', 0))
    port = srv_sock.getsockname()[1]
    srv_sock.close()
    server = uvicorn.Server(uvicorn.Config(
        api.create_app(store_for(plan), lab_map=lambda: labmap.build(
            plan, dict(state, dead=set(dead)))),
        host='127.0.0.1', port=port, log_level='warning'))
    threading.Thread(target=server.run, daemon=True).start()
    try:
        for _ in range(100):
            if server.started:
                break
            time.sleep(0.05)
        resp = urllib.request.urlopen(
            f'http://127.0.0.1:{port}/api/v1/map/events', timeout=5)
        assert resp.headers['content-type'].startswith('text/event-stream')

        def event():
            while True:
                line = resp.readline().decode()
                if line.startswith('data: '):
                    return json.loads(line[6:])
        first = event()
        assert {v['name']: v.get('dead') for v in first['vteps']
                if v['role'] == 'service_node'} == {'sn1': False,
                                                    'sn2': False}
        t0 = time.monotonic()
        dead.add('sn1')
        second = event()
        took = time.monotonic() - t0
        assert {v['name']: v.get('dead') for v in second['vteps']
                if v['role'] == 'service_node'} == {'sn1': True,
                                                    'sn2': False}
        assert took < 1.0, took
        resp.close()
    finally:
        server.should_exit = True


def test_the_labs_print_where_the_web_view_is():
    from scenarios import harness
    one = types.SimpleNamespace(url='https://198.18.0.1:8181/api/v1')
    assert harness.web_urls(one) == ['https://198.18.0.1:8181/ui/']
    three = types.SimpleNamespace(members={
        f'ctl{k}': types.SimpleNamespace(
            url=f'https://198.18.255.25{k}:8181/api/v1') for k in (1, 2, 3)})
    assert harness.web_urls(three) == [
        f'https://198.18.255.25{k}:8181/ui/' for k in (1, 2, 3)]
