"""Boot scripts and FRR configuration per role (pure text)."""
from topologies import boot, builders, expand, frr, labs


def plans():
    return expand.expand(builders.clos()), expand.expand(builders.vcf())


def script(plan, name):
    return boot.script_for(plan['nodes'][name], plan, f'/run/x/{name}')


def test_clos_router_runs_frr_with_ecmp_over_every_spine():
    clos, _ = plans()
    leaf = clos['nodes']['leaf1']
    conf = frr.frr_conf(leaf, clos, clos['underlay'])
    assert f"router bgp {leaf['asn']}" in conf
    assert conf.count('remote-as 65000') == 2          # both spines
    assert 'maximum-paths 64' in conf
    assert 'redistribute connected route-map CONNECTED' in conf
    assert 'permit 198.19.0.0/16 le 32' in conf        # never management
    s = script(clos, 'leaf1')
    assert '/usr/lib/frr/bgpd' in s and 'net.ipv4.ip_forward=1' in s


def test_hypervisor_has_private_ovs_br_phy_and_secure_br_int():
    clos, _ = plans()
    s = script(clos, 'hv1')
    assert 'ovsdb-server /run/x/hv1/conf.db' in s
    assert '--pidfile=/run/x/hv1/ovs-vswitchd.pid' in s
    assert 'datapath_type=netdev' in s and 'fail_mode=secure' in s
    assert 'mtu_request=1600' in s
    assert f"ip addr add {clos['nodes']['hv1']['tunnel_ip']} dev br-phy" in s
    assert f"default via {clos['nodes']['hv1']['gateway']}" in s


def test_transport_node_reaches_the_controller_over_tls_by_default():
    clos, _ = plans()
    root = clos['mgmt']['root_ip'].split('/')[0]
    s = script(clos, 'hv1')
    ssl = ('ovs-vsctl --no-wait set-ssl /run/x/hv1/tls.key /run/x/hv1/tls.pem '
           '/run/x/hv1/ca.pem')
    assert ssl in s and (f'create controller target=\'"ssl:{root}:6653"\' '
                         'max_backoff=1000 controller_rate_limit=100 '
                         'controller_burst_limit=25 -- set bridge br-int '
                         'controller=@c0') in s
    # the certificates are in place before ovs-vswitchd reads them
    assert s.index(ssl) < s.index('ovs-vswitchd --pidfile')
    plain = script(dict(clos, tls=False), 'hv1')
    assert f'target=\'"tcp:{root}:6653"\'' in plain
    assert 'set-ssl' not in plain and 'pssl' not in plain


def test_in_a_cluster_every_controller_node_is_a_target():
    clos = expand.expand(dict(labs.resolve('clos'), controllers=3))
    ips = [c['mgmt_ip'].split('/')[0] for c in clos['controllers'].values()]
    assert ips == ['198.18.255.252', '198.18.255.253', '198.18.255.254']
    s = script(clos, 'hv1')
    for i, ip in enumerate(ips):
        assert f'--id=@c{i} create controller target=\'"ssl:{ip}:6653"\' ' in s
    assert 'controller=@c0,@c1,@c2' in s
    # the other nodes keep their addresses
    assert expand.expand(labs.resolve('clos'))['nodes'] == clos['nodes']


def test_certificates_go_to_the_nodes_that_talk_to_the_controller():
    clos, vcfp = plans()
    for plan in (clos, vcfp):
        want = sorted(n for n, p in plan['nodes'].items() if p['role'] in (
            'hypervisor', 'service_node', 'sw_gateway', 'hw_vtep'))
        assert boot.tls_nodes(plan) == want and 'vtep1' in want
    # a restarted hardware VTEP's database comes back on TLS too
    node = clos['nodes']['vtep1']
    assert '--remote=pssl:6640:' in boot.restart(node, clos, '/run/x/vtep1')


def test_hardware_vtep_serves_hardware_vtep_db_on_management():
    clos, vcfp = plans()
    emulated = expand.expand(builders.clos(vtep_device='ovs-vtep'))
    for plan in (clos, vcfp, emulated):
        s = script(plan, 'vtep1')
        mgmt = plan['nodes']['vtep1']['mgmt_ip'].split('/')[0]
        # TLS by default: only pssl on the management address, with the
        # node's own key and certificate and the lab's CA
        assert f'--remote=pssl:6640:{mgmt} --private-key=/run/x/vtep1/' \
            'tls.key --certificate=/run/x/vtep1/tls.pem ' \
            '--ca-cert=/run/x/vtep1/ca.pem' in s
        assert 'ptcp:' not in s
        assert 'vtep.ovsschema' in s
        plain = script(dict(plan, tls=False), 'vtep1')
        assert f'--remote=ptcp:6640:{mgmt}' in plain and 'pssl' not in plain
    assert 'vtep-ctl -- add-ps vtep1' in script(emulated, 'vtep1')
    assert 'ovs-vtep' in script(emulated, 'vtep1')


def test_native_clos_vtep_runs_the_device_on_its_own_bridge():
    clos, _ = plans()
    s = script(clos, 'vtep1')
    assert 'add-br vtep -- set bridge vtep datapath_type=netdev ' \
        'fail_mode=secure' in s
    assert 'add-port vtep vx -- set interface vx type=vxlan ' \
        'options:remote_ip=flow options:key=flow' in s
    assert 'devices/hwvtep/__main__.py --layout /run/x/vtep1/hwvtep.json' in s
    assert 'ovs-vtep' not in s and 'vtep-ctl' not in s


def test_vcf_pod_vtep_node_holds_the_database_and_device_only():
    _, vcfp = plans()
    s = script(vcfp, 'vtep1')
    assert 'ovsdb-server /run/x/vtep1/vtep.db' in s
    assert 'ovs-vswitchd' not in s and 'br-phy' not in s
    assert 'hwvtep/__main__.py' in s


def test_vcf_leaf_with_servers_is_a_member_of_the_pod_vtep():
    _, vcfp = plans()
    vtep = vcfp['nodes']['vtep1']
    s = script(vcfp, 'leaf2')
    assert 'other_config:vlan-limit=2' in s
    assert 'ip link add vtep1 mtu 1600 type veth peer name vtep1-up' in s
    assert f"ip addr add {vtep['tunnel_ip']} dev br-phy" in s
    assert f"other_config:hwaddr={vtep['tunnel_mac']}" in s
    # the servers' cables are ports of the pod VTEP's bridge, not the fabric
    assert '-- add-port vtep bm2 -- set interface bm2' in s
    assert '-- add-port fabric bm2' not in s
    assert 'type=patch options:peer=i-vtep1' in s
    # every member has the pod's MAC: br-phy must not learn it from another
    # member's frames, so it forwards by flows, not MAC learning
    assert 'add-br br-phy -- set bridge br-phy datapath_type=netdev ' \
        'fail_mode=secure' in s
    assert f"in_port=1,dl_dst={vtep['tunnel_mac']},actions=LOCAL" in s
    assert 'ovs-ofctl add-flows br-phy /run/x/leaf2/phy-flows.txt' in s
    assert 'add-flows br-phy' in boot.restart(vcfp['nodes']['leaf2'], vcfp,
                                              '/run/x/leaf2')


def test_dual_homed_server_bonds_in_ovs_active_backup():
    _, vcfp = plans()
    s = script(vcfp, 'bm1')
    assert 'add-bond br0 bond0 eth0 eth1 bond_mode=active-backup' in s
    assert 'bond-detect-mode=carrier' in s


def test_segment_ports_are_access_ports_of_their_vlan():
    clos, _ = plans()
    s = script(clos, 'seg1')
    assert 'set port srv1 tag=100' in s


def test_vcf_member_loads_static_flows():
    _, vcfp = plans()
    s = script(vcfp, 'leaf1')
    assert 'add-groups fabric' in s and 'add-flows fabric' in s
    assert 'bgpd' not in s


def test_gateway_reaches_its_segment_through_a_patch_the_agent_guards():
    clos, _ = plans()
    s = script(clos, 'gw1')
    seg = next(i for i in clos['nodes']['gw1']['intfs'] if i['name'] == 'seg1')
    assert '-- add-port br-seg1 seg1' in s            # the cable, with CFM
    assert (f"-- add-port br-int p-seg1 -- set interface p-seg1 type=patch "
            f"options:peer=i-seg1 ofport_request={seg['ofport']}") in s
    assert '--bridge br-seg1 --cable seg1 --int-ofport 2 --segment seg1' in s
    assert 'link set seg1 mtu 1500 up' in s


def test_gateway_agents_know_their_peers_and_boot_before_the_data_plane():
    from topologies import boot, expand, labs
    plan = expand.expand(labs.resolve('clos'))
    gw1 = plan['nodes']['gw1']
    cable = next(i for i in gw1['intfs'] if i['kind'] == 'physical')
    peers = boot.gateway_peers(plan, 'gw1', cable)
    gw2 = plan['nodes']['gw2']
    assert peers == [[gw2['mgmt_ip'].split('/')[0],
                      gw2['tunnel_ip'].split('/')[0]]]
    cmd = boot.agent_cmd(gw1, cable, '/run/x', plan)
    assert f"--peer {','.join(peers[0])}" in cmd and '--int-ofport' in cmd
    lines = boot.gateway_power_on(gw1, '/run/x', plan)
    # the agent (and the wait for its pidfile) before ovs-vswitchd
    assert lines[0] == 'rm -f /run/x/gwagent-seg1.pid'
    assert 'gwagent' in lines[1] and '-s /run/x/gwagent-seg1.pid' in lines[2]
    assert lines[-1].startswith('nice -n -5 ovs-vswitchd')
