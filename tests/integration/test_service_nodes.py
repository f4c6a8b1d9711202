"""Service-node failure: BUM traffic moves to the other service node in the
data plane (fast-failover group following BFD); the native hardware VTEP
follows its own BFD sessions (the controller re-points unknown-dst only for
a VTEP that runs none, like ovs-vtep)."""
import subprocess

import pytest

from scenarios import harness
from topologies import labs


@pytest.mark.parametrize('topo', ['clos', 'vcf'])
def test_service_node_failover(topo, tmp_path):
    env = harness.ControlledLab(labs.resolve(topo),
                                artifacts_dir=str(tmp_path))
    with env as lab:
        plan = lab.plan
        sn_ip = {s: plan['nodes'][s]['tunnel_ip'].split('/')[0]
                 for s in ('sn1', 'sn2')}
        edges = [n for n, p in plan['nodes'].items()
                 if p['role'] in ('hypervisor', 'sw_gateway')]

        def bfd_up():
            for n in edges:
                out = lab.node(n).ns_run(['ovs-vsctl', '--columns=name,'
                                          'bfd_status', 'find', 'interface',
                                          'type=vxlan']).stdout
                if out.count('forwarding="true"') < 2:
                    return False
            return True
        assert harness.until(bfd_up, 30, 0.2) is not None, \
            'BFD to both service nodes never up'
        vtep = lab.db('vtep1')

        def unknown_dst():
            out = subprocess.run(['vtep-ctl', f'--db={vtep}',
                                  'list-remote-macs', 'ls1'],
                                 capture_output=True, text=True).stdout
            return sorted(line.split('/')[-1] for line in out.splitlines()
                          if 'unknown-dst' in line)
        assert harness.until(lambda: unknown_dst() == sorted(sn_ip.values()),
                             10) is not None
        # the hardware VTEP's own BFD to both, up before one goes (else its
        # session to sn1 reading 'false' below would prove nothing)
        assert harness.until(lambda: [tunnel_forwarding(vtep, sn_ip[s])
                                      for s in ('sn1', 'sn2')] ==
                             ['true', 'true'], 30) is not None, \
            'vtep1: BFD to both service nodes never up'
        # VM pair in one logical switch on different hypervisors
        vms = [v for v, p in plan['nodes'].items()
               if p['role'] == 'vm' and p.get('ls') == 'ls1']
        a, b = vms[0], vms[1]
        b_ip = plan['nodes'][b]['ip'].split('/')[0]
        with open(lab.node('sn1').run_dir + '/ovs-vswitchd.pid') as f:
            lab.node('sn1').ns_run(['kill', '-9', f.read().strip()])
        # ARP is broadcast: it must now flow through sn2
        lab.node(a).ns_run(['ip', 'neigh', 'flush', 'all'])
        assert harness.until(lambda: lab.node(a).ns_run(
            ['arping', '-c', '1', '-w', '1', '-I', 'eth0', b_ip]
        ).returncode == 0, 5) is not None
        # the hardware VTEP runs BFD to the service nodes itself (Tunnel
        # bfd_params): the controller leaves it both, and the switch reports
        # that its session to sn1 no longer forwards
        assert harness.until(
            lambda: tunnel_forwarding(vtep, sn_ip['sn1']) == 'false',
            10) is not None
        assert tunnel_forwarding(vtep, sn_ip['sn2']) == 'true'
        assert unknown_dst() == sorted(sn_ip.values())
    assert env.controller_errors() == []


def tunnel_forwarding(db, remote_ip):
    """`forwarding` of the hardware VTEP's Tunnel to remote_ip, as the switch
    reports it in bfd_status (None: no such tunnel or no BFD on it); `db`:
    the VTEP's OVSDB (Lab.db)."""
    def ctl(*args):
        return subprocess.run(['vtep-ctl', f'--db={db}', '--bare',
                               *args], capture_output=True, text=True,
                              timeout=10).stdout.split()
    for loc in ctl('--columns=_uuid', 'find', 'Physical_Locator',
                   f'dst_ip="{remote_ip}"'):
        for status in ctl('--columns=bfd_status', 'find', 'Tunnel',
                          f'remote={loc}'):
            if status.startswith('forwarding='):
                return status.split('=', 1)[1]
    return None
