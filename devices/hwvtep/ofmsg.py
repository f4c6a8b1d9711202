"""OpenFlow 1.3 messages for the device's pipeline, with os-ken's parser
classes and no os-ken application around them: the device owns its socket
(devices.hwvtep.ofconn) and one event loop.

Flows and groups come as plain data (devices.hwvtep.pipeline). Every flow
carries a cookie that hashes its whole content, so the device never parses
what is installed: a cookie that is not desired is deleted, a desired one
that is missing is added (adds go first: an add replaces a flow with the
same match and priority, so nothing is ever missing in between).
"""
import hashlib
import itertools
import json
import struct

from os_ken.ofproto import ofproto_common, ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

COOKIE_MASK = 0xffffffffffffffff
OFPP_IN_PORT = 0xfff8


class StubDatapath:
    """All os-ken's message classes need from a datapath."""
    ofproto, ofproto_parser, id = ofp, parser, None


DP = StubDatapath()
_xids = itertools.count(1)


COUNTING = 1 << 62            # in the cookie of a binding's counting flows


def cookie(flow):
    """A flow's identity: a hash of everything in it (never 0); a
    counting flow has the COUNTING bit (its statistics are asked for by
    cookie), others not."""
    text = json.dumps(flow, sort_keys=True, default=list)
    c = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], 'big') & \
        (0x7fffffffffffffff & ~COUNTING)
    return (c | COUNTING) if flow.get('count') else (c or 1)


def encode(msg):
    """-> (xid, bytes)."""
    if msg.xid is None:
        msg.set_xid(next(_xids) & 0xffffffff)
    msg.serialize()
    return msg.xid, bytes(msg.buf)


def decode(frame):
    """One whole message -> an os-ken message object, or None for a type
    os-ken cannot parse (controller-to-switch types)."""
    _version, msg_type, msg_len, xid = ofproto_parser.header(frame)
    if frame[0] != ofp.OFP_VERSION or msg_type not in parser._MSG_PARSERS:
        return None
    return ofproto_parser.msg(DP, frame[0], msg_type, msg_len, xid, frame)


class FrameReader:
    """Byte stream -> whole OpenFlow messages (frame bytes)."""
    HDR = ofproto_common.OFP_HEADER_SIZE

    def __init__(self):
        self.buf, self.at = bytearray(), 0

    def feed(self, data):
        if self.at:
            del self.buf[:self.at]
            self.at = 0
        self.buf += data

    def _next_length(self):
        if len(self.buf) - self.at < self.HDR:
            return None
        (length,) = struct.unpack_from('!H', self.buf, self.at + 2)
        if length < self.HDR:
            raise ValueError(f'bad OpenFlow length {length}')
        return length if len(self.buf) - self.at >= length else None

    def pending(self):
        """A whole message is waiting."""
        return self._next_length() is not None

    def frames(self, limit=None):
        """Up to `limit` whole messages."""
        n = 0
        while limit is None or n < limit:
            length = self._next_length()
            if length is None:
                return
            frame = bytes(self.buf[self.at:self.at + length])
            self.at += length
            n += 1
            yield frame


def _match(m):
    kw = {}
    for k, v in m.items():
        if k == 'vlan_vid':          # 0: untagged; N: tagged N
            kw[k] = (ofp.OFPVID_PRESENT | v) if v else ofp.OFPVID_NONE
        elif k == 'vlan_tag':        # tagged with VID v, 0 included
            kw['vlan_vid'] = ofp.OFPVID_PRESENT | v
        else:
            kw[k] = v
    return parser.OFPMatch(**kw)


def _actions(actions):
    out = []
    for a in actions:
        kind = a[0]
        if kind == 'output':
            out.append(parser.OFPActionOutput(a[1]))
        elif kind == 'output_vlan':          # (port, vlan): tag, send, untag
            if a[2]:
                out += [parser.OFPActionPushVlan(0x8100),
                        parser.OFPActionSetField(
                            vlan_vid=ofp.OFPVID_PRESENT | a[2]),
                        parser.OFPActionOutput(a[1]),
                        parser.OFPActionPopVlan()]
            else:
                out.append(parser.OFPActionOutput(a[1]))
        elif kind == 'output_in_port_vlan':  # (vlan): back out of in_port
            tag = [parser.OFPActionPushVlan(0x8100),
                   parser.OFPActionSetField(
                       vlan_vid=ofp.OFPVID_PRESENT | a[1])] if a[1] else []
            out += tag + [parser.OFPActionOutput(ofp.OFPP_IN_PORT)] + (
                [parser.OFPActionPopVlan()] if a[1] else [])
        elif kind == 'push_vlan':            # (tpid, vid)
            out += [parser.OFPActionPushVlan(a[1]),
                    parser.OFPActionSetField(
                        vlan_vid=ofp.OFPVID_PRESENT | a[2])]
        elif kind == 'pop_vlan':
            out.append(parser.OFPActionPopVlan())
        elif kind == 'set_tunnel':
            out.append(parser.OFPActionSetField(tunnel_id=a[1]))
        elif kind == 'set_tun_dst':
            out.append(parser.OFPActionSetField(tun_ipv4_dst=a[1]))
        elif kind == 'set_reg':
            out.append(parser.OFPActionSetField(**{f'reg{a[1]}': a[2]}))
        elif kind == 'resubmit':
            out.append(parser.NXActionResubmitTable(in_port=OFPP_IN_PORT,
                                                    table_id=a[1]))
        elif kind == 'group':
            out.append(parser.OFPActionGroup(a[1]))
        elif kind == 'controller':
            out.append(parser.OFPActionOutput(ofp.OFPP_CONTROLLER,
                                              ofp.OFPCML_NO_BUFFER))
        else:
            raise ValueError(f'unknown action {a!r}')
    return out


def flow_add(flow, ck=None):
    inst = []
    acts = _actions(flow['actions'])
    if acts:
        inst.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS,
                                                 acts))
    if flow['goto'] is not None:
        inst.append(parser.OFPInstructionGotoTable(flow['goto']))
    return parser.OFPFlowMod(
        DP, cookie=cookie(flow) if ck is None else ck,
        table_id=flow['table'],
        command=ofp.OFPFC_ADD, idle_timeout=flow.get('idle') or 0,
        priority=flow['priority'], buffer_id=ofp.OFP_NO_BUFFER,
        out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
        flags=ofp.OFPFF_SEND_FLOW_REM if flow.get('notify') else 0,
        match=_match(flow['match']), instructions=inst)


def flow_delete(ck):
    return parser.OFPFlowMod(DP, cookie=ck, cookie_mask=COOKIE_MASK,
                             table_id=ofp.OFPTT_ALL, command=ofp.OFPFC_DELETE,
                             out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                             match=parser.OFPMatch())


def delete_all(table=None):
    """Every flow, or every flow of one table."""
    return parser.OFPFlowMod(DP, table_id=ofp.OFPTT_ALL if table is None
                             else table,
                             command=ofp.OFPFC_DELETE, out_port=ofp.OFPP_ANY,
                             out_group=ofp.OFPG_ANY, match=parser.OFPMatch())


def group_mod(group, command):
    """command: 'add', 'modify' or 'delete'."""
    gtype = {'fast_failover': ofp.OFPGT_FF, 'all': ofp.OFPGT_ALL,
             'select': ofp.OFPGT_SELECT}[group.get('type', 'all')]
    cmd = {'add': ofp.OFPGC_ADD, 'modify': ofp.OFPGC_MODIFY,
           'delete': ofp.OFPGC_DELETE}[command]
    buckets = [] if command == 'delete' else [
        parser.OFPBucket(weight=0, watch_port=ofp.OFPP_ANY
                         if b['watch_port'] is None else b['watch_port'],
                         watch_group=ofp.OFPG_ANY,
                         actions=_actions(b['actions']))
        for b in group['buckets']]
    return parser.OFPGroupMod(DP, cmd, gtype, group['group_id'], buckets)


def diff(flows, installed):
    """-> ({cookie: flow} to add, [cookies] to delete)."""
    want = {cookie(f): f for f in flows}
    add = {c: f for c, f in sorted(want.items()) if c not in installed}
    return add, sorted(set(installed) - set(want))


def hello():
    return parser.OFPHello(DP)


def features_request():
    return parser.OFPFeaturesRequest(DP)


def set_config():
    """A service connection (the bridge's .mgmt socket) gets packet-ins,
    flow-removed and port-status only once it asks with a miss length."""
    return parser.OFPSetConfig(DP, ofp.OFPC_FRAG_NORMAL, 0xffff)


def flow_stats_request(counting=False):
    """Every flow, or only the counting ones (by their cookie bit)."""
    ck = COUNTING if counting else 0
    return parser.OFPFlowStatsRequest(DP, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY,
                                      ofp.OFPG_ANY, ck, ck, parser.OFPMatch())


def group_desc_request():
    return parser.OFPGroupDescStatsRequest(DP, 0)


def port_desc_request():
    return parser.OFPPortDescStatsRequest(DP, 0)


def barrier():
    return parser.OFPBarrierRequest(DP)


def echo_request():
    return parser.OFPEchoRequest(DP, b'hwvtep')


def echo_reply(req):
    msg = parser.OFPEchoReply(DP, req.data)
    msg.set_xid(req.xid)
    return msg


def link_up(port_desc):
    """A port's carrier from its OFPPort description."""
    return not port_desc.state & ofp.OFPPS_LINK_DOWN
