"""The native hardware VTEP: one process per switch (one per VCF pod),
event-driven, no polling loop and no subprocess.

It follows its hardware_vtep database (python `ovs` IDL, devices.hwvtep.
vtepdb), programs each member's bridge over one persistent OpenFlow
connection (devices.hwvtep.ofconn) with the pure pipeline (devices.hwvtep.
pipeline), learns from packet-ins, ages on flow-removed, flushes on
port-status (carrier lost) and on a member's data plane going away, runs
BFD to the service nodes on one member (its Open_vSwitch database,
devices.hwvtep.members) and reports what it learned and sees back into its
database (devices.hwvtep.report). Everything happens in one ovs.poller loop
that sleeps until a socket has something or a timer is due.

A restarted device rebuilds everything from its database (configuration)
and from its bridges (MACs whose learned flows are still there); a member
whose ovs-vswitchd restarted gets its flows again and relearns.
"""
import logging
import time

from . import idl as idlmod         # first: keeps eventlet out of ovs
from . import bfd as bfdmod, macs as macmod, members as memmod, ofmsg
from . import pipeline as pl
from . import report
from .ofconn import OFConn
from .vtepdb import VtepDb, remote_ips

import ovs.poller                   # noqa: E402  (after idl)

LOG = logging.getLogger('hwvtep')
ofp, parser = ofmsg.ofp, ofmsg.parser
STATS_TABLES = (pl.CLASSIFY, pl.EGRESS)


class Member:
    """One bridge the device programs (a Clos VTEP's own, or a VCF leaf's)
    and what the device knows of it."""

    def __init__(self, layout, device):
        self.layout, self.name = layout, layout['name']
        self.of = OFConn(self.name, layout['of_socket'], device)
        self.db = memmod.MemberDb(layout['ovsdb'], layout['bridge'],
                                  self.name)
        self.port_of = {ofport: pp for pp, ofport in layout['ports'].items()}
        self.want = {}          # section key -> {cookie: flow}
        self.groups = []        # desired groups
        self.installed = None   # cookies on the bridge (None: not read yet)
        self.sent_groups = {}   # group id -> group, as installed
        self.dump = None        # flows being read after a connect
        self.carrier = {}       # port -> up?
        self.stat_of = {}       # cookie -> ((port, vlan), 'from' | 'to')
        self.counts = {}        # cookie -> (packets, bytes)
        self.bfd_want = {}      # BFD tunnels this member should run
        self.bfd_ports_seen = {}  # BFD tunnels numbered, as last computed
        self.stale_groups = []  # installed groups no longer wanted
        self.found = []         # learned flows read back after a connect

    def ready(self):
        return self.of.ready and self.installed is not None


class Device:
    def __init__(self, layout):
        self.layout = layout
        self.db = VtepDb(layout['db'], layout['ps'])
        self.members = [Member(m, self) for m in layout['members']]
        self.by_name = {m.name: m for m in self.members}
        self.macs = macmod.MacTable(layout.get('max_macs',
                                               macmod.DEFAULT_LIMIT))
        self.age = layout.get('age', 300)
        self.config = None
        self.live, self.seen_up = {}, set()
        self.bfd = bfdmod.Choice(None, False, None)   # who runs BFD
        self.bfd_rechecked = None
        self.banked = {}        # (port, vlan, dir) -> [packets, bytes]
        self.stats = {}
        self.dirty, self.full_sync, self.dirty_db = set(), set(), True
        self.started_at = time.monotonic()
        self.started = False
        self.next_stats = 0.0
        self.stopping = False
        self.errors = 0

    # -- the loop --------------------------------------------------------
    def run(self):
        LOG.info('%s: started, %d member(s): %s', self.layout['ps'],
                 len(self.members), ', '.join(self.by_name))
        while not self.stopping:
            try:
                self.run_once()
            except Exception:           # a bug: log it, keep forwarding
                self.errors += 1
                LOG.exception('%s: event handling failed', self.layout['ps'])
                time.sleep(0.2)
            poller = ovs.poller.Poller()
            self.wait(poller)
            poller.block()

    def run_once(self):
        self.db.run()
        for m in self.members:
            m.of.run()
            m.db.run()
        if self.db.changed():
            self.on_config()
        if any([m.db.changed() for m in self.members]) and self.config:
            self.on_members()
        now = time.monotonic()
        if not self.started and ((self.config is not None and all(
                m.installed is not None for m in self.members)) or
                now - self.started_at > 3.0):
            self.started = True
            LOG.info('%s: ready (%d MAC(s) found in the data plane)',
                     self.layout['ps'], len(self.macs.entries))
            if self.config:
                self.on_members()
        if self.bfd.since is not None and \
                now >= self.bfd.since + bfdmod.MOVE_DELAY_S and \
                self.bfd_rechecked != self.bfd.since:
            self.bfd_rechecked = self.bfd.since     # once; changes re-check
            self.on_members()
        if now >= self.next_stats:
            self.next_stats = now + self.layout.get('stats_interval', 10)
            self.request_stats()
        self.push_flows()
        self.push_db()

    def wait(self, poller):
        self.db.wait(poller)
        for m in self.members:
            m.of.wait(poller)
            m.db.wait(poller)
        wake = self.next_stats if self.started else self.started_at + 3.0
        if self.bfd.since is not None and \
                self.bfd_rechecked != self.bfd.since:
            wake = min(wake, self.bfd.since + bfdmod.MOVE_DELAY_S)
        poller.timer_wait(max(0, int((wake - time.monotonic()) * 1000)))

    # -- configuration and liveness --------------------------------------
    def on_config(self):
        if not self.db.ready():
            return
        config = self.db.config()
        if config == self.config:
            self.dirty_db = True
            return
        if self.config is not None and all(
                config[k] == self.config[k] for k in config
                if k != 'ucast_remote'):
            # only remote MACs changed (the common case: a VM appears,
            # moves, goes): just their flows, as a difference
            old, new = self.config['ucast_remote'], config['ucast_remote']
            self.config = config
            self.dirty.update(('remote',) + k for k in set(old) | set(new)
                              if old.get(k) != new.get(k))
            self.dirty_db = True
            return
        self.config = config
        self._relearn_found()
        gone = self.macs.unbound(pl.pod_bindings(self.layout['members'],
                                                 config))
        if gone:
            LOG.info('%d learned MAC(s) dropped with their bindings',
                     len(gone))
        self.on_members()
        self.recompute()
        self.dirty_db = True

    def on_members(self):
        """Member databases changed (BFD status, uplinks, BFD ports) or the
        configuration did: who runs BFD, and which service nodes live."""
        if self.started:
            eligible = [m.name for m in self.members
                        if m.of.ready and m.db.ready() and
                        (not m.layout['uplinks'] or
                         m.db.links_up(m.layout['uplinks']))]
            running = [m.name for m in self.members if self._bfd_have(m)]
            was = self.bfd
            self.bfd = bfdmod.choose(was.member, eligible, running,
                                     was.since, time.monotonic())
            if self.bfd.member != was.member:
                LOG.info('BFD to the service nodes runs on %s',
                         self.bfd.member)
                self.seen_up = set()
            elif was.trusted and not self.bfd.trusted:
                LOG.info('%s cannot reach the fabric: its BFD is not '
                         'believed', self.bfd.member)
            want = bfdmod.wanted(self.config, remote_ips(self.config)) \
                if self.config else {}
            for m in self.members:
                m.bfd_want = want if m.name == self.bfd.member else {}
                if m.db.ready() and m.bfd_want != self._bfd_have(m) and \
                        m.db.set_bfd(m.bfd_want):
                    LOG.info('%s: BFD tunnels to %s', m.name,
                             ', '.join(sorted(m.bfd_want)) or 'none')
        status = self.by_name[self.bfd.member].db.bfd_status() \
            if self.bfd.member else {}
        live, self.seen_up = bfdmod.liveness(self.live, self.seen_up, status,
                                             self.bfd.trusted)
        if live != self.live:
            for ip in sorted(live):
                if live[ip] != self.live.get(ip, True):
                    LOG.info('service node %s %s', ip,
                             'up' if live[ip] else 'DOWN (BFD)')
            self.live = live
            self.recompute()
        elif any(m.bfd_ports_seen != self._bfd_ports(m)
                 for m in self.members):
            self.recompute()
        self.dirty_db = True

    def _bfd_have(self, m):
        return m.db.bfd_config()

    def _bfd_ports(self, m):
        return {ip: p for ip, p in m.db.bfd_ports().items()
                if ip in m.bfd_want}

    def recompute(self):
        """Every member's sections from the configuration, liveness and
        learned MACs (after any change other than a MAC's)."""
        if not self.config:
            return
        for m in self.members:
            m.bfd_ports_seen = self._bfd_ports(m)
            secs, m.groups = pl.sections(m.layout, self.layout['members'],
                                         self.config, self.live,
                                         m.bfd_ports_seen)
            m.want = {k: _by_cookie(v) for k, v in secs.items()}
            for (ls, mac), entry in self.macs.entries.items():
                m.want[('mac', ls, mac)] = _by_cookie(pl.mac_flows(
                    m.layout, self.layout['members'], self.config, ls, mac,
                    entry, self.age))
            m.stat_of = self._stat_map(m, secs)
            self.full_sync.add(m.name)
        self.dirty.clear()

    def _stat_map(self, m, secs):
        out = {}
        for key, flows in secs.items():
            if key[0] != 'ls':
                continue
            for f in flows:
                bid = None
                if f['table'] == pl.CLASSIFY:
                    bid = next((a[2] for a in f['actions']
                                if a[:2] == ('set_reg', 1)), None)
                    kind = 'from'
                elif f['table'] == pl.EGRESS:
                    bid, kind = f['match'].get('reg3'), 'to'
                if bid:
                    ofport, vlan = pl.split_binding(bid)
                    out[ofmsg.cookie(f)] = ((m.port_of[ofport], vlan), kind)
        return out

    def mac_changed(self, key):
        self.dirty.add(('mac',) + key)

    def _section(self, m, key):
        """The flows of one MAC's section on member m."""
        kind, ls, mac = key
        if kind == 'remote':
            return _by_cookie(pl.remote_section(
                m.layout, self.layout['members'], self.config, ls, mac))
        entry = self.macs.entries.get((ls, mac))
        return _by_cookie(pl.mac_flows(
            m.layout, self.layout['members'], self.config, ls, mac, entry,
            self.age)) if entry else {}

    # -- pushing state out -------------------------------------------------
    def push_flows(self):
        """Sections of MACs that changed (learned, moved, aged, remote)
        go out at once, as a difference; a member marked for a full sync
        (configuration, liveness, a connect) gets every difference between
        its sections and its bridge."""
        keys, self.dirty = self.dirty, set()
        for m in self.members:
            add, delete = {}, set()
            for key in keys if self.config else ():
                old = m.want.pop(key, {})
                new = self._section(m, key)
                if new:
                    m.want[key] = new
                if m.ready():
                    add.update({c: f for c, f in new.items()
                                if c not in m.installed})
                    delete |= {c for c in old if c not in new}
            if m.ready() and m.name in self.full_sync:
                self.full_sync.discard(m.name)
                want = {c: f for sec in m.want.values()
                        for c, f in sec.items()}
                add = {c: f for c, f in want.items() if c not in m.installed}
                delete = set(m.installed) - set(want)
                self._send_groups(m)
            if add or delete:
                self._send(m, add, delete & m.installed)

    def _send_groups(self, m):
        groups = {g['group_id']: g for g in m.groups}
        for gid, g in sorted(groups.items()):
            if m.sent_groups.get(gid) != g:
                m.of.send(ofmsg.group_mod(g, 'modify' if gid in
                                          m.sent_groups else 'add'))
                m.sent_groups[gid] = g
        m.stale_groups = sorted(set(m.sent_groups) - set(groups))

    def _send(self, m, add, delete):
        """Adds first (an add replaces a flow with the same match and
        priority, so nothing is missing in between), then deletes, then
        groups nothing uses any more."""
        for f in add.values():
            m.of.send(ofmsg.flow_add(f))
        for c in sorted(delete):
            m.of.send(ofmsg.flow_delete(c))
        for gid in m.stale_groups:
            m.of.send(ofmsg.group_mod({'group_id': gid}, 'delete'))
            m.sent_groups.pop(gid, None)
        m.stale_groups = []
        m.installed = (m.installed | set(add)) - delete
        m.of.send(ofmsg.barrier())
        LOG.debug('%s: +%d -%d flows', m.name, len(add), len(delete))

    def push_db(self):
        if not (self.started and self.config is not None and self.dirty_db
                and self.db.ready()) or self.db.writer.busy():
            return
        carrier = {pp: up for m in self.members
                   for pp, up in m.carrier.items()}
        bfd = {}
        if self.bfd.member:
            m = self.by_name[self.bfd.member]
            status = m.db.bfd_status()
            bfd = {ip: status.get(ip, {}) for ip in m.bfd_want}
        want = report.switch_rows(self.layout, self.config,
                                  self.macs.local_keys(), carrier, bfd,
                                  self.stats, self.macs.full())
        self.dirty_db = False
        self.db.sync(want)
        if self.db.writer.busy() or self.db.writer.last_status in (
                None, idlmod.Transaction.SUCCESS,
                idlmod.Transaction.UNCHANGED):
            return
        self.dirty_db = True          # failed: try again on the next change

    # -- OpenFlow events ----------------------------------------------------
    def on_connected(self, conn, features):
        m = self.by_name[conn.name]
        LOG.info('%s: OpenFlow connected (datapath %016x)', m.name,
                 features.datapath_id)
        m.installed, m.dump, m.sent_groups = None, [], {}
        conn.send(ofmsg.port_desc_request(), lambda r: self._ports(m, r))
        conn.send(ofmsg.group_desc_request(), lambda r: self._groups(m, r))
        conn.send(ofmsg.flow_stats_request(), lambda r: self._dumped(m, r))

    def on_disconnected(self, conn, why):
        m = self.by_name[conn.name]
        m.installed, m.dump = None, None
        gone = self.macs.flush(m.name)
        for k in gone:
            self.mac_changed(k)
        if gone:
            LOG.info('%s: data plane gone (%s): %d MAC(s) flushed', m.name,
                     why, len(gone))
        m.carrier = {pp: False for pp in m.layout['ports']}
        self.dirty_db = True
        self.on_members()

    def _ports(self, m, reply):
        for desc in reply.body:
            if desc.port_no in m.port_of:
                m.carrier[m.port_of[desc.port_no]] = ofmsg.link_up(desc)
        self.dirty_db = True

    def _groups(self, m, reply):
        for g in reply.body:            # unknown content: sent again
            m.sent_groups.setdefault(g.group_id, None)

    def _dumped(self, m, reply):
        m.dump.extend(reply.body)
        if reply.flags & ofp.OFPMPF_REPLY_MORE:
            return
        m.installed = {s.cookie for s in m.dump}
        # MACs the data plane still knows (the device restarted, its
        # bridges did not): learned again once the configuration is read
        m.found = [s.match for s in m.dump
                   if s.table_id == pl.LEARN and s.priority == 100]
        m.dump = None
        self._relearn_found()
        self.full_sync.add(m.name)
        self.on_members()

    def _relearn_found(self):
        if self.config is None:
            return
        for m in self.members:
            for match in m.found:
                self._relearn(m, match)
            m.found = []

    def _relearn(self, m, match):
        key = self._binding(m, match.get('tunnel_id'), match.get('reg1'))
        if key and match.get('eth_src'):
            ls, pp, vlan = key
            if self.macs.learn(ls, match['eth_src'], m.name, pp, vlan) in (
                    macmod.NEW, macmod.MOVED):
                self.mac_changed((ls, match['eth_src'].lower()))
                self.dirty_db = True

    def _binding(self, m, vni, bid):
        """(ls, port, vlan) of a binding id seen in the pipeline."""
        if not bid or not self.config:
            return None
        ofport, vlan = pl.split_binding(bid)
        pp = m.port_of.get(ofport)
        ls = self.config['bindings'].get((pp, vlan))
        if pp is None or ls is None or \
                self.config['lss'].get(ls, {}).get('vni') != vni:
            return None
        return ls, pp, vlan

    def on_message(self, conn, msg):
        m = self.by_name[conn.name]
        if isinstance(msg, parser.OFPPacketIn):
            self._packet_in(m, msg)
        elif isinstance(msg, parser.OFPFlowRemoved):
            self._flow_removed(m, msg)
        elif isinstance(msg, parser.OFPPortStatus):
            self._port_status(m, msg)
        elif isinstance(msg, parser.OFPErrorMsg):
            self.errors += 1
            LOG.error('%s: OpenFlow error type %s code %s', m.name,
                      msg.type, msg.code)

    def _packet_in(self, m, msg):
        key = self._binding(m, msg.match.get('tunnel_id'),
                            msg.match.get('reg1'))
        if key is None or len(msg.data) < 12:
            return
        ls, pp, vlan = key
        mac = ':'.join('%02x' % b for b in msg.data[6:12])
        if m.carrier.get(pp) is False:
            # the frame came in before the port lost carrier (members'
            # events are not ordered with each other): nothing to learn
            LOG.debug('%s: %s on %s ignored: the port is down', m.name, mac,
                      pp)
            return
        res = self.macs.learn(ls, mac, m.name, pp, vlan)
        if res in (macmod.NEW, macmod.MOVED):
            LOG.info('%s: learned %s in %s on %s VLAN %d%s', m.name, mac, ls,
                     pp, vlan, ' (moved)' if res == macmod.MOVED else '')
            self.mac_changed((ls, mac))
            self.dirty_db = True
        elif res == macmod.FULL:
            self.dirty_db = True

    def _flow_removed(self, m, msg):
        if m.installed is not None:
            m.installed.discard(msg.cookie)
        stat = m.stat_of.get(msg.cookie)
        if stat:
            (pp, vlan), kind = stat
            bank = self.banked.setdefault((pp, vlan, kind), [0, 0])
            bank[0] += msg.packet_count
            bank[1] += msg.byte_count
            m.counts.pop(msg.cookie, None)
        if msg.table_id == pl.LEARN and \
                msg.reason == ofp.OFPRR_IDLE_TIMEOUT:
            key = self._binding(m, msg.match.get('tunnel_id'),
                                msg.match.get('reg1'))
            mac = (msg.match.get('eth_src') or '').lower()
            if key and self.macs.aged(key[0], mac, m.name, key[1], key[2]):
                LOG.info('%s: %s aged out of %s', m.name, mac, key[0])
                self.mac_changed((key[0], mac))
                self.dirty_db = True

    def _port_status(self, m, msg):
        pp = m.port_of.get(msg.desc.port_no)
        if pp is None:
            return
        up = ofmsg.link_up(msg.desc)
        if m.carrier.get(pp) == up:
            return
        m.carrier[pp] = up
        self.dirty_db = True
        if not up:
            gone = self.macs.flush(m.name, pp)
            for k in gone:
                self.mac_changed(k)
            LOG.info('%s: %s lost carrier: %d MAC(s) flushed', m.name, pp,
                     len(gone))
        else:
            LOG.info('%s: %s up', m.name, pp)

    # -- counters ----------------------------------------------------------
    def request_stats(self):
        for m in self.members:
            if m.ready():
                m.stat_dump = []
                for table in STATS_TABLES:
                    m.of.send(parser.OFPFlowStatsRequest(
                        ofmsg.DP, 0, table, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0,
                        parser.OFPMatch()), lambda r, m=m: self._counted(m, r))

    def _counted(self, m, reply):
        for s in reply.body:
            if s.cookie in m.stat_of:
                m.counts[s.cookie] = (s.packet_count, s.byte_count)
        stats = {}
        for (pp, vlan, kind), (pk, by) in self.banked.items():
            self._add(stats, pp, vlan, kind, pk, by)
        for mem in self.members:
            for c, (pk, by) in mem.counts.items():
                (pp, vlan), kind = mem.stat_of.get(c, ((None, None), None))
                if pp is not None:
                    self._add(stats, pp, vlan, kind, pk, by)
        if stats != self.stats:
            self.stats = stats
            self.dirty_db = True

    @staticmethod
    def _add(stats, pp, vlan, kind, packets, nbytes):
        c = stats.setdefault((pp, vlan), {})
        side = 'from_local' if kind == 'from' else 'to_local'
        c[f'packets_{side}'] = c.get(f'packets_{side}', 0) + packets
        c[f'bytes_{side}'] = c.get(f'bytes_{side}', 0) + nbytes


def _by_cookie(flows):
    return {ofmsg.cookie(f): f for f in flows}
