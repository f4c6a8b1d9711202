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

from . import idl  # noqa: F401  (first: keeps eventlet out of ovs)
from . import bfd as bfdmod, counters, macs as macmod, ofmsg
from . import pipeline as pl, report
from .members import Member
from .ofevents import OpenFlowEvents
from .vtepdb import VtepDb, remote_ips

import ovs.poller                   # noqa: E402  (after idl)

LOG = logging.getLogger('hwvtep')
# what only the switch writes: a change there changes no configuration
SWITCH_TABLES = {'Ucast_Macs_Local', 'Mcast_Macs_Local',
                 'Logical_Binding_Stats', 'Global'}


class Device(OpenFlowEvents):
    def __init__(self, layout):
        self.layout = layout
        self.db = VtepDb(layout['db'], layout['ps'])
        self.members = [Member(m, self) for m in layout['members']]
        self.by_name = {m.name: m for m in self.members}
        self.macs = macmod.MacTable(layout.get('max_macs',
                                               macmod.DEFAULT_LIMIT))
        self.held = macmod.Held()
        self.age = layout.get('age', 300)
        self.config = None
        self.splits = {}        # pipeline.split() of the configuration
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
        for m in self.members:          # a lost channel, handled here
            why = m.of.take_lost()
            if why:
                self.on_disconnected(m.of, why)
        touched = self.db.changed()
        if touched:
            self.on_config(touched)
        if self.db.writer.retry_now():
            self.dirty_db = True
        members_changed = [bool(m.db.changed()) or m.db.writer.retry_now()
                           for m in self.members]
        if any(members_changed) and self.config:
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
    def on_config(self, touched=('*',)):
        """The database changed (touched: which tables)."""
        if not self.db.ready():
            return
        self.dirty_db = True
        if self.config is not None and not set(touched) - SWITCH_TABLES:
            return              # only the switch's own rows: nothing to do
        config = self.db.config()
        if config == self.config:
            return
        if self.config is not None and all(
                config[k] == self.config[k] for k in config
                if k != 'ucast_remote'):
            # only remote MACs changed (the common case: a VM appears,
            # moves, goes): just their flows, as a difference
            old, new = self.config['ucast_remote'], config['ucast_remote']
            self.config = config
            changed = [k for k in set(old) | set(new)
                       if old.get(k) != new.get(k)]
            LOG.debug('%d remote MAC(s) changed', len(changed))
            self.dirty.update(('remote',) + k for k in changed)
            self._moved_away([k for k in changed if k in new])
            return
        self.config = config
        self.splits = pl.split(self.layout['members'], config)
        self._relearn_found()
        gone = self.macs.unbound(pl.pod_bindings(self.layout['members'],
                                                 config))
        if gone:
            LOG.info('%d learned MAC(s) dropped with their bindings',
                     len(gone))
        self.on_members()
        self.recompute()
        self._moved_away(list(config['ucast_remote']))

    def _moved_away(self, keys):
        """Remote MACs the NVC placed elsewhere win over entries learned
        here (MacTable.placed_elsewhere)."""
        gone = self.macs.placed_elsewhere(keys)
        for k in gone:
            self.mac_changed(k)
        if gone:
            self.dirty_db = True
            LOG.info('%d learned MAC(s) moved to another VTEP (the NVC placed '
                     'them there): %s', len(gone), ', '.join(
                         f'{ls}/{mac}' for ls, mac in gone[:5]))

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
            self.recompute(flooding_only=True)
        elif any(m.bfd_ports_seen != self._bfd_ports(m)
                 for m in self.members):
            self.recompute(flooding_only=True)
        self.dirty_db = True

    def _bfd_have(self, m):
        return m.db.bfd_config()

    def _bfd_ports(self, m):
        return {ip: p for ip, p in m.db.bfd_ports().items()
                if ip in m.bfd_want}

    def recompute(self, flooding_only=False):
        """Every member's sections from the configuration, liveness and
        learned MACs (after any change other than a MAC's); flooding_only:
        only service-node liveness or BFD ports changed, so remote and
        learned MACs' sections stay as they are."""
        if not self.config:
            return
        for m in self.members:
            mine = self.splits[m.name][0]
            m.bfd_ports_seen = self._bfd_ports(m)
            secs, m.groups = pl.sections(m.layout, self.layout['members'],
                                         self.config, self.live,
                                         m.bfd_ports_seen, self.splits)
            # counting flows on their way out are banked when they go
            m.stat_of = {**{c: st for c, st in m.stat_of.items()
                            if c in (m.installed or ())},
                         **counters.stat_map(secs, m.port_of)}
            keep = {k: v for k, v in m.want.items()
                    if k[0] in ('remote', 'mac')} if flooding_only else {}
            m.want = {k: _by_cookie(v) for k, v in secs.items()}
            if flooding_only:
                m.want.update(keep)
            else:
                m.want.update((k, _by_cookie(v)) for k, v in
                              pl.remote_sections(m.layout, self.config,
                                                 mine).items())
                for (ls, mac), entry in self.macs.entries.items():
                    flows = pl.mac_flows(m.layout, self.config, ls, mac,
                                         entry, mine, self.age)
                    if flows:
                        m.want[('mac', ls, mac)] = _by_cookie(flows)
            self.full_sync.add(m.name)
        if not flooding_only:
            self.dirty.clear()

    def mac_changed(self, key):
        self.dirty.add(('mac',) + key)

    def _section(self, m, key):
        """The flows of one MAC's section on member m."""
        kind, ls, mac = key
        mine = self.splits[m.name][0]
        if kind == 'remote':
            return _by_cookie(pl.remote_section(m.layout, self.config, ls,
                                                mac, mine))
        entry = self.macs.entries.get((ls, mac))
        return _by_cookie(pl.mac_flows(m.layout, self.config, ls, mac,
                                       entry, mine, self.age)) \
            if entry else {}

    # -- pushing state out -------------------------------------------------
    def push_flows(self):
        """Sections of MACs that changed (learned, moved, aged, remote)
        go out at once, as a difference; a member marked for a full sync
        (configuration, liveness, a connect) gets every difference between
        its sections and its bridge."""
        if self.config is None:     # nothing to compare the bridges with
            return
        keys, self.dirty = self.dirty, set()
        for m in self.members:
            add, delete = {}, set()
            for key in keys:
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
        for ck, f in add.items():
            m.of.send(ofmsg.flow_add(f, ck))
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
        """The switch's rows, in one transaction, after something they show
        changed (dirty_db); a failed one is tried again (idl.Writer)."""
        if not (self.started and self.config is not None and self.dirty_db
                and self.db.ready() and self.db.writer.may_start()):
            return
        carrier = {pp: up for m in self.members
                   for pp, up in m.carrier.items()}
        bfd = {}
        if self.bfd.member:
            m = self.by_name[self.bfd.member]
            status = m.db.bfd_status()
            bfd = {ip: status.get(ip, {}) for ip in m.bfd_want}
        t0 = time.monotonic()
        want = report.switch_rows(self.layout, self.config,
                                  self.macs.local_keys(), carrier, bfd,
                                  self.stats, self.macs.full())
        started = self.db.sync(want)
        self.dirty_db = False
        LOG.debug('switch rows built in %.1f ms%s',
                  (time.monotonic() - t0) * 1000,
                  ', transaction started' if started else ', unchanged')

def _by_cookie(flows):
    return {ofmsg.cookie(f): f for f in flows}
