"""VM attach from the hypervisor's OVSDB: which interfaces are VIFs, how
the store rebinds a logical port where its VIF appears, and the plan of a
VM move between hypervisors."""
import copy

import pytest

from controllers import model, nodedb
from topologies import expand, labs, vmotion
from scenarios import vm_move

INV = {'vm1': {'transport_node': 'hv1', 'ofport': 2,
               'mac': '02:00:00:00:00:01', 'ip': '10.1.0.11/24'}}
NODES = {'hv1': {'role': 'hypervisor', 'tunnel_ip': '1.0.0.1', 'index': 1},
         'hv2': {'role': 'hypervisor', 'tunnel_ip': '1.0.0.2', 'index': 2}}


def test_vifs_are_ports_with_an_iface_id_and_an_openflow_number():
    rows = [{'name': 'vm1', 'ofport': [2], 'external_ids': {
                'iface-id': 'vm1', 'attached-mac': '02:00:00:00:00:01'}},
            {'name': 'vxsn1', 'ofport': [1006], 'external_ids': {}},
            {'name': 'vm9', 'ofport': [-1], 'external_ids': {
                'iface-id': 'vm9'}},                 # OVS could not open it
            {'name': 'vm8', 'ofport': [], 'external_ids': {
                'iface-id': 'vm8'}}]                 # not numbered yet
    assert nodedb.vifs_of(rows) == {'vm1': {
        'ofport': 2, 'mac': '02:00:00:00:00:01', 'interface': 'vm1'}}


def test_a_vif_that_appears_elsewhere_moves_its_logical_port():
    store = model.Store(inventory=copy.deepcopy(INV), nodes=NODES)
    ls = store.create_ls({'name': 'web', 'vni': 5001})
    port = store.attach(ls['id'], {'attachment': 'vm1'})
    gen = store.generation
    assert store.locate('vm1', 'hv1', 2) is False      # where it is already
    assert store.locate('vm1', 'hv2', 201) is True
    moved = store.get_port(port['id'])
    assert (moved['transport_node'], moved['ofport']) == ('hv2', 201)
    assert store.generation == gen + 1
    # unknown VIFs and unknown nodes change nothing
    assert store.locate('vm7', 'hv2', 3) is False
    assert store.locate('vm1', 'hv9', 3) is False
    # a VM attached later is bound where it was last seen
    store.detach(port['id'])
    again = store.attach(ls['id'], {'attachment': 'vm1'})
    assert again['transport_node'] == 'hv2'


def test_a_move_plan_and_its_errors():
    plan = expand.expand(labs.resolve('clos'))
    m = vmotion.plan_move(plan, 'vm1', 'hv2', 'hv1',
                          [('10.1.0.15', '02:00:00:02:00:15')])
    assert m['ofport'] == vmotion.MOVED_OFPORT_BASE + \
        plan['nodes']['vm1']['index']
    batch = m['vm_switchover'].splitlines()
    # the old vNIC down first, the ARP cache back before the old one goes
    assert batch[0] == 'link set eth0 down' and batch[-1] == 'link del old0'
    assert 'neigh replace 10.1.0.15 lladdr 02:00:00:02:00:15 dev eth0 ' \
        'nud stale' in batch
    assert 'iface-id' not in m['dst_prepare']       # nothing bound early
    for args, field in ((('vm9', 'hv2', 'hv1'), 'vm:'),
                        (('sn1', 'hv2', 'hv1'), 'vm:'),
                        (('vm1', 'gw1', 'hv1'), 'to:'),
                        (('vm1', 'hv1', 'hv1'), 'to:')):
        with pytest.raises(vmotion.MoveError, match=field):
            vmotion.plan_move(plan, *args)
    assert vmotion.where_is(plan, 'vm1') == 'hv1'
    assert vmotion.where_is(plan, 'vm1', {'vm1': 'hv2'}) == 'hv2'


def test_vm_move_reads_the_binding_from_the_controller_log():
    log = ('2026-11-30 11:20:58,120 nsx.core INFO hv2: VIF vm1 bound here '
           '(announced in its OVSDB)\n'
           '2026-11-30 11:20:59,000 nsx.core INFO hv1: VIF vm4, vm1 bound '
           'here (announced in its OVSDB)\n'
           '2026-11-30 11:21:00,000 nsx.core INFO hv3: VIF vm11 bound here\n')
    got = vm_move.bound_times(log, 'vm1')
    assert [hv for _, hv in got] == ['hv2', 'hv1']
    assert round(got[1][0] - got[0][0], 3) == 0.88
    plan = expand.expand(labs.resolve('clos'))
    home, away = vm_move.hypervisors_for(plan, 'vm1')
    assert home == 'hv1' and away not in ('hv1', 'hv3')


def test_only_vifs_that_appear_rebind_a_port():
    from controllers.core import vifs_appeared
    vm1 = {'ofport': 2, 'mac': None, 'interface': 'vm1'}
    assert vifs_appeared({}, {'vm1': vm1}) == ['vm1']
    assert vifs_appeared({'vm1': vm1}, {'vm1': vm1, 'vm2': vm1}) == ['vm2']
    assert vifs_appeared({'vm1': vm1}, {'vm1': dict(vm1, ofport=9)}) == \
        ['vm1']
    assert vifs_appeared({'vm1': vm1}, {}) == []


def test_a_requested_move_binds_only_on_the_destination():
    nodes = dict(NODES, hv3={'role': 'hypervisor', 'tunnel_ip': '1.0.0.3',
                             'index': 3})
    store = model.Store(inventory=copy.deepcopy(INV), nodes=nodes)
    ls = store.create_ls({'name': 'web', 'vni': 5001})
    port = store.attach(ls['id'], {'attachment': 'vm1'})
    assert port['requested_node'] is None
    got = store.request_move(port['id'], {'transport_node': 'hv2'})
    assert (got['transport_node'], got['requested_node']) == ('hv1', 'hv2')
    assert store.locate('vm1', 'hv3', 7) is False     # not where it goes
    assert store.get_port(port['id'])['transport_node'] == 'hv1'
    assert store.locate('vm1', 'hv2', 201) is True
    done = store.get_port(port['id'])
    assert (done['transport_node'], done['ofport'],
            done['requested_node']) == ('hv2', 201, None)


@pytest.mark.parametrize('body,status,field', [
    ({'transport_node': 'hv9'}, 400, 'transport_node'),
    ({'transport_node': 'hv1'}, 409, 'transport_node'),     # there already
    ({}, 400, 'transport_node'),
    ({'transport_node': 'hv2', 'when': 'now'}, 400, 'when'),
    (['hv2'], 400, 'body')])
def test_a_bad_move_request_names_the_field_and_changes_nothing(
        body, status, field):
    store = model.Store(inventory=copy.deepcopy(INV), nodes=NODES)
    ls = store.create_ls({'name': 'web', 'vni': 5001})
    port = store.attach(ls['id'], {'attachment': 'vm1'})
    with pytest.raises(model.ApiError) as exc:
        store.request_move(port['id'], body)
    assert (exc.value.status, exc.value.field) == (status, field)
    assert store.get_port(port['id']) == port
    with pytest.raises(model.ApiError) as exc:
        store.request_move(99, {'transport_node': 'hv2'})
    assert exc.value.status == 404


def test_a_vm_plugged_nowhere_has_an_unbound_port_in_no_intent():
    store = model.Store(inventory=copy.deepcopy(INV), nodes=NODES)
    ls = store.create_ls({'name': 'web', 'vni': 5001})
    assert store.unlocate('vm1', 'hv2') is False     # it is not there
    assert store.unlocate('vm1', 'hv1') is True      # plugged nowhere now
    assert store.inventory['vm1']['transport_node'] is None
    port = store.attach(ls['id'], {'attachment': 'vm1'})
    assert (port['transport_node'], port['ofport']) == (None, None)
    assert store.desired()['ports'] == []            # in no device's intent
    gen = store.generation
    assert store.locate('vm1', 'hv2', 7) is True     # its vNIC connected
    assert store.generation == gen + 1
    bound = store.get_port(port['id'])
    assert (bound['transport_node'], bound['ofport']) == ('hv2', 7)
    assert [p['attachment'] for p in store.desired()['ports']] == ['vm1']
    assert store.unlocate('vm1', 'hv2') is True      # disconnected again
    assert store.get_port(port['id'])['transport_node'] is None
    assert store.desired()['ports'] == []


def test_a_vif_that_goes_away_unbinds_its_port(monkeypatch):
    from controllers import core as core_mod
    plan = expand.expand(labs.resolve('clos'))
    c = core_mod.Core(plan)
    ls = c.store.create_ls({'name': 'web', 'vni': 5001})
    port = c.store.attach(ls['id'], {'attachment': 'vm1'})
    hv = port['transport_node']
    vif = {'vm1': {'ofport': port['ofport'], 'mac': None,
                   'interface': 'x'}}
    c.vifs_changed(hv, vif)
    c.vifs_changed(hv, {})                            # unplugged
    assert c.store.get_port(port['id'])['transport_node'] is None
    c.vifs_changed(hv, vif)                           # plugged again
    assert c.store.get_port(port['id'])['transport_node'] == hv
