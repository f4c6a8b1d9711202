"""controllers/writes.py: every change to the desired state is a write
(op, args); replaying the same log on two Stores gives the same answers
and the same state, in one go or in pieces (what each node of the
controller cluster will do with the replicated log, docs/cluster.md)."""
import copy

import pytest

from controllers import model, writes

INV = {'vm1': {'transport_node': 'hv1', 'ofport': 2,
               'mac': '02:00:00:00:00:01', 'ip': '10.1.0.11/24'},
       'vm2': {'transport_node': 'hv2', 'ofport': 2,
               'mac': '02:00:00:00:00:02', 'ip': '10.1.0.12/24'}}
NODES = {'hv1': {'role': 'hypervisor', 'tunnel_ip': '1.0.0.1', 'index': 1},
         'hv2': {'role': 'hypervisor', 'tunnel_ip': '1.0.0.3', 'index': 3},
         'gw1': {'role': 'sw_gateway', 'tunnel_ip': '1.0.0.2', 'index': 2,
                 'ports': {'seg1': 2}}}
LOG = [
    (1, 'create_ls', [{'name': 'web', 'vni': 5001,
                       'subnet': '10.1.0.0/24'}]),
    (2, 'create_ls', [[{'name': 'db', 'vni': 5002},
                       {'name': 'app', 'vni': 5003}]]),         # bulk
    (3, 'create_ls', [{'name': 'web', 'vni': 5009}]),         # refused
    (4, 'attach', [1, {'attachment': 'vm1'}]),
    (5, 'attach', [1, [{'attachment': 'vm2'}]]),                # bulk
    (6, 'connect_gateway', [{'ls_id': 2, 'gateway': 'gw1',
                             'port': 'seg1', 'vlan': 100}]),
    (7, 'update_ls', [3, {'name': 'app2'}]),
    (8, 'request_move', [1, {'transport_node': 'hv2'}]),
    (9, 'detach', [2]),
    (10, 'disconnect_gateway', [1]),
    (11, 'delete_ls', [3]),
    (12, 'delete_ls', [3]),                                    # refused
]


def store():
    """A node's own Store (its own inventory: each node is a process)."""
    return model.Store(inventory=copy.deepcopy(INV),
                       nodes=copy.deepcopy(NODES))


def dump(s):
    return list(s.db.iterdump())


def test_two_nodes_replaying_one_log_agree_on_everything():
    a, b = store(), store()
    ra, rb = writes.replay(a, LOG), writes.replay(b, list(reversed(LOG)))
    assert ra == rb and ra[0] == 12
    assert dump(a) == dump(b) and a.desired() == b.desired()
    answers = dict(ra[1])
    assert answers[3]['error']['error']['field'] == 'name'   # refused
    assert answers[8]['requested_node'] == 'hv2'
    assert answers[11] is None and 'error' in answers[12]   # deleted once
    assert [ls['name'] for ls in a.list_ls()] == ['web', 'db']


def test_replaying_in_pieces_ends_where_one_replay_does():
    whole, pieces = store(), store()
    writes.replay(whole, LOG)
    applied, first = writes.replay(pieces, LOG[:5])
    assert applied == 5
    applied, rest = writes.replay(pieces, LOG, applied)  # skips 1..5
    assert applied == 12 and [r for r, _ in rest] == list(range(6, 13))
    assert dump(whole) == dump(pieces)


def test_a_refused_write_changes_nothing_and_an_unknown_op_is_named():
    s = store()
    writes.replay(s, LOG[:2])
    before = dump(s)
    with pytest.raises(model.ApiError):
        writes.apply(s, 'create_ls', [{'name': 'x', 'vni': 6001},
                                      {'name': 'x', 'vni': 6002}])
    assert dump(s) == before                  # bulk: all or none
    with pytest.raises(ValueError, match="op: 'drop_table' is not a write"):
        writes.apply(s, 'drop_table')
