"""The os-ken application (thin glue): datapaths connect, events come in,
the pure intent goes out through controllers.ofdriver.

A datapath is a transport node's br-int, identified by its datapath id
(node index + 1, set by the lab). On connect the app reads the installed
flow cookies and groups, then applies only the difference.

A pass after a change recomputes, on each datapath, only the sections of
its intent that the change touched (intent.changed_sections: the flows of
a MAC that moved or appeared, the flooding of its VNI) and compares them
with what it sent for those sections; anything else (switches, gateway
connections, membership) recomputes everything.
"""
import logging
import threading
import time

from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import (CONFIG_DISPATCHER, DEAD_DISPATCHER,
                                       MAIN_DISPATCHER, set_ev_cls)
from os_ken.lib import ofctl_v1_3
from os_ken.ofproto import ofproto_v1_3

from . import intent, ofdriver, reject

LOG = logging.getLogger('nsx.app')
SLOW_PASS_S = 0.05       # a pass that took longer is logged


def _action_text(a):
    """os-ken's text of one action ('OUTPUT:3'), ours for the Nicira
    ones the firewall uses (os-ken's own fails on them)."""
    name = type(a).__name__
    if name == 'NXActionCT':
        parts = (['commit'] if a.flags & 1 else []) + \
            [f'zone={a.zone_ofs_nbits}'] + \
            ([f'table={a.recirc_table}'] if a.recirc_table != 0xff else [])
        return 'CT:' + ','.join(parts)
    if name == 'NXActionCTClear':
        return 'CT_CLEAR'
    if name == 'NXActionResubmitTable':
        return f'RESUBMIT:{a.table_id}'
    return ofctl_v1_3.action_to_str(a)


def _instructions_text(instructions):
    """A flow's instructions as action texts (ofctl_v1_3.actions_to_str's
    shape), apply-actions through _action_text."""
    out = []
    for ins in instructions:
        if getattr(ins, 'type', None) == ofproto_v1_3.OFPIT_APPLY_ACTIONS:
            out += [_action_text(a) for a in ins.actions]
        else:
            out += ofctl_v1_3.actions_to_str([ins])
    return out


def _flow_row(s):
    return {'table': s.table_id, 'priority': s.priority,
            'match': ofctl_v1_3.match_to_str(s.match),
            'actions': _instructions_text(s.instructions),
            'packets': s.packet_count, 'bytes': s.byte_count}


def _port_row(s):
    return {'port': s.port_no, 'rx_packets': s.rx_packets,
            'tx_packets': s.tx_packets, 'rx_dropped': s.rx_dropped,
            'tx_dropped': s.tx_dropped, 'rx_errors': s.rx_errors,
            'tx_errors': s.tx_errors}


class _Ask:
    """One switch's answers to read(), as they arrive."""

    def __init__(self, what):
        self.parts = {k: [] for k in what}
        self.left = set(what)
        self.done = threading.Event()
        self.failed = False

    def arrived(self, kind):
        self.left.discard(kind)
        if not self.left:
            self.done.set()


class NsxController(app_manager.OSKenApp):
    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, core=None, **kwargs):
        """`core`: the controllers.core.Core this app drives (controllers
        .main gives it to os-ken's app manager, which passes it here)."""
        super().__init__(*args, **kwargs)
        self.core = core
        self.dps = {}            # dpid -> datapath
        self.cookies = {}        # dpid -> installed flow cookies
        self.cookie_of = ofdriver.Cookies()
        self.wire = ofdriver.Wire()
        self.groups = {}         # dpid -> installed group ids
        self.group_content = {}  # dpid -> {group id: what we last sent}
        self.pending = {}        # dpid -> replies still expected
        self.ready = set()
        self.inflight = {}       # barrier xid -> (node, generation, msgs)
        self.sections = {}       # dpid -> {section key: cookies sent}
        self.last_ctx = None     # the context of the last pass
        self.asserted = {}       # dpid -> (role, generation) requested
        self.asks = {}           # (dpid, xid) -> (_Ask, kind): read()'s

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def _features(self, ev):
        dp = ev.msg.datapath
        # os-ken's own features handler sets dp.id, and may run after this
        # one: read the id from the message (dp.id was None at times, and
        # that switch then went unprogrammed)
        dpid = ev.msg.datapath_id
        dp.id = dpid
        node = self.core.node_of_dpid(dpid)
        LOG.info('datapath %016x connected (%s)', dpid, node or 'unknown')
        if node is None:
            return
        with self.core.lock:
            self.dps[dpid] = dp
            self.asserted.pop(dpid, None)
            self._assert_role(dp, node)
            self._read_installed(dp)
        self.core.switch_event(node, 'connected')

    def _read_installed(self, dp):
        """Ask the switch for its flows and groups; the datapath is
        reconciled (all of it) once both are in (_collect)."""
        dpid, parser = dp.id, dp.ofproto_parser
        self.cookies[dpid], self.groups[dpid] = set(), set()
        self.group_content[dpid] = {}        # unknown: send once
        self.pending[dpid] = {'flows', 'groups'}
        self.ready.discard(dpid)
        self.sections.pop(dpid, None)
        dp.send_msg(parser.OFPFlowStatsRequest(dp))
        dp.send_msg(parser.OFPGroupDescStatsRequest(dp))

    def _assert_role(self, dp, node):
        """In a controller cluster: ask for the role this node has on
        the device (master on its active node, slave elsewhere) with the
        assignment's generation id, when it changed -> whether this node
        just became the master (what is installed must be read again:
        another node wrote it meanwhile)."""
        want = self.core.role(node)
        had = self.asserted.get(dp.id)
        if want is None or want == had:
            return False
        ofp, parser = dp.ofproto, dp.ofproto_parser
        role = ofp.OFPCR_ROLE_MASTER if want[0] == 'master' else \
            ofp.OFPCR_ROLE_SLAVE
        dp.send_msg(parser.OFPRoleRequest(dp, role, want[1]))
        self.asserted[dp.id] = want
        LOG.info('%s: role %s (generation %d)', node, *want)
        return want[0] == 'master' and (had is None or had[0] != 'master')

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply,
                [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _flow_stats(self, ev):
        # also in CONFIG: the replies to the requests _features sends can
        # come before os-ken moves the datapath to MAIN (seen: the first
        # switch after the app started was never programmed, so BFD never
        # went on anywhere)
        if not self._answer(ev, 'flows'):
            self._collect(ev, self.cookies, 'flows', lambda s: s.cookie)

    @set_ev_cls(ofp_event.EventOFPPortStatsReply,
                [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _port_stats(self, ev):
        self._answer(ev, 'ports')

    def read(self, nodes, what=('flows', 'ports'), timeout=2.0):
        """Ask the switches of `nodes` for their flow and/or port
        statistics now (every request sent before any wait) -> {node:
        {'flows': [...], 'ports': [...]}} (see _flow_row, _port_row), None for a
        node without an OpenFlow session or that did not answer within
        `timeout` seconds. Called from the API's threads."""
        dp_of = {self.core.node_of_dpid(d): dp
                 for d, dp in list(self.dps.items())}
        asks = {}
        for node in nodes:
            dp = dp_of.get(node)
            if dp is None:
                continue
            ask = asks[node] = _Ask(what)
            parser = dp.ofproto_parser
            for kind in what:
                req = parser.OFPFlowStatsRequest(dp) if kind == 'flows' \
                    else parser.OFPPortStatsRequest(dp, 0,
                                                    dp.ofproto.OFPP_ANY)
                dp.set_xid(req)
                self.asks[(dp.id, req.xid)] = (ask, kind)
                dp.send_msg(req)
        end = time.monotonic() + timeout
        out = {}
        for node in nodes:
            ask = asks.get(node)
            ok = ask is not None and ask.done.wait(
                max(0.0, end - time.monotonic()))
            out[node] = ask.parts if ok and not ask.failed else None
        for key in [k for k, (a, _) in list(self.asks.items())
                    if a in asks.values()]:
            self.asks.pop(key, None)
        return out

    def _answer(self, ev, kind):
        """A multipart reply to read(): kept (os-ken's objects as plain
        data) -> True; any other reply -> False."""
        msg = ev.msg
        got = self.asks.get((msg.datapath.id, msg.xid))
        if got is None:
            return False
        ask, _kind = got
        convert = _flow_row if kind == 'flows' else _port_row
        try:
            ask.parts[kind].extend(convert(x) for x in msg.body)
        except Exception:                  # an answer we cannot read: say
            LOG.exception('a %s statistics reply could not be read', kind)
            ask.done.set()                 # so at once (read -> None)
            ask.failed = True
            return True
        if not msg.flags & msg.datapath.ofproto.OFPMPF_REPLY_MORE:
            ask.arrived(kind)
        return True

    @set_ev_cls(ofp_event.EventOFPGroupDescStatsReply,
                [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _group_desc(self, ev):
        self._collect(ev, self.groups, 'groups', lambda g: g.group_id)

    def _collect(self, ev, table, what, key):
        """Gather one multipart reply of what is installed; reconcile the
        datapath once both flows and groups are known."""
        dp = ev.msg.datapath
        table.setdefault(dp.id, set()).update(key(x) for x in ev.msg.body)
        if ev.msg.flags & dp.ofproto.OFPMPF_REPLY_MORE:
            return
        with self.core.lock:
            self.pending.get(dp.id, set()).discard(what)
            if not self.pending.get(dp.id):
                self.ready.add(dp.id)
                self.reconcile(dp.id)
                self.core.datapaths_ready(self.ready)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev):
        """A firewall reject rule's packet (controllers.dfw): its sender
        gets the answer controllers.reject makes, sent where it says. Only
        a device's master gets packet-ins (OpenFlow's roles); OVS limits
        them per switch (controller_rate_limit, topologies.boot)."""
        msg = ev.msg
        dp = msg.datapath
        node = self.core.node_of_dpid(dp.id)
        where = reject.send_back(msg.table_id, dict(msg.match.items()))
        out = reject.answer(msg.data) if where else None
        if node is None or out is None:
            return
        dp.send_msg(ofdriver.packet_out(dp, where, out))
        self.core.switch_event(node, 'reject')
        LOG.debug('%s: rejected %s', node, reject.summary(msg.data))

    @set_ev_cls(ofp_event.EventOFPErrorMsg,
                [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _error(self, ev):
        msg = ev.msg
        LOG.error('OpenFlow error from %016x: type=%s code=%s',
                  msg.datapath.id, msg.type, msg.code)
        self.core.errors.append((msg.datapath.id, msg.type, msg.code))
        if msg.type == msg.datapath.ofproto.OFPET_ROLE_REQUEST_FAILED:
            with self.core.lock:           # ask again at the next pass
                self.asserted.pop(msg.datapath.id, None)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def _gone(self, ev):
        dp = ev.datapath
        if dp.id is not None and self.dps.get(dp.id) is dp:
            LOG.info('datapath %016x disconnected (%d echo requests '
                     'unanswered)', dp.id,
                     len(getattr(dp, 'unreplied_echo_requests', ())))
            node = self.core.node_of_dpid(dp.id)
            if node is not None:
                self.core.switch_event(node, 'gone')
            with self.core.lock:
                self.dps.pop(dp.id, None)
                self.asserted.pop(dp.id, None)
                self.ready.discard(dp.id)
                self.sections.pop(dp.id, None)
                self.core.datapaths_ready(self.ready)

    @set_ev_cls(ofp_event.EventOFPBarrierReply,
                [CONFIG_DISPATCHER, MAIN_DISPATCHER])
    def _barrier(self, ev):
        """A switch answered the barrier after a change's flow mods: from
        here on its flows are what the change wanted (core.pushed)."""
        got = self.inflight.pop((ev.msg.datapath.id, ev.msg.xid), None)
        if got is not None:
            self.core.pushed(*got)

    def reconcile_all(self):
        with self.core.lock:
            for dpid, dp in sorted(self.dps.items()):   # a cluster's roles
                node = self.core.node_of_dpid(dpid)
                if self._assert_role(dp, node) and dpid in self.ready:
                    self._read_installed(dp)    # then all of it, once read
            gen = self.core.store.generation
            ctx = intent.context(self.core.store.desired(),   # one snapshot
                                 self.core.observed)
            keys = intent.changed_sections(self.last_ctx, ctx)
            self.last_ctx = ctx
            split = None if keys is None else intent.split_keys(ctx, keys)
            t0 = time.monotonic()
            for dpid in intent.pass_order(split, [
                    (d, self.core.node_of_dpid(d)) for d in self.ready]):
                self.reconcile(dpid, ctx, gen, keys, split)
            took = time.monotonic() - t0
            if took > SLOW_PASS_S:
                LOG.info('pass of generation %s: %d switches in %.0f ms',
                         gen, len(self.ready), took * 1000)

    def reconcile(self, dpid, ctx=None, gen=None, keys=None, split=None):
        """Bring one datapath to the intent: all of it (keys None, or a
        datapath not reconciled since it connected), or the sections in
        `keys` (of them only what concerns it: `split`, see
        intent.split_keys)."""
        dp = self.dps.get(dpid)
        node = self.core.node_of_dpid(dpid)
        if dp is None or node is None or not self.core.owns(node):
            return
        if ctx is None:                  # a datapath (re)connected
            ctx = intent.context(self.core.store.desired(),
                                 self.core.observed)
            self.last_ctx = None         # the next pass: all, everywhere
        if dpid not in self.sections:
            keys = None
        elif keys is not None and split is not None:
            keys = intent.node_keys(split, node, keys, self.sections[dpid])
        sections, groups = intent.node_sections(ctx, node, keys)
        sent = self.group_content.setdefault(dpid, {})
        group_mods = 0
        for g in groups:                 # a group mod only when it changes
            if sent.get(g['group_id']) != g:
                dp.send_msg(ofdriver.group_mod(dp, g, g['group_id'] in
                                               self.groups[dpid]))
                self.groups[dpid].add(g['group_id'])
                sent[g['group_id']] = g
                group_mods += 1
        if keys is None:
            add, delete, want = ofdriver.diff(
                [f for fl in sections.values() for f in fl],
                self.cookies[dpid], self.cookie_of)
            self.sections[dpid] = {
                k: {self.cookie_of(f): ofdriver.slot(f) for f in fl}
                for k, fl in sections.items() if fl}
        else:
            add, delete, want = ofdriver.diff_sections(
                sections, self.sections[dpid], self.cookies[dpid],
                self.cookie_of)
        # adds first: a flow that replaces another with the same match
        # and priority takes its place at once (OpenFlow's add), and the
        # delete of the old cookie then finds nothing
        for f in add:
            dp.send(self.wire.add(dp, f, self.cookie_of(f)))
        for ck in delete:
            dp.send(self.wire.delete(dp, ck))
        if add or delete:
            LOG.info('%s: +%d -%d flows', node, len(add), len(delete))
        self.core.switch_event(node, 'pass', len(add), len(delete),
                               group_mods, len(want), full=keys is None)
        self.cookies[dpid] = want
        msgs = len(add) + len(delete) + group_mods
        if not msgs:                     # nothing to confirm
            return
        barrier = dp.ofproto_parser.OFPBarrierRequest(dp)
        dp.set_xid(barrier)
        if gen is not None:
            self.inflight[(dpid, barrier.xid)] = (node, gen, msgs,
                                                  time.time())
        dp.send_msg(barrier)
