"""The lab's fault catalog: every fault the soak injects, applied and undone
one way (the soak, the lab CLI's fail/restore and the demos use it).

A fault is plain data, {'kind', 'target'} (a 'several' fault holds
'faults': a list of faults applied together):

  crash       kill -9 a device's daemons, by the PIDs in its run directory
              (topologies.boot.daemons: a hypervisor's, service node's,
              gateway's or physical segment's ovs-vswitchd; a hardware
              VTEP's device, switch and database); undone by starting them
              again from their disks (boot.restart)
  freeze      SIGSTOP the same daemons; undone by SIGCONT
  cut         a link down at both ends (fabric, access or a host's cable);
              undone by bringing both up
  down        every data interface of a router, fabric member or host down
              (a switch or server losing power, as its neighbours see it);
              undone by bringing them up
  partition   a device's management interface (mgmt0) down: cut off from
              the controller, not from the data plane; undone by up
  controller  kill -9 the controller (target 'controller'); in a
              controller cluster, a node (target 'ctlN': its controller and
              its etcd member); undone by starting it again from its
              database (same API token)
  isolate     cut a controller cluster's node off from the other nodes
              (blackhole routes both ways in each namespace; the lab's own
              namespace still reaches its API); undone by deleting them
  several     two or three of the above at once

Pure: `targets(plan)`, `schedule(plan, count, seed)`, `describe(fault)`,
`check(fault, plan)`. `apply(lab, fault)` -> a record `repair(lab,
record)` undoes; both return the epoch they acted at.
"""
import os
import random
import signal
import subprocess
import time

from topologies import boot, spec as specmod

KINDS = ('crash', 'freeze', 'cut', 'down', 'partition', 'controller',
         'isolate', 'several')
DEVICE_ROLES = specmod.BR_INT_ROLES + ('hw_vtep',)
# how often each kind is drawn (a controller kill is rarer: it restarts a
# process that then reads every switch)
WEIGHTS = {'crash': 4, 'freeze': 2, 'cut': 5, 'down': 1, 'partition': 2,
           'controller': 1, 'isolate': 1, 'several': 1}
DOWN_ROLES = ('spine', 'leaf', 'vm', 'bare_metal', 'appliance')


def targets(plan):
    """{kind: [targets]} this lab offers (a link is 'A-B')."""
    nodes = plan['nodes']
    devices = sorted(n for n, p in nodes.items()
                     if p['role'] in DEVICE_ROLES)
    links = sorted(f"{lk['a']}-{lk['b']}" for lk in plan['links'])
    crashable = devices + sorted(n for n, p in nodes.items()
                                 if p['role'] == 'l2_segment')
    return {'crash': crashable, 'freeze': crashable, 'cut': links,
            'down': sorted(n for n, p in nodes.items()
                           if p['role'] in DOWN_ROLES),
            'partition': [n for n in devices if 'mgmt_intf' in nodes[n]],
            'controller': sorted(plan.get('controllers') or
                                 ['controller']),
            'isolate': sorted(plan.get('controllers') or [])}


def check(fault, plan):
    """Raise ValueError naming what is wrong with `fault` for this lab."""
    if not isinstance(fault, dict) or fault.get('kind') not in KINDS:
        raise ValueError(f'fault {fault!r}: kind must be one of '
                         + ', '.join(KINDS))
    if fault['kind'] == 'several':
        parts = fault.get('faults')
        if not isinstance(parts, list) or len(parts) < 2:
            raise ValueError('a "several" fault lists two or more faults')
        for f in parts:
            if f.get('kind') == 'several':
                raise ValueError('"several" faults do not nest')
            check(f, plan)
        return
    offered = targets(plan)[fault['kind']]
    if fault.get('target') not in offered:
        raise ValueError(f"fault {fault['kind']}: no target "
                         f"{fault.get('target')!r} in this lab; choose from "
                         + ', '.join(offered[:12])
                         + (' ...' if len(offered) > 12 else ''))


def schedule(plan, count, seed, kinds=KINDS):
    """`count` faults drawn with random.Random(seed): the same lab, count
    and seed give the same faults."""
    rng = random.Random(seed)
    offer = targets(plan)
    kinds = [k for k in kinds if k == 'several' or offer.get(k)]
    weights = [WEIGHTS[k] for k in kinds]

    def one(kind):
        return {'kind': kind, 'target': rng.choice(offer[kind])}
    out = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        if kind != 'several':
            out.append(one(kind))
            continue
        simple = [k for k in kinds
                  if k not in ('several', 'controller', 'isolate')]
        parts, seen = [], set()
        for _ in range(rng.choice((2, 2, 3))):
            f = one(rng.choice(simple))
            if (f['target'] not in seen):
                seen.add(f['target'])
                parts.append(f)
        out.append({'kind': 'several', 'faults': parts} if len(parts) > 1
                   else parts[0])
    return out


def describe(fault):
    if fault['kind'] == 'several':
        return ' + '.join(describe(f) for f in fault['faults'])
    return {'crash': 'crash {t} (kill -9)', 'freeze': 'freeze {t} (SIGSTOP)',
            'cut': 'cut link {t}', 'down': 'interfaces of {t} down',
            'partition': 'partition {t} from the '
            'management network', 'controller': 'kill the controller'
            if fault['target'] == 'controller' else 'kill controller node {t}'
            ' (controller and etcd member)',
            'isolate': 'cut controller node {t} off from the other nodes'}[
                fault['kind']].format(t=fault['target'])


def _link(plan, target):
    a, _, b = target.partition('-')
    for lk in plan['links']:
        if {lk['a'], lk['b']} == {a, b}:
            return [(lk['a'], lk['a_intf']), (lk['b'], lk['b_intf'])]
    raise ValueError(f'no link {target}')


def _pids(lab, name):
    node, out = lab.node(name), []
    for pidfile in boot.daemons(lab.plan['nodes'][name], lab.plan):
        try:
            with open(os.path.join(node.run_dir, pidfile)) as f:
                out.append((pidfile, int(f.read().strip())))
        except (OSError, ValueError):
            pass
    return out


def apply(lab, fault):
    """Inject `fault` -> record {'fault', 'at' (epoch), 'done': what was
    done, e.g. PIDs killed}; raises RuntimeError if nothing could be
    done (e.g. the daemons were not running)."""
    if fault['kind'] == 'several':
        parts = [apply(lab, f) for f in fault['faults']]
        return {'fault': fault, 'at': parts[0]['at'], 'parts': parts,
                'done': [p['done'] for p in parts]}
    kind, target, plan = fault['kind'], fault['target'], lab.plan
    at = time.time()
    if kind in ('crash', 'freeze'):
        pids = _pids(lab, target)
        if not pids:
            raise RuntimeError(f'{target}: no daemon running to {kind}')
        sig = signal.SIGKILL if kind == 'crash' else signal.SIGSTOP
        for _pidfile, pid in pids:
            os.kill(pid, sig)
        done = [f"{f.rsplit('.', 1)[0]} pid {p}" for f, p in pids]
    elif kind == 'cut':
        ends = _link(plan, target)
        for name, intf in ends:
            lab.node(name).ns_run(['ip', 'link', 'set', intf, 'down'],
                                  check=True)
        done = [f'{n}:{i} down' for n, i in ends]
    elif kind == 'down':
        intfs = [i['name'] for i in plan['nodes'][target]['intfs']]
        for intf in intfs:
            lab.node(target).ns_run(['ip', 'link', 'set', intf, 'down'],
                                    check=True)
        done = [f'{target}: ' + ' '.join(intfs) + ' down']
    elif kind == 'partition':
        lab.node(target).ns_run(['ip', 'link', 'set', 'mgmt0', 'down'],
                                check=True)
        done = [f'{target}:mgmt0 down']
    elif kind == 'isolate':
        _isolate(lab, target, 'add')
        done = [f'{target}: blackhole routes to and from the other nodes']
    elif target == 'controller':
        pid = lab.ctl.proc.pid
        lab.ctl.proc.kill()
        lab.ctl.proc.wait()
        done = [f'controller pid {pid}']
    else:
        node = lab.ctl.member(target)
        done = [f'{target}: controller pid {node.proc.pid}, etcd pid '
                f'{node.etcd.pid}']
        node.kill()
    return {'fault': fault, 'at': at, 'done': done,
            'pids': pids if kind in ('crash', 'freeze') else None}


def repair(lab, record):
    """Undo what `apply` did -> the epoch the repair started."""
    fault = record['fault']
    at = time.time()
    if fault['kind'] == 'several':
        for part in reversed(record['parts']):
            repair(lab, part)
        return at
    kind, target, plan = fault['kind'], fault['target'], lab.plan
    if kind == 'crash':
        node = lab.node(target)
        r = node.ns_run(['bash', '-c', boot.restart(
            plan['nodes'][target], plan, node.run_dir)], timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f'{target} did not start again: '
                               f'{r.stderr.strip()[-300:]}')
    elif kind == 'freeze':
        for _pidfile, pid in record['pids']:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
    elif kind == 'cut':
        for name, intf in _link(plan, target):
            lab.node(name).ns_run(['ip', 'link', 'set', intf, 'up'],
                                  check=True)
    elif kind == 'down':
        for i in plan['nodes'][target]['intfs']:
            lab.node(target).ns_run(['ip', 'link', 'set', i['name'], 'up'],
                                    check=True)
    elif kind == 'partition':
        lab.node(target).ns_run(['ip', 'link', 'set', 'mgmt0', 'up'],
                                check=True)
    elif kind == 'isolate':
        _isolate(lab, target, 'del')
    elif target == 'controller':
        lab.ctl.start()
    else:
        lab.ctl.member(target).start()
    return at


def isolation_routes(plan, node):
    """[(namespace's node, address to blackhole)]: `node`'s routes to
    every other controller node and theirs to it."""
    ctls = plan['controllers']

    def addr(n):
        return ctls[n]['mgmt_ip'].split('/')[0]
    return [pair for other in sorted(ctls) if other != node
            for pair in ((node, addr(other)), (other, addr(node)))]


def _isolate(lab, node, verb):
    from topologies import records
    for ns_node, address in isolation_routes(lab.plan, node):
        subprocess.run(['ip', '-n', records.ns_name(ns_node), 'route',
                        verb, 'blackhole', f'{address}/32'], check=True,
                       capture_output=True)
