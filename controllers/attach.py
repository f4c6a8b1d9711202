"""The API of the lab another process runs on this machine (`./run.py
map` in a second terminal beside `./run.py cli`, a demo or a scenario):
found through the lab's own records (topologies.records) and the plan its
controller was given, reached over the management network like every
other client, with the lab's CA."""
import glob
import json
import os
import urllib.error

from topologies import records

from .clusterlab import ClusterNode
from .service import Controller


def running(run_root=None):
    """(plan, [API clients]): the running lab's controller, or every node
    of its cluster. RuntimeError says what to do when there is none."""
    root = run_root or records.RUN_ROOT
    state = records.read_state()
    if not state or not records.owner_alive(state):
        raise RuntimeError(
            'no lab is running on this machine: start one (sudo ./run.py '
            'cli, a demo or a scenario) and run this from another terminal')
    single = os.path.join(root, 'controller', 'plan.json')
    found = [single] if os.path.exists(single) else \
        sorted(glob.glob(os.path.join(root, 'ctl*', 'plan.json')))
    if not found:
        raise RuntimeError(
            f"lab {state.get('name')!r} runs without a controller (no "
            f'plan.json under {root}/controller or {root}/ctl*): the map '
            'comes from the controller; start the lab with ./run.py cli or '
            'a scenario')
    with open(found[0]) as f:
        plan = json.load(f)
    if os.path.exists(single):
        return plan, [Controller(plan, root).as_client()]
    return plan, [ClusterNode(plan, n, root).as_client()
                  for n in sorted(plan.get('controllers', ()))]


def get(clients, path):
    """GET `path` from the first client that answers 200."""
    problems = []
    for c in clients:
        try:
            status, body = c.request('GET', path)
        except (OSError, urllib.error.URLError, ValueError) as exc:
            problems.append(f'{c.url}: {exc}')
            continue
        if status == 200:
            return body
        problems.append(f'{c.url}: {status} {body}')
    raise RuntimeError(f'GET {path}: no controller answered: '
                       + '; '.join(problems))
