"""VtepSession against a real, private ovsdb-server (hardware_vtep schema,
a unix socket in the test's temporary directory: no root, no lab). The
test plays the switch: it creates the physical switch, its Tunnel rows and
Ucast_Macs_Local rows through its own IDL, the way ovs-vtep would."""
import os
import shutil
import subprocess
import time

import pytest

from controllers import hwvtep, vtepplan

ovs = hwvtep.ovs
pytestmark = pytest.mark.skipif(
    not (shutil.which('ovsdb-server') and shutil.which('ovsdb-tool') and
         shutil.which('vtep-ctl') and os.path.exists(hwvtep.VTEP_SCHEMA)),
    reason='needs ovsdb-server, ovsdb-tool, vtep-ctl and the vtep schema')

BFD = {'enable': 'true', 'min_rx': '100', 'min_tx': '100'}
MAC1, MAC2, MAC9 = '02:00:00:00:00:01', '02:00:00:00:00:02', \
    '02:00:00:00:00:99'
WANT = {'logical_switches': {'ls1': {'vni': 5001, 'mode': 'service_node'},
                             'ls2': {'vni': 5002, 'mode': 'source_node'}},
        'bindings': {('bm1', 0): 'ls1', ('bm2', 100): 'ls2'},
        'ucast_remote': {('ls1', MAC1): '1.0.0.11', ('ls2', MAC2): '1.0.0.12'},
        'mcast_remote': {'ls1': ['1.0.0.1', '1.0.0.2'], 'ls2': ['1.0.0.11']},
        'bfd': {'1.0.0.1': BFD, '1.0.0.2': BFD}}


def wait_for(pred, timeout=4.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


class Server:
    """A private ovsdb-server with one physical switch vtep1 (ports bm1,
    bm2), as the switch's setup would create it."""

    def __init__(self, tmp):
        self.file, self.sock = str(tmp / 'vtep.db'), str(tmp / 'db.sock')
        self.ctl, self.remote, self.proc = str(tmp / 'ctl'), None, None
        self.remote = 'unix:' + self.sock
        subprocess.run(['ovsdb-tool', 'create', self.file,
                        hwvtep.VTEP_SCHEMA], check=True)
        self.start()
        subprocess.run(['vtep-ctl', f'--db={self.remote}', '--', 'add-ps',
                        'vtep1', '--', 'set', 'Physical_Switch', 'vtep1',
                        'tunnel_ips=1.0.0.31', '--', 'add-port', 'vtep1',
                        'bm1', '--', 'add-port', 'vtep1', 'bm2'], check=True,
                       timeout=10)

    def start(self):
        self.proc = subprocess.Popen(
            ['ovsdb-server', f'--remote=punix:{self.sock}',
             f'--unixctl={self.ctl}', '--no-chdir', self.file],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: os.path.exists(self.sock))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)
        if os.path.exists(self.sock):
            os.unlink(self.sock)


class Switch:
    """The switch side: an IDL on every column, blocking commits."""

    def __init__(self, remote):
        helper = ovs.db.idl.SchemaHelper(location=hwvtep.VTEP_SCHEMA)
        helper.register_all()
        self.idl = ovs.db.idl.Idl(remote, helper)
        self.sync(lambda: self.idl.change_seqno)

    def sync(self, pred=lambda: True, timeout=4.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.idl.run()
            if pred():
                return True
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.timer_wait(20)
            poller.block()
        return False

    def rows(self, table):
        return list(self.idl.tables[table].rows.values())

    def have(self):
        self.sync()
        return vtepplan.read_have(self.idl.tables, 'vtep1')

    def converged(self, want):
        return lambda: not vtepplan.plan(want, self.have())

    def transact(self, build):
        txn = ovs.db.idl.Transaction(self.idl)
        build(txn, self.idl.tables)
        status = txn.commit_block()
        assert status == txn.SUCCESS, txn.get_error()

    def locator(self, txn, tables, ip):
        loc = next((r for r in tables['Physical_Locator'].rows.values()
                    if r.dst_ip == ip), None)
        if loc is None:
            loc = txn.insert(tables['Physical_Locator'])
            loc.encapsulation_type, loc.dst_ip = 'vxlan_over_ipv4', ip
        return loc

    def add_tunnels(self, bfd_by_ip):
        """Tunnel rows from 1.0.0.31 to each ip (with these bfd_params)."""
        def build(txn, tables):
            ps = next(r for r in tables['Physical_Switch'].rows.values())
            tunnels = list(ps.tunnels)
            for ip, params in bfd_by_ip.items():
                t = txn.insert(tables['Tunnel'])
                t.local = self.locator(txn, tables, '1.0.0.31')
                t.remote = self.locator(txn, tables, ip)
                t.bfd_params = params
                tunnels.append(t)
            ps.tunnels = tunnels
        self.transact(build)

    def learn(self, ls_name, mac):
        def build(txn, tables):
            ls = next(r for r in tables['Logical_Switch'].rows.values()
                      if r.name == ls_name)
            row = txn.insert(tables['Ucast_Macs_Local'])
            row.MAC, row.logical_switch = mac, ls
            row.locator = self.locator(txn, tables, '1.0.0.31')
        self.transact(build)

    def forget(self, mac):
        self.transact(lambda txn, tables: [
            r.delete() for r in list(tables['Ucast_Macs_Local'].rows.values())
            if r.MAC == mac])


@pytest.fixture
def lab(tmp_path):
    server = Server(tmp_path)
    state = {'want': WANT, 'macs': []}
    session = hwvtep.VtepSession('vtep1', server.remote,
                                 lambda have: state['want'],
                                 state['macs'].append).start()
    switch = Switch(server.remote)
    yield server, session, switch, state
    session.stop()
    server.stop()


def test_the_session_converges_and_bfd_goes_to_the_service_nodes(lab):
    _server, session, switch, _state = lab
    assert wait_for(switch.converged(WANT))
    # the switch creates a Tunnel per remote locator it tunnels to
    switch.add_tunnels({'1.0.0.1': {}, '1.0.0.11': BFD, '1.0.0.12': {}})
    assert wait_for(switch.converged(WANT))
    have = switch.have()
    assert have['tunnels'] == {'1.0.0.1': BFD, '1.0.0.11': {},
                               '1.0.0.12': {}}
    assert have['mcast_remote'] == WANT['mcast_remote']
    # one locator per IP: the switch's own rows were reused, not duplicated
    ips = [r.dst_ip for r in switch.rows('Physical_Locator')]
    assert sorted(ips) == sorted(set(ips))
    st = session.status()
    assert st['connected'] and st['last_error'] is None
    assert st['last_commit']['status'] == 'success'
    assert st['counts'] == {'logical_switches': 2, 'bindings': 2,
                            'local_macs': 0, 'remote_macs': 2}


def test_local_macs_are_reported_with_their_vni(lab):
    _server, _session, switch, state = lab
    assert wait_for(switch.converged(WANT))
    switch.learn('ls2', MAC9)
    assert wait_for(lambda: state['macs'][-1:] == [{(5002, MAC9)}])
    switch.forget(MAC9)
    assert wait_for(lambda: state['macs'][-1:] == [set()])


def test_a_switch_goes_once_the_vtep_lets_go_of_it(lab):
    _server, session, switch, state = lab
    assert wait_for(switch.converged(WANT))
    switch.learn('ls2', MAC9)
    state['want'] = dict(
        WANT, logical_switches={'ls1': WANT['logical_switches']['ls1']},
        bindings={('bm1', 0): 'ls1'},
        ucast_remote={('ls1', MAC1): '1.0.0.11'},
        mcast_remote={'ls1': ['1.0.0.1', '1.0.0.2']})
    session.request()
    # its binding and remote rows go; the switch's own row still holds it
    assert wait_for(lambda: switch.have()['bindings'] == {('bm1', 0): 'ls1'}
                    and 'ls2' not in switch.have()['mcast_remote'])
    assert 'ls2' in switch.have()['logical_switches']
    assert session.status()['last_error'] is None
    switch.forget(MAC9)                  # the switch cleans up: ls2 goes
    assert wait_for(switch.converged(state['want']))
    assert 'ls2' not in switch.have()['logical_switches']


def test_a_restarted_server_is_reconciled_including_offline_deletes(lab):
    server, session, switch, _state = lab
    assert wait_for(switch.converged(WANT))
    server.stop()
    assert wait_for(lambda: not session.status()['connected'])
    # a remote MAC deleted while the session was away gives no event
    subprocess.run(['ovsdb-tool', 'transact', server.file, '["hardware_vtep",'
                    ' {"op": "delete", "table": "Ucast_Macs_Remote", '
                    '"where": []}]'], check=True, capture_output=True)
    server.start()
    assert wait_for(lambda: session.status()['connected'], timeout=5)
    switch = Switch(server.remote)
    assert wait_for(switch.converged(WANT))
    st = session.status()
    assert st['reconnects'] == 1 and st['counts']['remote_macs'] == 2


def test_a_database_that_undoes_our_writes_is_not_fought_forever(lab):
    _server, session, switch, _state = lab
    assert wait_for(switch.converged(WANT))
    switch.add_tunnels({'1.0.0.1': {}})

    def undo(txn, tables):
        for t in tables['Tunnel'].rows.values():
            t.bfd_params = {}
    reverts, end = 0, time.monotonic() + 3
    while time.monotonic() < end and 'does not converge' not in str(
            session.status()['last_error']):
        if switch.have()['tunnels']['1.0.0.1']:
            switch.transact(undo)
            reverts += 1
        time.sleep(0.01)
    assert 'does not converge' in session.status()['last_error']
    assert reverts == session.MAX_REPEATS + 1
    session.request()                      # a change: it tries again
    assert wait_for(lambda: switch.have()['tunnels']['1.0.0.1'] == BFD)


def test_a_failed_transaction_is_an_error_only_on_an_unchanged_database():
    import logging

    import ovs.db.idl

    from controllers.hwvtep import failure_level
    T = ovs.db.idl.Transaction
    assert failure_level(T.TRY_AGAIN, False) == logging.INFO
    assert failure_level(T.ERROR, True) == logging.WARNING    # a race
    assert failure_level(T.ERROR, False) == logging.ERROR     # our bug
    assert failure_level(T.NOT_LOCKED, False) == logging.ERROR
