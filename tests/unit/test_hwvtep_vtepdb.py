"""The native device's writer of its hardware_vtep rows (VtepDb.sync)
against a real, private ovsdb-server: what it reads from rows is
remembered, and forgotten when another client changes or deletes them."""
import subprocess
import time

import pytest

from devices.hwvtep import idl as idlmod, report, vtepdb

from .test_hwvtep_session import Server, pytestmark  # noqa: F401

LAYOUT = {'ps': 'vtep1', 'tunnel_ip': '1.0.0.31', 'mgmt_ip': '198.18.0.9',
          'age': 300, 'members': [{'name': 'vtep1',
                                   'ports': {'bm1': 1, 'bm2': 2}, 'vx': 4000,
                                   'fabric': None, 'descriptions': {}}]}
MACS = {('ls1', '02:42:00:00:00:0%d' % i) for i in range(1, 4)}


def spin(db, pred, timeout=5.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        db.run()
        if pred():
            return True
        poller = idlmod.ovs.poller.Poller()
        db.wait(poller)
        poller.timer_wait(20)
        poller.block()
    return False


@pytest.fixture
def switch(tmp_path):
    server = Server(tmp_path)
    ctl = ['vtep-ctl', f'--db={server.remote}']
    subprocess.run(ctl + ['add-ls', 'ls1', '--', 'set', 'Logical_Switch',
                          'ls1', 'tunnel_key=5001', '--', 'bind-ls', 'vtep1',
                          'bm1', '0', 'ls1'], check=True, timeout=10)
    db = vtepdb.VtepDb(server.remote, 'vtep1')
    assert spin(db, lambda: db.ready() and db.config()['bindings'])
    yield db, ctl
    db.idl.close()
    server.stop()


def push(db, macs):
    want = report.switch_rows(LAYOUT, db.config(), macs,
                              {'bm1': True, 'bm2': True}, {}, {}, False)
    db.sync(want)
    assert spin(db, lambda: not db.writer.busy())


def local(ctl):
    out = subprocess.run(ctl + ['list-local-macs', 'ls1'], check=True,
                         capture_output=True, text=True).stdout
    return {('ls1', line.split()[0]) for line in out.splitlines()
            if line.strip().startswith('02:')}


def uuid_of(ctl, mac):
    return subprocess.run(ctl + ['--bare', '--columns=_uuid', 'find',
                                 'Ucast_Macs_Local', f'MAC="{mac}"'],
                          check=True, capture_output=True,
                          text=True).stdout.strip()


def test_local_macs_written_and_kept_right_after_other_clients_change_them(
        switch):
    db, ctl = switch
    push(db, MACS)
    assert local(ctl) == MACS
    push(db, MACS)                      # the rows, read once, remembered
    memo = db.idl.row_cache['Ucast_Macs_Local']
    assert len(memo) == 3
    # another client deletes one and rewrites another's MAC: both rows'
    # memos go, the next sync puts back exactly what the switch learned
    mac1, mac2 = sorted(m for _, m in MACS)[:2]
    subprocess.run(ctl + ['del-ucast-local', 'ls1', mac1], check=True)
    subprocess.run(ctl + ['set', 'Ucast_Macs_Local', uuid_of(ctl, mac2),
                          'MAC="02:42:00:00:00:99"'], check=True)
    assert spin(db, lambda: len(db.idl.tables['Ucast_Macs_Local'].rows)
                == 2 and len(db.idl.row_cache['Ucast_Macs_Local']) < 3)
    push(db, MACS)
    assert local(ctl) == MACS
    assert spin(db, lambda: len(db.idl.tables['Ucast_Macs_Local'].rows)
                == 3)
    push(db, MACS - {('ls1', mac1)})                # aged out
    assert local(ctl) == MACS - {('ls1', mac1)}


def test_cached_reads_a_row_once_and_drops_rows_that_went():
    class Row:
        reads = 0

        def __init__(self, uuid):
            self.uuid = uuid

    class Table:
        rows = {1: Row(1), 2: Row(2)}

    class Idl:
        tables = {'T': Table}
        row_cache = {}

    def read(row):
        Row.reads += 1
        return row.uuid * 10
    assert [v for _, v in idlmod.cached(Idl, 'T', read)] == [10, 20]
    assert [v for _, v in idlmod.cached(Idl, 'T', read)] == [10, 20]
    assert Row.reads == 2
    del Table.rows[2]                   # a reload dropped it, no notice
    assert [v for _, v in idlmod.cached(Idl, 'T', read)] == [10]
    assert Idl.row_cache['T'] == {1: 10}
