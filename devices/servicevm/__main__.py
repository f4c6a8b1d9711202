"""Run a service VM's agent (see devices/servicevm), inside its
namespace. SIGTERM stops it (the ruleset stays: the firewall goes on
filtering without its agent, its address sets as they were)."""
import argparse
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from devices.servicevm.agent import Agent, read_policy  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--url', required=True, help="the controller's API")
    p.add_argument('--ca', help="the lab's CA (an HTTPS API)")
    p.add_argument('--policy', default='[]',
                   help='JSON: [{name, source, destination, protocol, '
                   'port}] of deny entries (endpoints: any or a group)')
    p.add_argument('--log')
    args = p.parse_args(argv)
    logf = open(args.log, 'a', buffering=1) if args.log else sys.stdout

    def log(msg):
        print(msg, file=logf, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        agent = Agent(args.url, args.ca, read_policy(args.policy), log)
    except ValueError as exc:
        p.error(str(exc))
    agent.run()


if __name__ == '__main__':
    main()
