"""Probe sequence numbers out of captures (scenarios/pcapseq.py), and
gateway-failover's loop check over them."""
import struct

from scenarios import gateway_failover as gf
from scenarios import pcapseq


def _udp(dport, payload, vlan=None):
    ip = bytes([0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0]) + b'\x0a\0\0\1' \
        + b'\x0a\0\0\2'
    udp = struct.pack('!HHHH', 5555, dport, 8 + len(payload), 0) + payload
    tag = b'\x81\x00' + struct.pack('!H', vlan) if vlan else b''
    return b'\xaa' * 12 + tag + b'\x08\x00' + ip + udp


def _pcap(frames):
    out = struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)
    for t, f in frames:
        out += struct.pack('<IIII', int(t), int((t % 1) * 1e6), len(f),
                           len(f)) + f
    return out


def test_probes_plain_tagged_and_inside_vxlan(tmp_path):
    probe = struct.pack('!Id', 42, 0.0)
    plain = _udp(9100, probe)
    tagged = _udp(9100, struct.pack('!Id', 43, 0.0), vlan=100)
    vxlan = _udp(4789, b'\x08\0\0\0\0\x13\x89\0' +
                 _udp(9101, struct.pack('!Id', 7, 0.0)))
    other = _udp(53, probe)
    assert pcapseq.probe_seq(plain, {9100}) == (9100, 42)
    assert pcapseq.probe_seq(tagged, {9100}) == (9100, 43)
    assert pcapseq.probe_seq(vxlan, {9101}) == (9101, 7)
    assert pcapseq.probe_seq(other, {9100}) is None
    assert pcapseq.probe_seq(b'\0' * 10, {9100}) is None
    path = tmp_path / 'c.pcap'
    path.write_bytes(_pcap([(100.5, plain), (100.6, tagged), (100.7, vxlan),
                            (100.8, plain)]))
    got = pcapseq.seqs_in(str(path), {9100, 9101})
    assert set(got[9100]) == {42, 43} and set(got[9101]) == {7}
    assert abs(got[9100][42] - 100.5) < 1e-6          # first time seen


def test_loop_check_counts_duplicates_and_time_forwarding_together():
    # gw1 forwarded up to t=1.000, gw2 from t=1.030: a clean handover, with
    # one stale copy (seq 5) forwarded by both
    fwd = {'vm->server': {'gw1': {4: 0.999, 5: 1.0}, 'gw2': {5: 1.03,
                                                            6: 1.031}},
           'server->vm': {'gw1': {4: 0.999}, 'gw2': {6: 1.051}}}
    both, together, why = gf.loop_check(
        fwd, {'vm->server': 3, 'server->vm': 2}, 'gw1', 'gw2')
    assert both == {'vm->server': 1, 'server->vm': 0}
    assert together == {'vm->server': 0, 'server->vm': 0} and why == ''
    # both forwarding from 1.030 to 1.049: four 5 ms bins
    fwd['vm->server']['gw1'].update({9: 1.032, 10: 1.037, 11: 1.043,
                                     12: 1.049})
    _, together, _ = gf.loop_check(fwd, {}, 'gw1', 'gw2')
    assert together['vm->server'] == 5          # gw2 silent after 1.031
    fwd['vm->server']['gw2'].update({13: 1.036, 14: 1.041, 15: 1.046})
    _, together, _ = gf.loop_check(fwd, {}, 'gw1', 'gw2')
    assert together['vm->server'] == 20
    # captures that saw little of what arrived are no evidence
    _, _, why = gf.loop_check(fwd, {'vm->server': 100, 'server->vm': 2},
                              'gw1', 'gw2')
    assert 'no evidence' in why and 'vm->server' in why


def test_capture_points_and_directions_from_the_plan():
    from topologies import expand, labs
    plan = expand.expand(labs.resolve('clos'))
    pts = gf.capture_points(plan)
    assert [(p[0], p[3]) for p in pts] == [
        ('gw1-cable', 'in'), ('gw1-uplink', 'out'), ('gw2-cable', 'in'),
        ('gw2-uplink', 'out')]
    assert pts[0][1] == 'seg1' and pts[1][1] == 'gw1'


def test_sweep_runs_only_the_fault_cfm_decides():
    assert gf.plan_of((10, 3, 100), ('crash', 'link', 'power'), 20, 5) == {
        10: (['crash', 'link', 'power'], 20), 3: (['power'], 5),
        100: (['power'], 5)}
    assert gf.plan_of((10, 100), ('crash',), 4, 1) == {10: (['crash'], 4)}
