"""Run the controller: `python -m controllers.main --plan PLAN.json ...`.

Starts the NSX API (uvicorn, in a thread) and the os-ken application (in
the main thread), both on the management address of the root namespace.
It writes nothing but its database and log; it is stopped by PID.
"""
import argparse
import json
import logging
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from controllers import core as core_mod  # noqa: E402

OF_PORT, API_PORT = 6653, 8181


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('--plan', required=True, help='lab plan (JSON)')
    p.add_argument('--db', default=':memory:', help='SQLite file')
    p.add_argument('--listen', default='127.0.0.1')
    p.add_argument('--of-port', type=int, default=OF_PORT)
    p.add_argument('--api-port', type=int, default=API_PORT)
    p.add_argument('--cfm-interval', type=int, default=100,
                   help='CFM interval of software gateways, ms (10..1000)')
    p.add_argument('--token-file', help='file holding the token the API '
                   'asks of writes (Authorization: Bearer); without it, '
                   'writes are open')
    p.add_argument('--tls-cert', help='the API serves HTTPS with this '
                   'certificate (PEM; with --tls-key); without it, HTTP')
    p.add_argument('--tls-key', help='the key of --tls-cert (PEM)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(name)s '
                        '%(levelname)s %(message)s')
    with open(args.plan) as f:
        plan = json.load(f)
    token = None
    if args.token_file:
        with open(args.token_file) as f:
            token = f.read().strip()
        if not token:
            sys.exit(f'error: --token-file {args.token_file} is empty')
    if bool(args.tls_cert) != bool(args.tls_key):
        sys.exit('error: --tls-cert and --tls-key go together (the '
                 "certificate and its key); give both, or neither for HTTP")
    core = core_mod.Core(plan, args.db, cfm_interval_ms=args.cfm_interval)
    core_mod.CORE = core

    import uvicorn
    from controllers.api import create_app
    server = uvicorn.Server(uvicorn.Config(
        create_app(core.store, core.on_api_change, core.status,
                   core.push_log, core.learned_macs, token=token),
        host=args.listen, port=args.api_port, log_level='warning',
        ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key))
    threading.Thread(target=server.run, name='api', daemon=True).start()

    core.reconcile_tunnels()
    core.assign_cfm()
    core.start_monitors()
    from os_ken import cfg
    from os_ken.base import app_manager
    import os_ken.controller.controller  # noqa: F401  registers ofp options
    cfg.CONF(args=['--ofp-listen-host', args.listen, '--ofp-tcp-listen-port',
                   str(args.of_port)], project='os_ken')
    app_manager.AppManager.run_apps(['controllers.app'])


if __name__ == '__main__':
    main()
