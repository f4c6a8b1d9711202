"""Software L2 gateway election agent: runs on the gateway itself, so the
election works with the controller down (whitepaper, "Software Layer 2
Gateway / Redundancy").

The controller gives each gateway a unique CFM ID (Interface `cfm_mpid` of
its port into the physical segment). OVS sends CFM CCMs with that ID on the
segment and lists the IDs it hears in `cfm_remote_mpids`. A gateway that
hears a lower ID is standby: its segment bridge br-<seg> has no flows, so
nothing passes between the cable and br-int, while CFM keeps running on the
cable, so a standby still announces itself. One that hears no lower ID for
`hold` (4 CFM intervals: CFM declares a peer lost after 3.5) is active and
bridges the two. Failback is preemptive: the lowest ID present is always
the active one, as the whitepaper describes; a gateway whose ovs-vswitchd
restarted announces its ID again only once the controller has programmed
its br-int (see Agent), so failback does not black-hole traffic.

Reads: Interface(name, cfm_mpid, cfm_remote_mpids, other_config) through
`ovsdb-client monitor` (pushed updates, no polling); ovs-vswitchd's exit
through a pidfd. Writes: br-<seg>'s flows (ovs-ofctl replace-flows; flows
are not persistent, so they are re-applied after a restart),
external_ids:l2gw-state on the segment bridge so others can read it.

    python3 devices/gwagent.py --bridge br-seg1 --cfm-port seg1 \
        --int-port p-seg1
(run inside the gateway's namespace, OVS_RUNDIR pointing at its OVS)
"""
import argparse
import json
import os
import subprocess
import sys
import time

ACTIVE, STANDBY = 'active', 'standby'


class Election:
    """Pure state machine: feed it (now, own ID, heard IDs, interval).
    At start a gateway listens for `hold` (4 CFM intervals) before it may
    become active, so it hears any lower ID first; after that, losing the
    lower ID (CFM already waited 3.5 intervals to declare it) means taking
    over at once."""

    def __init__(self):
        self.state = STANDBY
        self.listening_since = None      # when our own ID was first set
        self.outranked = False           # a lower ID is heard

    def _hold(self, interval_ms):
        return 4 * interval_ms / 1000.0 - 1e-9

    def update(self, now, own, heard, interval_ms):
        if not own:                          # no ID assigned: stay out
            self.listening_since, self.outranked = None, False
            self.state = STANDBY
            return self.state
        if self.listening_since is None:
            self.listening_since = now
        self.outranked = any(m < own for m in heard)
        if self.outranked:
            self.state = STANDBY
        elif now - self.listening_since >= self._hold(interval_ms):
            self.state = ACTIVE
        return self.state

    def restart(self):
        """The data plane restarted: listen again before taking over."""
        self.state, self.listening_since = STANDBY, None

    def wake_in(self, now, interval_ms):
        """Seconds until a decision may change without new input."""
        if self.state == STANDBY and self.listening_since is not None \
                and not self.outranked:
            return max(0.0, self.listening_since + self._hold(interval_ms)
                       - now)
        return None


def parse_row(row):
    """An Interface row from `ovsdb-client monitor --format=json` (OVSDB
    JSON values) -> (own ID or None, [heard IDs], interval ms)."""
    def atoms(v):
        if isinstance(v, list) and v[:1] == ['set']:
            return list(v[1])
        return [] if v in (None, '') else [v]
    own = atoms(row.get('cfm_mpid'))
    conf = row.get('other_config')
    conf = dict(conf[1]) if isinstance(conf, list) and conf[:1] == ['map'] \
        else {}
    return (own[0] if own else None, sorted(atoms(row.get('cfm_remote_mpids'))),
            int(conf.get('cfm_interval', 1000)))


def segment_flows(state):
    """br-<seg>'s whole flow table for a state: an active gateway bridges
    the cable (port 1) and the patch to br-int (port 2); a standby one has
    no flows, so the bridge (fail_mode secure) drops everything. CFM runs
    below the flow table and keeps working either way."""
    if state != ACTIVE:
        return []
    return ['priority=10,in_port=1,actions=output:2',
            'priority=10,in_port=2,actions=output:1']


def restore_id(stashed, current):
    """The CFM ID to put back on the cable once the data plane is ready:
    the one withheld at the crash, unless the controller set one since."""
    return None if current or not stashed else stashed


class Agent:
    """The driver around Election: OVSDB in (monitor), flows and CFM ID
    out (ovs-ofctl/ovs-vsctl), and ovs-vswitchd watched through a pidfd.

    When ovs-vswitchd dies (crash), the agent withholds the gateway's CFM
    ID (moves cfm_mpid to external_ids:l2gw-cfm-mpid) so the restarted
    gateway does not preempt the standby before it can forward: its br-int
    is empty until the controller programs it. Once ovs-vswitchd is back
    and br-int has the controller's flows for the gateway port, the ID
    returns, the gateway listens for 4 intervals and, being the lowest,
    takes over (preemptive failback) with its data plane ready."""

    def __init__(self, bridge, cable, int_port, log):
        self.bridge, self.cable, self.int_port = bridge, cable, int_port
        self.log = log
        self.rundir = os.environ['OVS_RUNDIR']
        self.election, self.applied = Election(), None
        self.own, self.heard, self.interval = None, [], 1000
        self.pidfd, self.waiting_ready = None, False

    def run(self, cmd, check=False):
        return subprocess.run(cmd, capture_output=True, text=True,
                              check=check)

    def apply(self, state):
        flows = ''.join(f + '\n' for f in segment_flows(state))
        r = subprocess.run(['ovs-ofctl', 'replace-flows', self.bridge, '-'],
                           input=flows, capture_output=True, text=True)
        if r.returncode:
            self.log(f'{time.time():.3f} {self.bridge}: flows not set: '
                     f'{r.stderr.strip()}')
            return False
        self.log(f'{time.time():.3f} {self.cable} {state}')   # flows in
        self.applied = state
        self.run(['ovs-vsctl', '--no-wait', 'set', 'bridge', self.bridge,
                  f'external_ids:l2gw-state={state}'])
        return True

    def watch_vswitchd(self):
        """A pidfd for the running ovs-vswitchd, or None if it is not up."""
        try:
            with open(os.path.join(self.rundir, 'ovs-vswitchd.pid')) as f:
                pid = int(f.read().strip())
            fd = os.pidfd_open(pid)
        except (OSError, ValueError):
            return None
        if self.run(['ovs-ofctl', 'show', self.bridge]).returncode:
            os.close(fd)
            return None
        return fd

    def on_vswitchd_exit(self):
        self.log(f'{time.time():.3f} ovs-vswitchd exited: CFM ID withheld '
                 'until the data plane is back and programmed')
        os.close(self.pidfd)
        self.pidfd, self.waiting_ready, self.applied = None, True, None
        cmd = ['ovs-vsctl', '--no-wait', 'set', 'bridge', self.bridge,
               'external_ids:l2gw-state=down']
        if self.own:
            cmd += ['--', 'set', 'interface', self.cable,
                    f'external_ids:l2gw-cfm-mpid={self.own}', '--',
                    'clear', 'interface', self.cable, 'cfm_mpid']
        self.run(cmd)
        self.election.restart()

    def programmed(self):
        r = self.run(['ovs-ofctl', '-O', 'OpenFlow13', 'dump-flows', 'br-int',
                      f'in_port={self.int_port}'])
        return r.returncode == 0 and 'actions=' in r.stdout

    def recover(self):
        """Called while ovs-vswitchd is down or not yet programmed."""
        if self.pidfd is None:
            self.pidfd = self.watch_vswitchd()
            if self.pidfd is None:
                return
            self.log(f'{time.time():.3f} ovs-vswitchd is back')
            self.apply(STANDBY)
        if not self.programmed():
            return
        r = self.run(['ovs-vsctl', '--if-exists', 'get', 'interface',
                      self.cable, 'cfm_mpid', 'external_ids:l2gw-cfm-mpid'])
        now_id, stashed = (r.stdout.split('\n') + ['', ''])[:2]
        mpid = restore_id(stashed.strip().strip('"'),
                          now_id.strip().strip('[]'))
        if mpid:
            self.run(['ovs-vsctl', '--no-wait', 'set', 'interface', self.cable,
                      f'cfm_mpid={mpid}'])
        self.waiting_ready = False
        self.log(f'{time.time():.3f} br-int programmed: CFM ID '
                 f'{mpid or self.own} announced')

    def monitor(self):
        cmd = ['ovsdb-client', '--format=json', 'monitor',
               f'unix:{self.rundir}/db.sock', 'Open_vSwitch', 'Interface',
               'name,cfm_mpid,cfm_remote_mpids,other_config']
        return subprocess.Popen(cmd, stdout=subprocess.PIPE)

    def loop(self):
        import selectors
        self.apply(STANDBY)
        self.pidfd = self.watch_vswitchd()
        mon = self.monitor()
        sel = selectors.DefaultSelector()
        sel.register(mon.stdout, selectors.EVENT_READ, 'ovsdb')
        lines = JsonLines()
        if self.pidfd is not None:
            sel.register(self.pidfd, selectors.EVENT_READ, 'vswitchd')
        while mon.poll() is None:
            wait = self.election.wake_in(time.monotonic(), self.interval)
            if self.waiting_ready:
                wait = 0.05 if wait is None else min(wait, 0.05)
            for key, _ in sel.select(timeout=wait):
                if key.data == 'vswitchd':
                    sel.unregister(self.pidfd)
                    self.on_vswitchd_exit()
                    continue
                chunk = os.read(mon.stdout.fileno(), 1 << 16)
                if not chunk:
                    break
                for update in lines.feed(chunk):
                    for row in _rows(update, self.cable):
                        self.own, self.heard, self.interval = parse_row(row)
            if self.waiting_ready:
                self.recover()
                if self.pidfd is not None and \
                        self.pidfd not in sel.get_map():
                    sel.register(self.pidfd, selectors.EVENT_READ,
                                 'vswitchd')
                if self.waiting_ready:
                    continue              # standby until programmed
            state = self.election.update(time.monotonic(), self.own,
                                         self.heard, self.interval)
            if state != self.applied:
                self.apply(state)
        self.log(f'{time.time():.3f} monitor ended (ovsdb-server gone?)')
        return 1


class JsonLines:
    """Whole JSON lines out of raw reads. (Reading a buffered pipe line by
    line after select() leaves further lines in Python's buffer, unseen
    until the next write: updates then arrived seconds late.)"""

    def __init__(self):
        self.buf = b''

    def feed(self, chunk):
        self.buf += chunk
        *whole, self.buf = self.buf.split(b'\n')
        out = []
        for line in whole:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def _rows(update, port):
    """Rows for `port` in one monitor update (initial dump or change)."""
    heads = update.get('headings', [])
    for data in update.get('data', []):
        row = dict(zip(heads, data))
        if row.get('name') == port and row.get('action') != 'old':
            yield row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--bridge', required=True,
                   help='the segment bridge whose flows follow the state')
    p.add_argument('--cfm-port', required=True,
                   help='the interface on the segment that runs CFM')
    p.add_argument('--int-port', required=True,
                   help="the gateway port on br-int the controller programs")
    p.add_argument('--log', default=None)
    args = p.parse_args(argv)
    logf = open(args.log, 'a', buffering=1) if args.log else sys.stdout

    def log(msg):
        print(msg, file=logf, flush=True)

    return Agent(args.bridge, args.cfm_port, args.int_port, log).loop()


if __name__ == '__main__':
    sys.exit(main())
