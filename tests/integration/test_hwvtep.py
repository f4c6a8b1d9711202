"""The native hardware VTEP on real labs, as a switch is judged: by what its
database says (read with OVS's own vtep-ctl) and what leaves its cables.

clos-small (MACs age after 10 s here): vtep2 has bm2 on port bm2 and the
standby leg of bm1; vcf-small: the pod VTEP vtep1 runs on leaf1 and leaf2.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from scenarios import harness
from topologies import boot, labs

FRAMEGEN = os.path.join(os.path.dirname(harness.__file__), 'framegen.py')


def until(fn, timeout, step=0.1):
    return harness.until(fn, timeout, step) is not None


def vtep_ctl(lab, vtep, *args):
    return subprocess.run(['vtep-ctl', f'--db={lab.db(vtep)}', *args],
                          capture_output=True, text=True, timeout=20).stdout


def frames_from(lab, host, prefix, count=1, interval=0.1):
    """`count` broadcast frames from new MACs <prefix>:01.. out of host's
    first interface."""
    intf = lab.plan['nodes'][host]['intfs'][0]['name']
    subprocess.run(['ip', 'netns', 'exec', lab.node(host).ns,
                    sys.executable, FRAMEGEN, 'macs', '--intf', intf,
                    '--count', str(count), '--interval', str(interval),
                    '--prefix', prefix], check=True, capture_output=True)
    return [f'{prefix}:{k:02x}' for k in range(1, count + 1)]


def ping(lab, a, b, count=3):
    ip = lab.plan['nodes'][b]['ip'].split('/')[0]
    return lab.node(a).ns_run(['ping', '-c', str(count), '-W', '1', '-i',
                               '0.2', ip]).returncode == 0


def set_links(lab, node, state):
    names = [i['name'] for i in lab.plan['nodes'][node]['intfs']
             if not i.get('member')]
    lab.node(node).ns_run(['ip', '-batch', '-'], check=True, input=''.join(
        f'link set {n} {state}\n' for n in names))


@pytest.fixture(scope='module')
def clos(tmp_path_factory):
    spec = dict(labs.resolve('clos'), vtep_mac_age_s=10)
    env = harness.ControlledLab(spec, print,
                                str(tmp_path_factory.mktemp('clos')))
    with env as lab:
        yield lab


def test_vtep_ctl_sees_the_native_switch(clos):
    assert vtep_ctl(clos, 'vtep2', 'list-ps').split() == ['vtep2']
    assert vtep_ctl(clos, 'vtep2', 'list-ports', 'vtep2').split() == [
        'bm1', 'bm2']
    assert vtep_ctl(clos, 'vtep2', 'list-bindings', 'vtep2',
                    'bm2').split() == ['0000', 'ls1']
    # the VMs of ls1, at their hypervisors, as the controller wrote them
    remote = vtep_ctl(clos, 'vtep2', 'list-remote-macs', 'ls1')
    vm1 = clos.plan['nodes']['vm1']
    hv1_ip = clos.plan['nodes']['hv1']['tunnel_ip'].split('/')[0]
    assert f"{vm1['mac']} -> vxlan_over_ipv4/{hv1_ip}" in remote, remote
    ps = vtep_ctl(clos, 'vtep2', 'list', 'Physical_Switch')
    assert 'native hardware VTEP' in ps
    assert clos.plan['nodes']['vtep2']['tunnel_ip'].split('/')[0] in ps
    # BFD runs to both service nodes, as the controller asked
    sns = [clos.plan['nodes'][s]['tunnel_ip'].split('/')[0]
           for s in ('sn1', 'sn2')]

    def bfd_up():
        tunnels = vtep_ctl(clos, 'vtep2', '--columns=bfd_status', 'list',
                           'Tunnel')
        return tunnels.count('forwarding="true"') == len(sns)
    assert until(bfd_up, 10), vtep_ctl(clos, 'vtep2', 'list', 'Tunnel')


def test_learns_a_mac_from_its_first_frame_and_ages_it(clos):
    macs = frames_from(clos, 'bm2', '02:45:00:00:00', count=3)
    t0 = time.time()        # the age runs from the frames
    assert until(lambda: all(m in vtep_ctl(clos, 'vtep2', 'list-local-macs',
                                           'ls1') for m in macs), 3), \
        vtep_ctl(clos, 'vtep2', 'list-local-macs', 'ls1')
    def hv1_flows():
        return clos.node('hv1').ns_run(['ovs-ofctl', '-O', 'OpenFlow13',
                                        'dump-flows', 'br-int']).stdout
    assert until(lambda: all(m in hv1_flows() for m in macs), 3), \
        hv1_flows()
    # silent for the lab's 10 s MAC age: forgotten, and by the hypervisors
    time.sleep(max(0.0, t0 + 5 - time.time()))
    assert macs[0] in vtep_ctl(clos, 'vtep2', 'list-local-macs', 'ls1')
    assert until(lambda: not any(m in vtep_ctl(
        clos, 'vtep2', 'list-local-macs', 'ls1') for m in macs), 25)
    assert time.time() - t0 >= 9


def test_a_port_that_loses_carrier_is_flushed(clos):
    mac = clos.plan['nodes']['bm2']['mac']
    assert until(lambda: ping(clos, 'bm2', 'vm1', 1), 10)
    assert reported(clos, 'vtep2', 'ls1', mac)
    clos.node('bm2').ns_run(['ip', 'link', 'set', 'eth0', 'down'],
                            check=True)
    try:
        assert until(lambda: mac not in vtep_ctl(
            clos, 'vtep2', 'list-local-macs', 'ls1'), 2)
        ports = vtep_ctl(clos, 'vtep2', '--columns=name,other_config',
                         'list', 'Physical_Port')
        assert 'link_state=down' in ports
    finally:
        clos.node('bm2').ns_run(['ip', 'link', 'set', 'eth0', 'up'])
    assert until(lambda: ping(clos, 'bm2', 'vm1', 1), 10)
    # learned from the frames of that one ping, even those that reached the
    # device before the port-status saying carrier was back
    assert reported(clos, 'vtep2', 'ls1', mac)


def reported(lab, vtep, ls, mac, timeout=3):
    """`mac` in `vtep`'s Ucast_Macs_Local for `ls` within `timeout` (the
    device writes the row in a transaction after it learned); if not, the
    failure shows the device's last log lines."""
    if until(lambda: mac in vtep_ctl(lab, vtep, 'list-local-macs', ls),
             timeout):
        return True
    with open(os.path.join(lab.nodes[vtep].run_dir, 'hwvtep.log')) as f:
        raise AssertionError(f'{mac} not reported by {vtep} in {ls} within '
                             f'{timeout} s; its log ends:\n'
                             + ''.join(f.readlines()[-20:]))


def copies_of(clos, tmp_path, src):
    """Outer destination IPs of vtep2's copies of a broadcast from bm2."""
    point = {'vtep2': clos.plan['nodes']['vtep2']['uplink']}
    with harness.Captures(clos, point, str(tmp_path),
                          'udp port 4789 and (udp[12:4] & 0xffffff00) != 0'
                          ) as cap:
        frames_from(clos, 'bm2', src)
        time.sleep(0.3)
    return sorted(r['outer_dst'] for r in cap.frames()['vtep2']
                  if r['src'] == f'{src}:01' and r.get('vni') == 5001)


def test_replication_modes(clos, tmp_path):
    n = clos.plan['nodes']
    ip = {x: n[x]['tunnel_ip'].split('/')[0] for x in n if 'tunnel_ip' in
          n[x]}
    ls1 = next(x for x in clos.ctl.get('/logical-switches')
               if x['name'] == 'ls1')
    copies = copies_of(clos, tmp_path, '02:46:00:00:01')
    assert len(copies) == 1 and copies[0] in (ip['sn1'], ip['sn2']), copies
    status, _ = clos.ctl.request('PUT', f"/logical-switches/{ls1['id']}",
                                 {'replication_mode': 'source_node'})
    assert status == 200
    try:
        assert until(lambda: 'source_node' in vtep_ctl(
            clos, 'vtep2', 'get', 'Logical_Switch', 'ls1',
            'replication_mode'), 5)
        time.sleep(0.5)
        copies = copies_of(clos, tmp_path, '02:46:00:00:02')
        # every other VTEP with a member of ls1, no service node
        want = sorted(ip[x] for x in ('hv1', 'hv2', 'hv3', 'gw1', 'gw2',
                                      'vtep1'))
        assert copies == want, (copies, want)
    finally:
        clos.ctl.request('PUT', f"/logical-switches/{ls1['id']}",
                         {'replication_mode': 'service_node'})


def test_a_restarted_switch_rebuilds_from_its_database(clos):
    """Power loss and back, as the lab CLI's fail/restore do: the device,
    ovs-vswitchd and ovsdb-server are killed and started again; the switch
    forwards again from what its database holds."""
    node, pn = clos.node('vtep2'), clos.plan['nodes']['vtep2']
    for pidfile in boot.daemons(pn, clos.plan):
        with open(os.path.join(node.run_dir, pidfile)) as f:
            os.kill(int(f.read().strip()), signal.SIGKILL)
    time.sleep(1)
    assert not ping(clos, 'bm2', 'vm1', 1)
    r = node.ns_run(['bash', '-c', boot.restart(pn, clos.plan,
                                                node.run_dir)])
    assert r.returncode == 0, r.stderr
    assert until(lambda: ping(clos, 'bm2', 'vm1', 1), 20)
    assert vtep_ctl(clos, 'vtep2', 'list-bindings', 'vtep2',
                    'bm2').split() == ['0000', 'ls1']
    # relearned from that ping (the restarted bridge had no learned flow,
    # so the old row may be gone meanwhile)
    assert reported(clos, 'vtep2', 'ls1', clos.plan['nodes']['bm2']['mac'])
