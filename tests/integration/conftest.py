"""Integration tests boot small real labs: they need root and a machine
where no other lab of ours is running (a crashed one's leftovers are
cleaned first, from its records)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


@pytest.fixture(autouse=True, scope='session')
def _root_and_no_lab(pytestconfig):
    if os.geteuid() != 0:
        pytest.fail('integration tests build namespaces: run them as root '
                    '(sudo make test)', pytrace=False)
    from topologies import records
    state = records.read_state()
    if state and records.owner_alive(state):
        pytest.fail(f"lab {state.get('name')!r} is running (pid "
                    f"{state['owner_pid']}): stop it before the tests",
                    pytrace=False)
    if state or records.leftovers()['namespaces']:
        # A crashed run (its owner is gone: a reboot or a kill mid-run)
        # must not fail every test after it: what `./run.py clean` does,
        # from the lab's own records, said where CI's log shows it.
        capture = pytestconfig.pluginmanager.get_plugin('capturemanager')
        with capture.global_and_fixture_disabled():
            records.clean(log=lambda line: print(
                f'\nintegration: a crashed lab run was left here; {line}'))
    yield
    left = records.leftovers()
    assert not left['namespaces'], f'tests left namespaces: {left}'


def run_py(*args, timeout=300, **kw):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'run.py'),
                           *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, **kw)


def last_json(stdout):
    import json
    return json.loads(stdout.strip().splitlines()[-1])


def api_write(lab, method, path, body=None):
    """One API request on a test's lab -> its answer; asserts it was
    accepted (200, 201, 204)."""
    status, got = lab.ctl.request(method, path, body)
    assert status in (200, 201, 204), (method, path, status, got)
    return got
