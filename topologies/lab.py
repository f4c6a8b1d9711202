"""Make a plan real: namespaces, links, management network, boot scripts.

    with Lab(plan, progress=print) as lab:   # start() ... stop() always runs
        lab.node('hv1').ns_run(['ovs-vsctl', 'show'])

Start is parallel where it can be (namespaces and shells, then one
`ip -batch` for every link, then every node's boot script in a thread pool).
Stop always completes: it stops every process in the lab's namespaces by PID
and deletes them; `records.clean` does the same for a crashed run.
"""
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from mininet.net import Mininet
from mininet.util import fixLimits

from . import boot, pki, records
from .nodes import node_class

WORKERS = max(8, 8 * (os.cpu_count() or 1))


class BootError(RuntimeError):
    pass


class Lab:
    def __init__(self, plan, progress=None):
        self.plan = plan
        self.progress = progress or (lambda msg: None)
        self.nodes = {}
        self.net = None
        self.timings = {}
        self.extra_ns = []            # namespaces added to a running lab

    # -- lifecycle -------------------------------------------------------
    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self):
        t0 = time.monotonic()
        records.claim(self.plan['name'], self.namespaces())
        # Mininet's own limits: more fds, PTYs, and a neighbour table (one for
        # every namespace on the machine) that holds a large lab's ARP.
        fixLimits()
        _raise_neighbour_limits(len(self.plan['nodes']))
        _raise_socket_buffers()
        try:
            self._mgmt_bridge()
            self._step('namespaces', self._make_nodes)
            if self.plan.get('controllers'):
                self._step('controller_nodes', self._controller_nodes)
            self._step('links', self._make_links)
            if boot.tls(self.plan):
                self._step('pki', self._make_pki)
            self._step('boot', self._boot_nodes)
            if self.plan['fabric'] == 'vcf':
                self._step('announce', self._announce)
        except BaseException:
            self.stop()
            raise
        self.timings['start_s'] = time.monotonic() - t0
        return self

    def stop(self):
        t0 = time.monotonic()
        for node in self.nodes.values():
            try:
                node.terminate()
            except OSError:
                pass
        records.kill_namespaces(self.namespaces())
        # Namespace teardown in the kernel is asynchronous: delete our root
        # ends (management veths, bridge) ourselves rather than wait for it.
        ours = [p['mgmt_intf'] for p in self.plan['nodes'].values()
                if 'mgmt_intf' in p] + [
            c['mgmt_intf'] for c in self.plan.get('controllers', {}).values()
        ] + [self.plan['mgmt']['bridge']]
        subprocess.run(['ip', '-force', '-batch', '-'], input=''.join(
            f'link del {name}\n' for name in ours), capture_output=True,
            text=True)
        state = records.read_state()
        if state and state.get('owner_pid') == os.getpid():
            subprocess.run(['rm', '-rf', records.RUN_ROOT])
        self.nodes = {}
        self.timings['stop_s'] = time.monotonic() - t0

    # -- steps -----------------------------------------------------------
    def _step(self, what, fn):
        t0 = time.monotonic()
        fn()
        self.timings[f'{what}_s'] = round(time.monotonic() - t0, 3)

    def _mgmt_bridge(self):
        m = self.plan['mgmt']
        _ip_batch([f"link add {m['bridge']} type bridge",
                   f"addr add {m['root_ip']} dev {m['bridge']}",
                   f"link set {m['bridge']} up"])

    def _make_nodes(self):
        fabric = self.plan['fabric']
        total = len(self.plan['nodes'])

        def make(item):
            name, pn = item
            cls = node_class(pn['role'], fabric)
            node = cls(name, plan_node=pn,
                       run_dir=os.path.join(records.RUN_ROOT, name))
            return name, node

        with ThreadPoolExecutor(WORKERS) as pool:
            for i, (name, node) in enumerate(
                    pool.map(make, self.plan['nodes'].items()), 1):
                self.nodes[name] = node
                if i % 50 == 0 or i == total:
                    self.progress(f'  namespaces and shells: {i}/{total}')

    def namespaces(self):
        """Every namespace of the lab: its nodes' and its controller
        nodes' (a cluster's)."""
        return [records.ns_name(n) for n in list(self.plan['nodes']) +
                list(self.plan.get('controllers', {}))] + self.extra_ns

    def add_namespace(self, ns):
        """A namespace made on the running lab (a service VM's): its
        stop removes it, and so does `./run.py clean` after a crash."""
        if ns not in self.extra_ns:
            self.extra_ns.append(ns)
        state = records.read_state()
        if state is not None and ns not in state.get('namespaces', []):
            state.setdefault('namespaces', []).append(ns)
            records.write_state(state)

    def _controller_nodes(self):
        """A controller cluster's nodes: a namespace each on the
        management network, nothing else (controllers.clusterlab starts
        their etcd members and controllers)."""
        m = self.plan['mgmt']
        cmds = []
        for name, c in self.plan['controllers'].items():
            ns = records.ns_name(name)
            subprocess.run(['ip', 'netns', 'add', ns], check=True,
                           capture_output=True)
            cmds += [f"link add {c['mgmt_intf']} type veth peer name mgmt0 "
                     f'netns {ns}',
                     f"link set {c['mgmt_intf']} master {m['bridge']} up"]
        _ip_batch(cmds)
        for name, c in self.plan['controllers'].items():
            _ip_batch([f"addr add {c['mgmt_ip']} dev mgmt0",
                       'link set mgmt0 up', 'link set lo up'],
                      netns=records.ns_name(name))
        self.progress('  controller nodes: '
                      + ', '.join(self.plan['controllers']))

    def _make_links(self):
        m = self.plan['mgmt']
        cmds = []
        for name, pn in self.plan['nodes'].items():
            if 'mgmt_intf' not in pn:
                continue
            cmds += [f"link add {pn['mgmt_intf']} type veth peer name mgmt0 "
                     f"netns {records.ns_name(name)}",
                     f"link set {pn['mgmt_intf']} master {m['bridge']} up"]
        nodes = self.plan['nodes']
        for lk in self.plan['links']:
            # A single-homed untagged host keeps its MAC on the veth itself.
            host = nodes[lk['b']]
            mac = f" address {host['mac']}" if 'mac' in host and not \
                host['host_bridge'] else ''
            cmds.append(
                f"link add {lk['a_intf']} mtu {lk['mtu']} netns "
                f"{records.ns_name(lk['a'])} type veth peer name "
                f"{lk['b_intf']}{mac} mtu {lk['mtu']} netns "
                f"{records.ns_name(lk['b'])}")
        _ip_batch(cmds)
        mgmt = sum(1 for p in self.plan['nodes'].values() if 'mgmt_intf' in p)
        self.progress(f"  links: {len(self.plan['links'])} data + {mgmt} "
                      'management')

    def _make_pki(self):
        """The lab's CA, the controller's certificate and one per node that
        talks to the controller, before any daemon starts (they load them
        at start)."""
        nodes = {n: (self.nodes[n].run_dir,
                     self.plan['nodes'][n]['mgmt_ip'].split('/')[0])
                 for n in boot.tls_nodes(self.plan)}
        cluster = {n: (os.path.join(records.RUN_ROOT, n),
                       c['mgmt_ip'].split('/')[0])
                   for n, c in self.plan.get('controllers', {}).items()}
        pki.make_lab(os.path.join(records.RUN_ROOT, 'pki'),
                     self.plan['mgmt']['root_ip'].split('/')[0], nodes,
                     cluster)
        self.progress(f'  TLS: the lab CA signed '
                      f'{len(nodes) + len(cluster) + 1} certificates '
                      '(controller and nodes)')

    def _boot_nodes(self):
        total = len(self.nodes)
        failures = []

        def run(name):
            node = self.nodes[name]
            script = boot.script_for(node.plan_node, self.plan, node.run_dir)
            res = node.ns_run(['bash', '-c', script], timeout=120)
            return name, res

        done = 0
        with ThreadPoolExecutor(WORKERS) as pool:
            for name, res in pool.map(run, list(self.plan['nodes'])):
                done += 1
                if res.returncode != 0:
                    failures.append(f'{name}: {res.stderr.strip()[-400:]}')
                if done % 50 == 0 or done == total:
                    self.progress(f'  boot scripts: {done}/{total}')
        if failures:
            raise BootError('these nodes failed to boot (logs in '
                            f'{records.RUN_ROOT}/<node>/):\n  '
                            + '\n  '.join(failures))
        for node in self.nodes.values():
            env = node.shell_env()
            if env:
                node.cmd(env)

    def _announce(self):
        """Every VTEP of a VCF pod's one transport subnet says where it is
        (a gratuitous ARP for its tunnel IP, as a host does when its link
        comes up). Userspace OVS learns tunnel next hops from them (and
        from ARP replies and tunnelled frames it receives); without, the
        first frame a VTEP tunnels to a peer it never heard from is dropped
        while OVS resolves it (a hardware VTEP's first reply to a
        hypervisor, in a fresh pod)."""
        from . import check
        check.announce(self, check.endpoints(self.plan))
        self.progress('  every VTEP announced itself (gratuitous ARP)')

    # -- access ----------------------------------------------------------
    def node(self, name):
        return self.nodes[name]

    def db(self, name):
        """Node `name`'s OVSDB for the lab's own tools (vtep-ctl, an IDL):
        its unix socket. The management address serves the controller
        only, over TLS (boot.ovsdb_cmd)."""
        return boot.local_db(self.nodes[name].run_dir)

    def mininet(self):
        """A Mininet object over the running nodes, for its CLI."""
        if self.net is None:
            net = Mininet(topo=None, build=False)
            for name, node in self.nodes.items():
                net.nameToNode[name] = node
                net.hosts.append(node)
            self.net = net
        return self.net

    def pids(self):
        """{node: [pids]} of every process running in the lab."""
        found = records.pids_in([records.ns_name(n) for n in self.plan['nodes']])
        return {n: found.get(records.ns_name(n), []) for n in self.plan['nodes']}


def _raise_neighbour_limits(nodes):
    """The kernel's ARP table is shared by every namespace: above gc_thresh1
    entries it starts evicting, which turns an all-pairs probe into an ARP
    storm. Give each node room for a neighbour entry per other node."""
    want = {1: nodes * nodes, 2: 2 * nodes * nodes, 3: 4 * nodes * nodes}
    for k, value in want.items():
        path = f'/proc/sys/net/ipv4/neigh/default/gc_thresh{k}'
        with open(path) as f:
            current = int(f.read())
        if value > current:            # only ever raise, like Mininet
            with open(path, 'w') as f:
                f.write(str(value))


# The userspace datapath reads each port through a packet socket whose
# receive buffer is the kernel's default (net.core.rmem_default, one value
# for every namespace, 212992 bytes here: about 160 small frames). When a
# 2-core box starves ovs-vswitchd for longer than that lasts, the port
# drops what arrives (docs/platform.md); a NIC's ring holds thousands.
RCVBUF_DEFAULT = 1 << 20


def _raise_socket_buffers(core='/proc/sys/net/core', want=RCVBUF_DEFAULT):
    """Raise the kernel's default socket receive buffer (and its maximum,
    if lower) to `want` bytes, only ever raising, as the neighbour limits,
    before the lab's daemons open their sockets."""
    for name in ('rmem_max', 'rmem_default'):
        path = os.path.join(core, name)
        with open(path) as f:
            current = int(f.read())
        if want > current:
            with open(path, 'w') as f:
                f.write(str(want))


def _ip_batch(cmds, netns=None):
    where = ['-n', netns] if netns else []
    res = subprocess.run(['ip'] + where + ['-force', '-batch', '-'],
                         input='\n'.join(cmds) + '\n',
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise BootError('ip -batch failed: ' + res.stderr.strip()[-800:])
