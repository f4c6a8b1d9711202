"""Software L2 gateway election agent: runs on the gateway itself, so the
election works with the controller down (whitepaper, "Software Layer 2
Gateway / Redundancy").

The controller gives each gateway a unique CFM ID (Interface `cfm_mpid` of
its port into the physical segment). OVS sends CFM CCMs with that ID on the
segment and lists the IDs it hears in `cfm_remote_mpids`. A gateway that
hears a lower ID is standby: the patch between its segment bridge and
br-int neither receives nor forwards (OpenFlow port flags NO_RECV/NO_FWD),
while CFM keeps running on the cable, so a standby still announces itself. One that hears no lower ID for `hold` (4 CFM intervals: CFM
declares a peer lost after 3.5) is active. Failback is preemptive: the
lowest ID present is always the active one, as the whitepaper describes.

Reads: Interface(name, cfm_mpid, cfm_remote_mpids, other_config) through
`ovsdb-client monitor` (pushed updates, no polling). Writes: the port flags
(ovs-ofctl mod-port), and external_ids:l2gw-state on the segment bridge so others can read it.

    python3 controllers/gwagent.py --bridge br-seg1 --port i-seg1 \
        --cfm-port seg1
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

    def _hold(self, interval_ms):
        return 4 * interval_ms / 1000.0 - 1e-9

    def update(self, now, own, heard, interval_ms):
        if not own:                          # no ID assigned: stay out
            self.listening_since = None
            self.state = STANDBY
            return self.state
        if self.listening_since is None:
            self.listening_since = now
        if any(m < own for m in heard):
            self.state = STANDBY
        elif now - self.listening_since >= self._hold(interval_ms):
            self.state = ACTIVE
        return self.state

    def wake_in(self, now, interval_ms):
        """Seconds until a decision may change without new input."""
        if self.state == STANDBY and self.listening_since is not None:
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


def _apply(bridge, port, state, log):
    flags = ['receive', 'forward'] if state == ACTIVE else \
        ['no-receive', 'no-forward']
    for flag in flags:
        subprocess.run(['ovs-ofctl', 'mod-port', bridge, port, flag],
                       check=True, capture_output=True)
    subprocess.run(['ovs-vsctl', 'set', 'bridge', bridge,
                    f'external_ids:l2gw-state={state}'], capture_output=True)
    log(f'{time.time():.3f} {port} {state}')


def _monitor(port):
    cmd = ['ovsdb-client', '--format=json', 'monitor',
           f"unix:{os.environ['OVS_RUNDIR']}/db.sock", 'Open_vSwitch',
           'Interface', 'name,cfm_mpid,cfm_remote_mpids,other_config']
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def _rows(update, port):
    """Rows for `port` in one monitor update (initial dump or change)."""
    heads = update.get('headings', [])
    for data in update.get('data', []):
        row = dict(zip(heads, data))
        if row.get('name') == port and row.get('action') != 'old':
            yield row


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--port', required=True,
                   help='the port to block when standby (patch to br-int)')
    p.add_argument('--cfm-port', required=True,
                   help='the interface on the segment that runs CFM')
    p.add_argument('--bridge', required=True)
    p.add_argument('--log', default=None)
    args = p.parse_args(argv)
    logf = open(args.log, 'a', buffering=1) if args.log else sys.stdout

    def log(msg):
        print(msg, file=logf, flush=True)

    election, applied = Election(), None
    own, heard, interval = None, [], 1000
    _apply(args.bridge, args.port, STANDBY, log)
    applied = STANDBY
    mon = _monitor(args.cfm_port)
    os.set_blocking(mon.stdout.fileno(), True)
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(mon.stdout, selectors.EVENT_READ)
    while mon.poll() is None:
        wait = election.wake_in(time.monotonic(), interval)
        if sel.select(timeout=wait):
            line = mon.stdout.readline()
            if not line:
                break
            try:
                update = json.loads(line)
            except ValueError:
                continue
            for row in _rows(update, args.cfm_port):
                own, heard, interval = parse_row(row)
        state = election.update(time.monotonic(), own, heard, interval)
        if state != applied:
            _apply(args.bridge, args.port, state, log)
            applied = state
    log(f'{time.time():.3f} monitor ended (ovsdb-server gone?)')
    return 1


if __name__ == '__main__':
    sys.exit(main())
