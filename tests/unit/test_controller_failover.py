"""The controller-failover scenario's pure parts: what it kills, what it
reads from the controller nodes' push logs and views, and the etcd leader
from etcdctl's answer."""
import pytest

from controllers import clusterlab
from scenarios import controller_failover as cf
from topologies import expand, labs


@pytest.fixture(scope='module')
def plan():
    return expand.expand(labs.resolve('clos'))


def test_the_spare_vm_is_one_the_lab_attaches_nowhere(plan):
    vm, ls = cf.spare_vm(plan)
    assert not plan['nodes'][vm].get('ls')
    assert plan['nodes'][vm]['intfs'][0]['peer'].startswith('hv')
    assert ls in plan['logical_switches']
    stripped = dict(plan, nodes={n: p for n, p in plan['nodes'].items()
                                 if n != vm})
    assert cf.spare_vm(stripped) is None


def test_no_vm_port_carries_two_streams(plan):
    flows = cf.streams(plan)
    senders = [src for _, src, *_ in flows]
    assert len(senders) == len(set(senders)), flows
    receivers = [dst for _, _, dst, *_ in flows]
    assert len(receivers) == len(set(receivers)), flows
    assert any(plan['nodes'][d]['role'] == 'bare_metal' for d in receivers)


def test_every_changed_device_is_picked_in_turn():
    assert cf.picks(['hv2', 'gw1', 'hv1'], 5) == ['gw1', 'hv1', 'hv2',
                                                   'gw1', 'hv1']


def test_the_first_push_after_the_fault_per_device():
    pushes = [{'node': 'hv1', 'acked': 9.0, 'msgs': 2},
              {'node': 'hv1', 'acked': 11.0, 'msgs': 2},
              {'node': 'hv1', 'acked': 10.5, 'msgs': 4},
              {'node': 'hv2', 'acked': 12.0, 'msgs': 6},
              {'node': 'gw1', 'acked': 13.0, 'msgs': 1}]
    assert cf.first_confirmed(pushes, ['hv1', 'hv2'], 10.0) == {
        'hv1': 10.5, 'hv2': 12.0}
    assert cf.most_per_write(pushes) == {'hv1': 4, 'hv2': 6, 'gw1': 1}


def test_settled_needs_a_live_active_and_standby_everywhere():
    a = {'hv1': {'active': 'ctl1', 'standby': 'ctl2'},
         'hv2': {'active': 'ctl2', 'standby': 'ctl1'}}
    assert cf.settled(a, ['ctl1', 'ctl2'])
    assert not cf.settled(a, ['ctl1', 'ctl3'])
    assert not cf.settled({'hv1': {'active': 'ctl1', 'standby': 'ctl1'}},
                          ['ctl1', 'ctl2'])
    assert not cf.settled({}, ['ctl1'])


def test_a_returning_node_counts_as_back_with_a_standby_role():
    nodes = ['ctl1', 'ctl2', 'ctl3']
    view = {'members': nodes, 'assignment': {
        'hv1': {'active': 'ctl1', 'standby': 'ctl3'}}}
    assert cf.rejoined(view, nodes, 'ctl3')
    assert not cf.rejoined(view, nodes, 'ctl2')           # no role
    assert not cf.rejoined(dict(view, members=nodes[:2]), nodes, 'ctl3')


def test_churn_of_a_whole_switch_pass():
    assert cf.churn(None) is None
    # flow mods only: the new master sends every group once (apart)
    assert cf.churn({'flows_added': 2, 'flows_deleted': 1,
                     'group_mods': 3, 'at': 1.0}) == 3


def test_counters_that_grew():
    assert cf.grew({'a': 1, 'b': 5}, {'a': 1, 'b': 7, 'c': 2}) == {
        'b': 2, 'c': 2}


@pytest.mark.parametrize('n', [1, 2, 4, 7, True, '3'])
def test_the_scenario_needs_a_cluster(n):
    with pytest.raises(ValueError, match='--controllers 3 or 5'):
        cf.check_controllers(n)


def test_the_etcd_leader_from_etcdctl():
    rows = [{'Endpoint': 'https://198.18.255.252:2379',
             'Status': {'header': {'member_id': 11}, 'leader': 22}},
            {'Endpoint': 'https://198.18.255.253:2379',
             'Status': {'header': {'member_id': 22}, 'leader': 22}}]
    hosts = {'ctl1': '198.18.255.252', 'ctl2': '198.18.255.253'}
    assert clusterlab.leader_of(rows, hosts) == 'ctl2'
    assert clusterlab.leader_of(rows[:1], hosts) is None
    assert clusterlab.leader_of([{'Endpoint': 'x', 'Status': {
        'header': {'member_id': 0}, 'leader': 0}}], hosts) is None


def test_elections_from_the_raft_terms():
    rows = [{'Status': {'raft_term': 7}}, {'Status': {'raft_term': '9'}}]
    assert clusterlab.raft_term(rows) == 9
    assert clusterlab.raft_term([]) is None
    assert cf.elections(9, 11) == 2 and cf.elections(None, 11) is None


def test_a_node_is_usable_once_connected_to_every_switch(plan):
    switches = sorted(n for n, p in plan['nodes'].items()
                      if p['role'] in ('hypervisor', 'service_node',
                                       'sw_gateway'))
    status = {'switches': {n: {'connected': True} for n in switches}}
    assert cf.unconnected(status, plan) == []
    status['switches'][switches[0]]['connected'] = False
    del status['switches'][switches[1]]
    assert cf.unconnected(status, plan) == sorted(switches[:2])


def test_lost_totals_leave_stalled_senders_out():
    assert cf.lost_total({'a': 3, 'b': 0, 'c': 'sender stalled (9 sent)'}) \
        == 3
