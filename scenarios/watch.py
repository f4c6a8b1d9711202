"""Watches that follow a device's forwarding state as it changes, pushed by
the device itself, so a scenario can stamp when a network converged
without polling it (a poll is a subprocess, and on 2 cores the polling
itself delays what it measures).

    FlowWatch(lab, 'hv1', mac)     where hv1's br-int sends `mac`
    VtepWatch(lab, 'vtep1', ls, mac)  vtep1's Ucast_Macs_Remote locator and
                                   Ucast_Macs_Local entry for `mac`

Each has `first` (the value at creation), `changes` [(epoch s, value)]
and `value()`; start() before the act, stop() after.
"""
import calendar
import os
import re
import subprocess
import sys
import threading
import time

# ovs/poller.py imports eventlet only to ask whether select is patched
sys.modules.setdefault('eventlet', None)
import ovs.db.idl  # noqa: E402
import ovs.poller  # noqa: E402

VTEP_SCHEMA = '/usr/share/openvswitch/vtep.ovsschema'
STAMP = re.compile(r'^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{3}): ')


def flow_monitor(lab, node, bridge='br-int'):
    """`ovs-ofctl --timestamp monitor BRIDGE watch:!initial` in a node's
    namespace: each flow change the switch pushes, stamped (ms, UTC) by
    ovs-ofctl as it receives it. Its flow events come on stderr."""
    return subprocess.Popen(
        ['ip', 'netns', 'exec', lab.node(node).ns, 'ovs-ofctl',
         '--timestamp', 'monitor', bridge, 'watch:!initial'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, OVS_RUNDIR=lab.node(node).run_dir))


def flow_events(lines):
    """(epoch s, event line) for each flow event of flow_monitor()."""
    stamp = None
    for line in lines:
        m = STAMP.match(line)
        if m:
            y, mo, d, h, mi, sec, ms = (int(x) for x in m.groups())
            stamp = calendar.timegm((y, mo, d, h, mi, sec)) + ms / 1000.0
        elif ' event=' in line:
            yield stamp if stamp is not None else time.time(), line


class FlowWatch:
    """Where a node's br-int sends frames for `mac` from its own ports
    (metadata 0, or a flow for frames from anywhere), followed by an OpenFlow flow monitor (`ovs-ofctl monitor
    watch:`: the switch pushes each flow change as it happens), so the
    watch costs nothing while nothing changes and stamps each change when
    it is received. `changes`: [(epoch s, ofport or None)] after start."""

    def __init__(self, lab, node, mac, bridge='br-int'):
        self.node, self.mac = node, mac.lower()
        self.first = self.last = mac_output(lab, node, mac, bridge)
        self.changes, self.t0 = [], None
        self.proc = flow_monitor(lab, node, bridge)
        self.thread = threading.Thread(target=self._read, daemon=True)

    def start(self):
        self.t0 = time.time()
        self.thread.start()
        return self

    def _read(self):
        flows = {}                    # cookie -> port, of the MAC's flows
        for now, line in flow_events(self.proc.stdout):
            # frames from the node's own ports: metadata 0, or any (local
            # delivery does not look at where a frame came from)
            if f'dl_dst={self.mac}' not in line or (
                    'metadata=' in line and not re.search(
                        r'metadata=0(x0)?(/0xff)?[, ]', line)):
                continue
            cookie = re.search(r'cookie=(0x[0-9a-f]+)', line)
            cookie = cookie.group(1) if cookie else None
            if 'event=DELETED' in line:
                flows.pop(cookie, None)
            else:
                m = re.search(r'actions=output:(\d+)', line)
                flows[cookie] = int(m.group(1)) if m else None
            port = next(iter(flows.values()), None) if len(flows) == 1 \
                else (None if not flows else self.last)
            if not self.changes or self.changes[-1][1] != port:
                self.changes.append((now, port))
            self.last = port

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.thread.join(2)

    def value(self):
        return self.last

    def changed_after(self):
        """Seconds from start until the MAC was first sent to another
        port, or None."""
        for t, port in self.changes:
            if port is not None and port != self.first:
                return t - self.t0
        return None


def mac_output(lab, node, mac, bridge='br-int'):
    """The ofport a node's br-int sends `mac` to from its own ports, or
    None."""
    out = lab.node(node).ns_run(['ovs-ofctl', '-O', 'OpenFlow13',
                                 'dump-flows', bridge,
                                 f'dl_dst={mac},metadata=0/0xff']).stdout
    m = re.search(r'actions=output:(\d+)', out)
    return int(m.group(1)) if m else None



class _Replica:
    """A python-ovs IDL replica of some tables of a VTEP's database, kept
    in a thread; on_change(tables) runs in that thread after each update
    (the first call is the initial content)."""

    def __init__(self, lab, vtep, tables, on_change):
        helper = ovs.db.idl.SchemaHelper(location=VTEP_SCHEMA)
        for table, cols in tables.items():
            helper.register_columns(table, cols)
        self.idl = ovs.db.idl.Idl(lab.db(vtep), helper)
        self.on_change, self.stopped, self.seen = on_change, False, 0
        self.wake_r, self.wake_w = os.pipe()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError(f'no OVSDB session to {vtep} within 10 s')

    def _loop(self):
        while not self.stopped:
            self.idl.run()
            if self.idl.change_seqno != self.seen:
                self.seen = self.idl.change_seqno
                self.on_change(self.idl.tables)
                self.ready.set()
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.fd_wait(self.wake_r, ovs.poller.POLLIN)
            poller.block()
        self.idl.close()

    def stop(self):
        self.stopped = True
        os.write(self.wake_w, b'x')
        self.thread.join(5)
        os.close(self.wake_r)
        os.close(self.wake_w)


class VtepWatch:
    """A hardware VTEP's view of one MAC, (remote locator IP or None,
    listed as local?), from a replica of its database: the database pushes
    each change."""

    TABLES = {'Logical_Switch': ['name'],
              'Ucast_Macs_Remote': ['MAC', 'logical_switch', 'locator'],
              'Ucast_Macs_Local': ['MAC', 'logical_switch'],
              'Physical_Locator': ['dst_ip']}

    def __init__(self, lab, vtep, ls, mac):
        self.ls, self.mac = ls, mac.lower()
        self.changes, self.first, self.t0 = [], None, None
        self.replica = _Replica(lab, vtep, self.TABLES, self._update)

    def _ours(self, r):
        return r.MAC.lower() == self.mac and r.logical_switch and \
            r.logical_switch.name == self.ls

    def _update(self, tables):
        remote = next((r.locator.dst_ip for r in
                       tables['Ucast_Macs_Remote'].rows.values()
                       if self._ours(r)), None)
        local = any(self._ours(r)
                    for r in tables['Ucast_Macs_Local'].rows.values())
        view = (remote, local)
        if self.t0 is None:
            self.first = view
        elif view != self.value():
            self.changes.append((time.time(), view))

    def start(self):
        self.t0 = time.time()
        return self

    def stop(self):
        self.replica.stop()

    def value(self):
        return self.changes[-1][1] if self.changes else self.first


class LocalMacTimes:
    """When each MAC first appears in a hardware VTEP's Ucast_Macs_Local
    after start(): {mac: epoch s}."""

    TABLES = {'Ucast_Macs_Local': ['MAC']}

    def __init__(self, lab, vtep):
        self.seen, self.times, self.t0 = set(), {}, None
        self.replica = _Replica(lab, vtep, self.TABLES, self._update)

    def _update(self, tables):
        now = time.time()
        macs = {r.MAC.lower() for r in
                tables['Ucast_Macs_Local'].rows.values()}
        if self.t0 is not None:
            for mac in macs - self.seen:
                self.times.setdefault(mac, now)
        self.seen = macs

    def start(self):
        self.t0 = time.time()
        return self

    def stop(self):
        self.replica.stop()


class FlowTimes:
    """When a flow forwarding each destination MAC (from the node's own
    ports) is first added to a node's bridge after start(), from an
    OpenFlow flow monitor: {mac: epoch s}."""

    def __init__(self, lab, node, bridge='br-int'):
        self.times, self.started = {}, False
        self.proc = flow_monitor(lab, node, bridge)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for now, line in flow_events(self.proc.stdout):
            if not self.started or 'event=ADDED' not in line or \
                    'actions=output' not in line:
                continue
            m = re.search(r'dl_dst=([0-9a-f:]{17})', line)
            if m and (' metadata=' not in line and ',metadata=' not in line
                      or re.search(r'metadata=0(/0xff)?[, ]', line)):
                self.times.setdefault(m.group(1), now)

    def start(self):
        self.started = True
        return self

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.thread.join(2)


def settled_at(expected):
    """When every watch last reached its expected value and kept it (epoch
    s; a watch already there from the start counts as its start), or None
    if one did not end there. expected: {watch: value}."""
    times = []
    for w, want in expected.items():
        if w.value() != want:
            return None
        t = w.t0 if w.first == want else None
        for when, value in w.changes:
            if value != want:
                t = None
            elif t is None:
                t = when
        times.append(t if t is not None else w.t0)
    return max(times) if times else None
