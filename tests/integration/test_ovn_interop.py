"""OVN drives a hardware VTEP of this lab, as an NSX controller would:
OVN's own `ovn-controller-vtep` (its hardware_vtep gateway controller)
against the lab's VTEP, on both devices (the native one and OVS's
emulator ovs-vtep).

A tiny Clos lab (spine1, leaf1, leaf2, hv1 on leaf1, vtep1 on leaf2 with
one server bm1), no controller of ours. In the root namespace the test
starts OVN's NB and SB ovsdb-servers, ovn-northd and ovn-controller-vtep
(pointed at vtep1's hardware_vtep DB on its management address), each as
its own child and stopped by PID. The network admin binds a vtep logical
switch to vtep1 port bm1 and, in OVN, puts on one logical switch a vtep
port and a VM port bound to a fake chassis with a VXLAN encap at hv1's
tunnel IP (and a second VM port on a second fake chassis elsewhere, so
that a unicast vtep1 flooded could not pass for one it forwarded).
Then: OVN sees the switch and binds the vtep port, writes the tunnel key,
replication mode and remote MACs into vtep1's DB, and vtep1 forwards by
them, as seen on its uplink: bm1's frames to the VM's MAC go VXLAN to hv1
only, its broadcasts to both chassis (source_node), with OVN's tunnel key
as VNI. Unbinding the VM port takes its remote MAC away again, from the
DB and from the forwarding (its frames are then flooded to the other
chassis only).

Facts about ovn-controller-vtep this relies on: /work/notes/ovn-interop.md
(what it reads and writes; OVN_RUNDIR must be writable; it owns
Ucast/Mcast_Macs_Remote completely).
"""
import os
import shutil
import subprocess
import sys
import time

import pytest

from scenarios import harness
from scenarios.harness import Captures, decode
from topologies import check, pki, records
from topologies.expand import expand
from topologies.lab import Lab

pytestmark = pytest.mark.skipif(
    not (shutil.which('ovn-controller-vtep') and shutil.which('ovn-northd')),
    reason='OVN is not installed (ovn-controller-vtep and ovn-northd '
           'missing): apt-get install --no-install-recommends ovn-central '
           'ovn-controller-vtep, or run make setup')

NB_SCHEMA = '/usr/share/ovn/ovn-nb.ovsschema'
SB_SCHEMA = '/usr/share/ovn/ovn-sb.ovsschema'
PS, SERVER = 'vtep1', 'bm1'         # the Physical_Switch and its port
VTEP_LS = 'ls0'                     # the vtep DB's Logical_Switch
NB_LS = 'web'                       # OVN's logical switch
VTEP_LSP = 'vtep1-bm1'              # OVN's port of type vtep
VM_LSP, VM_MAC, VM_IP = 'vm1', '02:00:00:00:0a:01', '10.9.0.21'
CHASSIS = 'hv1'                     # fake chassis at hv1's tunnel IP
# A second fake chassis, at an address no node has (frames to it need only
# leave vtep1): a unicast that vtep1 flooded instead of forwarding by its
# Ucast_Macs_Remote row would reach it too.
OTHER, OTHER_IP = 'hv9', '198.19.99.9'
OTHER_LSP, OTHER_MAC, OTHER_VM_IP = 'vm9', '02:00:00:00:0a:09', '10.9.0.29'
BROADCAST = 'ff:ff:ff:ff:ff:ff'
FRAMEGEN = os.path.join(os.path.dirname(harness.__file__), 'framegen.py')
ROW_WAIT_S = 10                     # bound on every database wait
SEND_S = 5                          # bound on every data-plane wait
SETTLED_S = 0.3                     # sending on once the frames got through


def lab_spec(device):
    """The smallest Clos with a hypervisor and a hardware VTEP on
    different leaves (the tunnel crosses the spine)."""
    return {'name': 'ovn-interop', 'fabric': 'clos', 'vtep_device': device,
            'nodes': {'spine1': {'role': 'spine'},
                      'leaf1': {'role': 'leaf'},
                      'leaf2': {'role': 'leaf'},
                      'hv1': {'role': 'hypervisor'},
                      'vtep1': {'role': 'hw_vtep'},
                      'bm1': {'role': 'bare_metal', 'ip': '10.9.0.11/24'}},
            'links': ['spine1-leaf1', 'spine1-leaf2', 'leaf1-hv1',
                      'leaf2-vtep1', 'vtep1-bm1']}


def _addr(cidr):
    return cidr.split('/')[0]


def run(argv, timeout=15, env=None):
    return subprocess.run(argv, capture_output=True, text=True,
                          timeout=timeout, env=env)


def wait_for(what, probe, timeout=ROW_WAIT_S, step=0.05):
    """Poll probe() -> (ok, observed) until ok; return the seconds it took.
    On timeout fail, naming what was missing and what was last seen."""
    t0 = time.monotonic()
    while True:
        ok, seen = probe()
        if ok:
            return round(time.monotonic() - t0, 3)
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f'{what}: not within {timeout} s; last '
                                 f'seen: {seen!r}')
        time.sleep(step)


class Ovn:
    """OVN in the root namespace: NB and SB ovsdb-servers, ovn-northd and
    ovn-controller-vtep, each a child of this test in the foreground (no
    --detach: nothing is reparented, nothing left to find by name),
    recorded in the lab's records (so `./run.py clean` stops them after a
    crash) and stopped by PID."""

    def __init__(self, run_dir):
        self.dir = run_dir
        d = run_dir
        self.env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d,
                        OVN_RUNDIR=d, OVN_LOGDIR=d, OVN_DBDIR=d)
        self.nb, self.sb = f'unix:{d}/nb.sock', f'unix:{d}/sb.sock'
        self.procs = []                 # (name, Popen), in start order

    def _start(self, name, argv):
        out = open(os.path.join(self.dir, f'{name}.out'), 'w')
        p = subprocess.Popen(argv, env=self.env, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.STDOUT,
                             cwd=self.dir)
        out.close()
        self.procs.append((name, p))
        records.add_process(p.pid, f'ovn-interop test: {name}')
        return p

    def _alive(self, name, p):
        if p.poll() is not None:
            with open(os.path.join(self.dir, f'{name}.out')) as f:
                raise AssertionError(f'{name} exited with status '
                                     f'{p.returncode}: {f.read()[-800:]}')

    def ctl(self, tool, *args, timeout=15):
        db = {'ovn-nbctl': self.nb, 'ovn-sbctl': self.sb}[tool]
        r = run([tool, f'--db={db}', '--timeout=10', *args],
                timeout=timeout, env=self.env)
        assert r.returncode == 0, f'{tool} {" ".join(args)}: {r.stderr}'
        return r.stdout.strip()

    def start_central(self):
        """NB and SB databases and ovn-northd (what ovn-central runs)."""
        d = self.dir
        for db, schema in (('nb', NB_SCHEMA), ('sb', SB_SCHEMA)):
            r = run(['ovsdb-tool', 'create', f'{d}/{db}.db', schema])
            assert r.returncode == 0, f'ovsdb-tool create {db}: {r.stderr}'
            name, sock = f'ovsdb-server-{db}', f'{d}/{db}.sock'
            p = self._start(name, [
                'ovsdb-server', f'{d}/{db}.db', f'--remote=punix:{sock}',
                f'--unixctl={d}/{db}.ctl', f'--log-file={d}/{db}.log',
                '--no-chdir'])

            def listening(name=name, p=p, sock=sock):
                self._alive(name, p)
                return os.path.exists(sock), None
            wait_for(f'ovsdb-server for the OVN {db.upper()} DB listening '
                     f'on {sock}', listening)
        self.ctl('ovn-nbctl', 'init')
        self.ctl('ovn-sbctl', 'init')
        self._start('ovn-northd', [
            'ovn-northd', f'--ovnnb-db={self.nb}', f'--ovnsb-db={self.sb}',
            f'--log-file={d}/ovn-northd.log', '--no-chdir'])
        # northd is up when it answers a round trip NB -> SB
        self.ctl('ovn-nbctl', '--wait=sb', 'sync', timeout=20)

    def start_controller_vtep(self, vtep_db, tls=()):
        """`tls`: the key, certificate and CA options for an ssl: vtep_db
        (pki.client_args)."""
        d = self.dir
        return self._start('ovn-controller-vtep', [
            'ovn-controller-vtep', f'--vtep-db={vtep_db}', *tls,
            f'--ovnsb-db={self.sb}', f'--log-file={d}/ovn-controller-vtep.log',
            '--no-chdir'])

    def check_alive(self):
        for name, p in self.procs:
            self._alive(name, p)

    def stop(self):
        """Last started first: SIGTERM by PID, SIGKILL after 5 s."""
        for name, p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        self.procs = []


def tunnelled(lab, plan, name, dst_mac, reach, out_dir):
    """Send frames from bm1 to dst_mac (30/s, scenarios/framegen.py) until
    vtep1's uplink has shown one of those frames VXLAN-encapsulated to every
    tunnel IP of `reach`, then SETTLED_S more (the switch's settled state),
    or until SEND_S passes. The first frames may be lost while OVS resolves
    the next hop. -> (seconds until every IP of `reach` got one or None,
    capture time of that frame or None, bm1's frames as seen tunnelled
    [frame records], every VXLAN frame seen)."""
    bm = plan['nodes']['bm1']
    uplink = plan['nodes']['vtep1']['uplink']
    os.makedirs(out_dir, exist_ok=True)

    def ours(frames):
        return [f for f in frames if f.get('dst') == dst_mac and
                f.get('src') == bm['mac'] and 'outer_dst' in f]

    def complete(frames):
        got = set()
        for f in ours(frames):
            got.add(f['outer_dst'])
            if got >= set(reach):
                return f['time']
        return None

    frames, after, at = [], None, None
    with Captures(lab, [(name, 'vtep1', uplink)],
                  out_dir, bpf='udp dst port 4789') as cap:
        pcap = next(iter(cap.files.values()))
        sender = subprocess.Popen(
            ['ip', 'netns', 'exec', lab.node('bm1').ns, sys.executable,
             FRAMEGEN, 'stream', '--intf', bm['intfs'][0]['name'], '--dst',
             dst_mac, '--rate', '30', '--seconds', str(SEND_S + SETTLED_S)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < SEND_S + 0.5:
                try:
                    frames = decode(pcap)
                except Exception:       # a record being written: next time
                    frames = []
                at = complete(frames)
                if at is not None:
                    after = round(time.monotonic() - t0, 3)
                    time.sleep(SETTLED_S)
                    break
                if sender.poll() not in (None, 0):
                    raise AssertionError('the frame sender in bm1 failed: '
                                         + sender.stderr.read())
                time.sleep(0.1)
        finally:
            if sender.poll() is None:
                sender.terminate()
            sender.wait(5)
    try:
        frames = decode(pcap)
    except Exception:                   # nothing captured at all
        pass
    return after, at, ours(frames), frames


def check_tunnelled(device, what, sent, reach, key, vtep_ip, uplink):
    """The switch tunnelled bm1's frames to every IP of `reach` with VNI
    `key` from its tunnel IP and, once settled, to nothing else."""
    after, at, ours, every = sent
    got = sorted({f['outer_dst'] for f in ours})
    assert after is not None, (
        f'{device}: bm1 sent {what} for {SEND_S} s but vtep1\'s uplink '
        f'{uplink} did not show it VXLAN-encapsulated to every one of '
        f'{sorted(reach)}: it went to {got}; VXLAN frames seen: '
        f'{len(every)}, first: {_summary(every)}')
    wrong = [f for f in ours if f['vni'] != key or
             f['outer_src'] != vtep_ip]
    assert not wrong, (
        f"{device}: {what} left vtep1 with another VNI than OVN's tunnel_key "
        f'{key} or from another address than its tunnel IP {vtep_ip}: '
        f'{_summary(wrong)}')
    settled = [f for f in ours if f['time'] > at]
    assert settled, f'{device}: {what}: no frame after the first tunnelled'
    stray = [f for f in settled if f['outer_dst'] not in reach]
    assert not stray, (
        f'{device}: {what} should go to {sorted(reach)} only, but (after '
        f'that) also went to {sorted({f["outer_dst"] for f in stray})}')
    return after


def _summary(frames, limit=8):
    return [{k: f.get(k) for k in ('outer_src', 'outer_dst', 'vni', 'src',
                                   'dst')} for f in frames[:limit]]


def collect(lab, plan, ovn, out):
    """What a failure needs, taken while the lab still runs: the device's
    log and tables, vtep1's DB, OVN's view and logs."""
    os.makedirs(out, exist_ok=True)
    vtep = lab.node('vtep1')
    for name in ('hwvtep.log', 'ovs-vtep.log', 'ovs-vswitchd.log',
                 'ovsdb-server.log'):
        src = os.path.join(vtep.run_dir, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(out, name))
    dumps = []
    for br in vtep.ns_run(['ovs-vsctl', 'list-br']).stdout.split():
        dumps.append(f'== {br}\n' + vtep.ns_run(
            ['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', br]).stdout +
            vtep.ns_run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-groups',
                         br]).stdout)
    db = f"--db={lab.db('vtep1')}"
    dumps.append('== vtep-ctl show\n' + run(['vtep-ctl', db, 'show']).stdout)
    dumps.append('== remote MACs\n' + run(
        ['vtep-ctl', db, 'list-remote-macs', VTEP_LS]).stdout)
    dumps.append('== local MACs\n' + run(
        ['vtep-ctl', db, 'list-local-macs', VTEP_LS]).stdout)
    for tool, dbs in (('ovn-nbctl', ovn.nb), ('ovn-sbctl', ovn.sb)):
        dumps.append(f'== {tool} show\n' + run(
            [tool, f'--db={dbs}', '--timeout=5', 'show']).stdout)
    with open(os.path.join(out, 'tables.txt'), 'w') as f:
        f.write('\n'.join(dumps))
    for name in os.listdir(ovn.dir):
        if name.endswith(('.log', '.out')):
            shutil.copy(os.path.join(ovn.dir, name), os.path.join(out, name))


class Timings(dict):
    """Seconds each step took, counted from the command that triggers it."""

    def mark(self):
        self.t0 = time.monotonic()

    def took(self, step):
        self[step] = round(time.monotonic() - self.t0, 3)

    def wait(self, step, what, probe, timeout=ROW_WAIT_S):
        wait_for(what, probe, timeout)
        self.took(step)

    def show(self, device):
        print(f'\novn-interop [{device}] timings (s, from the triggering '
              'command):')
        for step, secs in self.items():
            print(f'  {step:<66} {secs:7.3f}')


@pytest.mark.parametrize('device', ['native', 'ovs-vtep'])
def test_ovn_controller_vtep_drives_the_hardware_vtep(device,
                                                      tmp_path_factory):
    plan = expand(lab_spec(device))
    nodes = plan['nodes']
    hv_ip = _addr(nodes['hv1']['tunnel_ip'])
    vtep_ip = _addr(nodes['vtep1']['tunnel_ip'])
    # OVN's gateway controller reaches the switch as the NSX controller
    # does, over TLS with a certificate of the lab's CA (Juniper's OVSDB
    # asks for ssl:); the test's own vtep-ctl uses the switch's socket
    vtep_db = f"ssl:{_addr(nodes['vtep1']['mgmt_ip'])}:6640"
    assert plan['tls']
    uplink = nodes['vtep1']['uplink']
    out = str(tmp_path_factory.mktemp(f'ovn-{device}'))
    ovn = Ovn(str(tmp_path_factory.mktemp('ovn')))
    t = Timings()

    def vtep_ctl(*args):
        return run(['vtep-ctl', f'--db={lab.db("vtep1")}', '--timeout=5',
                    *args])

    def vc(*args):
        r = vtep_ctl(*args)
        assert r.returncode == 0, f'vtep-ctl {" ".join(args)}: {r.stderr}'
        return r.stdout.strip()

    def sbq(*args):
        """An SB query whose answer may not be there yet."""
        r = run(['ovn-sbctl', f'--db={ovn.sb}', '--timeout=5', *args])
        return r.stdout.strip() if r.returncode == 0 else r.stderr.strip()

    def remote(line, present=True):
        def probe():
            got = vc('list-remote-macs', VTEP_LS)
            return (line in got) == present, got
        return probe

    lab = Lab(plan)
    t.mark()
    lab.start()
    try:
        try:
            t.took('lab boot (namespaces, links, boot scripts)')

            # -- 1. the switch's own rows (the device writes them), underlay
            t.mark()

            def ps_rows():
                r = vtep_ctl('list-ports', PS)
                return r.stdout.split() == [SERVER], r.stdout + r.stderr
            t.wait(f'vtep DB: Physical_Switch {PS}, port {SERVER} (after '
                   'boot)', f'{device}: Physical_Switch {PS} with '
                   f'Physical_Port {SERVER} in the vtep DB',
                   ps_rows)
            got = vc('get', 'Physical_Switch', PS, 'tunnel_ips')
            assert got == f'["{vtep_ip}"]', \
                f'{PS} tunnel_ips: want ["{vtep_ip}"], got {got}'
            t.mark()
            res = check.verify(lab, deadline_s=60)
            t.took('underlay verified (every VTEP pair, ECMP)')
            assert not res['failing'], \
                f"underlay: VTEP pairs unreachable: {res['failing']}"

            # -- 2. OVN -------------------------------------------------
            t.mark()
            ovn.start_central()
            t.took('OVN NB + SB ovsdb-servers and ovn-northd up')
            t.mark()
            ovn.start_controller_vtep(vtep_db, pki.client_args(
                os.path.join(records.RUN_ROOT, 'pki')))

            def chassis():
                got = sbq('get', 'Chassis', PS, 'other_config:is-vtep')
                return got == '"true"', got
            t.wait(f'SB Chassis {PS} (is-vtep) after ovn-controller-vtep '
                   'start', f'SB Chassis {PS} with is-vtep=true, '
                   'registered by ovn-controller-vtep', chassis)
            encap = sbq('--bare', '--columns=type,ip', 'find', 'Encap',
                        f'chassis_name={PS}').split()
            assert encap == ['vxlan', vtep_ip], \
                f'SB Encap of Chassis {PS}: want vxlan {vtep_ip}, got {encap}'

            # -- 3. the network admin's configuration --------------------
            t.mark()
            vc('add-ls', VTEP_LS)
            vc('bind-ls', PS, SERVER, '0', VTEP_LS)

            def ls_on_chassis():
                got = sbq('get', 'Chassis', PS, 'vtep_logical_switches')
                return got == f'[{VTEP_LS}]', got
            t.wait(f'Chassis {PS} vtep_logical_switches [{VTEP_LS}] after '
                   'bind-ls', f'SB Chassis {PS} vtep_logical_switches '
                   f'[{VTEP_LS}]', ls_on_chassis)

            t.mark()
            ovn.ctl('ovn-nbctl', 'ls-add', NB_LS)
            ovn.ctl('ovn-nbctl', 'lsp-add', NB_LS, VTEP_LSP,
                    '--', 'lsp-set-type', VTEP_LSP, 'vtep',
                    '--', 'lsp-set-options', VTEP_LSP,
                    f'vtep-physical-switch={PS}',
                    f'vtep-logical-switch={VTEP_LS}',
                    '--', 'lsp-set-addresses', VTEP_LSP, 'unknown')
            ovn.ctl('ovn-sbctl', 'chassis-add', CHASSIS, 'vxlan', hv_ip)
            ovn.ctl('ovn-nbctl', 'lsp-add', NB_LS, VM_LSP,
                    '--', 'lsp-set-addresses', VM_LSP, f'{VM_MAC} {VM_IP}')
            ovn.ctl('ovn-sbctl', 'chassis-add', OTHER, 'vxlan', OTHER_IP)
            ovn.ctl('ovn-nbctl', 'lsp-add', NB_LS, OTHER_LSP,
                    '--', 'lsp-set-addresses', OTHER_LSP,
                    f'{OTHER_MAC} {OTHER_VM_IP}')
            ovn.ctl('ovn-nbctl', '--wait=sb', 'sync', timeout=20)
            ps_uuid = sbq('--bare', '--columns=_uuid', 'find', 'Chassis',
                          f'name={PS}')

            def vtep_port_bound():
                got = sbq('--bare', '--columns=chassis', 'find',
                          'Port_Binding', f'logical_port={VTEP_LSP}')
                return bool(ps_uuid) and got == ps_uuid, got
            t.wait(f'SB Port_Binding {VTEP_LSP} bound to {PS} (after NB '
                   'config)', f'SB Port_Binding {VTEP_LSP} (type vtep) '
                   f'bound to Chassis {PS} ({ps_uuid})', vtep_port_bound)
            dp_key = sbq('--bare', '--columns=tunnel_key', 'find',
                         'Datapath_Binding', f'external_ids:name={NB_LS}')
            assert dp_key.isdigit() and int(dp_key) > 0, \
                f'SB Datapath_Binding of {NB_LS}: no tunnel_key ({dp_key!r})'

            def ls_keyed():
                key = vtep_ctl('get', 'Logical_Switch', VTEP_LS,
                               'tunnel_key').stdout.strip()
                mode = vtep_ctl('get', 'Logical_Switch', VTEP_LS,
                                'replication_mode').stdout.strip()
                return (key, mode) == (dp_key, 'source_node'), (key, mode)
            t.wait(f'vtep DB {VTEP_LS} tunnel_key {dp_key}, source_node '
                   '(after NB config)', f"vtep DB Logical_Switch {VTEP_LS} "
                   f"with OVN's tunnel_key {dp_key} and replication_mode "
                   'source_node', ls_keyed)

            t.mark()
            ovn.ctl('ovn-sbctl', 'lsp-bind', VM_LSP, CHASSIS,
                    '--', 'lsp-bind', OTHER_LSP, OTHER)
            ucast = f'{VM_MAC} -> vxlan_over_ipv4/{hv_ip}'
            mcast = f'unknown-dst -> vxlan_over_ipv4/{hv_ip}'
            other = f'{OTHER_MAC} -> vxlan_over_ipv4/{OTHER_IP}'
            t.wait(f'Ucast_Macs_Remote {VM_MAC} -> {hv_ip} (after lsp-bind)',
                   f'vtep DB Ucast_Macs_Remote {ucast}', remote(ucast))
            t.wait(f'Mcast_Macs_Remote unknown-dst -> {hv_ip} (after '
                   'lsp-bind)', f'vtep DB Mcast_Macs_Remote {mcast}',
                   remote(mcast))
            wait_for(f'vtep DB Ucast_Macs_Remote {other} (the other '
                     'chassis)', remote(other))
            wait_for(f'vtep DB Mcast_Macs_Remote unknown-dst -> {OTHER_IP}',
                     remote(f'unknown-dst -> vxlan_over_ipv4/{OTHER_IP}'))
            ovn.check_alive()

            # -- 4. the rows are in the device's forwarding tables -------
            # (a unicast that were flooded would also reach hv1: the other
            # chassis tells a Ucast_Macs_Remote flow from a flood)
            key = int(dp_key)
            pcaps = os.path.join(out, 'pcap')
            for name, dst, reach, what in (
                    ('unicast', VM_MAC, {hv_ip},
                     f'unicast to the VM MAC {VM_MAC}'),
                    ('broadcast', BROADCAST, {hv_ip, OTHER_IP},
                     'a broadcast (source_node: to every unknown-dst '
                     'locator)')):
                after = check_tunnelled(
                    device, what, tunnelled(lab, plan, name, dst, reach,
                                            pcaps),
                    reach, key, vtep_ip, uplink)
                t[f'data plane: bm1 {name} VXLAN VNI {key} to '
                  f"{', '.join(sorted(reach))} (1st sent)"] = after

            # -- 5. unbinding the VM port removes its remote MAC ---------
            t.mark()
            ovn.ctl('ovn-sbctl', 'lsp-unbind', VM_LSP)
            t.wait(f'Ucast_Macs_Remote {VM_MAC} gone (after lsp-unbind)',
                   f'vtep DB Ucast_Macs_Remote {ucast} removed after '
                   f'ovn-sbctl lsp-unbind {VM_LSP}',
                   remote(ucast, present=False))
            t.wait(f'Mcast_Macs_Remote unknown-dst without {hv_ip} (after '
                   'lsp-unbind)', f'vtep DB Mcast_Macs_Remote {mcast} '
                   f'removed after lsp-unbind {VM_LSP} (hv1 has no bound '
                   'port left)', remote(mcast, present=False))
            # ... and from its forwarding tables: the VM's MAC is unknown
            # now, flooded to the one unknown-dst locator left
            t[f'data plane: unbound VM MAC flooded to {OTHER_IP} only '
              '(1st sent)'] = check_tunnelled(
                device, f'unicast to the unbound VM MAC {VM_MAC}',
                tunnelled(lab, plan, 'unbound', VM_MAC, {OTHER_IP}, pcaps),
                {OTHER_IP}, key, vtep_ip, uplink)
            ovn.check_alive()
        except BaseException:
            collect(lab, plan, ovn, os.path.join(out, 'artifacts'))
            print(f'\novn-interop [{device}]: failure artifacts (device '
                  f'log, flows, vtep DB, OVN logs) in {out}/artifacts')
            raise
        finally:
            ovn.stop()
            t.show(device)
    finally:
        lab.stop()
