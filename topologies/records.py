"""The lab's own records, and `clean` that uses only them.

A running lab owns: network namespaces named `nsxl-<node>`, root-namespace
links named `nsxl-*` (the management bridge and its veths), and the run
directory /run/nsxlab (pidfiles, databases, logs). `lab.json` there names
the owner process, so a second lab refuses to start over a running one, and
`clean` removes a crashed run's leftovers: it kills only processes inside our
own namespaces (by PID, as `ip netns pids` lists them), deletes those
namespaces and our root links. Nothing is ever killed by name.
"""
import json
import os
import signal
import subprocess
import time

RUN_ROOT = os.environ.get('NSXLAB_RUN', '/run/nsxlab')
PREFIX = 'nsxl-'
STATE = 'lab.json'


class LabBusy(RuntimeError):
    pass


def ns_name(node):
    return PREFIX + node


def _proc_start(pid):
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def read_state():
    try:
        with open(os.path.join(RUN_ROOT, STATE)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def owner_alive(state):
    pid = state.get('owner_pid')
    return bool(pid) and _proc_start(pid) == state.get('owner_start')


def claim(name, namespaces):
    """Record that this process owns a lab, or raise LabBusy."""
    state = read_state()
    if state and owner_alive(state):
        raise LabBusy(f"lab {state.get('name')!r} is running (pid "
                      f"{state['owner_pid']}); stop it (Ctrl-C) before "
                      'starting another')
    if state or leftovers()['namespaces']:
        raise LabBusy('leftovers of a crashed lab run exist; remove them with '
                      './run.py clean')
    os.makedirs(RUN_ROOT, exist_ok=True)
    pid = os.getpid()
    write_state({'name': name, 'owner_pid': pid,
                 'owner_start': _proc_start(pid), 'started': time.time(),
                 'namespaces': namespaces})


def write_state(state):
    tmp = os.path.join(RUN_ROOT, STATE + '.tmp')
    with open(tmp, 'w') as f:
        json.dump(state, f)
    os.replace(tmp, os.path.join(RUN_ROOT, STATE))


def add_process(pid, what):
    """Record a process the lab started in the root namespace (e.g. the
    controller), so `clean` can stop it by PID after a crash."""
    state = read_state() or {}
    state.setdefault('processes', []).append(
        {'pid': pid, 'start': _proc_start(pid), 'what': what})
    write_state(state)


def kill_recorded(state, grace=2.0):
    """Stop recorded root-namespace processes that are still the same
    process (PID and start time match). Returns how many were signalled."""
    procs = [p for p in (state or {}).get('processes', [])
             if _proc_start(p['pid']) == p['start'] and _alive(p['pid'])]
    for p in procs:
        _signal(p['pid'], signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(p['pid'])
                                              for p in procs):
        time.sleep(0.05)
    for p in procs:
        if _proc_start(p['pid']) == p['start'] and _alive(p['pid']):
            _signal(p['pid'], signal.SIGKILL)
    return len(procs)


def _netns_list():
    out = subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                         text=True).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _root_links():
    out = subprocess.run(['ip', '-o', 'link', 'show'], capture_output=True,
                         text=True).stdout
    names = [line.split(':')[1].strip().split('@')[0]
             for line in out.splitlines() if ':' in line]
    return [n for n in names if n.startswith(PREFIX)]


def leftovers():
    state = read_state() or {}
    ns = set(n for n in state.get('namespaces', []) if n.startswith(PREFIX))
    ns |= {n for n in _netns_list() if n.startswith(PREFIX)}
    return {'namespaces': sorted(ns), 'links': _root_links(),
            'state': bool(state)}


def pids_in(namespaces):
    """{namespace: [pids]} for our named namespaces, from one scan of /proc
    (what `ip netns pids` does, without a fork per namespace)."""
    inodes = {}
    for ns in namespaces:
        try:
            inodes[os.stat(f'/run/netns/{ns}').st_ino] = ns
        except OSError:
            continue
    out = {ns: [] for ns in inodes.values()}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            ino = os.stat(f'/proc/{entry}/ns/net').st_ino
        except OSError:
            continue
        if ino in inodes:
            out[inodes[ino]].append(int(entry))
    return out


def kill_namespaces(namespaces, grace=2.0):
    """Stop every process inside our namespaces (TERM, then KILL after
    `grace` seconds) and delete the namespaces. Returns how many processes
    were signalled."""
    pids = [p for ps in pids_in(namespaces).values() for p in ps]
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = [p for p in pids if _alive(p)]
    left = [p for ps in pids_in(namespaces).values() for p in ps]
    for pid in left:
        _signal(pid, signal.SIGKILL)
    for _ in range(100):
        if not any(pids_in(namespaces).values()):
            break
        time.sleep(0.02)
    subprocess.run(['ip', '-force', '-batch', '-'], input=''.join(
        f'netns del {ns}\n' for ns in namespaces), capture_output=True,
        text=True)
    return len(pids) + len(left)


def _alive(pid):
    """True unless gone or a zombie (a zombie has left the namespace)."""
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def _signal(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def clean(log=print):
    """Remove every leftover of our labs; refuse while a lab is running."""
    state = read_state()
    if state and owner_alive(state):
        raise LabBusy(f"lab {state.get('name')!r} is running (pid "
                      f"{state['owner_pid']}); stop it first")
    found = leftovers()
    killed = kill_recorded(state) + kill_namespaces(found['namespaces'])
    for link in _root_links():
        subprocess.run(['ip', 'link', 'del', link], capture_output=True)
    subprocess.run(['rm', '-rf', RUN_ROOT])
    after = leftovers()
    log(f"clean: removed {len(found['namespaces'])} namespace(s), "
        f"{len(found['links'])} root link(s), stopped {killed} process(es)")
    if after['namespaces'] or after['links']:
        raise RuntimeError(f'clean: could not remove {after}')
    return found
