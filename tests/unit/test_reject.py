"""The firewall's reject (controllers.reject, controllers.dfw, the app's
packet-in): the answer each kind of packet gets (a TCP RST with RFC
793's numbers, ICMP 3/13 quoting the packet), what gets none, where the
answer is sent, and the rule's flows sending the packet to the
controller."""
import types

import pytest
from os_ken.lib.packet import ethernet, icmp, ipv4, packet, tcp, udp
from os_ken.ofproto import ofproto_v1_3, ofproto_v1_3_parser

from controllers import app, dfw, intent, ofdriver, reject
from topologies import expand, labs

from .provisioned import store_for

VM, PEER = '02:00:00:00:00:01', '02:00:00:00:00:02'


def frame(l4, src='10.1.0.11', dst='10.1.0.15', eth_dst=PEER, payload=b''):
    proto = {tcp.tcp: 6, udp.udp: 17, icmp.icmp: 1}[type(l4)]
    p = packet.Packet()
    for x in (ethernet.ethernet(dst=eth_dst, src=VM, ethertype=0x0800),
              ipv4.ipv4(src=src, dst=dst, proto=proto, ttl=64), l4):
        p.add_protocol(x)
    if payload:
        p.add_protocol(payload)
    p.serialize()
    return bytes(p.data)


def parsed(data):
    p = packet.Packet(data)
    return (p.get_protocol(ethernet.ethernet), p.get_protocol(ipv4.ipv4),
            p.get_protocol(tcp.tcp), p.get_protocol(icmp.icmp))


def test_a_syn_gets_a_reset_that_acknowledges_it():
    syn = frame(tcp.tcp(src_port=40000, dst_port=81, seq=1000,
                        bits=reject.SYN))
    eth, ip, seg, _ = parsed(reject.answer(syn))
    assert (eth.src, eth.dst) == (PEER, VM)
    assert (ip.src, ip.dst, ip.proto) == ('10.1.0.15', '10.1.0.11', 6)
    assert (seg.src_port, seg.dst_port) == (81, 40000)
    assert seg.bits == reject.RST | reject.ACK and seg.seq == 0
    assert seg.ack == 1001                      # the SYN counts one


def test_a_segment_with_an_ack_gets_a_reset_at_that_number():
    seg_in = frame(tcp.tcp(src_port=40000, dst_port=81, seq=5, ack=777,
                           bits=reject.ACK), payload=b'hello')
    _, _, seg, _ = parsed(reject.answer(seg_in))
    assert seg.bits == reject.RST and seg.seq == 777


def test_a_segment_cut_at_reject_len_still_counts_its_length():
    """The packet-in carries REJECT_LEN bytes: the RST acknowledges the
    length the IP header says, not what arrived."""
    whole = frame(tcp.tcp(src_port=1, dst_port=2, seq=10,
                          bits=reject.SYN | reject.FIN), payload=b'x' * 400)
    _, _, seg, _ = parsed(reject.answer(whole[:reject.REJECT_LEN]))
    assert seg.ack == 10 + 400 + 2


@pytest.mark.parametrize('l4', [
    udp.udp(src_port=5000, dst_port=53),
    icmp.icmp(type_=8, code=0, data=icmp.echo(id_=1, seq=1, data=b'ping')),
])
def test_udp_and_icmp_get_administratively_prohibited(l4):
    sent = frame(l4)
    eth, ip, _, msg = parsed(reject.answer(sent))
    assert (eth.dst, ip.dst, ip.src) == (VM, '10.1.0.11', '10.1.0.15')
    assert (msg.type, msg.code) == (3, reject.ADMIN_PROHIBITED)
    # the quote: the packet's IP header and its first 8 bytes after it
    assert msg.data.data == sent[14:14 + 20 + 8]


@pytest.mark.parametrize('what,data', [
    ('a reset', frame(tcp.tcp(bits=reject.RST))),
    ('an ICMP error', frame(icmp.icmp(type_=3, code=1,
                                      data=icmp.dest_unreach(data=b'x' * 28)))),
    ('a frame to a group MAC', frame(udp.udp(), eth_dst='ff:ff:ff:ff:ff:ff')),
    ('a broadcast address', frame(udp.udp(), dst='255.255.255.255')),
    ('a multicast address', frame(udp.udp(), dst='224.0.0.251')),
    ('no source', frame(udp.udp(), src='0.0.0.0')),
    ('not IPv4', bytes.fromhex(PEER.replace(':', '') + VM.replace(':', '')
                               + '86dd') + b'\0' * 40),
    ('garbage', b'\x01\x02'),
])
def test_what_gets_no_answer(what, data):
    assert reject.answer(data) is None, what


def test_the_answer_goes_back_the_way_the_packet_came():
    assert reject.send_back(dfw.EGRESS, {'in_port': 3, 'tunnel_id': 5001},
                            dfw.EGRESS, dfw.INGRESS) == [('output', 3)]
    assert reject.send_back(dfw.INGRESS, {'in_port': 9, 'tunnel_id': 5001},
                            dfw.EGRESS, dfw.INGRESS) == \
        [('set_tunnel', 5001), ('resubmit', 1)]
    assert reject.send_back(0, {'in_port': 3}, dfw.EGRESS,
                            dfw.INGRESS) is None


def test_a_reject_rule_sends_new_connections_to_the_controller():
    st = store_for(expand.expand(labs.resolve('clos-small')))
    st.create_group({'name': 'web', 'vms': ['vm3']})
    st.create_rule({'name': 'no-udp', 'priority': 5, 'protocol': 'udp',
                    'destination': {'group': 'web'}, 'action': 'reject'})
    ctx = intent.context(st.desired(), {'vtep_macs': {}, 'dead': set()})
    mac3 = next(p['mac'] for p in st.list_ports()
                if p['attachment'] == 'vm3')
    ways = {}
    for k, fl in intent.node_sections(ctx, 'hv3')[0].items():
        if k[0] == 'dfw':
            ways[k[2] == mac3] = {f['table'] for f in fl
                                  if f['priority'] == 50000 - 5}
    # at vm3's port on the way in, at hv3's other VM's on the way out
    assert ways == {True: {dfw.INGRESS}, False: {dfw.EGRESS}}
    rej = [f for k, fl in intent.node_sections(ctx, 'hv3')[0].items()
           if k[0] == 'dfw' for f in fl if f['priority'] == 50000 - 5]
    assert all(f['actions'] == [('controller', reject.REJECT_LEN)] and
               f['match']['ct_state'] == dfw.NEW for f in rej)
    dp = types.SimpleNamespace(ofproto=ofproto_v1_3,
                               ofproto_parser=ofproto_v1_3_parser)
    act = ofdriver.flow_mod(dp, rej[0]).instructions[0].actions[0]
    assert (act.port, act.max_len) == (ofproto_v1_3.OFPP_CONTROLLER,
                                       reject.REJECT_LEN)
    assert 'REJECT' in dfw.rule_text(dfw.resolve(st.desired())[0])


class _Core:
    def __init__(self):
        self.events = []

    def node_of_dpid(self, dpid):
        return 'hv3' if dpid == 4 else None

    def switch_event(self, node, event, *a, **kw):
        self.events.append((node, event))


class _DP:
    ofproto, ofproto_parser = ofproto_v1_3, ofproto_v1_3_parser
    id = 4

    def __init__(self):
        self.sent = []

    def send_msg(self, msg):
        self.sent.append(msg)


def packet_in(table, data, **match):
    dp = _DP()
    msg = ofproto_v1_3_parser.OFPPacketIn(
        dp, buffer_id=ofproto_v1_3.OFP_NO_BUFFER, total_len=len(data),
        reason=ofproto_v1_3.OFPR_ACTION, table_id=table, cookie=1,
        match=ofproto_v1_3_parser.OFPMatch(**match), data=data)
    return types.SimpleNamespace(msg=msg), dp


def test_the_app_answers_a_packet_in_of_the_ingress_table():
    core = _Core()
    ctl = app.NsxController.__new__(app.NsxController)
    ctl.core = core
    syn = frame(tcp.tcp(src_port=40000, dst_port=81, seq=1,
                        bits=reject.SYN))
    ev, dp = packet_in(dfw.INGRESS, syn, in_port=7, tunnel_id=5001)
    ctl._packet_in(ev)
    (out,) = dp.sent
    assert out.in_port == ofproto_v1_3.OFPP_CONTROLLER
    assert out.data == reject.answer(syn)
    assert [type(a).__name__ for a in out.actions] == \
        ['OFPActionSetField', 'NXActionResubmitTable']
    assert core.events == [('hv3', 'reject')]
    ev, dp = packet_in(0, syn, in_port=7)      # not the firewall's table
    ctl._packet_in(ev)
    assert dp.sent == [] and core.events == [('hv3', 'reject')]
