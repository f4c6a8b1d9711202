"""Lab ownership records: one lab at a time, crashed runs need clean."""
import json
import os

import pytest

from topologies import records


@pytest.fixture
def run_root(tmp_path, monkeypatch):
    monkeypatch.setattr(records, 'RUN_ROOT', str(tmp_path))
    monkeypatch.setattr(records, '_netns_list', lambda: [])
    return tmp_path


def test_claim_records_the_owner(run_root):
    records.claim('lab1', ['nsxl-a'])
    state = records.read_state()
    assert state['owner_pid'] == os.getpid()
    assert records.owner_alive(state)
    with pytest.raises(records.LabBusy, match="lab 'lab1' is running"):
        records.claim('lab2', [])


def test_a_dead_owner_means_leftovers_to_clean(run_root):
    (run_root / records.STATE).write_text(json.dumps(
        {'name': 'old', 'owner_pid': 2 ** 22 + 1, 'owner_start': '1',
         'namespaces': ['nsxl-x']}))
    with pytest.raises(records.LabBusy, match=r'\./run\.py clean'):
        records.claim('new', [])


def test_leftovers_only_ever_name_our_prefix(run_root, monkeypatch):
    monkeypatch.setattr(records, '_netns_list',
                        lambda: ['nsxl-hv1', 'other', 'nsxlfoo'])
    (run_root / records.STATE).write_text(json.dumps(
        {'namespaces': ['nsxl-vm1', 'notours']}))
    assert records.leftovers()['namespaces'] == ['nsxl-hv1', 'nsxl-vm1']
