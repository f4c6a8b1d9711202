"""The controller's state shared by its parts: the store (desired), what is
observed, the connected datapaths, and reconciliation of every device.
Built from a lab plan: transport nodes and VM locations are its inventory.
"""
import collections
import logging
import threading
import time

from topologies import liveness

from . import hwvtep, intent, nodedb, tunnels, writes
from .model import ApiError, Store

LOG = logging.getLogger('nsx.core')
OVSDB_TIMEOUT_S = 30     # a node's OVSDB transaction (tunnels, BFD, CFM)


def inventory_from_plan(plan):
    """(VM inventory, transport nodes) from a lab plan."""
    nodes, inv = {}, {}
    for name, p in plan['nodes'].items():
        if 'tunnel_ip' in p:
            nodes[name] = {'role': p['role'], 'index': p['index'],
                           'tunnel_ip': p['tunnel_ip'].split('/')[0],
                           'mgmt_ip': p['mgmt_ip'].split('/')[0],
                           'dpid': p['index'] + 1}
            if p['role'] in ('sw_gateway', 'hw_vtep'):
                # physical ports: {port name: ofport} (segment / server side)
                nodes[name]['ports'] = {
                    i['name']: i['ofport'] for i in p['intfs']
                    if i['kind'] == 'physical'}
            if p['role'] == 'sw_gateway':
                # the physical segment each port is on: gateways of one
                # segment are a redundant group (intent.gateway_group)
                nodes[name]['segments'] = {
                    i['name']: i['peer'] for i in p['intfs']
                    if i['kind'] == 'physical'}
    for name, p in plan['nodes'].items():
        if p['role'] != 'vm':
            continue
        hv = p['intfs'][0]['peer']
        port = next(i for i in plan['nodes'][hv]['intfs']
                    if i['peer'] == name)
        inv[name] = {'transport_node': hv, 'ofport': port['ofport'],
                     'mac': p['mac'], 'ip': p.get('ip')}
    return inv, nodes


def vifs_appeared(before, now):
    """Attachments whose VIF is new in `now` ({iface-id: {'ofport', ...}})
    or on another OpenFlow port than `before`, sorted."""
    return sorted(att for att, v in now.items()
                  if before.get(att, {}).get('ofport') != v['ofport'])


class Core:
    def __init__(self, plan, db_path=':memory:', cfm_interval_ms=100,
                 ovsdb_scheme='tcp'):
        self.cfm_interval_ms = cfm_interval_ms
        # how the nodes' OVSDBs are reached: ssl (the process's
        # ovs.stream SSL files are set by controllers.main) or tcp
        self.ovsdb_scheme = ovsdb_scheme
        self.bfd_ms = plan.get('bfd_interval_ms', intent.BFD_MS)
        # a session down this long while both ends run is stuck (_healer)
        self.stuck_s = max(self.STUCK_S, 10 * self.bfd_ms / 1000)
        inv, nodes = inventory_from_plan(plan)
        self.store = Store(db_path, inventory=inv, nodes=nodes)
        self.observed = {'vtep_macs': {}, 'dead': set()}
        self.reported = {}           # hw VTEP -> its last local MAC set
        self.gw_reports = {}         # sw gateway -> {(cable, vlan, mac)}
        self.node_vifs = {}          # hypervisor -> its VIFs last seen
        self.liveness = {}             # (node, service node) -> live?
        self.bfd_pending = {}          # node -> tunnel ports awaiting BFD
        self.ready_dpids = frozenset()   # datapaths connected and read
        self.down_since, self.refreshed, self.refreshes = {}, {}, {}
        threading.Thread(target=self._healer, name='bfd-healer',
                         daemon=True).start()
        self.follower = None              # hypervisors' OVSDBs (nodedb)
        self.vtep_sessions = {}           # hw VTEP -> hwvtep.VtepSession
        self.lock = threading.RLock()
        # one reconciliation pass of every connected datapath (the os-ken
        # app's, given by set_datapath_pass once it runs)
        self._datapath_pass = None
        self._read_switches = None        # the app's read (set_switch_reader)
        self.errors = []                  # OpenFlow errors seen
        # what each change cost and when each switch confirmed it: {'gen',
        # 'node', 'msgs', 'acked' (Unix time)}; the last PUSHES_KEPT
        self.pushes = collections.deque(maxlen=self.PUSHES_KEPT)
        self.switches = {}                # node -> its OpenFlow session
        # OpenFlow TLS sessions refused (controllers/oflisten.py): how
        # many, and the last REFUSALS_KEPT {'at', 'address', 'node',
        # 'reason'}
        self.refused = {'count': 0, 'last': collections.deque(
            maxlen=self.REFUSALS_KEPT)}
        self._dirty = threading.Event()
        # a single controller drives every device and applies each write
        # at once; a cluster node (join_cluster) only its own devices, and
        # commits writes through the cluster
        self.replica = None
        threading.Thread(target=self._reconciler, name='reconciler',
                         daemon=True).start()

    PUSHES_KEPT, REFUSALS_KEPT = 20000, 20

    # -- the cluster (controllers.cluster) ---------------------------------
    def write(self, op, *args):
        """Make a write (controllers.writes): at once on a single
        controller, through the cluster's log on a cluster node (every
        node applies it; see applied())."""
        if self.replica is None:
            return writes.apply(self.store, op, *args)
        return self.replica.submit(op, *args)

    def join_cluster(self, replica):
        """Run as a node of a controller cluster: `replica` (a
        cluster.Replica over this core's store, with on_applied=applied
        and on_roles=roles_changed) commits the writes and says which
        devices are this node's."""
        self.replica = replica

    def owns(self, device):
        """Whether this controller writes to `device` (its OpenFlow
        master, its OVSDB's writer): always on a single controller, when
        it is the device's active node in a cluster and not cut off from
        its majority."""
        if self.replica is None:
            return True
        if self.replica.stale_for():   # cut off: the others have (or will
            return False               # soon have) given its devices away
        return self.replica.active_of(device) == self.replica.node

    def role(self, device):
        """(OpenFlow role 'master' or 'slave', generation id) this node
        asserts on `device`'s switch; None on a single controller (no role
        requests: the switch's default, equal)."""
        if self.replica is None or self.replica.stale_for():
            return None            # (cut off)
        active, generation = self.replica.role_of(device)
        if not generation:
            return None            # (no assignment yet)
        return ('master' if active == self.replica.node else 'slave',
                generation)

    def applied(self, entries):
        """Cluster log entries were applied to the store (any node's
        writes): reconcile as after an API write."""
        self.on_api_change()

    def roles_changed(self, old, new, generation):
        """The cluster's assignment changed: the devices this node
        became active for get their tunnels, BFD and CFM checked and
        their hardware VTEP tables reconciled; every switch gets the role
        request of its new assignment (the app's next pass)."""
        me = self.replica.node
        gained = sorted(d for d, r in new.items() if r.active == me and
                        getattr(old.get(d), 'active', None) != me)
        lost = sorted(d for d, r in old.items() if r.active == me and
                      getattr(new.get(d), 'active', None) != me)
        LOG.info('assignment generation %d: active for %d device(s)%s%s',
                 generation, sum(r.active == me for r in new.values()),
                 f'; gained {", ".join(gained)}' if gained else '',
                 f'; lost {", ".join(lost)}' if lost else '')
        if gained:
            threading.Thread(target=self._take_over, args=(gained,),
                             name='take-over', daemon=True).start()
        self._dirty.set()

    def _take_over(self, devices):
        edges = [d for d in devices
                 if self.store.nodes[d]['role'] != 'hw_vtep']
        if edges:
            self.reconcile_tunnels(only=edges)
            self.assign_cfm(only=edges)
        for d in devices:
            session = self.vtep_sessions.get(d)
            if session is not None:
                session.request()
        with self.lock:
            node_vifs = {d: dict(self.node_vifs.get(d, {}))
                         for d in edges}
        for d, vifs in node_vifs.items():       # observed before: log them
            if vifs and self.store.nodes[d]['role'] == 'hypervisor':
                self._locate(d, vifs, sorted(vifs))

    def tls_refused(self, address, reason):
        """The OpenFlow listener refused a TLS session from `address` (a
        certificate the lab's CA did not sign, or no TLS at all)."""
        node = next((n for n, p in self.store.nodes.items()
                     if p.get('mgmt_ip') == address), None)
        LOG.warning('OpenFlow: refused a TLS session from %s (%s): %s',
                    address, node or 'not a lab node', reason)
        with self.lock:
            self.refused['count'] += 1
            self.refused['last'].append({'at': time.time(),
                                         'address': address, 'node': node,
                                         'reason': reason})

    def pushed(self, node, gen, msgs, sent=None):
        """A switch confirmed (barrier reply) the flow mods of a pass that
        reconciled store generation `gen` (controllers/app.py); `sent`:
        when the controller had sent them and the barrier."""
        self.pushes.append({'gen': gen, 'node': node, 'msgs': msgs,
                            'sent': sent, 'acked': time.time()})

    def switch_event(self, node, event, add=0, delete=0, groups=0,
                     flows=None, full=False):
        """Count what happened on `node`'s OpenFlow session (the app
        calls it): 'connected', 'gone', or 'pass' (a reconciliation that
        sent `add` flow adds, `delete` flow deletes and `groups` group
        mods, leaving `flows` installed; `full`: of the whole switch, as
        after it connected or this node became its master, kept as
        last_full_pass: what a takeover changed). GET /status shows the counts;
        headless judges "no flow changes after a restart" from them, the
        soak compares `flows` with the switch's own count. 'reject': the
        firewall answered a rejected packet's sender (rejects_sent)."""
        s = self.switches.setdefault(node, {
            'connected': False, 'since': None, 'connects': 0, 'passes': 0,
            'flows_added': 0, 'flows_deleted': 0, 'group_mods': 0,
            'rejects_sent': 0,
            'flows': None, 'last_pass': None, 'last_full_pass': None})
        now = time.time()
        if event == 'connected':
            s.update(connected=True, since=now, connects=s['connects'] + 1,
                     flows=None)
        elif event == 'gone':
            s.update(connected=False, since=now, flows=None)
        elif event == 'reject':
            s['rejects_sent'] += 1
        else:
            s['passes'] += 1
            s['flows_added'] += add
            s['flows_deleted'] += delete
            s['group_mods'] += groups
            s['flows'] = flows
            s['last_pass'] = {'at': now, 'flows_added': add,
                              'flows_deleted': delete, 'group_mods': groups}
            if full:
                s['last_full_pass'] = s['last_pass']

    def node_of_dpid(self, dpid):
        for name, n in self.store.nodes.items():
            if n['dpid'] == dpid:
                return name
        return None

    def ovsdb(self, node):
        ip = self.store.nodes[node]['mgmt_ip']
        return f'{self.ovsdb_scheme}:{ip}:6640'

    def reconcile_tunnels(self, only=None):
        """Tunnel ports depend on the transport nodes only: done at start
        (and by anyone who changes the inventory). Waits for the nodes'
        transactions without holding the core's lock: the follower's
        thread that runs them also delivers what it reads."""
        desired = self.store.desired()
        todo = [node for node, n in desired['nodes'].items()
                if n['role'] != 'hw_vtep' and (not only or node in only)
                and self.owns(node)]
        follower = self.start_follower()
        # every node's transaction at once, on its own session
        jobs = {node: follower.submit(node, tunnels.reconcile(
            list(intent.tunnels(desired, node).values()))) for node in todo}
        for node, job in sorted(jobs.items()):
            try:
                changed, ports = job.wait(OVSDB_TIMEOUT_S)
            except RuntimeError as exc:
                LOG.error('%s: tunnels not reconciled: %s', node, exc)
                continue
            if changed:
                LOG.info('%s: %d tunnel port change(s)', node, changed)
            # BFD goes on once every datapath has its flows (enable_bfd)
            with self.lock:
                self.bfd_pending[node] = ports
        # the datapaths may all be ready already: a cluster node gets its
        # devices (and makes their tunnels) after their switches connected
        self._bfd_when_ready()

    def datapaths_ready(self, ready):
        """The app reports which datapaths are connected and reconciled;
        BFD goes on once every transport node's is (see enable_bfd)."""
        with self.lock:
            self.ready_dpids = frozenset(ready)
        self._bfd_when_ready()

    def _bfd_when_ready(self):
        """Enable the pending BFD sessions if every transport datapath is
        ready: checked when either changes (tunnels made, a datapath
        read), whichever comes last."""
        want = {n['dpid'] for n in self.store.nodes.values()
                if n['role'] != 'hw_vtep'}
        with self.lock:
            go = bool(self.bfd_pending) and want <= self.ready_dpids
        if go:
            threading.Thread(target=self.enable_bfd, daemon=True).start()

    def enable_bfd(self):
        """Turn BFD on where intent wants it, once all transport datapaths
        are connected and reconciled. Seen here: sessions enabled before
        that (bridges in fail_mode secure, no flows yet) stayed down across
        routed hops for good; enabled afterwards, they come up."""
        with self.lock:
            pending, self.bfd_pending = self.bfd_pending, {}
        follower = self.start_follower()
        jobs = {node: follower.submit(node, tunnels.set_bfd(ports,
                                                            self.bfd_ms))
                for node, ports in pending.items() if ports}
        for node, job in sorted(jobs.items()):
            try:
                job.wait(OVSDB_TIMEOUT_S)
            except RuntimeError as exc:
                LOG.error('%s: BFD not set: %s', node, exc)
        if pending:
            LOG.info('BFD enabled on %d node(s)', len(pending))

    def assign_cfm(self, interval_ms=None, only=None):
        """Give every software gateway (of `only`) this node drives its
        unique CFM ID (node index + 1) on its segment port: the tie-breaker
        of the election (lowest active)."""
        interval_ms = interval_ms or self.cfm_interval_ms
        follower = self.start_follower()
        jobs = [(node, port, follower.submit(node, tunnels.set_cfm(
                    port, n['index'] + 1, interval_ms)))
                for node, n in sorted(self.store.nodes.items())
                if n['role'] == 'sw_gateway' and self.owns(node)
                and (only is None or node in only)
                for port in sorted(n.get('ports', {}))]
        for node, port, job in jobs:
            try:
                job.wait(OVSDB_TIMEOUT_S)
            except RuntimeError as exc:
                LOG.error('%s: CFM ID not set on %s: %s', node, port, exc)

    def hw_vteps(self):
        return sorted(n for n, p in self.store.nodes.items()
                      if p['role'] == 'hw_vtep')

    BFD_REPORTERS = 5

    def start_monitors(self):
        """Open one OVSDB session per hardware VTEP: it writes the VTEP's
        hardware_vtep rows and reports its Ucast_Macs_Local (figure 15);
        and follow the edges' own OVSDBs (controllers.nodedb, one IDL
        each): hypervisors' VIFs, software gateways' learned MACs, and
        the BFD status towards service nodes as a few edges see it
        (liveness.reporters: a majority of those that watch a service
        node decides that it is down)."""
        for vtep in self.hw_vteps():
            self.vtep_sessions[vtep] = self._vtep_session(vtep).start()
        self.start_follower()

    def start_follower(self):
        """The controller's sessions to every transport node's own OVSDB
        (not the hardware VTEPs': see hwvtep.VtepSession), started once."""
        with self.lock:
            if self.follower is None:
                nodes = self.store.nodes
                self.follower = nodedb.NodeFollower(
                    {n: self.ovsdb(n) for n, p in nodes.items()
                     if p['role'] != 'hw_vtep'},
                    on_vifs=self.vifs_changed,
                    hypervisors={n for n, p in nodes.items()
                                 if p['role'] == 'hypervisor'},
                    gateways={n for n, p in nodes.items()
                              if p['role'] == 'sw_gateway'},
                    on_macs=self.gateway_macs_changed,
                    bfd_nodes=set(liveness.reporters(nodes,
                                                     self.BFD_REPORTERS)),
                    on_bfd=self.tunnel_liveness).start()
            return self.follower

    def gateway_macs_changed(self, gw, raw):
        """A software gateway published the physical MACs it learned
        {(cable, vlan, mac)} (controllers.nodedb): they are placed behind
        it like a hardware VTEP's Ucast_Macs_Local."""
        with self.lock:
            self.gw_reports[gw] = set(raw)
        self._remap(self.store.desired(), gw, raw)

    def _remap(self, desired, gw, raw):
        macs = intent.gateway_macs(desired, gw, raw)
        with self.lock:
            same = macs == self.reported.get(gw)
        if not same:
            self.vtep_macs_changed(gw, macs)

    def on_api_change(self):
        """An API write: gateway connections may map a reported (cable,
        VLAN) to another logical switch now."""
        with self.lock:
            reports = dict(self.gw_reports)
        desired = self.store.desired() if reports else None
        for gw, raw in sorted(reports.items()):
            self._remap(desired, gw, raw)
        self.on_change()

    def learned_macs(self):
        """{gateway or hardware VTEP: [(vni, mac)]} the controller places
        behind it (learned there and reported)."""
        with self.lock:
            out = {}
            for (vni, mac), owner in self.observed['vtep_macs'].items():
                out.setdefault(owner, []).append((vni, mac))
        return {k: sorted(v) for k, v in out.items()}

    def map_state(self):
        """What the controller knows for the lab's map (controllers.labmap
        build's `state`): the Store's logical switches, every logical port
        (bound or not) and gateway connections, the MACs gateways
        reported, the BFD sessions it follows, the service nodes it
        declared dead, the role each software gateway's agent published
        per segment, its OpenFlow and OVSDB sessions to each device and,
        on a cluster node, the assignment it acts on."""
        st = self.store
        with st.lock:
            out = {'logical_switches': st.list_ls(),
                   'ports': st.list_ports(),
                   'gateway_connections': st.list_connections()}
        with self.lock:
            out.update(vtep_macs=dict(self.observed['vtep_macs']),
                       bfd=dict(self.liveness),
                       dead=set(self.observed['dead']))
        out['roles'] = self.replica.assignment() if self.replica else None
        out['gateway_states'] = self.follower.gateway_states() \
            if self.follower is not None else {}
        sessions = {}
        for n, sw in sorted(self.switches.items()):
            sessions.setdefault(n, {})['openflow'] = sw['connected']
        if self.follower is not None:
            for n, sess in self.follower.sessions()['nodes'].items():
                sessions.setdefault(n, {})['ovsdb'] = sess['connected']
        for n, sess in sorted(self.vtep_sessions.items()):
            sessions.setdefault(n, {})['ovsdb'] = sess.status()['connected']
        out['sessions'] = sessions
        return out

    def vifs_changed(self, node, vifs):
        """A hypervisor's set of VIFs changed (controllers.nodedb): bind
        the logical port of each VIF that appeared (or changed its
        OpenFlow port) where it is now, then reconcile. A VIF that stays
        on a hypervisor after its VM left (a source not cleaned up yet)
        does not pull the port back when something else changes there. A
        VIF that went away from where its VM was bound unbinds the port
        (the VM is plugged nowhere) until it appears again."""
        with self.lock:
            before = self.node_vifs.get(node, {})
            self.node_vifs[node] = dict(vifs)
        if not self.owns(node):     # its active controller node logs it
            return
        if not self._locate(node, vifs, vifs_appeared(before, vifs),
                            sorted(set(before) - set(vifs))):
            with self.lock:           # not recorded: the next change of
                self.node_vifs[node] = before     # this node retries it

    def _locate(self, node, vifs, fresh, gone=()):
        try:
            moved = [att for att in fresh if self.write(
                'locate', att, node, vifs[att]['ofport'])]
            gone = [att for att in gone
                    if self.write('unlocate', att, node)]
        except ApiError as exc:      # a cluster node cut off: not logged
            LOG.warning('%s: VIF changes not recorded: %s', node, exc)
            return False
        if gone:
            LOG.info('%s: VIF %s unplugged: its port is unbound', node,
                     ', '.join(gone))
        if moved:
            LOG.info('%s: VIF %s bound here (announced in its OVSDB)', node,
                     ', '.join(moved))
        if moved or gone:
            self.on_change()
        return True

    def _vtep_session(self, vtep):
        return hwvtep.VtepSession(
            vtep, self.ovsdb(vtep),
            lambda have: self.vtep_want(vtep, (have or {}).get(
                'bfd_running', ())) if self.owns(vtep) else None,
            lambda macs: self.vtep_macs_changed(vtep, macs))

    def vtep_want(self, vtep, bfd_running=()):
        """What hardware VTEP `vtep`'s database must hold (called by its
        session, in the session's thread): a fresh snapshot of the store and
        of the observed state; `bfd_running`: the tunnel IPs the VTEP says
        it runs BFD to (it picks among those service nodes itself)."""
        desired = self.store.desired()
        with self.lock:
            observed = {'vtep_macs': dict(self.observed['vtep_macs']),
                        'dead': set(self.observed['dead']),
                        'bfd_running': set(bfd_running)}
        return intent.vtep_intent(desired, vtep, observed, self.bfd_ms)

    def vtep_macs_changed(self, vtep, macs):
        """A hardware VTEP reported its whole Ucast_Macs_Local set
        {(vni, mac)} (figure 15, step 6), or a software gateway its learned
        MACs: hypervisors and the other VTEPs learn where those MACs
        are."""
        with self.lock:
            self.observed['vtep_macs'] = intent.merge_vtep_macs(
                self.observed['vtep_macs'], self.reported.get(vtep, set()),
                vtep, set(macs), self.reported)
            self.reported[vtep] = set(macs)
        LOG.info('%s: %d local MAC(s) reported', vtep, len(macs))
        self.on_change()

    def reconcile_vteps(self):
        """Ask every hardware VTEP's session to reconcile: it computes
        vtep_want() and commits the difference in its own thread, so this
        never waits for an OVSDB round trip (a P2V cut-over's flows must
        not wait behind it)."""
        for session in list(self.vtep_sessions.values()):
            session.request()

    def push_log(self, since_gen=0):
        """Confirmed pushes of changes after store generation `since_gen`
        (see pushed), oldest first, and the store's generation now."""
        return {'generation': self.store.generation,
                'pushes': [p for p in list(self.pushes)
                           if p['gen'] > since_gen]}

    def status(self):
        """{'switches': {node: its OpenFlow session (switch_event)},
        'hardware_vteps': [status of each hardware VTEP's OVSDB session]}
        (see hwvtep.VtepSession.status; a VTEP without a session yet,
        start_monitors not called, is listed as not connected),
        'openflow_errors': how many error messages switches sent,
        'openflow_tls_refused': {'count', 'last': [{'at', 'address',
        'node', 'reason'}]} (see tls_refused)."""
        out = []
        for vtep in self.hw_vteps():
            session = self.vtep_sessions.get(vtep)
            out.append(session.status() if session is not None else {
                'name': vtep, 'database': self.ovsdb(vtep),
                'connected': False, 'since': None, 'reconnects': 0,
                'last_error': 'no session yet', 'last_commit': None,
                'pending_ops': None,
                'counts': {'logical_switches': 0, 'bindings': 0,
                           'local_macs': 0, 'remote_macs': 0}})
        switches = {n: dict(s) for n, s in sorted(self.switches.items())}
        nodes = self.follower.sessions() if self.follower is not None \
            else {'nodes': {}, 'loop_restarts': 0}
        with self.lock:
            refused = {'count': self.refused['count'],
                       'last': list(self.refused['last'])}
        return {'switches': switches, 'hardware_vteps': out,
                'node_ovsdb': nodes, 'openflow_errors': len(self.errors),
                'openflow_tls_refused': refused}

    STUCK_S, REFRESH_EVERY_S = 3.0, 10.0

    def _healer(self):
        """BFD sessions that stay down while both ends run were seen here
        (see enable_bfd); refreshing both tunnel ports brings them up. A dead
        service node is unaffected by a refresh, so this only ever helps."""
        while True:
            time.sleep(1.0)
            now = time.monotonic()
            with self.lock:
                stuck = intent.stuck_bfd(self.down_since, self.refreshed, now,
                                         self.stuck_s, self.REFRESH_EVERY_S)
                for k in stuck:
                    self.refreshed[k] = now
                    self.refreshes[k] = self.refreshes.get(k, 0) + 1
            for node, sn in stuck:
                n = self.refreshes[(node, sn)]
                for a, b in ((node, sn), (sn, node)):
                    if not self.owns(a):    # its active node refreshes it
                        continue
                    try:
                        self.start_follower().transact(
                            a, tunnels.refresh(intent.tunnel_name(b), n),
                            OVSDB_TIMEOUT_S)
                    except Exception as exc:          # keep healing
                        LOG.info('%s: tunnel to %s not refreshed: %s', a, b,
                                 exc)
                LOG.info('BFD %s<->%s down for %.0f s: tunnel ports '
                         'refreshed', node, sn, self.stuck_s)

    def tunnel_liveness(self, node, live_by_peer):
        """A node's BFD status towards service nodes changed. Its data plane
        has already failed over (fast-failover group following BFD); the
        controller re-points the hardware VTEPs' flooding."""
        with self.lock:
            for peer, live in live_by_peer.items():
                if self.store.nodes.get(peer, {}).get('role') == \
                        'service_node':
                    # a session that never came up says nothing yet about
                    # the service node (BFD takes a few seconds to start)
                    if live or (node, peer) in self.liveness:
                        self.liveness[(node, peer)] = live
                    if live:
                        self.down_since.pop((node, peer), None)
                    else:
                        self.down_since.setdefault((node, peer),
                                                   time.monotonic())
            dead = intent.dead_service_nodes(self.store.nodes, self.liveness)
            if dead != self.observed['dead']:
                LOG.info('service nodes down: %s', sorted(dead) or 'none')
                self.observed['dead'] = dead
                self.on_change()

    def set_datapath_pass(self, fn):
        """`fn()`: one reconciliation pass of every connected datapath,
        run by the reconciler thread after changes (the os-ken app gives
        it when it starts; the core holds no reference to the app)."""
        self._datapath_pass = fn
        self._dirty.set()

    def set_switch_reader(self, fn):
        """`fn(nodes, what, timeout)`: the statistics the switches of
        `nodes` answer now ({node: {'flows', 'ports'} or None}; the os-ken
        app's read, given when it starts)."""
        self._read_switches = fn

    def read_device(self, node, timeout=2.0):
        """What `node` holds now, asked of it: ('openflow', {'flows',
        'ports'}) from its switch, ('vtep', read_have's dict) from the
        replica of a hardware VTEP's database; None while there is no
        session (or before its first read) or it did not answer."""
        if node in self.vtep_sessions:
            have = self.vtep_sessions[node].tables()
            return None if have is None else ('vtep', have)
        if self._read_switches is None:
            return None
        got = self._read_switches([node], ('flows', 'ports'), timeout)
        return None if got.get(node) is None else ('openflow', got[node])

    def read_flows(self, node, timeout=2.0):
        """`node`'s switch's flow statistics now (controllers.app rows),
        or None: no OpenFlow session, or no answer within `timeout`."""
        if self._read_switches is None:
            return None
        got = self._read_switches([node], ('flows',), timeout).get(node)
        return None if got is None else got['flows']

    def read_ports(self, timeout=2.0):
        """{node: [port statistics]} of every switch with an OpenFlow
        session that answered within `timeout` (asked all at once)."""
        if self._read_switches is None:
            return {}
        got = self._read_switches(sorted(self.switches), ('ports',), timeout)
        return {n: r['ports'] for n, r in got.items() if r is not None}

    def on_change(self):
        """Called after each committed API write and each observed change:
        a burst of changes gives one reconciliation pass of the datapaths
        (the reconciler thread) and one of each hardware VTEP (its
        session's thread)."""
        self._dirty.set()
        self.reconcile_vteps()

    def _reconciler(self):
        """OpenFlow datapaths: fast (one snapshot, flow mods)."""
        while True:
            self._dirty.wait()
            self._dirty.clear()
            try:
                with self.lock:
                    if self._datapath_pass is not None:
                        self._datapath_pass()
            except Exception:            # keep reconciling; log the bug
                LOG.exception('reconciliation failed')
