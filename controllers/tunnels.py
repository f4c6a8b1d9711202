"""Thin OVSDB (Open_vSwitch) driver: the tunnel ports of one transport node.

Reads and writes the node's Interface/Port tables over its management OVSDB
(tcp:MGMT_IP:6640) with ovs-vsctl: one vxlan port per remote VTEP named
vx<peer> (key=flow: the VNI comes from the flow), BFD where intent asks for
it. Reconciles: adds what is missing, changes what differs, deletes vx*
ports that are not wanted; touches nothing else.
"""
import json
import subprocess

BFD_MS = 100


def _vsctl(db, *args, timeout=20):
    res = subprocess.run(['ovs-vsctl', f'--db={db}', f'--timeout={timeout}',
                          *args], capture_output=True, text=True,
                         timeout=timeout + 5)
    if res.returncode != 0:
        raise RuntimeError(f'ovs-vsctl {db}: {res.stderr.strip()}')
    return res.stdout


def _ovs_map(value):
    return dict(value[1]) if isinstance(value, list) and value[:1] == ['map'] \
        else {}


def installed(db):
    """{port name: {'remote_ip', 'ofport', 'bfd'}} of our vx* tunnels."""
    out = json.loads(_vsctl(db, '--format=json', '--columns=name,options,'
                            'ofport_request,bfd', 'list', 'Interface'))
    rows = {}
    for name, options, ofport_req, bfd in out['data']:
        if not name.startswith('vx'):
            continue
        rows[name] = {'remote_ip': _ovs_map(options).get('remote_ip'),
                      'ofport': ofport_req if isinstance(ofport_req, int)
                      else None,
                      'bfd': _ovs_map(bfd).get('enable') == 'true'}
    return rows


def plan_changes(want, have):
    """want: intent.tunnels() values; have: installed(). -> (add, delete)
    lists of port names (a changed port is deleted and added)."""
    by_name = {t['name']: t for t in want}
    add, delete = [], []
    for name, t in sorted(by_name.items()):
        cur = have.get(name)
        if cur != {'remote_ip': t['remote_ip'], 'ofport': t['port'],
                   'bfd': t['bfd']}:
            if cur is not None:
                delete.append(name)
            add.append(name)
    delete += sorted(n for n in have if n not in by_name)
    return add, delete


def reconcile(db, want, bridge='br-int'):
    have = installed(db)
    add, delete = plan_changes(want, have)
    if not add and not delete:
        return 0
    by_name = {t['name']: t for t in want}
    args = []
    for name in delete:
        args += ['--', '--if-exists', 'del-port', bridge, name]
    for name in add:
        t = by_name[name]
        args += ['--', 'add-port', bridge, name, '--', 'set', 'interface',
                 name, 'type=vxlan', f"options:remote_ip={t['remote_ip']}",
                 'options:key=flow', f"ofport_request={t['port']}"]
        if t['bfd']:
            args += [f'bfd:enable=true', f'bfd:min_tx={BFD_MS}',
                     f'bfd:min_rx={BFD_MS}']
    _vsctl(db, *args)
    return len(add) + len(delete)
