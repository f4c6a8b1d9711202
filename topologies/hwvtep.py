"""How the lab lays out a native hardware VTEP (devices.hwvtep) from its
plan (pure: plan -> the device's layout and the nodes' boot lines).

Clos: the VTEP is its own node (a leaf's VTEP function): br-phy carries its
tunnel IP and its cable to the leaf; bridge `vtep` holds the server ports,
the VXLAN port and, once the device adds them, the BFD tunnels to the
service nodes; the device process runs beside them and the node's
ovsdb-server serves hardware_vtep on MGMT_IP:6640.

VCF: the pod VTEP node holds only the pod's OVSDB and the device process
(the pod master's, programming every member). Each leaf with servers is a
member: in its namespace a veth `<vtep>`/`<vtep>-up` joins its fabric
bridge to a br-phy carrying the pod's tunnel IP and MAC, its server ports
sit on its own `vtep` bridge, and a patch `i-<vtep>`/`f-<vtep>` carries the
pod's internal frames between the fabric and `vtep`.
"""
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_PY = os.path.join(ROOT, '.venv', 'bin', 'python')
DEVICE = os.path.join(ROOT, 'devices', 'hwvtep', '__main__.py')
BRIDGE = 'vtep'
VX_OFPORT, FABRIC_OFPORT = 4000, 4001
OF13 = 'protocols=OpenFlow13'


def python():
    return VENV_PY if os.path.exists(VENV_PY) else 'python3'


def _addr(cidr):
    return cidr.split('/')[0]


def member_layout(plan, member, run_root):
    """One member's part of the layout: its bridge and ports."""
    nodes = plan['nodes']
    node = nodes[member]
    d = os.path.join(run_root, member)
    if node['role'] == 'hw_vtep':                 # a Clos VTEP: itself
        phys = [i for i in node['intfs'] if i['kind'] == 'physical']
        ports = {i['name']: i['ofport'] for i in phys}
        names = {i['name']: i['name'] for i in phys}
        uplinks, fabric = [node['uplink']], None
    else:                                         # a VCF leaf
        phys = [i for i in node['intfs'] if i.get('pod_port')]
        ports = {i['pod_port']: i['ofport'] for i in phys}
        names = {i['pod_port']: i['name'] for i in phys}
        uplinks = [i['name'] for i in node['intfs'] if i['kind'] == 'fabric']
        fabric = FABRIC_OFPORT
    servers = {i.get('pod_port', i['name']): i.get('server') or i['peer']
               for i in phys}
    return {'name': member, 'bridge': BRIDGE,
            'of_socket': os.path.join(d, f'{BRIDGE}.mgmt'),
            'ovsdb': f"unix:{os.path.join(d, 'db.sock')}",
            'ports': ports, 'vx': VX_OFPORT, 'fabric': fabric,
            'uplinks': uplinks,
            'descriptions': {pp: f'{member} port {names[pp]} to '
                             f'{servers[pp]}' for pp in ports}}


def device_layout(plan, vtep, run_root):
    """The device's layout file (JSON) for hardware VTEP node `vtep`."""
    node = plan['nodes'][vtep]
    members = node['members'] if node.get('pod') else [vtep]
    return {'ps': vtep, 'tunnel_ip': _addr(node['tunnel_ip']),
            'mgmt_ip': _addr(node['mgmt_ip']), 'pod': bool(node.get('pod')),
            'db': f"unix:{os.path.join(run_root, vtep, 'db.sock')}",
            'age': plan.get('vtep_mac_age_s', 300),
            'members': [member_layout(plan, m, run_root) for m in members]}


def start_device(run_dir):
    """The boot line that starts the device process (detached; it writes
    its pidfile, so the lab stops it by PID). NSXLAB_DEVICE_DEBUG=1 in the
    lab's environment makes it log every change it applies."""
    debug = ' --debug' if os.environ.get('NSXLAB_DEVICE_DEBUG') else ''
    return (f'setsid -f nice -n -5 {python()} {DEVICE} --layout '
            f'{run_dir}/hwvtep.json --log {run_dir}/hwvtep.log '
            f'--pidfile {run_dir}/hwvtep.pid{debug} >/dev/null 2>&1 '
            '</dev/null')


def vtep_bridge(ports, extra=''):
    """Bridge `vtep`: fail_mode secure (it forwards only what the device
    programs, and keeps forwarding if the device stops), a flow-based VXLAN
    port (the device sets each frame's destination and VNI)."""
    return ' '.join(
        [f'ovs-vsctl -- add-br {BRIDGE} -- set bridge {BRIDGE} '
         f'datapath_type=netdev fail_mode=secure {OF13} '
         'other_config:disable-in-band=true',
         f'-- add-port {BRIDGE} vx -- set interface vx type=vxlan '
         f'options:remote_ip=flow options:key=flow '
         f'ofport_request={VX_OFPORT}']
        + [f'-- add-port {BRIDGE} {name} -- set interface {name} '
           f'ofport_request={ofport}' for name, ofport in ports] + [extra])


def phy_flows(plan, node):
    """A pod member's br-phy, as flows rather than MAC learning: every
    member carries the pod's tunnel MAC, so a learning bridge would learn
    it on its uplink from another member's ARP and then drop what comes for
    it. Frames for the pod's MAC and broadcasts go to the tunnel endpoint
    (LOCAL: decapsulation, ARP); everything it sends goes up."""
    mac = plan['nodes'][node['pod_vtep']['vtep']]['tunnel_mac']
    return [f'priority=100,in_port=1,dl_dst={mac},actions=LOCAL',
            'priority=100,in_port=1,dl_dst=01:00:00:00:00:00/'
            '01:00:00:00:00:00,actions=LOCAL',
            'priority=100,in_port=LOCAL,actions=output:1',
            'priority=0,actions=drop']


def leaf_lines(node, plan, run_dir):
    """A VCF leaf that is a member of the native pod VTEP: its instance."""
    inst = node['pod_vtep']
    vtep = plan['nodes'][inst['vtep']]
    phy, up = inst['phy_port'], inst['uplink']
    patch, peer = inst['internal_port'], f"f-{inst['vtep']}"
    servers = [(i['name'], i['ofport']) for i in node['intfs']
               if i.get('pod_port')]
    mtu = plan['mtu']
    return [
        # two VLAN tags: the pod's internal header (VNI in two 12-bit tags)
        'ovs-vsctl set Open_vSwitch . other_config:vlan-limit=2',
        f'ip link add {phy} mtu {mtu} type veth peer name {up} mtu {mtu}',
        f'ip link set {phy} up && ip link set {up} up',
        f'ovs-vsctl -- add-br br-phy -- set bridge br-phy '
        f'datapath_type=netdev fail_mode=secure '
        f"other_config:hwaddr={vtep['tunnel_mac']} "
        f'-- set interface br-phy mtu_request={mtu} -- add-port br-phy {up} '
        f'-- set interface {up} ofport_request=1',
        f"cat > {run_dir}/phy-flows.txt <<'EOF'\n"
        + '\n'.join(phy_flows(plan, node)) + '\nEOF',
        f'ovs-ofctl add-flows br-phy {run_dir}/phy-flows.txt',
        f"ip addr add {vtep['tunnel_ip']} dev br-phy",
        'ip link set br-phy up',
        'sysctl -qw net.ipv4.conf.br-phy.arp_accept=1',
        vtep_bridge(servers, f'-- add-port {BRIDGE} {peer} -- set interface '
                    f'{peer} type=patch options:peer={patch} '
                    f'ofport_request={FABRIC_OFPORT}'),
        f"ovs-vsctl -- add-port fabric {phy} -- set interface {phy} "
        f"ofport_request={inst['phy_ofport']} "
        f'-- add-port fabric {patch} -- set interface {patch} type=patch '
        f"options:peer={peer} ofport_request={inst['internal_ofport']}"]
