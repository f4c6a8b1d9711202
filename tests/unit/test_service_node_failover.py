"""service-node-failover's pure decisions."""
from scenarios import service_node_failover as snf


def test_the_service_node_in_use_is_the_bucket_that_counted():
    assert snf.in_use([10, 5], [400, 5], ['sn1', 'sn2']) == 'sn1'
    assert snf.in_use([10, 5], [10, 90], ['sn1', 'sn2']) == 'sn2'
    assert snf.in_use([10, 5], [10, 5], ['sn1', 'sn2']) is None
    assert snf.in_use([], [], ['sn1']) is None


def test_broadcast_address_of_a_vm_subnet():
    assert snf.broadcast_of('10.1.0.14/16') == '10.1.255.255'


def test_the_pair_spans_two_hypervisors_in_one_logical_switch():
    plan = {'nodes': {
        'vm1': {'role': 'vm', 'ls': 'ls1', 'intfs': [{'peer': 'hv1'}]},
        'vm2': {'role': 'vm', 'ls': 'ls1', 'intfs': [{'peer': 'hv1'}]},
        'vm3': {'role': 'vm', 'ls': 'ls2', 'intfs': [{'peer': 'hv2'}]},
        'vm4': {'role': 'vm', 'ls': 'ls1', 'intfs': [{'peer': 'hv2'}]}}}
    assert snf.pick_pair(plan) == ('vm1', 'vm4')


def test_broadcasts_are_counted_per_service_node_from_the_kill_on():
    ips = {'10.0.0.1': 'sn1', '10.0.0.2': 'sn2'}
    b = 'ff:ff:ff:ff:ff:ff'
    frames = [{'time': 1.0, 'outer_dst': '10.0.0.1', 'dst': b},
              {'time': 2.0, 'outer_dst': '10.0.0.2', 'dst': b},
              {'time': 2.1, 'outer_dst': '10.0.0.2', 'dst': b},
              {'time': 2.2, 'outer_dst': '10.0.0.2',      # BFD, not ours
               'dst': '00:23:20:00:00:01'},
              {'time': 2.3, 'outer_dst': '10.0.0.9', 'dst': b},
              {'time': 2.4, 'dst': b}]                     # not tunnelled
    assert snf.broadcasts_to(frames, 1.5, ips) == {'sn2': 2}
    assert snf.broadcasts_to(frames, 0, ips) == {'sn1': 1, 'sn2': 2}
    assert snf.broadcasts_to([], 0, ips) == {}


def test_outages_split_by_whether_the_streams_side_was_affected():
    res = {'vm->vm': {'outage_ms': 900.0, 'outage_seq_ms': 880.0},
           'server->vm': {'outage_ms': 150.0, 'outage_seq_ms': 1.0}}
    sides = {'vm->vm': 'hypervisor', 'server->vm': 'vtep'}
    assert snf.outages(res, sides, {'hypervisor'}) == {
        'outage_ms': {'vm->vm': 900.0},
        'outage_seq_ms': {'vm->vm': 880.0},
        'unaffected_outage_ms': {'server->vm': 150.0},
        'unaffected_outage_seq_ms': {'server->vm': 1.0}}
