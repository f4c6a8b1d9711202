"""The device's OpenFlow events (a part of devices.hwvtep.device.Device):
a member's channel connects (read what its bridge holds: ports, groups,
flows, and the MACs still learned there) or goes away (its MACs with it);
packet-in (learn or move a MAC), flow-removed (aging; counters of removed
flows), port-status (carrier), flow statistics (binding counters)."""
import logging
import time

from . import counters, macs as macmod, ofmsg, pipeline as pl

LOG = logging.getLogger('hwvtep')
ofp, parser = ofmsg.ofp, ofmsg.parser
RESYNC_S = 5.0          # at most one re-read per member after errors


class OpenFlowEvents:
    def on_connected(self, conn, features):
        m = self.by_name[conn.name]
        LOG.info('%s: OpenFlow connected (datapath %016x)', m.name,
                 features.datapath_id)
        m.installed = None
        conn.send(ofmsg.port_desc_request(), lambda r: self._ports(m, r))
        self._read_bridge(m)

    def _read_bridge(self, m):
        """Ask what the bridge holds (groups, flows): after a connect, or
        after an error (something the device sent did not take)."""
        m.dump, m.sent_groups = [], {}
        m.of.send(ofmsg.group_desc_request(), lambda r: self._groups(m, r))
        m.of.send(ofmsg.flow_stats_request(), lambda r: self._dumped(m, r))

    def on_disconnected(self, conn, why):
        m = self.by_name[conn.name]
        m.installed, m.dump, m.count_parts = None, None, None
        gone = self.macs.flush(m.name)
        self.held.drop(m.name)
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
        m.counts, banked = counters.carried_over(
            m.stat_of, m.counts, {s.cookie: (s.packet_count, s.byte_count)
                                  for s in m.dump
                                  if s.cookie & ofmsg.COUNTING})
        for stat, pk, by in banked:
            counters.bank(self.banked, stat, pk, by)
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
            now = time.monotonic()
            if m.dump is None and m.installed is not None and \
                    now >= m.resync_after:
                m.resync_after = now + RESYNC_S
                LOG.info('%s: reading its bridge again', m.name)
                self._read_bridge(m)

    def _packet_in(self, m, msg):
        key = self._binding(m, msg.match.get('tunnel_id'),
                            msg.match.get('reg1'))
        if key is None or len(msg.data) < 12:
            return
        ls, pp, vlan = key
        mac = ':'.join('%02x' % b for b in msg.data[6:12])
        if m.carrier.get(pp) is False:
            # before its port-status: held for the port's carrier
            if self.held.hold(m.name, pp, ls, mac, vlan, time.monotonic()):
                LOG.debug('%s: %s on %s held: the port is down', m.name,
                          mac, pp)
            return
        self._learn(m, ls, mac, pp, vlan)

    def _learn(self, m, ls, mac, pp, vlan):
        res = self.macs.learn(ls, mac, m.name, pp, vlan)
        if res in (macmod.NEW, macmod.MOVED):
            LOG.info('%s: learned %s in %s on %s VLAN %d%s', m.name, mac, ls,
                     pp, vlan, ' (moved)' if res == macmod.MOVED else '')
            self.mac_changed((ls, mac))
            self.dirty_db = True
        elif res == macmod.FULL:
            self.dirty_db = True

    def _flow_removed(self, m, msg):
        # a flow the device deleted is already out of `installed` (and may
        # be back by now): only the switch's own removals change it
        if m.installed is not None and msg.reason in (
                ofp.OFPRR_IDLE_TIMEOUT, ofp.OFPRR_HARD_TIMEOUT):
            m.installed.discard(msg.cookie)
        stat = m.stat_of.get(msg.cookie)
        if stat:
            counters.bank(self.banked, stat, msg.packet_count,
                          msg.byte_count)
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
            held = self.held.release(m.name, pp, time.monotonic())
            LOG.info('%s: %s up%s', m.name, pp, f': {len(held)} frame(s) '
                     'that came before its port-status' if held else '')
            for ls, mac, vlan in held:
                self._learn(m, ls, mac, pp, vlan)

    # -- counters ----------------------------------------------------------
    def request_stats(self):
        """The counting flows' statistics (by their cookie bit)."""
        for m in self.members:
            if m.ready() and m.count_parts is None:
                m.count_parts = {}
                m.of.send(ofmsg.flow_stats_request(counting=True),
                          lambda r, m=m: self._counted(m, r))

    def _counted(self, m, reply):
        if m.count_parts is None:
            return
        m.count_parts.update({st.cookie: (st.packet_count, st.byte_count)
                              for st in reply.body
                              if st.cookie in m.stat_of})
        if reply.flags & ofp.OFPMPF_REPLY_MORE:
            return
        m.counts.update(m.count_parts)
        m.count_parts = None
        stats = counters.totals(self.banked, [(mem.stat_of, mem.counts)
                                              for mem in self.members])
        if stats != self.stats:
            self.stats = stats
            self.dirty_db = True
