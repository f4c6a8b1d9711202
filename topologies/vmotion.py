"""Move a running VM from one hypervisor to another, keeping its MAC and IP
(vMotion-style), as a lab operation.

What a hypervisor pair does, in the lab's terms:
  prepare    a new vNIC for the VM on the destination: a veth pair, the VM
             end down (named mv0), the hypervisor end a port of its
             br-int (named after the VM, like every VM port), without an
             iface-id yet: nothing is bound to it.
  switchover in the VM: the old vNIC goes, the new one takes its name
             (eth0), MAC, address and ARP cache and comes up (one `ip
             -batch`); the
             destination announces the port in its OVSDB
             (external_ids:iface-id, attached-mac), which the controller
             follows and binds the logical port by; the VM announces
             itself (gratuitous ARP), as a VM does after a move.
  clean up   the source's port is deleted from its OVSDB.

`plan_move` is pure (names, commands); `move_vm` runs it on a lab and
returns when each step happened. `unplug` and `plug` take a VM's vNIC off
its hypervisor's books and put it back (its iface-id, what the controller
binds the VM's logical port by), as a hypervisor does when a vNIC is
disconnected and connected again; the port stays.
"""
import json
import subprocess
import time

from . import records

MOVED_OFPORT_BASE = 200          # ofport of a moved-in VM: base + its index


class MoveError(ValueError):
    pass


def where_is(plan, vm, located=None):
    """The hypervisor a VM is on: `located` (moves so far) or the plan's."""
    return (located or {}).get(vm) or plan['nodes'][vm]['intfs'][0]['peer']


def plan_move(plan, vm, dst, src, neighbours=()):
    """-> dict of the commands of one move of `vm` from `src` to `dst`
    (hypervisor names). `neighbours` [(ip, mac)]: the VM's ARP cache,
    which moves with it (a real VM's memory does; here the old vNIC and
    its entries go away). Errors name the field and the fix."""
    nodes = plan['nodes']
    p = nodes.get(vm)
    if p is None or p.get('role') != 'vm':
        raise MoveError(f'vm: {vm!r} is not a VM of lab {plan["name"]}; '
                        'pick one from `./run.py list`')
    if len(p['intfs']) != 1 or p.get('host_bridge'):
        raise MoveError(f'vm: {vm} has a bridged or multi-homed vNIC; only '
                        'single-vNIC VMs move')
    if nodes.get(dst, {}).get('role') != 'hypervisor':
        raise MoveError(f'to: {dst!r} is not a hypervisor of this lab')
    if dst == src:
        raise MoveError(f'to: {vm} is already on {dst}')
    ip = p['ip']
    mac = p['mac']
    ofport = MOVED_OFPORT_BASE + p['index']
    return {
        'vm': vm, 'src': src, 'dst': dst, 'mac': mac, 'ip': ip,
        'port': vm, 'ofport': ofport,
        # from the root namespace: the new vNIC between the two namespaces
        'link': (f"link add mv0 mtu 1500 netns {records.ns_name(vm)} type "
                 f"veth peer name {vm} mtu 1500 netns "
                 f"{records.ns_name(dst)}"),
        'dst_prepare': (
            f'ip link set {vm} up && ethtool -K {vm} tx off >/dev/null '
            f'&& ovs-vsctl -- add-port br-int {vm} -- set interface {vm} '
            f'ofport_request={ofport}'),
        'vm_switchover': '\n'.join([
            'link set eth0 down', 'link set eth0 name old0',
            f'link set mv0 address {mac}', 'link set mv0 name eth0',
            f'addr add {ip} dev eth0', 'link set eth0 up'] + [
            f'neigh replace {a} lladdr {m} dev eth0 nud stale'
            for a, m in neighbours] + ['link del old0']),
        'vm_announce': f"arping -q -U -c 1 -I eth0 {ip.split('/')[0]}",
        'src_cleanup': f'ovs-vsctl --if-exists del-port br-int {vm}',
    }


def neighbours_of(node):
    """[(ip, mac)] of the resolved entries of the VM's ARP cache."""
    r = node.ns_run(['ip', '-j', 'neigh', 'show', 'dev', 'eth0'])
    try:
        rows = json.loads(r.stdout or '[]')
    except ValueError:
        return []
    return [(n['dst'], n['lladdr']) for n in rows
            if n.get('lladdr') and 'FAILED' not in n.get('state', [])]


def _armed(node, script, env=None):
    """A shell in the node's namespace that waits for a line on stdin, then
    prints the time and runs `script` (the rest of stdin is its input):
    started ahead, it fires within a millisecond of the trigger."""
    return subprocess.Popen(
        ['ip', 'netns', 'exec', node.ns, 'bash', '-c',
         f'read _; date +%s.%N; {script}'], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _fired(proc, what, started=None):
    """The armed shell's time (`started`: already read from its first
    line), once it has finished."""
    out, err = proc.stdout.read(), proc.stderr.read()   # stdin is closed
    if proc.wait(30):
        raise RuntimeError(f'{what} failed: {err.strip()}')
    return started if started is not None else float(out.split()[0])


def move_vm(lab, vm, dst, located=None):
    """Move `vm` to hypervisor `dst` -> {'src', 'dst', 'switchover': epoch
    the VM switched vNICs, 'announced': epoch the destination's OVSDB
    write began, 'ofport'}. `located` ({vm: hypervisor}) is updated."""
    located = located if located is not None else {}
    src = where_is(lab.plan, vm, located)
    m = plan_move(lab.plan, vm, dst, src, neighbours_of(lab.node(vm)))
    subprocess.run(['ip', '-b', '-'], input=m['link'] + '\n', text=True,
                   check=True, capture_output=True)
    lab.node(vm).ns_run(['ethtool', '-K', 'mv0', 'tx', 'off'])
    lab.node(dst).ns_run(['bash', '-c', m['dst_prepare']], check=True)
    switch = _armed(lab.node(vm), 'exec ip -b -')
    announce = Plug(lab, vm, mac=m['mac'], hv=dst, port=m['port'])  # ahead
    switch.stdin.write('go\n' + m['vm_switchover'] + '\n')
    switch.stdin.close()
    # the destination announces once the VM has started switching (its
    # shell printed the time): the binding never precedes the switchover
    t_switch = float(switch.stdout.readline().split()[0])
    t_announce = announce.fire()
    _fired(switch, f'{vm}: switching vNICs', t_switch)
    lab.node(vm).ns_run(['bash', '-c', m['vm_announce']])
    lab.node(src).ns_run(['bash', '-c', m['src_cleanup']], check=True)
    located[vm] = dst
    return {'src': src, 'dst': dst, 'switchover': t_switch,
            'announced': t_announce, 'ofport': m['ofport']}


def vnic_port(plan, vm, hv=None):
    """The name of `vm`'s port on its hypervisor's br-int."""
    hv = hv or plan['nodes'][vm]['intfs'][0]['peer']
    return next(i['name'] for i in plan['nodes'][hv]['intfs']
                if i['peer'] == vm)


def unplug(lab, vm, hv=None):
    """Disconnect `vm`'s vNIC: its hypervisor forgets the iface-id (the
    controller unbinds the VM's logical port)."""
    hv = hv or where_is(lab.plan, vm)
    port = vnic_port(lab.plan, vm, hv)
    lab.node(hv).ns_run(['ovs-vsctl', 'remove', 'interface', port,
                         'external_ids', 'iface-id', '--', 'remove',
                         'interface', port, 'external_ids', 'attached-mac'],
                        check=True)


class Plug:
    """Connect `vm`'s vNIC: its hypervisor announces it in its OVSDB
    (iface-id, attached-mac: `mac`, or the VM's own), as a hypervisor's
    agent does, from a session it keeps open: a python-ovs IDL on the
    hypervisor's database socket, opened here, ahead. fire() commits the
    announcement and returns the epoch when the transaction began (an
    `ovs-vsctl` started for it took 10 to 40 ms more under load)."""

    def __init__(self, lab, vm, mac=None, hv=None, port=None, timeout=10.0):
        from devices.hwvtep import idl as idlmod    # python-ovs, no eventlet
        hv = hv or where_is(lab.plan, vm)
        self.port = port or vnic_port(lab.plan, vm, hv)
        self.vm, self.what = vm, f'{hv}: plugging {vm}'
        self.mac = mac or lab.plan['nodes'][vm]['mac']
        self.idlmod = idlmod
        self.db = idlmod.Replica(
            f'unix:{lab.node(hv).run_dir}/db.sock',
            '/usr/share/openvswitch/vswitch.ovsschema',
            {'Interface': ['name', 'external_ids']}, 'vmotion')
        self._spin(lambda: self.db.ready(), timeout, 'connect')

    def _spin(self, done, timeout, what):
        end = time.monotonic() + timeout
        while not done():
            if time.monotonic() > end:
                raise RuntimeError(f'{self.what}: OVSDB did not {what} '
                                   f'within {timeout:.0f} s')
            self.db.run()
            poller = self.idlmod.ovs.poller.Poller()
            self.db.wait(poller)
            poller.timer_wait(10)
            poller.block()

    def fire(self):
        row = next((r for r in self.db.idl.tables['Interface'].rows.values()
                    if r.name == self.port), None)
        if row is None:
            raise RuntimeError(f'{self.what}: no port {self.port}')
        txn = self.idlmod.Transaction(self.db.idl)
        ids = dict(row.external_ids)
        ids.update({'iface-id': self.vm, 'attached-mac': self.mac})
        row.external_ids = ids
        t = time.time()
        status = txn.commit_block()
        self.db.idl.close()
        if status not in (txn.SUCCESS, txn.UNCHANGED):
            raise RuntimeError(f'{self.what}: {txn.get_error() or status}')
        return t


def plug(lab, vm, mac=None, hv=None):
    """Plug(...).fire(): connect `vm`'s vNIC now -> epoch of the write."""
    return Plug(lab, vm, mac, hv).fire()
