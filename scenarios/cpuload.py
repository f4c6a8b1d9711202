"""Where a settled lab's CPU goes: per process kind over a window.

`sample(pids_by_node, seconds)` reads each process's CPU time
(/proc/PID/stat utime + stime) at both ends of the window; `breakdown` (pure)
turns the two readings into % of one core per (role, program), e.g.
('hypervisor', 'ovs-vswitchd'), largest first. The controller runs in the
root namespace: pass it as node '(controller)'.
"""
import os
import time

from topologies import spec as specmod

HZ = os.sysconf('SC_CLK_TCK')


def read(pids):
    """{pid: (program, CPU ticks)} of the pids still alive."""
    out = {}
    for pid in pids:
        try:
            with open(f'/proc/{pid}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index('(') + 1:stat.rindex(')')]
        fields = stat[stat.rindex(')') + 2:].split()
        out[pid] = (comm, int(fields[11]) + int(fields[12]))
    return out


def breakdown(before, after, role_of_pid, seconds, hz=HZ):
    """{'total_pct', 'by_kind': [{'role', 'program', 'pct', 'processes'}]}:
    CPU between two read()s, % of one core; a process that was not in both
    readings is left out (it started or ended inside the window), and so
    is a kind that used no CPU at all."""
    kinds = {}
    for pid, (comm, ticks) in after.items():
        if pid not in before or before[pid][0] != comm:
            continue
        key = (role_of_pid.get(pid, '?'), comm)
        k = kinds.setdefault(key, [0, 0])
        k[0] += ticks - before[pid][1]
        k[1] += 1
    rows = [{'role': r, 'program': p,
             'pct': round(100.0 * t / hz / seconds, 2), 'processes': n}
            for (r, p), (t, n) in kinds.items() if t > 0]
    rows.sort(key=lambda x: (-x['pct'], x['role'], x['program']))
    return {'total_pct': round(sum(x['pct'] for x in rows), 2),
            'seconds': seconds, 'by_kind': rows}


def sample(pids_by_node, role_of_node, seconds):
    """Measure the lab's processes over `seconds` (see breakdown)."""
    role_of_pid = {pid: role_of_node.get(node, node)
                   for node, pids in pids_by_node.items() for pid in pids}
    before = read(role_of_pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    after = read(role_of_pid)
    return breakdown(before, after, role_of_pid, time.monotonic() - t0)


def lab_sample(lab, seconds, controller_pid=None):
    """sample() of every process in `lab`'s namespaces (and the
    controller's, if given), grouped by node role."""
    pids = dict(lab.pids())
    if controller_pid:
        pids['(controller)'] = [controller_pid]
    roles = {n: p['role'] for n, p in lab.plan['nodes'].items()}
    roles['(controller)'] = 'controller'
    return sample(pids, roles, seconds)


def flap_counts(rows):
    """{'bfd', 'cfm'}: total flaps in `rows`, one node's Interface rows as
    ovs-vsctl --format=json lists them (columns name, bfd_status,
    cfm_flap_count): OVS counts every state change of a session."""
    bfd = cfm = 0
    for _name, status, cfm_flaps in rows:
        if isinstance(status, list) and status[:1] == ['map']:
            bfd += int(dict(status[1]).get('flap_count', 0))
        if isinstance(cfm_flaps, int):
            cfm += cfm_flaps
    return {'bfd': bfd, 'cfm': cfm}


def lab_flaps(lab):
    """flap_counts() summed over every transport node of `lab`."""
    import json
    total = {'bfd': 0, 'cfm': 0}
    for name, p in lab.plan['nodes'].items():
        if p['role'] not in specmod.BR_INT_ROLES:
            continue
        out = lab.node(name).ns_run(
            ['ovs-vsctl', '--format=json', '--columns=name,bfd_status,'
             'cfm_flap_count', 'list', 'interface'], timeout=20).stdout
        got = flap_counts(json.loads(out)['data'] if out.strip() else [])
        total = {k: total[k] + got[k] for k in total}
    return total


def service_node_down_events(log_text):
    """How many times the controller's log says a service node went down
    ('service nodes down: [...]' with at least one name)."""
    return sum(1 for line in log_text.splitlines()
               if 'service nodes down: [' in line)


def idle_window(lab, controller, seconds, progress=lambda m: None):
    """A settled lab left alone for `seconds`: CPU per process kind
    (lab_sample), BFD/CFM flaps and service-node-down events inside the
    window."""
    def log_len():
        try:
            return os.path.getsize(controller.log_path)
        except OSError:
            return 0
    flaps0, at = lab_flaps(lab), log_len()
    progress(f'  idle: measuring the settled lab for {seconds:.0f} s')
    cpu = lab_sample(lab, seconds, controller.proc.pid)
    flaps1 = lab_flaps(lab)
    with open(controller.log_path, errors='replace') as f:
        f.seek(at)
        down = service_node_down_events(f.read())
    return {'idle_cpu_pct': cpu['total_pct'], 'idle_s': round(seconds, 1),
            'idle_by_kind': cpu['by_kind'],
            'idle_bfd_flaps': flaps1['bfd'] - flaps0['bfd'],
            'idle_cfm_flaps': flaps1['cfm'] - flaps0['cfm'],
            'idle_service_node_down_events': down}
