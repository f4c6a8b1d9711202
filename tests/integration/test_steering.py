"""Service steering on a running clos-small lab (controllers.steering,
devices/servicevm): a service VM on hv3 (vm3's hypervisor); a steering
rule sends TCP to vm3's port 80 (group web) through it: captures on its
interfaces see the steered connection both ways and not the unsteered
one (ping, tcp/22); its nftables counters count it; a payload carrying
the test signature is dropped there while the connection's other
packets pass; its address set follows the web group's membership; its
vNICs losing their link, a fail-closed rule drops the steered traffic
and a fail-open one lets it pass unsteered; the link back, traffic
crosses it again."""
import sys
import time

import pytest

from devices.servicevm import policy as pol
from scenarios import harness, reach
from scenarios.harness import ControlledLab
from scenarios.reach import ip, ping, tcp
from topologies import labs
from topologies.servicevm import ServiceVM

from .conftest import api_write as write

SIGNED = """
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=2)
s.settimeout(1.5)
out = []
for payload in (b'hello', b'NSXL-IPS-TEST', b'again'):
    s.sendall(payload)
    try:
        out.append(s.recv(64).decode() or '-')
    except OSError:
        out.append('-')
        break
print(' '.join(out))
"""


@pytest.fixture(scope='module')
def lab():
    with ControlledLab(labs.resolve('clos')) as env:
        server = reach.echo_server('vm3')
        svm = ServiceVM(env, 'hv3', [{'name': 'no-telnet',
                                      'destination': 'web',
                                      'protocol': 'tcp', 'port': 23}])
        try:
            svm.start(env.ctl)
            env.svm = svm
            time.sleep(0.5)
            yield env
        finally:
            svm.stop()
            server.kill()
            server.wait(5)




def steer(lab, failure):
    write(lab, 'POST', '/security-groups', {'name': 'web', 'vms': ['vm3']}) \
        if not [g for g in write(lab, 'GET', '/security-groups')
                if g['name'] == 'web'] else None
    for r in write(lab, 'GET', '/steering-rules'):
        write(lab, 'DELETE', f"/steering-rules/{r['id']}")
    write(lab, 'POST', '/steering-rules', {
        'name': 'web-via-svc', 'priority': 10, 'protocol': 'tcp',
        'port': 80, 'destination': {'group': 'web'},
        'applied_to': {'group': 'web'}, 'on_failure': failure})
    time.sleep(1.0)                            # hv1 and hv3 pushed


def test_steered_traffic_crosses_the_service_vm_and_the_rest_does_not(
        lab, tmp_path):
    plan = lab.plan
    steer(lab, 'fail-closed')
    before = lab.svm.counters()
    points = [('svc-in', lab.svm.name, 'in'), ('svc-out', lab.svm.name,
                                                'out')]
    with harness.Captures(lab, points, str(tmp_path), 'ip') as cap:
        got = tcp(plan, 'vm1', 'vm3', seconds=1.0)
        assert ping(plan, 'vm1', 'vm3')
        assert tcp(plan, 'vm1', 'vm3', port=22) == (1, 'refused')
    assert got[0] == 0, got
    frames = cap.frames()
    vm1, vm3 = ip(plan, 'vm1'), ip(plan, 'vm3')
    for point in ('svc-in', 'svc-out'):
        seen = {(f.get('ip_src'), f.get('ip_dst')) for f in frames[point]}
        assert {(vm1, vm3), (vm3, vm1)} <= seen, (point, seen)
        # ping and tcp/22 were not steered: only tcp/80 crossed
        assert not [f for f in frames[point] if f.get('icmp') is not None]
    after = lab.svm.counters()
    assert after['allow'] > before.get('allow', 0)      # the new connections
    assert after['established'] > before.get('established', 0)


def test_the_signature_is_dropped_in_the_service_vm(lab):
    steer(lab, 'fail-closed')
    before = lab.svm.counters()['ips:tcp']
    r = reach.ns('vm1', [sys.executable, '-c', SIGNED, ip(lab.plan, 'vm3')])
    assert r.stdout.split()[:2] == ['hello', '-'], (r.stdout, r.stderr)
    assert lab.svm.counters()['ips:tcp'] > before


def test_the_address_set_follows_the_group(lab):
    steer(lab, 'fail-closed')
    groups = {g['name']: g for g in write(lab, 'GET', '/security-groups')}
    web = groups['web']

    def members():
        return pol.set_elements(lab.svm.nft('list', 'set', 'inet', 'svc',
                                            pol.set_name('web')), 'web')
    assert harness.until(lambda: members() == [ip(lab.plan, 'vm3') + '/32'],
                         5, 0.05) is not None, members()
    write(lab, 'PUT', f"/security-groups/{web['id']}",
          {'name': 'web', 'vms': ['vm3', 'vm5']})
    want = sorted(ip(lab.plan, v) + '/32' for v in ('vm3', 'vm5'))
    assert harness.until(lambda: members() == want, 5, 0.02) is not None, \
        members()
    write(lab, 'PUT', f"/security-groups/{web['id']}",
          {'name': 'web', 'vms': ['vm3']})
    assert 'address sets updated: web' in lab.svm.log_text()


@pytest.mark.parametrize('failure,passes', [('fail-closed', False),
                                            ('fail-open', True)])
def test_the_service_vm_down_fails_open_or_closed(lab, failure, passes):
    plan = lab.plan
    steer(lab, failure)
    assert tcp(plan, 'vm1', 'vm3')[0] == 0
    lab.svm.link(False)
    try:
        time.sleep(0.5)
        got = tcp(plan, 'vm1', 'vm3')
        assert (got[0] == 0) is passes, (failure, got)
        assert ping(plan, 'vm1', 'vm3')          # unsteered: untouched
    finally:
        lab.svm.link(True)
    time.sleep(0.5)
    before = lab.svm.counters()['allow']
    assert tcp(plan, 'vm1', 'vm3')[0] == 0
    assert lab.svm.counters()['allow'] > before   # through it again
