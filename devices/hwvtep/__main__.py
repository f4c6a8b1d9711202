"""Run a native hardware VTEP: `python -m devices.hwvtep --layout FILE`.

The layout (JSON, written by the lab from its plan: topologies.hwvtep)
names the switch, its tunnel and management IPs, its database and its
members (bridges and ports). Logs to --log, writes its PID to --pidfile;
SIGTERM stops it (the data plane keeps forwarding: its bridges are
fail_mode=secure and keep their flows).
"""
import argparse
import json
import logging
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

from devices.hwvtep.device import Device  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--layout', required=True)
    p.add_argument('--log')
    p.add_argument('--pidfile')
    p.add_argument('--debug', action='store_true')
    args = p.parse_args(argv)
    logging.basicConfig(
        filename=args.log, level=logging.DEBUG if args.debug else
        logging.INFO, format='%(asctime)s.%(msecs)03d %(name)s '
        '%(levelname)s %(message)s', datefmt='%Y-%m-%dT%H:%M:%S')
    if args.pidfile:
        with open(args.pidfile, 'w') as f:
            f.write(f'{os.getpid()}\n')
    with open(args.layout) as f:
        layout = json.load(f)

    def stop(signum, _frame):
        logging.getLogger('hwvtep').info('signal %d: stopping', signum)
        raise SystemExit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        Device(layout).run()
    except SystemExit:
        raise
    except BaseException:
        logging.getLogger('hwvtep').exception('the device stopped')
        raise


if __name__ == '__main__':
    main()
