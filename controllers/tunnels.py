"""Thin OVSDB (Open_vSwitch) driver: the tunnel ports of one transport node.

Reads and writes the node's Interface/Port tables over its management OVSDB
(tcp:MGMT_IP:6640) with ovs-vsctl: one vxlan port per remote VTEP named
vx<peer> (key=flow: the VNI comes from the flow), BFD where intent asks for
it. Reconciles: adds what is missing, changes what differs, deletes vx*
ports that are not wanted; touches nothing else.
"""
import json
import subprocess



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
    """want: intent.tunnels() values; have: installed(). -> (add, delete,
    bfd) lists of port names: a changed port is deleted and added; `bfd`
    are the ports whose BFD setting must change."""
    by_name = {t['name']: t for t in want}
    add, delete = [], []
    for name, t in sorted(by_name.items()):
        cur = have.get(name)
        if cur is None or (cur['remote_ip'], cur['ofport']) != (
                t['remote_ip'], t['port']):
            if cur is not None:
                delete.append(name)
            add.append(name)
    delete += sorted(n for n in have if n not in by_name)
    bfd = [n for n, t in sorted(by_name.items())
           if n in add or have[n]['bfd'] != t['bfd']]
    bfd = [n for n in bfd if by_name[n]['bfd'] or n not in add]
    return add, delete, bfd


def reconcile(db, want, bridge='br-int'):
    """Ports first (no BFD); returns the ports whose BFD must then be set
    with `set_bfd` (see Core.enable_bfd for when)."""
    have = installed(db)
    add, delete, bfd = plan_changes(want, have)
    by_name = {t['name']: t for t in want}
    args = []
    for name in delete:
        args += ['--', '--if-exists', 'del-port', bridge, name]
    for name in add:
        t = by_name[name]
        args += ['--', 'add-port', bridge, name, '--', 'set', 'interface',
                 name, 'type=vxlan', f"options:remote_ip={t['remote_ip']}",
                 'options:key=flow', f"ofport_request={t['port']}"]
    if args:
        _vsctl(db, *args)
    return len(add) + len(delete), [by_name[n] for n in bfd]


def refresh(db, name, n):
    """Reconfigure one tunnel port (toggles options:ttl between OVS's
    default made explicit and unset) so OVS re-creates its tunnel state."""
    if n % 2:
        _vsctl(db, 'remove', 'interface', name, 'options', 'ttl')
    else:
        _vsctl(db, 'set', 'interface', name, 'options:ttl=64')


def set_bfd(db, ports, ms):
    """Enable (or disable) BFD on tunnel ports, as intent says, every `ms`
    (the lab's bfd_interval_ms)."""
    args = []
    for t in ports:
        if t['bfd']:
            args += ['--', 'set', 'interface', t['name'], 'bfd:enable=true',
                     f'bfd:min_tx={ms}', f'bfd:min_rx={ms}']
        else:
            args += ['--', 'set', 'interface', t['name'], 'bfd:enable=false']
    if args:
        _vsctl(db, *args)
