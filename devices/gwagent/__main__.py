"""Run a software gateway's election agent (see devices/gwagent).

One agent per physical port of the gateway. --peer gives another gateway
on the same segment, as its addresses (management, transport) separated
by commas; repeat it per peer. Logs one line per event to --log (epoch
first); writes its PID to --pidfile once the gateway's CFM ID is safe
(withheld while the data plane cannot forward), which is what a gateway's
boot waits for before it starts ovs-vswitchd. SIGTERM stops it (the flows
stay).
"""
import argparse
import logging
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from devices.gwagent.agent import Agent  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--bridge', required=True,
                   help='the segment bridge whose flows follow the state')
    p.add_argument('--cable', required=True,
                   help='the interface on the segment that runs CFM')
    p.add_argument('--int-ofport', type=int, required=True,
                   help="the gateway port's number on br-int")
    p.add_argument('--segment', required=True,
                   help='the segment, as every gateway on it names it')
    p.add_argument('--peer', action='append', default=[],
                   help='a peer gateway: its addresses, comma separated')
    p.add_argument('--log')
    p.add_argument('--pidfile')
    args = p.parse_args(argv)
    rundir = os.environ.get('OVS_RUNDIR')
    if not rundir:
        p.error('OVS_RUNDIR must point at the gateway\'s OVS run directory')
    logging.basicConfig(filename=args.log, level=logging.INFO,
                        format='%(created).3f %(name)s %(levelname)s '
                        '%(message)s')
    logf = open(args.log, 'a', buffering=1) if args.log else sys.stdout

    def log(msg):
        print(msg, file=logf, flush=True)
    def guarding():
        if args.pidfile:
            with open(args.pidfile + '.tmp', 'w') as f:
                f.write(f'{os.getpid()}\n')
            os.replace(args.pidfile + '.tmp', args.pidfile)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    peers = [[a for a in spec.split(',') if a] for spec in args.peer]
    try:
        Agent(args.bridge, args.cable, args.int_ofport, args.segment, peers,
              rundir, log, guarding).run()
    except SystemExit:
        raise
    except BaseException:
        logging.getLogger('gwagent').exception('the agent stopped')
        raise


if __name__ == '__main__':
    main()
