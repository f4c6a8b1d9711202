"""The controller's writes to a node's own OVSDB (tunnel ports, BFD, CFM
IDs: controllers.tunnels) go through the follower's persistent IDL session
(controllers.nodedb.NodeFollower.transact), here against a real, private
ovsdb-server with the Open_vSwitch schema (a unix socket in the test's
temporary directory: no root, no ovs-vswitchd, no lab)."""
import json
import os
import shutil
import subprocess
import time

import pytest

from controllers import nodedb, tunnels

from .test_hwvtep_session import wait_for

pytestmark = pytest.mark.skipif(
    not (shutil.which('ovsdb-server') and shutil.which('ovs-vsctl') and
         os.path.exists(nodedb.SCHEMA)),
    reason='needs ovsdb-server, ovs-vsctl and the vswitch schema')


@pytest.fixture
def node(tmp_path):
    db, sock = str(tmp_path / 'conf.db'), str(tmp_path / 'db.sock')
    subprocess.run(['ovsdb-tool', 'create', db, nodedb.SCHEMA], check=True)
    proc = subprocess.Popen(
        ['ovsdb-server', f'--remote=punix:{sock}', '--no-chdir',
         f'--unixctl={tmp_path}/ctl', db],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_for(lambda: os.path.exists(sock))
    remote = f'unix:{sock}'
    vsctl = ['ovs-vsctl', f'--db={remote}', '--no-wait']
    subprocess.run(vsctl + ['init', '--', 'add-br', 'br-int', '--',
                            'add-port', 'br-int', 'seg1', '--',
                            'add-port', 'br-int', 'vxold', '--', 'set',
                            'interface', 'vxold', 'type=vxlan',
                            'options:remote_ip=9.9.9.9'],
                   check=True, timeout=10)
    follower = nodedb.NodeFollower({'n1': remote}, hypervisors=()).start()
    yield follower, vsctl
    follower.stop()
    proc.terminate()
    proc.wait(5)


def interfaces(vsctl):
    out = json.loads(subprocess.run(
        vsctl + ['--format=json', '--columns=name,type,options,'
                 'ofport_request,bfd,cfm_mpid,other_config', 'list',
                 'Interface'], check=True, capture_output=True,
        text=True).stdout)
    rows = {}
    for name, typ, options, req, bfd, mpid, other in out['data']:
        rows[name] = {'type': typ, 'options': dict(options[1]),
                      'ofport_request': req, 'bfd': dict(bfd[1]),
                      'cfm_mpid': mpid, 'other_config': dict(other[1])}
    return rows


WANT = [{'name': 'vxsn1', 'port': 1001, 'remote_ip': '1.0.0.1', 'bfd': True},
        {'name': 'vxhv2', 'port': 1012, 'remote_ip': '1.0.0.12',
         'bfd': False}]


def test_tunnel_ports_reconciled_then_bfd_then_refreshed(node):
    follower, vsctl = node
    changes, bfd = follower.transact('n1', tunnels.reconcile(WANT))
    assert changes == 3 and [t['name'] for t in bfd] == ['vxsn1']
    rows = interfaces(vsctl)
    assert set(rows) == {'br-int', 'seg1', 'vxsn1', 'vxhv2'}
    assert rows['vxsn1']['type'] == 'vxlan' and \
        rows['vxsn1']['options'] == {'remote_ip': '1.0.0.1', 'key': 'flow'}
    assert rows['vxsn1']['ofport_request'] == 1001
    ports = subprocess.run(vsctl + ['list-ports', 'br-int'], check=True,
                           capture_output=True, text=True).stdout.split()
    assert sorted(ports) == ['seg1', 'vxhv2', 'vxsn1']
    # again: nothing to do
    assert follower.transact('n1', tunnels.reconcile(WANT))[0] == 0
    follower.transact('n1', tunnels.set_bfd(bfd, 300))
    assert interfaces(vsctl)['vxsn1']['bfd'] == {
        'enable': 'true', 'min_tx': '300', 'min_rx': '300'}
    follower.transact('n1', tunnels.refresh('vxsn1', 2))
    assert interfaces(vsctl)['vxsn1']['options']['ttl'] == '64'
    follower.transact('n1', tunnels.refresh('vxsn1', 3))
    assert 'ttl' not in interfaces(vsctl)['vxsn1']['options']
    # a changed remote: the port is replaced
    moved = [dict(WANT[0], remote_ip='1.0.0.2'), WANT[1]]
    assert follower.transact('n1', tunnels.reconcile(moved))[0] == 2
    assert interfaces(vsctl)['vxsn1']['options']['remote_ip'] == '1.0.0.2'


def test_cfm_id_and_interval_on_a_gateway_port(node):
    follower, vsctl = node
    follower.transact('n1', tunnels.set_cfm('seg1', 9, 10))
    row = interfaces(vsctl)['seg1']
    assert (row['cfm_mpid'], row['other_config']) == (
        9, {'cfm_interval': '10'})


def test_a_failed_build_says_which_node_and_why(node):
    follower, _ = node
    with pytest.raises(RuntimeError, match='n1: .*no interface nope'):
        follower.transact('n1', tunnels.set_cfm('nope', 9, 10))
    with pytest.raises(RuntimeError, match='not followed'):
        follower.transact('n9', tunnels.set_cfm('seg1', 9, 10))


def test_a_hypervisor_announces_a_vnic_from_its_open_session(node, tmp_path):
    """topologies.vmotion.Plug: the session is opened ahead; fire()
    writes iface-id and attached-mac on the VM's port in one transaction
    (here on the private server, as the hypervisor's own database)."""
    from topologies import vmotion

    class Lab:
        plan = {'nodes': {'vm1': {'mac': '02:00:00:00:00:01',
                                  'intfs': [{'peer': 'n1'}]},
                          'n1': {'intfs': [{'name': 'seg1',
                                            'peer': 'vm1'}]}}}

        def node(self, name):
            return type('Node', (), {'run_dir': str(tmp_path)})()
    _follower, vsctl = node
    t = vmotion.Plug(Lab(), 'vm1', hv='n1').fire()
    assert abs(t - time.time()) < 5
    ids = subprocess.run(vsctl + ['get', 'interface', 'seg1',
                                  'external_ids'], check=True,
                         capture_output=True, text=True).stdout
    assert 'iface-id=vm1' in ids and '02:00:00:00:00:01' in ids
    with pytest.raises(RuntimeError, match='no port nope'):
        vmotion.Plug(Lab(), 'vm1', hv='n1', port='nope').fire()


def test_a_writer_reports_the_outcome_only_once_the_database_answered(
        tmp_path, node):
    """devices.hwvtep.idl.Writer: `done(status)` comes with the server's
    answer (the gateway agent logs "CFM ID announced" only then): success
    for a good write, an error for one the server refuses."""
    from devices.hwvtep import idl as idlmod
    follower, vsctl = node
    sock = vsctl[1].split('=', 1)[1]
    db = idlmod.Replica(sock, nodedb.SCHEMA, {
        'Interface': ['name', 'external_ids'],
        'Port': ['name', 'interfaces']}, 'writer-test')

    def settle(until):
        return wait_for(lambda: (db.run(), until())[1])
    assert settle(db.ready)
    got = []

    def tag(txn):
        row = next(r for r in db.idl.tables['Interface'].rows.values()
                   if r.name == 'seg1')
        row.external_ids = {'who': 'writer-test'}
        return True
    assert db.writer.start(tag, got.append)
    assert settle(lambda: got) and got == [idlmod.Transaction.SUCCESS]
    assert 'writer-test' in subprocess.run(
        vsctl + ['get', 'Interface', 'seg1', 'external_ids'],
        capture_output=True, text=True).stdout

    def duplicate(txn):                  # a second Port named seg1
        port = txn.insert(db.idl.tables['Port'])
        port.name = 'seg1'
        return True
    got.clear()
    assert settle(db.writer.may_start)
    assert db.writer.start(duplicate, got.append)
    assert settle(lambda: got)
    assert got[0] not in (idlmod.Transaction.SUCCESS,
                          idlmod.Transaction.UNCHANGED), got


def test_a_lost_session_comes_back_and_is_counted(tmp_path):
    """The follower's session to a node's OVSDB: the server goes away and
    comes back; the session reconnects by itself and sessions() says so."""
    db, sock = str(tmp_path / 'conf.db'), str(tmp_path / 'db.sock')
    subprocess.run(['ovsdb-tool', 'create', db, nodedb.SCHEMA], check=True)

    def serve():
        return subprocess.Popen(
            ['ovsdb-server', f'--remote=punix:{sock}', '--no-chdir',
             f'--unixctl={tmp_path}/ctl', db],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = serve()
    assert wait_for(lambda: os.path.exists(sock))
    follower = nodedb.NodeFollower({'n1': f'unix:{sock}'},
                                   hypervisors=()).start()
    try:
        def state():
            return follower.sessions()['nodes'].get('n1', {})
        assert wait_for(lambda: state().get('connected'))
        assert state()['reconnects'] == 0
        proc.terminate()
        proc.wait(5)
        assert wait_for(lambda: not state()['connected'])
        proc = serve()
        assert wait_for(lambda: state().get('connected'), timeout=8)
        assert state()['reconnects'] == 1
        assert follower.sessions()['loop_restarts'] == 0
    finally:
        follower.stop()
        proc.terminate()
        proc.wait(5)
