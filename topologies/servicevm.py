"""A service VM made real on a running lab (devices/servicevm): a
namespace `nsxl-svc-<hv>` whose interfaces `in` and `out` are veths to
ports `svc-in` / `svc-out` of the hypervisor's br-int (OpenFlow ports
IN_PORT / OUT_PORT), joined by a bridge; a management interface on the
lab's management network (an address from the top of its subnet); the
agent started inside it; and the service VM registered with the
controller (POST /service-vms), as a partner's service deployment
registers each instance with NSX.

    svm = ServiceVM(lab, 'hv3').start(controller)
    svm.link(False)       # its vNICs lose their link (the VM crashed)
    svm.link(True)
    svm.stop()

A lab asks for one; the lab's stop and `./run.py clean` remove it like
its other namespaces (Lab.add_namespace, records).
"""
import ipaddress
import json
import os
import subprocess
import time

from . import hwvtep, records

IN_PORT, OUT_PORT = 900, 901       # on the hypervisor's br-int
AGENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), 'devices', 'servicevm', '__main__.py')


def name_of(hv):
    return f'svc-{hv}'


def mgmt_ip(plan, hv):
    """The service VM's management address: counting down, by its
    hypervisor's index, from below the top of the management subnet and
    below a controller cluster's nodes (which take the top); the lab's
    nodes count up from its bottom."""
    net = ipaddress.ip_network(plan['mgmt']['subnet'])
    index = plan['nodes'][hv]['index']
    ctls = [ipaddress.ip_address(c['mgmt_ip'].split('/')[0])
            for c in plan.get('controllers', {}).values()]
    ceiling = min([net.broadcast_address] + [a for a in ctls if a in net])
    addr = ceiling - 1 - index
    taken = {n['mgmt_ip'].split('/')[0] for n in plan['nodes'].values()
             if 'mgmt_ip' in n} | {str(a) for a in ctls}
    if addr <= net.network_address + 1 or str(addr) in taken:
        raise ValueError(f"mgmt_subnet {net}: no room for {hv}'s service "
                         'VM above the nodes\' addresses; a larger subnet')
    return f'{addr}/{net.prefixlen}'


def plumbing(plan, hv):
    """(ip -batch lines in the root namespace, in the service VM's and
    in the hypervisor's, ovs-vsctl arguments on the hypervisor, the root
    end of its management link) that wire it."""
    ns, hv_ns = records.ns_name(name_of(hv)), records.ns_name(hv)
    mgmt = f"{records.PREFIX}s{plan['nodes'][hv]['index']}"
    root = [f'link add svc-in netns {hv_ns} type veth peer name in '
            f'netns {ns}',
            f'link add svc-out netns {hv_ns} type veth peer name out '
            f'netns {ns}',
            f'link add {mgmt} type veth peer name mgmt0 netns {ns}',
            f"link set {mgmt} master {plan['mgmt']['bridge']} up"]
    inside = ['link set lo up', 'link add br0 type bridge',
              'link set in master br0', 'link set out master br0',
              'link set in up', 'link set out up', 'link set br0 up',
              f'addr add {mgmt_ip(plan, hv)} dev mgmt0', 'link set mgmt0 up']
    hv_side = ['link set svc-in up', 'link set svc-out up']
    vsctl = ['--', '--may-exist', 'add-port', 'br-int', 'svc-in', '--',
             'set', 'interface', 'svc-in', f'ofport_request={IN_PORT}',
             '--', '--may-exist', 'add-port', 'br-int', 'svc-out', '--',
             'set', 'interface', 'svc-out', f'ofport_request={OUT_PORT}']
    return root, inside, hv_side, vsctl, mgmt


class ServiceVM:
    def __init__(self, lab, hv, entries=()):
        if lab.plan['nodes'].get(hv, {}).get('role') != 'hypervisor':
            raise ValueError(f'{hv!r} is not a hypervisor of this lab; one '
                             'of ' + ', '.join(
                                 n for n, p in lab.plan['nodes'].items()
                                 if p['role'] == 'hypervisor'))
        self.lab, self.hv, self.name = lab, hv, name_of(hv)
        self.entries = list(entries)
        self.ns = records.ns_name(self.name)
        self.run_dir = os.path.join(records.RUN_ROOT, self.name)
        self.log_path = os.path.join(self.run_dir, 'agent.log')
        self.proc, self.id, self.ctl = None, None, None

    def run(self, cmd, check=True):
        """argv `cmd` inside the service VM."""
        return subprocess.run(['ip', 'netns', 'exec', self.ns] + list(cmd),
                              capture_output=True, text=True, check=check)

    def start(self, ctl):
        """Wire it, start its agent, register it with controller `ctl`
        (controllers.service.Controller)."""
        self.ctl = ctl
        os.makedirs(self.run_dir, exist_ok=True)
        self.lab.add_namespace(self.ns)
        root, inside, hv_side, vsctl, self.mgmt = plumbing(self.lab.plan,
                                                           self.hv)
        subprocess.run(['ip', 'netns', 'add', self.ns], check=True,
                       capture_output=True)
        for where, lines in ((None, root), (self.ns, inside),
                             (self.lab.node(self.hv).ns, hv_side)):
            r = subprocess.run(['ip'] + (['-n', where] if where else []) +
                               ['-batch', '-'], input='\n'.join(lines) + '\n',
                               capture_output=True, text=True)
            if r.returncode:
                raise RuntimeError(f'{self.name}: ip -batch: '
                                   f'{r.stderr.strip()[-500:]}')
        self.lab.node(self.hv).ns_run(['ovs-vsctl'] + vsctl, check=True)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
        self.proc = subprocess.Popen(
            ['ip', 'netns', 'exec', self.ns, hwvtep.python(), AGENT,
             '--url', ctl.url, '--policy', json.dumps(self.entries),
             '--log', self.log_path] + (
                 ['--ca', ctl.ca_path] if ctl.ca_path else []),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.run_dir, 'agent.err'), 'w'),
            env=env)
        if not self._wait_for('ruleset loaded', 15):
            raise RuntimeError(f'{self.name}: its agent did not load the '
                               f'ruleset within 15 s: {self.errors()}')
        status, body = ctl.request('POST', '/service-vms', {
            'name': self.name, 'transport_node': self.hv,
            'in_port': IN_PORT, 'out_port': OUT_PORT})
        if status != 201:
            raise RuntimeError(f'{self.name}: POST /service-vms: {status} '
                               f'{body}')
        self.id = body['id']
        return self

    def _wait_for(self, text, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if text in self.log_text():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def log_text(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ''

    def errors(self):
        try:
            with open(os.path.join(self.run_dir, 'agent.err')) as f:
                return f.read().strip()[-800:] or '(nothing on stderr)'
        except OSError:
            return '(no stderr)'

    def link(self, up):
        """Its vNICs' link up or down (down: what the hypervisor sees of
        a crashed service VM)."""
        state = 'up' if up else 'down'
        r = subprocess.run(['ip', '-n', self.ns, '-batch', '-'],
                           input=f'link set in {state}\n'
                           f'link set out {state}\n', capture_output=True,
                           text=True)
        if r.returncode:
            raise RuntimeError(f'{self.name}: link {state}: {r.stderr}')

    def nft(self, *args):
        """`nft -j ARGS` inside it, parsed."""
        return json.loads(self.run(['nft', '-j'] + list(args)).stdout)

    def _table(self):
        return self.nft('list', 'table', 'inet', 'svc')

    def counters(self):
        from devices.servicevm import policy
        return policy.counters(self._table())

    def members(self, group):
        """The addresses its firewall holds for security group `group`
        now (its nftables set), or None when it has no such set."""
        from devices.servicevm import policy
        return policy.set_elements(self._table(), group)

    def stop(self):
        """Deregister, stop the agent (by PID), unwire, delete the
        namespace."""
        if self.id is not None and self.ctl is not None:
            self.ctl.request('DELETE', f'/service-vms/{self.id}')
            self.id = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.lab.node(self.hv).ns_run(
            ['ovs-vsctl', '--if-exists', 'del-port', 'br-int', 'svc-in',
             '--', '--if-exists', 'del-port', 'br-int', 'svc-out'])
        records.kill_namespaces([self.ns])
        subprocess.run(['ip', 'link', 'del', self.mgmt],
                       capture_output=True)
