"""A lab that cannot be brought up keeps its evidence: the controller's
log, every node's daemon logs and the plan, and the error says where."""
import json
import os

import pytest

from scenarios import harness


class FakeNode:
    def __init__(self, run_dir):
        self.run_dir = run_dir


class FakeLab:
    stopped = False

    def __init__(self, plan, progress=None):
        self.plan, self.nodes = plan, {}

    def start(self):
        for n in self.plan['nodes']:
            d = os.path.join(self.plan['run'], n)
            os.makedirs(d)
            with open(os.path.join(d, 'ovs-vswitchd.log'), 'w') as f:
                f.write(f'{n} log\n')
            self.nodes[n] = FakeNode(d)

    def stop(self):
        FakeLab.stopped = True


class FakeController:
    def __init__(self, plan, cfm_interval_ms=100):
        self.log_path = os.path.join(plan['run'], 'controller.log')
        self.stopped = False

    def start(self):
        with open(self.log_path, 'w') as f:
            f.write('controller log\n')
        return self

    def stop(self):
        self.stopped = True

    def logs(self):
        return {'controller.log': self.log_path}


def test_failed_provisioning_saves_evidence_and_says_where(tmp_path,
                                                           monkeypatch):
    plan = {'name': 'x', 'nodes': {'hv1': {}, 'sn1': {}},
            'run': str(tmp_path / 'run')}
    monkeypatch.setattr(harness.expand, 'expand', lambda spec: plan)
    monkeypatch.setattr(harness, 'Lab', FakeLab)
    monkeypatch.setattr(harness.clusterlab, 'make', FakeController)

    def broken(ctl, plan, progress):
        raise RuntimeError('POST /logical-switches: 500')
    monkeypatch.setattr(harness.provision, 'provision', broken)
    where = tmp_path / 'evidence'
    with pytest.raises(harness.LabFailed) as err:
        with harness.ControlledLab({}, artifacts_dir=str(where)):
            pass
    assert str(where) in str(err.value) and '500' in str(err.value)
    assert (where / 'controller.log').read_text() == 'controller log\n'
    assert (where / 'logs' / 'sn1' / 'ovs-vswitchd.log').read_text() == \
        'sn1 log\n'
    assert json.loads((where / 'plan.json').read_text())['name'] == 'x'
    assert FakeLab.stopped


def test_socket_buffers_are_only_ever_raised(tmp_path):
    from topologies import lab as labmod
    (tmp_path / 'rmem_max').write_text('212992\n')
    (tmp_path / 'rmem_default').write_text('212992\n')
    labmod._raise_socket_buffers(str(tmp_path), 1 << 20)
    assert int((tmp_path / 'rmem_max').read_text()) == 1 << 20
    assert int((tmp_path / 'rmem_default').read_text()) == 1 << 20
    (tmp_path / 'rmem_max').write_text('16777216\n')
    labmod._raise_socket_buffers(str(tmp_path), 1 << 20)
    assert int((tmp_path / 'rmem_max').read_text()) == 16777216
