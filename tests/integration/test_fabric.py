"""Small labs, booted in-process with their controller: management
reachability, the hardware VTEP's OVSDB from the root namespace, and VCF
multihoming through the pod VTEP (OVS's VTEP emulator, programmed by the
controller over hardware_vtep)."""
import os
import re
import subprocess
import time

import pytest

from scenarios import harness
from topologies import check, labs, pki, records


@pytest.fixture(scope='module')
def vcf_lab(tmp_path_factory):
    env = harness.ControlledLab(labs.resolve('vcf'),
                                artifacts_dir=str(tmp_path_factory.mktemp(
                                    'vcf')))
    with env as lab:
        yield lab
    assert env.controller_errors() == []


def test_every_node_is_reachable_from_the_root_namespace(vcf_lab):
    ips = [p['mgmt_ip'].split('/')[0] for p in vcf_lab.plan['nodes'].values()
           if 'mgmt_ip' in p]
    r = subprocess.run(['fping', '-a', '-r', '3', '-t', '300'] + ips,
                       capture_output=True, text=True, timeout=60)
    assert sorted(r.stdout.split()) == sorted(ips), r.stderr


def test_hardware_vtep_database_answers_over_management(vcf_lab):
    """Over TLS, with the controller's certificate (test_tls.py has the
    refusals)."""
    vtep = vcf_lab.plan['nodes']['vtep1']
    db = [f"--db=ssl:{vtep['mgmt_ip'].split('/')[0]}:6640"] + \
        pki.client_args(os.path.join(records.RUN_ROOT, 'pki'))
    r = subprocess.run(['vtep-ctl', *db, 'list-ps'],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout.split() == ['vtep1'], r.stderr
    r = subprocess.run(['vtep-ctl', *db, 'list-ports', 'vtep1'],
                       capture_output=True, text=True, timeout=20)
    assert r.stdout.split() == ['leaf1p1', 'leaf2p1', 'leaf2p2']


def _active_member(lab):
    out = lab.node('bm1').ns_run(['ovs-appctl', 'bond/show', 'bond0']).stdout
    m = re.search(r'active member mac: \S+\((\w+)\)', out)
    return m.group(1) if m else None


def _ping(lab, src, dst_ip, count=3):
    return lab.node(src).ns_run(['ping', '-c', str(count), '-i', '0.2', '-W',
                                 '1', dst_ip]).returncode == 0


def test_dual_homed_server_survives_a_leaf_failure(vcf_lab):
    """Whitepaper, VCF: 'If Leaf 1 fails, the bare-metal servers detect the
    uplink failure and use the uplink to Leaf 2 for all traffic.'"""
    lab = vcf_lab
    bm2_ip = lab.plan['nodes']['bm2']['ip'].split('/')[0]
    deadline = time.monotonic() + 15             # bindings being written
    while not _ping(lab, 'bm1', bm2_ip, 1) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ping(lab, 'bm1', bm2_ip)
    assert _active_member(lab) == 'eth0'          # bm1 uses leaf1 first
    leaf1 = lab.node('leaf1')
    for intf in lab.plan['nodes']['leaf1']['intfs']:     # leaf1 fails
        leaf1.ns_run(['ip', 'link', 'set', intf['name'], 'down'], check=True)
    deadline = time.monotonic() + 5
    while _active_member(lab) != 'eth1' and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _active_member(lab) == 'eth1'          # moved to leaf2
    assert _ping(lab, 'bm1', bm2_ip)
    # the underlay still connects every VTEP not behind leaf1
    plan = lab.plan
    eps = check.endpoints(plan)
    alive = [n for n in eps if plan['nodes'][n]['intfs'][0]['peer'] != 'leaf1']
    got = check._fping(lab, alive[0], eps[alive[0]],
                       {eps[n] for n in alive[1:]}, plan['mtu'])[1]
    assert got == {eps[n] for n in alive[1:]}
