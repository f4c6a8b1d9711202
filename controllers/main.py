"""Run the controller: `python -m controllers.main --plan PLAN.json ...`.

Starts the NSX API (uvicorn, in a thread) and the os-ken application (in
the main thread), both on the management address of the root namespace,
or, with --cluster-node, of that controller node's namespace (a node of a
controller cluster: controllers.cluster, docs/cluster.md).
It writes nothing but its database and log; it is stopped by PID.
"""
import argparse
import json
import logging
import os
import sys
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from controllers import core as core_mod, dfw, labmap, tables  # noqa: E402

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
    p.add_argument('--pki', metavar='DIR', help="the lab's PKI directory "
                   '(topologies/pki.py: ca.pem, controller.pem, '
                   'controller.key): the API serves HTTPS, OpenFlow listens '
                   "for TLS and asks each switch for a certificate of the "
                   "lab's CA, OVSDB sessions are ssl:; without it, all plain")
    p.add_argument('--cluster-node', metavar='NAME', help='run as this '
                   'node of a controller cluster (controllers.cluster): '
                   'writes committed through etcd, devices driven by their '
                   'active node only')
    p.add_argument('--etcd', metavar='URL', help='with --cluster-node: '
                   "this node's etcd member, e.g. https://198.18.255.252:2379")
    p.add_argument('--lease', type=float, default=2.0, help='with '
                   '--cluster-node: seconds a node stays a member without '
                   'renewing (etcd rounds it up to whole seconds, at least '
                   '1.5 election timeouts)')
    p.add_argument('--peer-port', type=int, default=None, help='with '
                   "--cluster-node: the port other nodes hold a connection "
                   "to, to learn at once when this node's process is gone "
                   '(controllers.liveness; default 6654)')
    args = p.parse_args(argv)
    if bool(args.cluster_node) != bool(args.etcd):
        p.error('--cluster-node and --etcd go together (a cluster node '
                'needs its etcd member)')
    return args


def etcd_connect(url, files, timeout):
    """A function that makes a new etcd3gw client for `url` (TLS with the
    node's certificate when `files`)."""
    from urllib.parse import urlsplit
    import warnings
    # etcd3gw's futurist imports eventlet only to ask whether it patched
    # threads (it did not): its deprecation notice says nothing about us
    warnings.filterwarnings('ignore', module='futurist')
    import etcd3gw
    u = urlsplit(url)

    def connect(timeout_s=None):
        """`timeout_s`: of each request, instead of the default."""
        import requests
        session = requests.Session()
        # the lab's CA and nothing from the environment: requests lets
        # REQUESTS_CA_BUNDLE override a session's CA (seen here: every
        # TLS session to etcd refused), and no proxy may see this traffic
        session.trust_env = False
        if files:
            session.verify = files['ca']
            session.cert = (files['cert'], files['key'])
        return etcd3gw.Etcd3Client(host=u.hostname, port=u.port,
                                   protocol=u.scheme,
                                   timeout=timeout_s or timeout,
                                   api_path='/v3/', session=session)
    return connect


def tls_files(directory):
    """The controller's key, certificate and CA in `directory`, or exit
    naming the one that is missing."""
    from topologies import pki
    files = pki.controller_files(directory)
    for what, path in files.items():
        if not os.path.isfile(path):
            sys.exit(f'error: --pki {directory}: no {os.path.basename(path)} '
                     f"(the {what}); give the lab's PKI directory, made at "
                     "the lab's start")
    return files


def openflow_args(args, files):
    """os-ken's listener: TLS with client certificates checked against the
    lab's CA when `files`, else plain TCP."""
    out = ['--ofp-listen-host', args.listen]
    if files:
        return out + ['--ofp-ssl-listen-port', str(args.of_port),
                      '--ctl-privkey', files['key'], '--ctl-cert',
                      files['cert'], '--ca-certs', files['ca']]
    return out + ['--ofp-tcp-listen-port', str(args.of_port)]


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
    files = tls_files(args.pki) if args.pki else None
    if files:                 # every OVSDB session this process opens
        import ovs.stream
        ovs.stream.Stream.ssl_set_private_key_file(files['key'])
        ovs.stream.Stream.ssl_set_certificate_file(files['cert'])
        ovs.stream.Stream.ssl_set_ca_cert_file(files['ca'])
    core = core_mod.Core(plan, args.db, cfm_interval_ms=args.cfm_interval,
                         ovsdb_scheme='ssl' if files else 'tcp')
    replica = None
    if args.cluster_node:
        from urllib.parse import urlsplit
        from controllers import cluster, liveness
        peer_port = args.peer_port or liveness.PEER_PORT
        liveness.Listener(args.listen, peer_port).start()
        replica = cluster.Replica(
            args.cluster_node, etcd_connect(args.etcd, files,
                                            max(1.0, args.lease / 2)),
            core.store, core.store.nodes, core.applied, core.roles_changed,
            lease_s=args.lease, expected=len(plan.get('controllers', ())),
            info={'api': f"{'https' if files else 'http'}://{args.listen}:"
                         f'{args.api_port}/api/v1',
                  'etcd_host': urlsplit(args.etcd).hostname,
                  'etcd_port': urlsplit(args.etcd).port,
                  'peer': f'{args.listen}:{peer_port}'},
            watcher=liveness.watch)
        core.join_cluster(replica)
        replica.start()           # caught up with the log before serving

    import uvicorn
    from controllers.api import create_app
    mapper = labmap.Mapper(plan)
    server = uvicorn.Server(uvicorn.Config(
        create_app(core.store, core.on_api_change if replica is None
                   else (lambda: None), core.status, core.push_log,
                   core.learned_macs, token=token, commit=core.write,
                   cluster=replica and replica.status,
                   lab_map=lambda: mapper.build(core.map_state()),
                   results_dir=os.path.join(ROOT, 'results'),
                   node_tables=lambda name: device_tables(plan, core, name),
                   port_counters=lambda: {
                       n: tables.port_counters(plan, n, ports)
                       for n, ports in core.read_ports().items()},
                   node_flows=core.read_flows),
        host=args.listen, port=args.api_port, log_level='warning',
        ssl_certfile=files and files['cert'],
        ssl_keyfile=files and files['key']))
    threading.Thread(target=server.run, name='api', daemon=True).start()

    if replica is None:       # a cluster node: when it gains devices
        core.reconcile_tunnels()
        core.assign_cfm()
    core.start_monitors()
    from os_ken import cfg
    from os_ken.base import app_manager
    import os_ken.controller.controller  # noqa: F401  registers ofp options
    cfg.CONF(args=openflow_args(args, files), project='os_ken')
    from controllers import oflisten
    oflisten.install(core.tls_refused, cfg.CONF)
    run_app(app_manager, core)


def device_tables(plan, core, name):
    """`name`'s tables asked of it now, named (controllers.tables), or
    None when it has no session with this controller or did not answer."""
    got = core.read_device(name)
    if got is None:
        return None
    kind, raw = got
    if kind == 'vtep':
        return tables.vtep(plan, name, raw)
    with core.store.lock:
        switches = core.store.list_ls()
    out = tables.openflow(plan, name, raw, switches)
    if core.store.nodes[name]['role'] == 'hypervisor':   # from the same read
        out['firewall'] = dfw.node_view(core.store.desired(), name,
                                        raw['flows'])
    return out


def run_app(app_manager, core):
    """os-ken's AppManager.run_apps, with `core` handed to the lab's app
    (and to os-ken's own, which ignore it) instead of a module global;
    blocks until the apps stop."""
    from os_ken.lib import hub
    mgr = app_manager.AppManager.get_instance()
    mgr.load_apps(['controllers.app'])
    contexts = mgr.create_contexts()
    services = mgr.instantiate_apps(core=core, **contexts)
    app = mgr.applications['NsxController']
    core.set_datapath_pass(app.reconcile_all)
    core.set_switch_reader(app.read)
    try:
        hub.joinall(services)
    finally:
        mgr.close()


if __name__ == '__main__':
    main()
