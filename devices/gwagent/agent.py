"""The driver around the election (devices.gwagent.election): one
ovs.poller loop, no subprocess, no thread.

  OVSDB      an IDL replica of the gateway's own Open_vSwitch database
             (Interface: the cable's CFM ID, the IDs it hears, its
             interval; Bridge: external_ids) and transactions on it: the
             state it publishes (br-<seg> external_ids:l2gw-state), and
             the CFM ID withheld while the data plane cannot forward.
  OpenFlow   a persistent channel to br-<seg> (its flows, the cable's
             carrier from port-status messages, the sources it learns
             from packet-ins and ages out from flow-removed messages, RARP
             packet-outs) and one to br-int (is the gateway port
             programmed by the controller; the VM MACs to announce), both
             on the bridges' .mgmt sockets.
  notices    one UDP socket; yield/claim/release/deny to the peer
             gateways on the same segment, over management and transport.
  pidfd      on ovs-vswitchd: its death is known at once.
  netlink    the cable's link events from the kernel (devices.gwagent.
             carrier): a lost carrier is known before OVS reports it.

While active, the agent publishes the physical MACs it learned on the
cable (devices.gwagent.learning) for the controller.

The CFM ID is announced only while the data plane is up and br-int has
the controller's flows for the gateway port: a restarted gateway does not
preempt the active one before it can forward (preemptive failback without
a black hole).
"""
import logging
import os
import select
import socket
import time

from devices.hwvtep import idl as idlmod      # (keeps eventlet out)
from devices.hwvtep import ofmsg
from devices.hwvtep.macs import MOVED, NEW, MacTable
from devices.hwvtep.ofconn import OFConn

import ovs.poller                               # noqa: E402  (after idl)

from . import carrier as carriermod
from . import election as el
from . import learning as ln

LOG = logging.getLogger('gwagent')
SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema'
CABLE_OFPORT = ln.CABLE
STASH = 'l2gw-cfm-mpid'          # Interface external_ids: a withheld ID
PROGRAMMED_POLL_MS = 20          # br-int dumped this often until programmed
REFRESH_MS = 5000                # ... and this often after (VM MAC list)


def _flow_record(stat):
    """An OFPFlowStats -> {'table', 'priority', 'match', 'vni'} (vni: the
    tunnel_id a flow sets, if any; vlan_vid as a plain VID)."""
    match = {k: v[0] if isinstance(v, tuple) else v      # (value, mask)
             for k, v in stat.match.items()}
    if 'vlan_vid' in match:
        match['vlan_vid'] = match['vlan_vid'] & 0xfff
    vni = None
    for inst in stat.instructions:
        for act in getattr(inst, 'actions', []):
            if getattr(act, 'key', None) == 'tunnel_id':
                vni = act.value
    return {'table': stat.table_id, 'priority': stat.priority,
            'match': match, 'vni': vni}


class _Channel:
    """OFConn handler that forwards to the agent's methods."""

    def __init__(self, on_connected, on_message):
        self.on_connected, self.on_message = on_connected, on_message


class Agent:
    def __init__(self, bridge, cable, int_port, seg, peers, rundir, log,
                 on_guarding=None):
        self.bridge, self.cable, self.seg = bridge, cable, seg
        self.int_port, self.rundir, self.log = int_port, rundir, log
        self.peers = peers                       # [[address, ...]] per peer
        self.election = el.Election(peers=len(peers))
        self.db = idlmod.Replica(
            f'unix:{rundir}/db.sock', SCHEMA,
            {'Interface': ['name', 'cfm_mpid', 'cfm_remote_mpids',
                           'other_config', 'external_ids'],
             'Bridge': ['name', 'external_ids']}, 'gwagent')
        self.seg_of = OFConn(bridge, f'{rundir}/{bridge}.mgmt', _Channel(
            self._seg_connected, self._seg_message), backoff_ms=(20, 200))
        self.int_of = OFConn('br-int', f'{rundir}/br-int.mgmt', _Channel(
            self._int_connected, lambda conn, msg: None),
            backoff_ms=(20, 200))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('0.0.0.0', el.PEER_PORT))
        self.sock.setblocking(False)
        self.carrier = None                 # the cable's, as we count it
        self.ovs_carrier = None             # OVS's word (port status)
        self.kernel_up = None               # the kernel's (netlink)
        try:
            self.nl = carriermod.Carrier(cable)
        except OSError as exc:               # OVS's word alone, then
            self.nl = None
            log(f'{time.time():.3f} no netlink link events for {cable}: '
                f'{exc}')
        self.programmed, self.announce = False, []
        self.dump, self.next_dump = [], 0.0
        self.applied, self.applying = None, None
        self.pending_release = set()         # addresses owed a release
        self.round, self.next_claim = 0, 0.0
        self.next_beat = 0.0
        self.pidfd = None
        self.published = None
        self.macs = MacTable(limit=4 * ln.REPORT_LIMIT)   # (vlan, mac)
        self.published_macs = None
        # called once the CFM ID is safe (withheld unless the data plane
        # is ready): what a gateway's boot waits for before it starts
        # ovs-vswitchd, so a returning gateway preempts nobody too early
        self.on_guarding = on_guarding

    # -- OpenFlow ---------------------------------------------------------
    def _seg_connected(self, conn, _features):
        self.carrier, self.ovs_carrier, self.applied = None, None, None
        self._flush_macs('the segment bridge (re)connected')
        conn.send(ofmsg.delete_all())
        for flow in ln.base_flows():
            conn.send(ofmsg.flow_add(flow))
        conn.send(ofmsg.port_desc_request(), self._ports)

    def _ports(self, reply):
        for port in reply.body:
            if port.port_no == CABLE_OFPORT:
                self._set_carrier(ofmsg.link_up(port), 'port description')

    def _seg_message(self, conn, msg):
        p = ofmsg.parser
        if isinstance(msg, p.OFPPortStatus) and \
                msg.desc.port_no == CABLE_OFPORT:
            self._set_carrier(ofmsg.link_up(msg.desc), 'port status')
        elif isinstance(msg, p.OFPPacketIn) and msg.table_id == ln.LEARN:
            self._learn(msg.data)
        elif isinstance(msg, p.OFPFlowRemoved) and \
                msg.table_id == ln.LEARN and \
                msg.reason == ofmsg.ofp.OFPRR_IDLE_TIMEOUT:
            vid = msg.match.get('vlan_vid', 0)
            vid = (vid[0] if isinstance(vid, tuple) else vid) & 0xfff
            mac = (msg.match.get('eth_src') or '').lower()
            if self.macs.aged(vid, mac, self.cable, self.cable, vid):
                self.log(f'{time.time():.3f} {self.cable} {mac} VLAN {vid} '
                         'aged out')

    def _learn(self, data):
        """A frame from the cable whose source is not known yet."""
        src = ln.frame_source(data)
        if src is None or self.carrier is False:
            return
        vlan, mac = src
        res = self.macs.learn(vlan, mac, self.cable, self.cable, vlan)
        if res in (NEW, MOVED):
            self.seg_of.send(ofmsg.flow_add(ln.learned_flow(vlan, mac)))
            self.log(f'{time.time():.3f} {self.cable} learned {mac} VLAN '
                     f'{vlan}')

    def _flush_macs(self, why):
        gone = self.macs.flush(self.cable)
        if gone:
            self.log(f'{time.time():.3f} {self.cable} {len(gone)} learned '
                     f'MAC(s) flushed ({why})')

    def _set_carrier(self, up, how):
        """OVS's word on the cable's carrier."""
        self.ovs_carrier = up
        self._count_carrier(how)

    def _kernel_link(self, up):
        """The kernel's word: a loss counts at once; a return once OVS
        also sees the port up."""
        self.kernel_up = up
        self._count_carrier('netlink')

    def _count_carrier(self, how):
        up = False if self.kernel_up is False and \
            self.ovs_carrier is not None else self.ovs_carrier
        if up != self.carrier and up is not None:
            self.log(f'{time.time():.3f} {self.cable} carrier '
                     f"{'up' if up else 'down'} ({how})")
        if up is False and self.carrier is not False:
            self._flush_macs('carrier lost')
        self.carrier = up

    def _int_connected(self, conn, _features):
        self.programmed, self.next_dump = False, 0.0

    def _dump_int(self):
        """Ask br-int for its flows (the gateway port programmed? which VM
        MACs to announce?)."""
        self.dump = []
        self.int_of.send(ofmsg.flow_stats_request(), self._dumped)
        self.next_dump = None                   # until the reply

    def _dumped(self, reply):
        self.dump += [_flow_record(s) for s in reply.body]
        if reply.flags & ofmsg.ofp.OFPMPF_REPLY_MORE:
            return
        self.announce, programmed = el.announce_list(self.dump,
                                                     self.int_port)
        if programmed and not self.programmed:
            self.log(f'{time.time():.3f} br-int programmed for '
                     f'{self.int_port} ({len(self.announce)} VM MACs)')
        self.programmed = programmed
        self.next_dump = time.monotonic() + (
            REFRESH_MS if programmed else PROGRAMMED_POLL_MS) / 1000

    def _apply(self, state, why):
        """Flows for `state` on br-<seg>, then a barrier: once it answers,
        the state holds in the data plane (releases owed go out then)."""
        conn = self.seg_of
        conn.send(ofmsg.delete_all(ln.SEGMENT))
        conn.send(ofmsg.delete_all(ln.FORWARD))
        for flow in ln.state_flows(state == el.ACTIVE):
            conn.send(ofmsg.flow_add(flow))
        self.applying = state
        t = time.time()
        conn.send(ofmsg.barrier(),
                  lambda _reply: self._applied(state, why, t))

    def _applied(self, state, why, t_decided):
        if self.applying != state:
            return                               # superseded
        self.applied, self.applying = state, None
        self.log(f'{time.time():.3f} {self.cable} {state} ({why}; decided '
                 f'{(time.time() - t_decided) * 1000:.1f} ms before)')
        if state == el.ACTIVE:
            self._rarp()
        else:
            self._send_releases()

    def _rarp(self):
        """Tell the segment where the VMs are now: one RARP per VM MAC
        (and VLAN) out of the cable, as a virtual switch does."""
        p, ofp = ofmsg.parser, ofmsg.ofp
        for mac, vlan in self.announce[:4096]:
            self.seg_of.send(p.OFPPacketOut(
                ofmsg.DP, buffer_id=ofp.OFP_NO_BUFFER,
                in_port=ofp.OFPP_CONTROLLER,
                actions=[p.OFPActionOutput(CABLE_OFPORT)],
                data=el.rarp_frame(mac, vlan)))
        if self.announce:
            self.log(f'{time.time():.3f} {self.cable} announced '
                     f'{len(self.announce)} VM MACs (RARP)')

    # -- OVSDB ------------------------------------------------------------
    def _cable_row(self):
        for row in self.db.idl.tables['Interface'].rows.values():
            if row.name == self.cable:
                return row
        return None

    def _bridge_row(self):
        for row in self.db.idl.tables['Bridge'].rows.values():
            if row.name == self.bridge:
                return row
        return None

    def _cfm(self):
        """-> (own ID or None, [heard IDs], interval ms, withheld ID)."""
        row = self._cable_row()
        if row is None:
            return None, [], 1000, None
        own = idlmod.opt(row.cfm_mpid)
        interval = int(row.other_config.get('cfm_interval', 1000))
        stash = row.external_ids.get(STASH)
        return own, sorted(row.cfm_remote_mpids), interval, \
            int(stash) if stash else None

    def _sync_db(self, ready, own, stash):
        """Publish the state; withhold the CFM ID while not ready, put it
        back once ready."""
        if not self.db.ready() or not self.db.writer.may_start():
            return
        cable, bridge = self._cable_row(), self._bridge_row()
        if cable is None or bridge is None:
            return
        state = self.applied if self.seg_of.ready else 'down'
        macs = ln.report(self.macs.entries, self.announce) \
            if state == el.ACTIVE else ''
        move = None
        if not ready and own is not None:
            move = 'withhold'
        elif ready and own is None and el.restore_id(stash, own):
            move = 'restore'
        if move is None and self.on_guarding:
            self.on_guarding()
            self.on_guarding = None
        if state == self.published and move is None and \
                macs == self.published_macs:
            return

        def build(txn):
            if state != self.published:
                ids = dict(bridge.external_ids)
                ids['l2gw-state'] = state or 'standby'
                bridge.external_ids = ids
            ids = dict(cable.external_ids)
            if macs:
                ids[ln.REPORT_KEY] = macs
            else:
                ids.pop(ln.REPORT_KEY, None)
            if move == 'withhold':
                ids[STASH] = str(own)
                cable.cfm_mpid = []
            elif move == 'restore':
                ids.pop(STASH, None)
                cable.cfm_mpid = [stash]
            if ids != dict(cable.external_ids):
                cable.external_ids = ids
            return True
        def done(status):
            what = f"CFM ID {own if move == 'withhold' else stash} " + (
                'withheld' if move == 'withhold' else 'announced')
            if status in (idlmod.Transaction.SUCCESS,
                          idlmod.Transaction.UNCHANGED):
                self.published, self.published_macs = state, macs
                if move:
                    self.log(f'{time.time():.3f} {what}')
            elif move:                   # not written: the next step retries
                self.log(f'{time.time():.3f} {what}: NOT written '
                         f'(transaction {status}); retrying')
        self.db.writer.start(build, done)

    # -- notices ----------------------------------------------------------
    def _send(self, kind, addresses):
        data = el.notice(kind, self._own_id(), self.seg, self.round)
        for addr in addresses:
            try:
                self.sock.sendto(data, (addr, el.PEER_PORT))
            except OSError:
                pass                    # that path is down: the other may do

    def _own_id(self):
        own, _, _, stash = self._cfm()
        return own if own is not None else stash

    def _everyone(self, kind):
        self._send(kind, [a for peer in self.peers for a in peer])

    def _read_notices(self, interval):
        while True:
            try:
                data, (addr, _port) = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            got = el.parse_notice(data, self.seg)
            if got is None:
                continue
            kind, mpid, _round = got
            answer = self.election.on_notice(time.monotonic(), kind, mpid,
                                              interval)
            if kind != el.HEARTBEAT:
                self.log(f'{time.time():.3f} notice {kind} from {mpid} '
                         f'({addr})' + (f': {answer}' if answer else ''))
            if answer == el.DENY:
                self._send(el.DENY, [addr])
            elif answer == el.RELEASE:
                self.pending_release.add(addr)

    def _send_releases(self):
        if self.pending_release and self.applied != el.ACTIVE and \
                self.applying is None:
            self._send(el.RELEASE, sorted(self.pending_release))
            self.pending_release = set()

    # -- ovs-vswitchd -----------------------------------------------------
    def _watch_vswitchd(self):
        try:
            with open(os.path.join(self.rundir, 'ovs-vswitchd.pid')) as f:
                self.pidfd = os.pidfd_open(int(f.read().strip()))
        except (OSError, ValueError):
            self.pidfd = None

    def _vswitchd_died(self):
        if self.pidfd is None:
            return False
        ready, _, _ = select.select([self.pidfd], [], [], 0)
        if not ready:
            return False
        os.close(self.pidfd)
        self.pidfd = None
        return True

    # -- the loop ---------------------------------------------------------
    def step(self):
        if self.nl is not None:
            up = self.nl.read()
            if up is not None:
                self._kernel_link(up)
        now = time.monotonic()
        own, heard, interval, stash = self._cfm()
        self._read_notices(interval)
        if self._vswitchd_died():
            self.log(f'{time.time():.3f} ovs-vswitchd exited')
            self.programmed, self.carrier = False, None
            self.ovs_carrier = None
            self._flush_macs('ovs-vswitchd exited')
            if self.applied == el.ACTIVE or self.applying == el.ACTIVE:
                self._everyone(el.YIELD)
            self.applied = self.applying = None
        up = self.seg_of.ready and self.int_of.ready
        if up and self.pidfd is None:
            self._watch_vswitchd()
        if self.int_of.ready and self.next_dump is not None and \
                now >= self.next_dump:
            self._dump_int()
        ready = up and self.programmed
        eligible = bool(ready and self.carrier)
        before = self.election.state
        state = self.election.update(now, own, heard, interval, eligible)
        if before == el.ACTIVE and state != el.ACTIVE and \
                not self.carrier:
            self._everyone(el.YIELD)        # stopped: say so at once
        if up and state != (self.applying or self.applied):
            why = 'eligible, outranks every ID it counts' \
                if state == el.ACTIVE else (
                    'not eligible' if not eligible else 'outranked')
            self._apply(state, why)
        self._send_releases()
        if self.election.wants_to_claim() and now >= self.next_claim:
            if self.next_claim == 0.0:
                self.round += 1
            self._everyone(el.CLAIM)
            self.next_claim = now + interval / 1000.0
        elif not self.election.wants_to_claim():
            self.next_claim = 0.0
        if self.applied == el.ACTIVE and state == el.ACTIVE and \
                now >= self.next_beat:
            self._everyone(el.HEARTBEAT)          # "still forwarding"
            self.next_beat = now + el.HEARTBEAT_MS / 1000.0
        self._sync_db(ready, own, stash)
        return self._wake(now, interval)

    def _wake(self, now, interval):
        waits = [self.election.wake_in(now, interval)]
        if self.next_claim:
            waits.append(self.next_claim - now)
        if self.applied == el.ACTIVE:
            waits.append(self.next_beat - now)
        if self.int_of.ready and self.next_dump is not None:
            waits.append(self.next_dump - now)
        waits = [w for w in waits if w is not None]
        return max(0.0, min(waits)) if waits else None

    def run(self):
        self.log(f'{time.time():.3f} agent started for {self.cable} '
                 f'(segment {self.seg}, {len(self.peers)} peer(s))')
        while True:
            self.db.run()
            self.seg_of.run()
            self.int_of.run()
            for conn in (self.seg_of, self.int_of):
                why = conn.take_lost()
                if why:
                    self.log(f'{time.time():.3f} {conn.name}: OpenFlow '
                             f'channel lost ({why})')
            wake = self.step()
            poller = ovs.poller.Poller()
            self.db.wait(poller)
            self.seg_of.wait(poller)
            self.int_of.wait(poller)
            poller.fd_wait(self.sock, ovs.poller.POLLIN)
            if self.nl is not None:
                poller.fd_wait(self.nl.fileno(), ovs.poller.POLLIN)
            if self.pidfd is not None:
                poller.fd_wait(self.pidfd, ovs.poller.POLLIN)
            if wake is not None:
                poller.timer_wait(int(wake * 1000) + 1)
            poller.block()
