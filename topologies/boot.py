"""Boot scripts per role (pure: plan + node -> bash text run inside the
node's namespace). Every daemon writes its pidfile and log under the node's
run directory, so the lab can stop exactly what it started.

Roles and what their script brings up:
  spine/leaf (clos)   FRR zebra + bgpd (eBGP, ECMP), IP forwarding
  spine/leaf (vcf)    a private OVS with one bridge `fabric`, static flows
                      computed by topologies.vcf (the pod master)
  hypervisor, service_node, sw_gateway
                      a private OVS: br-phy (tunnel IP, underlay uplink) and
                      br-int (VM ports / physical segment port), fail_mode
                      secure until a controller programs it
  hw_vtep             a private OVS whose ovsdb-server also serves the
                      hardware_vtep database on MGMT_IP:6640, br-phy, and
                      the device: native (devices.hwvtep, laid out by
                      topologies.hwvtep; a VCF pod's runs on its leaves) or
                      OVS's emulator ovs-vtep on a bridge named like the
                      node
  l2_segment          a private OVS bridge `seg` (VLAN access/trunk ports)
  vm, bare_metal, appliance
                      IP/MAC on eth0; dual-homed or tagged hosts get an OVS
                      bridge br0 with an active-backup bond (no kernel bonding
                      or VLAN devices on this kernel)
"""
import json
import os
import shlex

from . import frr, hwvtep, pki, vcf
from .spec import BR_INT_ROLES

OVS_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'
VTEP_SCHEMA = '/usr/share/openvswitch/vtep.ovsschema'
FRR_DIR = '/usr/lib/frr'
OVSDB_PORT = 6640
OVS_VTEP = '/usr/share/openvswitch/scripts/ovs-vtep'
AGENT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), 'devices', 'gwagent', '__main__.py')
OPENFLOW_PORT = 6653


def env(run_dir):
    """Environment that points OVS tools at a node's private instance."""
    return {'OVS_RUNDIR': run_dir, 'OVS_DBDIR': run_dir,
            'OVS_LOGDIR': run_dir}


def _ip_batch(cmds):
    """Many `ip` commands in one process (a fork costs more than the work)."""
    return ["ip -b - <<'EOF'\n" + '\n'.join(cmds) + '\nEOF']


def _common(node, plan):
    mtu = plan['mtu']
    # The kernel also sees frames on ports that OVS owns: stop it answering
    # ARP for, or accepting, traffic meant for the bridge's own address on
    # them (routers forward in the kernel and keep the defaults).
    router = node['role'] in ('spine', 'leaf') and plan['fabric'] == 'clos'
    sysctls = ['net.ipv6.conf.all.disable_ipv6=1',
               'net.ipv6.conf.default.disable_ipv6=1']
    if not router:
        sysctls += ['net.ipv4.conf.all.arp_ignore=1',
                    'net.ipv4.conf.all.rp_filter=1']
    cmds = ['link set lo up']
    if node.get('mgmt_ip'):
        cmds += [f"addr add {node['mgmt_ip']} dev mgmt0", 'link set mgmt0 up']
    for i in node['intfs']:      # underlay links carry VXLAN: bigger MTU
        if i.get('member'):      # a pod VTEP's port: a leaf's interface
            continue
        m = mtu if i['kind'] in ('fabric', 'access') else 1500
        cmds.append(f"link set {i['name']} mtu {m} up")
    return ['sysctl -qw ' + ' '.join(sysctls)] + _ip_batch(cmds)


def _ovs_start(node, plan, run_dir, vtep=False, remote=False, switch=True):
    """A private OVS instance; `remote`: its OVSDB also listens on the
    management address (for the controller), as a VTEP's always does;
    `switch`: False for an OVSDB without ovs-vswitchd (a VCF pod VTEP's
    own node: its data plane is on the leaves)."""
    d = run_dir
    lines = [' '.join(f'export {k}={v};' for k, v in env(d).items())]
    if switch:
        lines.append(f'ovsdb-tool create {d}/conf.db {OVS_SCHEMA}')
    if vtep:
        lines.append(f'ovsdb-tool create {d}/vtep.db {VTEP_SCHEMA}')
    lines.append(ovsdb_cmd(node, plan, run_dir, vtep, remote, switch))
    if switch:
        lines.append('ovs-vsctl --no-wait init')
        if tls(plan) and remote:      # its bridges' OpenFlow sessions
            f = pki.node_files(run_dir)
            lines.append(f"ovs-vsctl --no-wait set-ssl {f['key']} "
                         f"{f['cert']} {f['ca']}")
        lines.append(vswitchd_cmd(d))
    return lines


def tls(plan):
    """Whether the lab's control channels (OpenFlow, OVSDB, the API) run
    over TLS with the lab's CA (the default; `tls: false` in the spec or
    --no-tls turns it off)."""
    return bool(plan.get('tls'))


def local_db(run_dir):
    """A node's OVSDB as the lab's own tools reach it: its unix socket
    (the management address takes only the controller, over TLS)."""
    return f'unix:{run_dir}/db.sock'


def ovsdb_cmd(node, plan, run_dir, vtep=False, remote=False, switch=True):
    """How a node's ovsdb-server starts (also to restart it): its
    databases, on a unix socket and, for the controller, on the management
    address: TLS with the node's certificate (pssl:, the peer's certificate
    must be the lab CA's), or plain TCP without TLS."""
    d = run_dir
    dbs = (f'{d}/conf.db ' if switch else '') + \
        (f'{d}/vtep.db' if vtep else '')
    remotes = f'--remote=punix:{d}/db.sock'
    if vtep or remote:
        mgmt_ip = node['mgmt_ip'].split('/')[0]
        if tls(plan):
            f = pki.node_files(run_dir)
            remotes += (f' --remote=pssl:{OVSDB_PORT}:{mgmt_ip} '
                        f"--private-key={f['key']} --certificate={f['cert']} "
                        f"--ca-cert={f['ca']}")
        else:
            remotes += f' --remote=ptcp:{OVSDB_PORT}:{mgmt_ip}'
    return (f'ovsdb-server {dbs} {remotes} --pidfile={d}/ovsdb-server.pid '
            f'--log-file={d}/ovsdb-server.log --detach --no-chdir')


def tls_nodes(plan):
    """The nodes that talk to the controller (and so get a certificate
    from the lab's CA): transport nodes (OpenFlow and OVSDB) and hardware
    VTEPs (OVSDB)."""
    return sorted(n for n, p in plan['nodes'].items()
                  if p['role'] in BR_INT_ROLES + ('hw_vtep',))


def vswitchd_cmd(run_dir):
    """How a node's ovs-vswitchd starts (also to restart it after a crash).
    The data plane wins the CPU over the workloads and the controller:
    2 cores carry the whole lab."""
    d = run_dir
    return (f'nice -n -5 ovs-vswitchd --pidfile={d}/ovs-vswitchd.pid '
            f'--log-file={d}/ovs-vswitchd.log --detach --no-chdir '
            f'unix:{d}/db.sock')


def vif_ids(vm, port=None):
    """What a hypervisor says of a VM's port in its OVSDB, as NSX and OVN
    hypervisors do: external_ids iface-id (the VM's attachment name, which
    its logical port is bound by) and attached-mac. The controller follows
    each hypervisor's OVSDB and binds the port where it appears."""
    if vm.get('role') != 'vm':
        return ''
    return (f" -- set interface {port or vm['intfs'][0]['peer_intf']} "
            f"external_ids:iface-id={vm['name']} "
            f"external_ids:attached-mac=\"{vm['mac']}\"")


def _port(bridge, intf):
    return (f"-- add-port {bridge} {intf['name']} -- set interface "
            f"{intf['name']} ofport_request={intf['ofport']}")


def _br_phy(node, plan):
    """The underlay bridge that carries the VTEP tunnel IP (userspace VXLAN
    routes out of the bridge that holds the tunnel IP)."""
    uplink = next(i for i in node['intfs'] if i['name'] == node['uplink'])
    lines = [f"ovs-vsctl -- add-br br-phy -- set bridge br-phy "
             f"datapath_type=netdev fail_mode=standalone "
             f"other_config:hwaddr={node['tunnel_mac']} "
             f"-- set interface br-phy mtu_request={plan['mtu']} "
             + _port('br-phy', uplink),
             f"ip addr add {node['tunnel_ip']} dev br-phy",
             'ip link set br-phy up',
             # learn VTEPs from gratuitous ARP (the underlay check announces
             # each VTEP once instead of flooding ARP for every pair)
             'sysctl -qw net.ipv4.conf.br-phy.arp_accept=1']
    if node.get('gateway'):
        lines.append(f"ip route add default via {node['gateway']} dev br-phy")
    return lines


def controller_addresses(plan):
    """The management addresses of the controller: the root namespace's,
    or every node of a cluster (plan['controllers'])."""
    cluster = plan.get('controllers')
    if cluster:
        return [c['mgmt_ip'].split('/')[0] for c in cluster.values()]
    return [plan['mgmt']['root_ip'].split('/')[0]]


def controller_targets(plan):
    """Every OpenFlow target of a br-int: one per controller node (in a
    cluster, the device's active node asserts the master role)."""
    scheme = 'ssl' if tls(plan) else 'tcp'
    return [f'{scheme}:{ip}:{OPENFLOW_PORT}'
            for ip in controller_addresses(plan)]


def transport_node(node, plan, run_dir):
    """br-int: fail_mode secure (headless: forwarding stays when the
    controller is gone), a fixed datapath id (node index + 1) and the
    controller on the management network."""
    lines = _common(node, plan) + \
        _ovs_start(node, plan, run_dir, remote=True) + _br_phy(node, plan)
    ports = [i for i in node['intfs'] if i['kind'] == 'host']
    cmd = ('ovs-vsctl -- add-br br-int -- set bridge br-int '
           'datapath_type=netdev fail_mode=secure '
           'protocols=OpenFlow10,OpenFlow13,OpenFlow15 '
           'other_config:disable-in-band=true '
           f"other_config:datapath-id={node['index'] + 1:016x}")
    lines.append(' '.join([cmd] + [_port('br-int', i) + vif_ids(
        plan['nodes'].get(i['peer'], {}), i['name']) for i in ports]))
    if node['role'] == 'sw_gateway':
        lines += _gateway_ports(node, run_dir, plan)
    targets = controller_targets(plan)
    lines.append(' '.join(
        ['ovs-vsctl'] + [f'-- --id=@c{i} create controller target=\'"{t}"\' '
                         'max_backoff=1000 controller_rate_limit=100 '
                         'controller_burst_limit=25'
                         for i, t in enumerate(targets)]
        + ['-- set bridge br-int controller=' + ','.join(
            f'@c{i}' for i in range(len(targets)))]))
    return lines


def gateway_peers(plan, node, intf):
    """The other software gateways on the segment that `intf` of `node`
    plugs into: [[management address, transport address]] each, the paths
    their election agents exchange notices on."""
    out = []
    for name, p in sorted(plan['nodes'].items()):
        if name == node or p['role'] != 'sw_gateway':
            continue
        if any(i['kind'] == 'physical' and i['peer'] == intf['peer']
               for i in p['intfs']):
            out.append([p[k].split('/')[0] for k in ('mgmt_ip', 'tunnel_ip')
                        if p.get(k)])
    return out


def _gateway_ports(node, run_dir, plan):
    """A software gateway reaches a physical segment through its own bridge
    br-<port>: the cable (with CFM on it) and a patch to br-int, which the
    controller sees as the gateway port (same name, same ofport). The
    election agent owns br-<port>'s flows (none while standby), so a
    standby gateway keeps sending and hearing CFM on the cable."""
    lines = []
    for i in node['intfs']:
        if i['kind'] != 'physical':
            continue
        seg, br, inner = i['name'], f"br-{i['name']}", f"i-{i['name']}"
        lines.append(
            f'ovs-vsctl -- add-br {br} -- set bridge {br} '
            'datapath_type=netdev fail_mode=secure '
            f'-- add-port {br} {seg} -- set interface {seg} ofport_request=1 '
            f'-- add-port {br} {inner} -- set interface {inner} type=patch '
            f'options:peer=p-{seg} ofport_request=2 '
            f'-- add-port br-int p-{seg} -- set interface p-{seg} type=patch '
            f"options:peer={inner} ofport_request={i['ofport']}")
        lines.append(agent_cmd(node, i, run_dir, plan))
    return lines


def agent_cmd(node, intf, run_dir, plan):
    """How a gateway's election agent for one physical port starts (also
    to restart it): detached; its PID appears in gwagent-<port>.pid once
    it guards the CFM ID (see gateway_power_on)."""
    seg = intf['name']
    peers = ''.join(f" --peer {','.join(p)}"
                    for p in gateway_peers(plan, node['name'], intf))
    return (f'setsid -f nice -n -5 {hwvtep.python()} {AGENT} '
            f'--bridge br-{seg} --cable {seg} --int-ofport {intf["ofport"]} '
            f"--segment {intf['peer']}{peers} "
            f'--log {run_dir}/gwagent-{seg}.log '
            f'--pidfile {run_dir}/gwagent-{seg}.pid '
            '>/dev/null 2>&1 </dev/null')


def gateway_power_on(node, run_dir, plan, wait_s=20):
    """A software gateway's start after a power loss, in the order a real
    one boots: its election agents first, and ovs-vswitchd once each one
    guards its CFM ID (its pidfile appears then): a data plane that
    announced the ID before its br-int is programmed would make the
    active gateway stand down into a black hole."""
    lines = []
    for i in node['intfs']:
        if i['kind'] != 'physical':
            continue
        pid = f"{run_dir}/gwagent-{i['name']}.pid"
        lines += [f'rm -f {pid}', agent_cmd(node, i, run_dir, plan),
                  f'for _ in $(seq {wait_s * 20}); do [ -s {pid} ] && break; '
                  f'sleep 0.05; done; [ -s {pid} ] || '
                  f"{{ echo 'agent for {i['name']} never came up' >&2; "
                  'exit 1; }']
    return lines + [vswitchd_cmd(run_dir)]


# Hardware switches (the physical segment, a hardware VTEP's ASIC) learn
# MACs from every frame. OVS learns in the upcall: a frame that hits a cached
# datapath flow updates the MAC table only at the revalidator's next pass (up
# to ~1 s), so after a takeover or a bond failover the switch kept sending
# to the old port that long. flow-limit=0 caches no datapath flow: every
# frame is translated, and learned from, at once (a few thousand pps here).
PER_FRAME_LEARNING = 'ovs-vsctl set Open_vSwitch . other_config:flow-limit=0'


def hw_vtep(node, plan, run_dir):
    """A hardware VTEP: the native device (default) or ovs-vtep."""
    if plan.get('vtep_device', 'native') != 'native':
        return ovs_vtep(node, plan, run_dir)
    layout = hwvtep.device_layout(plan, node['name'],
                                  os.path.dirname(run_dir))
    lines = _common(node, plan)
    if node.get('pod'):          # a VCF pod: its OVSDB and device only
        lines += _ovs_start(node, plan, run_dir, vtep=True, switch=False)
    else:
        phys = [(i['name'], i['ofport']) for i in node['intfs']
                if i['kind'] == 'physical']
        lines += _ovs_start(node, plan, run_dir, vtep=True) + \
            _br_phy(node, plan) + [hwvtep.vtep_bridge(phys)]
    lines += [f"cat > {run_dir}/hwvtep.json <<'EOF'\n"
              + json.dumps(layout, indent=1) + '\nEOF',
              hwvtep.start_device(run_dir)]
    return lines


def ovs_vtep(node, plan, run_dir):
    """OVS's own VTEP emulator as the device (the reference)."""
    lines = _common(node, plan) + \
        _ovs_start(node, plan, run_dir, vtep=True) + _br_phy(node, plan) + \
        [PER_FRAME_LEARNING]
    ps = node['name']
    ports = [i for i in node['intfs'] if i['kind'] == 'physical']
    lines.append(' '.join(
        [f'ovs-vsctl -- add-br {ps} -- set bridge {ps} datapath_type=netdev '
         'fail_mode=standalone']
        + [_port(ps, i) for i in ports]))
    tunnel_ip = node['tunnel_ip'].split('/')[0]
    mgmt_ip = node['mgmt_ip'].split('/')[0]
    lines.append(' '.join(
        [f'vtep-ctl -- add-ps {ps} -- set Physical_Switch {ps} '
         f'tunnel_ips={tunnel_ip} management_ips={mgmt_ip}']
        + [f"-- add-port {ps} {i['name']}" for i in ports]))
    # OVS's own VTEP emulator is the device: it implements what the
    # controller writes into hardware_vtep on the bridge named like the PS.
    lines.append(f'{OVS_VTEP} --log-file={run_dir}/ovs-vtep.log '
                 f'--pidfile={run_dir}/ovs-vtep.pid --detach {ps}')
    return lines


def clos_router(node, plan, run_dir):
    d = run_dir
    lines = _common(node, plan)
    lines += ['sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 '
              'net.ipv4.conf.default.rp_filter=0 '
              'net.ipv4.fib_multipath_hash_policy=1',
              f"ip addr add {node['router_id']}/32 dev lo"]
    for i in node['intfs']:
        if i.get('ip'):
            lines.append(f"ip addr add {i['ip']} dev {i['name']}")
    conf = frr.frr_conf(node, plan, plan['underlay'])
    lines.append(f"cat > {d}/frr.conf <<'EOF'\n{conf}EOF")
    lines.append(f'chown frr:frr {d}')
    common = (f'-d -u frr -g frr -A 127.0.0.1 -P 0 --limit-fds 1024 '
              f'-z {d}/zserv.api --vty_socket {d}')
    lines += [f'{FRR_DIR}/zebra {common} -i {d}/zebra.pid '
              f'--log file:{d}/zebra.log',
              f'{FRR_DIR}/bgpd {common} -i {d}/bgpd.pid '
              f'--log file:{d}/bgpd.log',
              f'vtysh --vty_socket {d} -f {d}/frr.conf >{d}/vtysh.log 2>&1']
    return lines


def vcf_member(node, plan, run_dir):
    d = run_dir
    lines = _common(node, plan) + _ovs_start(node, plan, run_dir)
    lines.append(' '.join(
        ['ovs-vsctl -- add-br fabric -- set bridge fabric datapath_type=netdev '
         'fail_mode=secure protocols=OpenFlow13,OpenFlow15 '
         'other_config:disable-in-band=true']
        + [_port('fabric', i) for i in node['intfs']
           if not i.get('pod_port')]))
    if node.get('pod_vtep'):        # a member of the native pod VTEP
        lines += hwvtep.leaf_lines(node, plan, run_dir)
    groups, flows = vcf.member_flows(plan, node['name'])
    lines.append(f"cat > {d}/groups.txt <<'EOF'\n" + ''.join(
        g + '\n' for g in groups) + 'EOF')
    lines.append(f"cat > {d}/flows.txt <<'EOF'\n" + ''.join(
        f + '\n' for f in flows) + 'EOF')
    if groups:
        lines.append(f'ovs-ofctl -O OpenFlow13 add-groups fabric '
                     f'{d}/groups.txt')
    lines.append(f'ovs-ofctl -O OpenFlow13 add-flows fabric {d}/flows.txt')
    return lines


def l2_segment(node, plan, run_dir):
    lines = _common(node, plan) + _ovs_start(node, plan, run_dir)
    ports = []
    for i in node['intfs']:
        port = _port('seg', i)
        if i.get('vlan'):   # access port of that VLAN; others are trunks
            port += f" -- set port {i['name']} tag={i['vlan']}"
        ports.append(port)
    lines.append(' '.join(
        [PER_FRAME_LEARNING + ' -- add-br seg -- set bridge seg '
         'datapath_type=netdev fail_mode=standalone'] + ports))
    return lines


def host(node, plan, run_dir):
    """A VM, bare-metal server or appliance. Tagged or dual-homed hosts put
    their address on an OVS internal port br0 (active-backup bond)."""
    lines = _common(node, plan)
    intfs, vlan = node['intfs'], node['vlan']
    if not node['host_bridge']:
        # The MAC was set when the veth was made (see lab._make_links).
        if intfs:
            lines.append(f"ethtool -K {intfs[0]['name']} tx off >/dev/null")
        dev = intfs[0]['name'] if intfs else None
    else:
        lines += _ovs_start(node, plan, run_dir)
        names = [i['name'] for i in intfs]
        if len(names) > 1:
            # A server's bond decides per frame, as Linux bonding does: an
            # OVS datapath flow cached from a frame that arrived on the
            # backup link ("drop") outlived the failover by up to ~1.4 s
            # (measured: docs/hwvtep.md)
            lines.append(PER_FRAME_LEARNING)
            attach = (f"-- add-bond br0 bond0 {' '.join(names)} "
                      'bond_mode=active-backup '
                      'other_config:bond-detect-mode=carrier '
                      f'other_config:bond-primary={names[0]}')
        else:
            attach = f'-- add-port br0 {names[0]}'
        tag = f' -- set port br0 tag={vlan}' if vlan else ''
        lines += [f'ovs-vsctl -- add-br br0 -- set bridge br0 '
                  f"datapath_type=netdev other_config:hwaddr={node['mac']} "
                  f'fail_mode=standalone {attach}{tag}',
                  'ip link set br0 up']
        dev = 'br0'
    if dev and node.get('ip'):
        lines += _ip_batch([f"addr add {node['ip']} dev {dev}"])
    return lines


def daemons(node, plan):
    """The pidfiles of what a node runs that a power loss kills, in the
    order to kill them (the device first, its database last)."""
    role = node['role']
    if role == 'hw_vtep':
        device = 'hwvtep.pid' if plan.get('vtep_device', 'native') == \
            'native' else 'ovs-vtep.pid'
        if node.get('pod'):
            return [device, 'ovsdb-server.pid']
        return [device, 'ovs-vswitchd.pid', 'ovsdb-server.pid']
    return ['ovs-vswitchd.pid']


def restart(node, plan, run_dir):
    """Bash text that starts a node's daemons again after they were killed
    (daemons()), from what is on its disk: its databases keep their
    contents, the data plane starts empty. A hardware VTEP's device then
    rebuilds its forwarding from its database by itself; a VCF member's
    static fabric flows are loaded again (the pod master's tables)."""
    d = run_dir
    lines = [' '.join(f'export {k}={v};' for k, v in env(d).items())]
    role = node['role']
    native = plan.get('vtep_device', 'native') == 'native'
    if role == 'hw_vtep':
        lines.append(ovsdb_cmd(node, plan, d, vtep=True,
                               switch=not node.get('pod')))
        if not node.get('pod'):
            lines.append(vswitchd_cmd(d))
        if native:
            lines.append(hwvtep.start_device(d))
        else:
            lines.append(f'{OVS_VTEP} --log-file={d}/ovs-vtep.log '
                         f"--pidfile={d}/ovs-vtep.pid --detach {node['name']}")
        return '\n'.join(lines) + '\n'
    lines.append(vswitchd_cmd(d))
    if role in ('spine', 'leaf') and plan['fabric'] == 'vcf':
        lines += [f'[ ! -s {d}/groups.txt ] || ovs-ofctl -O OpenFlow13 '
                  f'add-groups fabric {d}/groups.txt',
                  f'ovs-ofctl -O OpenFlow13 add-flows fabric {d}/flows.txt']
        if node.get('pod_vtep'):
            lines.append(f'ovs-ofctl add-flows br-phy {d}/phy-flows.txt')
    return '\n'.join(lines) + '\n'


def script_for(node, plan, run_dir):
    """The whole boot script of one node, `set -e` so any failure stops it
    with the failing command named."""
    role = node['role']
    if role in ('spine', 'leaf'):
        fn = clos_router if plan['fabric'] == 'clos' else vcf_member
    else:
        fn = {'hypervisor': transport_node, 'service_node': transport_node,
              'sw_gateway': transport_node, 'hw_vtep': hw_vtep,
              'l2_segment': l2_segment}.get(role, host)
    body = '\n'.join(fn(node, plan, run_dir))
    return (f'set -eu\nmkdir -p {shlex.quote(run_dir)}\n'
            "trap 'echo \"boot failed at line $LINENO: $BASH_COMMAND\" >&2' "
            'ERR\n' + body + '\n')
