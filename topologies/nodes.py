"""Mininet node classes, one per role. Thin: what a node runs comes from
topologies.boot (pure); these classes give each node a *named* namespace
(`nsxl-<name>`, so `ip netns exec` works and `./run.py clean` can find it),
a private run directory, and a shell whose environment points OVS and FRR
tools at the node's own instances (so `hv1 ovs-vsctl show` works in the
Mininet CLI).
"""
import os
import subprocess

from mininet.node import Node

from . import boot, records


class LabNode(Node):
    """A node in its own named network namespace."""

    def __init__(self, name, plan_node=None, run_dir=None, **params):
        self.plan_node = plan_node or {}
        self.run_dir = run_dir
        self.ns = records.ns_name(name)
        self._starting = False
        super().__init__(name, inNamespace=True, **params)

    def startShell(self, mnopts=None):
        subprocess.run(['ip', 'netns', 'add', self.ns], check=True,
                       capture_output=True)
        # Start Mininet's shell inside our named namespace instead of letting
        # mnexec create an anonymous one.
        self._starting, self.inNamespace = True, False
        try:
            super().startShell(mnopts)
        finally:
            self._starting, self.inNamespace = False, True

    def _popen(self, cmd, **params):
        if self._starting:
            cmd = ['ip', 'netns', 'exec', self.ns] + cmd
        return super()._popen(cmd, **params)

    def shell_env(self):
        """Commands run once in the node's shell for the CLI's sake."""
        return ''

    def ns_run(self, cmd, timeout=60, check=False, **kw):
        """Run argv `cmd` in this node's namespace (without its shell, safe to
        call from several threads at once)."""
        env = dict(os.environ, **boot.env(self.run_dir))
        return subprocess.run(['ip', 'netns', 'exec', self.ns] + list(cmd),
                              capture_output=True, text=True, env=env,
                              timeout=timeout, check=check, **kw)


class OVSNode(LabNode):
    """A node that runs its own ovsdb-server and ovs-vswitchd."""

    def shell_env(self):
        return ' '.join(f'export {k}={v};'
                        for k, v in boot.env(self.run_dir).items())


class FabricRouter(LabNode):
    """Clos spine or leaf: FRR zebra + bgpd (eBGP, ECMP)."""

    def shell_env(self):
        return f"alias vtysh='vtysh --vty_socket {self.run_dir}'"


class FabricMember(OVSNode):
    """Virtual Chassis Fabric member (spine or leaf): OVS bridge `fabric`."""


class TransportNode(OVSNode):
    """A software VTEP: br-phy with the tunnel IP, br-int for ports."""


class Hypervisor(TransportNode):
    """VMs attach to br-int."""


class ServiceNode(TransportNode):
    """Replicates BUM traffic for the logical switches."""


class SoftwareGateway(TransportNode):
    """Bridges a VNI to a VLAN on its port into a physical L2 segment."""


class HardwareVtep(OVSNode):
    """QFX5100-like VTEP: hardware_vtep OVSDB on MGMT_IP:6640 (TLS)."""


class L2Segment(OVSNode):
    """A plain VLAN-aware physical switch."""


class Host(LabNode):
    """A VM, bare-metal server or appliance (OVS only when bonded/tagged)."""

    def shell_env(self):
        if self.plan_node.get('host_bridge'):
            return OVSNode.shell_env(self)
        return ''


def node_class(role, fabric):
    if role in ('spine', 'leaf'):
        return FabricRouter if fabric == 'clos' else FabricMember
    return {'hypervisor': Hypervisor, 'service_node': ServiceNode,
            'sw_gateway': SoftwareGateway, 'hw_vtep': HardwareVtep,
            'l2_segment': L2Segment}.get(role, Host)
