#!/usr/bin/env python3
"""nsx-l2gw-lab: the one entry point.

    ./run.py                      default job: build the small Clos lab,
                                  verify its underlay, start the controller,
                                  provision through the API, verify VMs'
                                  reachability and isolation, tear down
    ./run.py list                 labs, scenarios and demos
    ./run.py topo --topo clos|vcf|NAME|FILE.yaml [sizes] [--check] [--json]
    ./run.py topo --topo vcf --plan       print the expanded plan (no root)
    ./run.py cli --topo ...       build a lab and open the Mininet CLI, with
                                  flows/macs/trace/fail/restore/tenants
    ./run.py demo NAME [--auto]   step through a whitepaper traffic flow
    ./run.py bench boot           boot time and memory against lab size
    ./run.py report               latest results in one summary
    ./run.py clean                remove a crashed run's leftovers
"""
import argparse
import json
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def use_venv():
    """Run under the lab's .venv (made by `make setup`) whichever python
    started us, so `sudo ./run.py ...` works like `make run`."""
    venv_py = os.path.join(HERE, '.venv', 'bin', 'python')
    if os.path.realpath(sys.prefix) == os.path.realpath(
            os.path.join(HERE, '.venv')):
        return
    if os.path.exists(venv_py) and not os.environ.get('NSXLAB_NO_REEXEC'):
        os.environ['NSXLAB_NO_REEXEC'] = '1'
        os.execv(venv_py, [venv_py] + sys.argv)
    try:
        import mininet  # noqa: F401
    except ImportError:
        sys.exit('error: the lab\'s Python packages are not installed: run '
                 '`sudo make setup` once (it creates .venv), then '
                 'sudo ./run.py again')


use_venv()

from topologies import labs, spec as specmod  # noqa: E402

SIZES = ('spines', 'leaves', 'hypervisors', 'vms', 'service_nodes',
         'gateways', 'hw_vteps', 'bare_metal')


def progress(msg):
    print(msg, file=sys.stderr, flush=True)


def need_root(what):
    if os.geteuid() != 0:
        sys.exit(f'{what} creates namespaces and links: run it as root '
                 '(sudo ./run.py ...)')


def print_table(rows):
    if not rows:
        return
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print('  '.join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def print_result(res, as_json):
    m = res['metrics']
    status = 'PASS' if res['passed'] else 'FAIL'
    keys = [k for k in ('boot_s', 'start_s', 'nodes', 'links', 'vtep_pairs',
                        'reachable_pairs', 'ecmp_min_paths',
                        'overlay_pairs', 'overlay_reachable',
                        'overlay_boot_s', 'isolation_probes', 'idle_cpu_pct',
                        'idle_bfd_flaps', 'idle_cfm_flaps',
                        'idle_service_node_down_events', 'peak_rss_mb',
                        'target_met',
                        'intra_tenant_pairs', 'intra_tenant_reached',
                        'frames_captured', 'cross_tenant_frames',
                        'steps_total', 'steps_held', 'arrows',
                        'faults_planned', 'faults_survived',
                        'permanent_losses', 'attacks_tried',
                        'attacks_crossed')
            if k in m]
    print(f"{status} {res['name']} {res['topology']}: " + ', '.join(
        f'{k}={m[k]}' for k in keys))
    for a in res['artifacts']:
        print(f'  result: {a}')
    if as_json:
        print(json.dumps(res, sort_keys=True))


def lab_spec(args):
    """--topo with its sizes, --vtep-device, --no-tls, --controllers and
    --bfd-interval applied; the spec is validated when the lab is expanded."""
    spec = labs.with_vtep_device(labs.resolve(args.topo, sizes_of(args)),
                                 args.vtep_device)
    spec = labs.with_tls(spec, False if args.no_tls else None)
    spec = labs.with_controllers(spec, getattr(args, 'controllers', None))
    return labs.with_bfd_interval(spec, args.bfd_interval)


def sizes_of(args):
    return {k: getattr(args, k, None) for k in SIZES}


def cmd_list(args):
    print('Labs (--topo NAME; clos = clos-small, vcf = vcf-small):')
    for name, path in labs.shipped().items():
        print(f'  {name:12s} {labs.describe(path)}')
    print('\nScenarios (./run.py scenario NAME [--topo clos|vcf] [--json]):')
    width = max(len(n) for n in SCENARIOS)
    for name, (_, text) in SCENARIOS.items():
        print(f'  {name:{width}s}  {text}')
    from demos import catalog
    print('\nDemos (./run.py demo NAME [--topo clos|vcf] [--auto]):')
    for name in catalog.DEMOS:
        print(f'  {name:{width}s}  {catalog.summary(name)}')
    print('Other commands: topo --check [--overlay [--idle S]], cli, '
          'bench boot [--overlay], bench vtep, report, clean,\n'
          '  map [--ls NAME | --vm NAME | --node NAME | --counters | '
          '--underlay] '
          '(beside a running lab)')


def cmd_topo(args):
    spec = lab_spec(args)
    if args.plan:
        from topologies import expand
        print(json.dumps(expand.expand(spec), indent=1))
        return 0
    need_root('topo')
    from scenarios import topo
    if args.idle and not args.overlay:
        sys.exit('error: --idle measures the settled lab after --overlay: '
                 'add --overlay')
    res, table = topo.run(spec, do_check=args.check, progress=progress,
                          deadline_s=args.deadline, overlay=args.overlay,
                          idle_s=args.idle)
    print_table(table)
    print_result(res, args.json)
    return 0 if res['passed'] else 1


def default_args(as_json=False):
    """What `./run.py` alone (`make run`) runs: `topo --topo clos --check
    --overlay`, every other option at its default."""
    return parser().parse_args(['topo', '--topo', 'clos', '--check',
                                '--overlay'] + (['--json'] if as_json
                                                else []))


def cmd_default(args):
    return cmd_topo(default_args(args.json))


def cmd_cli(args):
    need_root('cli')
    if args.script and not os.path.isfile(args.script):
        sys.exit(f'error: --script {args.script}: no such file (give a text '
                 'file with one CLI command per line)')
    from demos.labcli import LabCLI
    from scenarios import harness
    spec = lab_spec(args)
    env = harness.ControlledLab(spec, progress)
    with env as lab:
        tls = (f"HTTPS, OpenFlow and OVSDB over TLS with the lab's CA, "
               f'{lab.ctl.ca_path}' if lab.ctl.tls else
               'plain HTTP, OpenFlow and OVSDB (--no-tls)')
        progress(f"lab {lab.plan['name']} is up, provisioned through the API "
                 f"({lab.ctl.url}, OpenAPI at "
                 f"{lab.ctl.url.rsplit('/api', 1)[0]}/docs; writes need "
                 f"'Authorization: Bearer {lab.ctl.token}', kept in "
                 f"{lab.ctl.token_path}; {tls}).\nNodes: "
                 + ' '.join(lab.plan['nodes']) + "\n'help' lists the lab's "
                 "commands (flows, macs, trace, fail, restore, tenants); "
                 "'exit' tears it down.")
        LabCLI(lab, script=args.script)
    return 0


def cmd_soak(args):
    need_root('soak')
    if args.replay and not os.path.isfile(args.replay):
        sys.exit(f'error: --replay {args.replay}: no such file (give the '
                 'result.json of an earlier soak)')
    from scenarios import soak
    res = soak.run(fabric=args.topo, progress=progress, count=args.faults,
                   seed=args.seed, hold=args.hold, settle=args.settle,
                   replay=args.replay)
    for p in res['metrics']['problems']:
        print(f'  problem: {p}')
    print_result(res, args.json)
    return 0 if res['passed'] else 1


def cmd_demo(args):
    need_root('demo')
    from demos import runner
    res = runner.run(args.name, fabric=args.topo, auto=args.auto,
                     progress=progress, vtep_device=args.vtep_device)
    print_result(res, args.json)
    return 0 if res['passed'] else 1


def cmd_map(args):
    """The running lab's map (GET /api/v1/map) as text or JSON."""
    need_root('map')
    from controllers import attach, labmap
    plan, clients = attach.running()
    if args.underlay:
        from topologies import routing
        state = routing.read(plan)
        print(json.dumps(state, indent=1) if args.json else
              '\n'.join(routing.text(state)))
        return 0
    if args.node:
        from controllers import tables
        role = plan['nodes'].get(args.node, {}).get('role')
        if role is None:
            sys.exit(f'error: --node: no node {args.node!r} in the running '
                     f"lab; nodes: {' '.join(sorted(plan['nodes']))}")
        if role in ('leaf', 'spine'):
            sys.exit(f'error: --node: {args.node} is a {role}, a router of '
                     'the underlay: the controller has no session to it; '
                     '`./run.py map --underlay` shows its BGP sessions and '
                     'routes')
        got = attach.get(clients, f'/transport-nodes/{args.node}/tables')
        print(json.dumps(got, indent=1) if args.json else
              '\n'.join(tables.text(got)))
        return 0
    m = attach.get(clients, '/map' + ('?counters=true' if args.counters
                                      else ''))
    if args.json:
        print(json.dumps(m, indent=1))
        return 0
    if args.counters:
        print('\n'.join(labmap.counters_text(m.get('counters', {}))))
        return 0
    try:
        lines = labmap.text(m, ls=args.ls, vm=args.vm)
    except KeyError as exc:
        raise ValueError(exc.args[0]) from None
    print('\n'.join(lines))
    return 0


def cmd_clean(args):
    need_root('clean')
    from topologies import records
    records.clean(log=print)
    return 0


SCENARIOS = {
    'arp-flow': ('scenarios.arp_flow', 'figures 9-11: an ARP from a VM to a '
                 'server behind a software gateway, hop by hop'),
    'hw-arp-flow': ('scenarios.hw_arp_flow', 'figures 14-16: ARP and unicast '
                    'between a VM and a server on a hardware VTEP'),
    'controller-failover': ('scenarios.controller_failover', 'kill a node '
                            'of a 3-node controller cluster under traffic '
                            'and API writes: takeover, isolation, both of '
                            'a device'),
    'headless': ('scenarios.headless', 'kill the controller under 1,000/s '
                 'probe streams for --seconds (60), restart it: no loss'),
    'service-node-failover': ('scenarios.service_node_failover', 'kill '
                              'the service node carrying broadcasts, '
                              'controller frozen: BUM outage per trial'),
    'p2v-migration': ('scenarios.p2v_migration', 'a bare-metal server '
                      'becomes a VM with its MAC and IP under traffic: '
                      'downtime, convergence, no stale entry'),
    'itaas-isolation': ('scenarios.itaas_isolation', '3 tenants with '
                        'overlapping IPs on VLANs of one shared gateway: '
                        'zero cross-tenant frames; --mappings N (4094) '
                        'through the API'),
    'physical-tier': ('scenarios.usecases', 'web VMs -> app VM -> database '
                      'on bare metal: reachability, RTT, TCP'),
    'attach-appliance': ('scenarios.usecases', 'VMs route through a '
                         'physical appliance behind the gateway'),
    'dc-interconnect': ('scenarios.usecases', 'physical VLAN side and '
                        'virtual side reach each other: RTT per pair'),
    'hw-gateway-failover': ('scenarios.hw_gateway_failover', 'a dual-homed '
                            'server loses its active leaf: VCF vs Clos '
                            'outage side by side'),
    'vm-move': ('scenarios.vm_move', 'a running VM moves between two '
                'hypervisors (its port bound from their OVSDB): downtime '
                'per direction'),
    'dfw': ('scenarios.dfw', 'distributed firewall: allow/deny matrix '
            '(TCP, UDP, ICMP, VMs and a physical server), throughput off/on, '
            'rule-change latency per hypervisor, established flows kept'),
    'service-steering': ('scenarios.service_steering', 'traffic steered '
                         'through a service VM (nftables): captures, a '
                         'signature, address groups, fail-open / '
                         'fail-closed'),
    'gateway-failover': ('scenarios.gateway_failover', 'crash / cut / '
                         'power off the active software gateway, --trials '
                         'N each; outage per direction, loop check, plots'),
}


# labs of 100 transport nodes the dfw scenario runs its rule-change
# trials on (10 hypervisors); every other scenario runs clos or vcf
LARGE_FOR_DFW = ['clos-pod', 'vcf-large']


def cmd_scenario(args):
    if args.topo in LARGE_FOR_DFW and args.name != 'dfw':
        sys.exit(f'error: --topo {args.topo}: scenario {args.name} runs on '
                 'clos or vcf (only dfw takes a large lab)')
    need_root('scenario')
    import importlib
    mod = importlib.import_module(SCENARIOS[args.name][0])
    extra = {'headless': args.seconds} if args.name == 'headless' and \
        args.seconds else {}
    fabric = args.topo or 'clos'
    if args.name == 'hw-gateway-failover':
        extra = {'trials': args.trials or 20, 'seed': args.seed,
                 'fabrics': (args.topo,) if args.topo else ('vcf', 'clos')}
        fabric = None
    if args.name == 'itaas-isolation':
        extra = {'seed': args.seed, 'mappings': args.mappings}
        fabric = None           # its own lab (itaas, a VCF pod)
    if args.name == 'controller-failover':
        from scenarios import controller_failover
        extra = {'trials': args.trials or 20, 'seed': args.seed,
                 'controllers': 3 if args.controllers is None
                 else args.controllers, 'rate': args.probe_rate or 1000}
        try:
            controller_failover.check_controllers(extra['controllers'])
        except ValueError as exc:
            sys.exit(f'error: {exc}')
    elif args.controllers is not None or args.probe_rate is not None:
        sys.exit(f'error: --controllers and --probe-rate are '
                 f'controller-failover\'s; scenario {args.name} runs its lab '
                 'with one controller at its own rate')
    if args.name in ('service-node-failover', 'p2v-migration', 'vm-move',
                     'dfw'):
        extra = {'trials': args.trials or 20, 'seed': args.seed}
    if args.name == 'service-steering':
        extra = {'trials': args.trials or 10, 'seed': args.seed}
    if args.name == 'gateway-failover':
        extra = {'trials': args.trials or 20, 'seed': args.seed,
                 'sweep_trials': 5 if args.sweep_trials is None
                 else args.sweep_trials}
        if args.cfm_interval:
            extra['intervals'] = args.cfm_interval
        if args.faults:
            extra['kinds'] = args.faults
    if SCENARIOS[args.name][0] == 'scenarios.usecases':
        extra = {'name': args.name}
    if fabric:
        extra['fabric'] = fabric
    if args.vtep_device:
        import inspect
        if 'vtep_device' not in inspect.signature(mod.run).parameters:
            sys.exit(f'error: --vtep-device: scenario {args.name} has no '
                     'hardware VTEP to run with another device')
        extra['vtep_device'] = args.vtep_device
    res = mod.run(progress=progress, **extra)
    m = res['metrics']
    for name, st in m.get('streams', {}).items():
        print(f"  {name}: sent {st['sent']}, lost {st['lost']} "
              f"(by phase {st['by_phase']}), longest gap "
              f"{st['outage_ms']} ms")
    if 'flow_changes_after_restart' in m:
        print('  flow changes by the restarted controller: '
              + (', '.join(m['flow_changes_after_restart']) or 'none'))
    if m.get('hops'):
        print('Observed hops:')
        for h in m['hops']:
            print('  ' + h)
    for key, what in (('outages', 'outage'), ('latency', 'RTT'),
                      ('rule_change', 'rule change')):
        if m.get(key):
            print_table([(what, 'samples', 'p50 ms', 'p95 ms', 'max ms')] + [
                (k, st['n'], st['p50'], st['p95'], st['max'])
                for k, st in m[key].items()])
    if m.get('bounds'):
        print_table([('what bounds it', 'samples', 'p50 ms', 'p95 ms',
                      'max ms')] + [(k, st['n'], st['p50'], st['p95'],
                                     st['max'])
                                    for k, st in m['bounds'].items()])
    for t in m.get('targets', []):
        unit = t.get('unit', 'ms')
        limit, got = (t.get('limit', t.get('limit_ms')),
                      t.get('measured', t.get('measured_ms')))
        print(f"  target {t['key']} {t['stat']} <= {limit} {unit}: "
              f"measured {got} {unit}, {'met' if t['met'] else 'NOT met'}")
    for p in m.get('problems', []):
        print(f'  problem: {p}')
    for c in m.get('checks', []):
        print(f"  [{'ok' if c['held'] else 'FAIL'}] {c['claim']}")
    print_result(res, args.json)
    return 0 if res['passed'] else 1


def cmd_report(args):
    from scenarios import report
    md, png, table = report.write()
    print_table([('run', 'when (UTC)', 'topology', 'verdict', 'figures')]
                + [r[:4] + (r[4][:70],) for r in table])
    print(f'summary: {md}\n         {png}')
    return 0


def cmd_bench(args):
    need_root('bench')
    if args.what == 'vtep':
        from scenarios import bench_vtep
        res = bench_vtep.run(devices=args.devices, count=args.macs,
                             changes=args.changes, idle_s=args.idle,
                             n_macs=args.scale_macs,
                             n_bindings=args.scale_bindings,
                             progress=progress)
        print_table(res.pop('table'))
        for t in res['metrics']['targets']:
            print(f"  target {t['what']} <= {t['limit']}: measured "
                  f"{t['measured']}, {'met' if t['met'] else 'NOT met'}"
                  .replace('<= 20: measured', '>= 20: measured'))
        for p in res['metrics']['problems']:
            print(f'  problem: {p}')
        print_result(res, args.json)
        return 0 if res['passed'] else 1
    if args.what == 'controller':
        from scenarios import bench_controller
        sizes = tuple(int(v) for v in args.sizes.split(',')) \
            if args.sizes != '10,25,50,100' else bench_controller.SIZES
        res = bench_controller.run(sizes=sizes, trials=args.trials or 20,
                                   progress=progress)
        print_table(res.pop('table'))
        for t in res['metrics']['targets']:
            print(f"  target {t['what']} <= {t['limit']}: measured "
                  f"{t['measured']}, {'met' if t['met'] else 'NOT met'}")
        for p in res['metrics']['problems']:
            print(f'  problem: {p}')
        print_result(res, args.json)
        return 0 if res['passed'] else 1
    from scenarios import bench_boot
    res = bench_boot.run(fabric=args.fabric, sizes=args.sizes,
                         progress=progress, overlay=args.overlay,
                         idle_s=args.idle if args.overlay else 0)
    print_table(res.pop('table'))
    for t in res['metrics']['targets']:
        print(f"  target {t['what']} <= {t['limit']}: measured "
              f"{t['measured']}, {'met' if t['met'] else 'NOT met'}")
    print_result(res, args.json)
    return 0 if res['passed'] else 1


def intervals(text):
    """'10,100,1000' -> (10, 100, 1000); a clear error otherwise."""
    try:
        vals = tuple(int(v) for v in text.split(','))
    except ValueError:
        vals = ()
    if not vals or any(v < 1 or v > 10000 for v in vals):
        raise argparse.ArgumentTypeError(
            f'expected CFM intervals in ms between 1 and '
            f'10000, comma separated (e.g. 10,100,1000), got {text!r}')
    return vals


def faults_arg(text):
    """'crash,link' -> ('crash', 'link'); a clear error otherwise."""
    kinds = ('crash', 'link', 'power')
    vals = tuple(v.strip() for v in text.split(',') if v.strip())
    bad = [v for v in vals if v not in kinds]
    if bad or not vals:
        raise argparse.ArgumentTypeError(
            f"--faults: expected some of {', '.join(kinds)}, comma "
            f'separated, got {text!r}')
    return vals


def devices_arg(text):
    vals = tuple(v.strip() for v in text.split(','))
    bad = [v for v in vals if v not in ('native', 'ovs-vtep')]
    if bad or not vals:
        raise argparse.ArgumentTypeError(
            f'expected hardware VTEP devices native and/or ovs-vtep, comma '
            f'separated, got {text!r}')
    return vals


def count_arg(lo, hi):
    def parse(text):
        try:
            n = int(text)
        except ValueError:
            n = None
        if n is None or not lo <= n <= hi:
            raise argparse.ArgumentTypeError(
                f'expected an integer {lo}..{hi}, got {text!r}')
        return n
    return parse


def mappings_arg(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 3 <= n <= 4094:
        raise argparse.ArgumentTypeError(
            f'expected a number of VLAN mappings 3..4094 (one per VLAN id on '
            f'the gateway port, the 3 tenants included), got {text!r}')
    return n


def parser():
    p = argparse.ArgumentParser(prog='run.py', description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest='command')
    sub.add_parser('list', help='labs, scenarios and demos')

    def device_arg(sp):
        sp.add_argument('--vtep-device', choices=['native', 'ovs-vtep'],
                        help="run the lab's hardware VTEPs with this device "
                        "(default: the lab's own, native unless it says)")

    def lab_args(sp):
        sp.add_argument('--topo', default='clos',
                        help='clos, vcf, a shipped lab name, or FILE.yaml')
        device_arg(sp)
        sp.add_argument('--bfd-interval', type=int, metavar='MS',
                        help='BFD to the service nodes every MS ms, 50..10000 '
                        "(default: the lab's bfd_interval_ms, or sized to the "
                        'lab: 100 ms for the small labs)')
        sp.add_argument('--no-tls', action='store_true',
                        help='plain TCP/HTTP control channels instead of TLS '
                        "with the lab's CA (to measure what TLS costs)")
        sp.add_argument('--controllers', type=int, metavar='N',
                        help='controller nodes: 1 (the default: one in the '
                        'root namespace), 3 or 5 (a cluster on etcd, each '
                        'node in its own namespace; docs/cluster.md)')
        for k in SIZES:
            sp.add_argument('--' + k.replace('_', '-'), dest=k, type=int,
                            help=f'builder size: {k} (with --topo clos|vcf)')
    t = sub.add_parser('topo', help='build a lab (and --check its underlay)')
    lab_args(t)
    t.add_argument('--check', action='store_true',
                   help='verify every VTEP pair with 1600-byte DF packets')
    t.add_argument('--overlay', action='store_true',
                   help='also start the controller, provision through the '
                   'API and verify VM reachability and isolation')
    t.add_argument('--idle', type=count_arg(0, 3600), default=0,
                   help='with --overlay: then measure the settled lab for '
                   'this many seconds (CPU per process kind, BFD/CFM flaps, '
                   'service-node-down events)')
    t.add_argument('--plan', action='store_true',
                   help='print the expanded plan and exit (no root)')
    t.add_argument('--deadline', type=float, default=90,
                   help='seconds to wait for the underlay (default 90)')
    t.add_argument('--json', action='store_true',
                   help='print one JSON result object as the last line')
    c = sub.add_parser('cli', help='build a lab and open the Mininet CLI')
    lab_args(c)
    c.add_argument('--script', help='run the CLI commands in this file '
                   '(one per line), then tear the lab down')
    from demos import catalog
    d = sub.add_parser('demo', help='step through a whitepaper traffic flow '
                       'with per-hop captures and a sequence diagram')
    d.add_argument('name', choices=list(catalog.DEMOS))
    d.add_argument('--topo', choices=['clos', 'vcf'], default='clos',
                   help='fabric of the demo lab (clos)')
    d.add_argument('--auto', action='store_true',
                   help='run through without pausing between steps')
    device_arg(d)
    d.add_argument('--json', action='store_true')
    sc = sub.add_parser('scenario', help='run a measured scenario')
    sc.add_argument('name', choices=sorted(SCENARIOS))
    sc.add_argument('--topo', choices=['clos', 'vcf'] + LARGE_FOR_DFW,
                    default=None, help='fabric (clos; hw-gateway-failover '
                    'runs both unless given; dfw also a large lab: '
                    f"{', '.join(LARGE_FOR_DFW)})")
    sc.add_argument('--json', action='store_true')
    device_arg(sc)
    sc.add_argument('--seconds', type=float,
                    help='headless: how long the controller stays dead')
    sc.add_argument('--trials', type=int,
                    help='failure scenarios: trials per fault kind (20)')
    sc.add_argument('--sweep-trials', type=int,
                    help='gateway-failover: trials of the power fault at '
                    'the other CFM intervals (5)')
    sc.add_argument('--cfm-interval', type=intervals,
                    help='gateway-failover: CFM interval(s) in ms, comma '
                    'separated; the first gets --trials of every fault, '
                    'the others --sweep-trials of power (10,3,100,1000; '
                    "3 is OVS's shortest standard interval)")
    sc.add_argument('--faults', type=faults_arg,
                    help='gateway-failover: fault kinds, comma separated '
                    '(crash,link,power)')
    sc.add_argument('--mappings', type=mappings_arg, default=4094,
                    help='itaas-isolation: VLAN-to-VNI mappings on the '
                    'shared gateway, 3..4094 (4094)')
    sc.add_argument('--seed', type=int, default=1,
                    help='seeds fault timing jitter and trial order (1)')
    sc.add_argument('--controllers', type=int, metavar='N',
                    help='controller-failover: controller nodes, 3 or 5 (3)')
    sc.add_argument('--probe-rate', type=count_arg(10, 1000), metavar='PPS',
                    help='controller-failover: probes per second per stream '
                    '(1000; lower leaves the 2-core box CPU to see what '
                    'bounds the takeover)')
    so = sub.add_parser('soak', help='inject N seeded faults (crash, freeze, '
                        'cut, partition, controller kill, several at once) '
                        'with an oracle after each repair')
    so.add_argument('--faults', type=count_arg(1, 10000), default=100,
                    help='how many faults (100)')
    so.add_argument('--seed', type=int, default=1,
                    help='same lab, count and seed: same faults (1)')
    so.add_argument('--topo', choices=['clos', 'vcf'], default='clos')
    so.add_argument('--hold', type=float, default=2.0,
                    help='seconds each fault lasts before its repair (2)')
    so.add_argument('--settle', type=float, default=60.0,
                    help='seconds the oracle may take to hold again after '
                    'a repair (60)')
    so.add_argument('--replay', help="an earlier soak's result.json: run "
                    'its lab and fault sequence again')
    so.add_argument('--json', action='store_true')
    sub.add_parser('report', help='summary of the latest results '
                   '(results/report.md and .png)')
    sub.add_parser('clean', help="remove a crashed run's leftovers")
    mp = sub.add_parser(
        'map', help='the running lab\'s map: underlay, VTEPs, tunnels, '
        'logical switches, where each VM and server sits (run beside '
        '`cli`, a demo or a scenario)')
    pick = mp.add_mutually_exclusive_group()
    pick.add_argument('--ls', metavar='NAME',
                      help='one logical switch: members, endpoints, bindings')
    pick.add_argument('--vm', metavar='NAME',
                      help="one VM's (or server's) path: hypervisor or "
                      'switch port, leaf, VTEP, logical switch, members')
    pick.add_argument('--node', metavar='NAME',
                      help="one device's tables, asked of it now: flows "
                      'with counters, MAC table, port counters (a hardware '
                      'VTEP: bindings, MACs, BFD)')
    pick.add_argument('--underlay', action='store_true',
                      help="a Clos underlay as its routers report it: each "
                      'eBGP session as both ends see it, each leaf\'s ECMP '
                      'next hops to the other leaves\' VTEPs')
    pick.add_argument('--counters', action='store_true',
                      help="every switch's port counters (packets, drops, "
                      'errors), asked of them now')
    mp.add_argument('--json', action='store_true',
                    help='the whole map as GET /api/v1/map returns it')
    b = sub.add_parser('bench', help='benchmarks')
    b.add_argument('what', choices=['boot', 'vtep', 'controller'])
    b.add_argument('--fabric', choices=['vcf', 'clos', 'both'], default=None,
                   help='boot: vcf (default), clos, or both (the default '
                   'with --overlay)')
    b.add_argument('--sizes', default='10,25,50,100',
                   help='boot: transport-node counts (default 10,25,50,100);'
                   ' controller: hypervisor counts (default 1,10,100)')
    b.add_argument('--trials', type=int,
                   help='controller: changes of each kind per size (20)')
    b.add_argument('--overlay', action='store_true',
                   help='boot: also start the controller, provision, verify '
                   'every VM pair, then measure the settled lab (--idle)')
    b.add_argument('--devices', type=devices_arg,
                   default=('native', 'ovs-vtep'),
                   help='vtep: hardware VTEP devices to compare, comma '
                   'separated (native,ovs-vtep)')
    b.add_argument('--macs', type=count_arg(10, 1000), default=50,
                   help='vtep: MACs learned (50)')
    b.add_argument('--changes', type=count_arg(5, 1000), default=50,
                   help='vtep: remote MAC changes, each way (50)')
    b.add_argument('--idle', type=count_arg(5, 600), default=60,
                   help='vtep, boot --overlay: seconds of idle CPU measured '
                   '(60)')
    b.add_argument('--scale-macs', type=count_arg(0, 100000), default=10000,
                   help='vtep: remote MACs written at once (10000; 0: skip)')
    b.add_argument('--scale-bindings', type=count_arg(0, 4094),
                   default=4094, help='vtep: VLAN bindings on one port '
                   '(4094; 0: skip)')
    b.add_argument('--json', action='store_true')
    p.add_argument('--json', action='store_true', help=argparse.SUPPRESS)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    # Ctrl-C and SIGTERM (e.g. from a CI timeout) tear the lab down, even
    # when started from a shell that ignores SIGINT for background jobs.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    handlers = {'list': cmd_list, 'topo': cmd_topo, 'cli': cmd_cli,
                'scenario': cmd_scenario, 'report': cmd_report,
                'demo': cmd_demo, 'soak': cmd_soak,
                'clean': cmd_clean, 'bench': cmd_bench, 'map': cmd_map,
                None: cmd_default}
    try:
        return handlers[args.command](args) or 0
    except specmod.SpecError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print('interrupted: lab torn down', file=sys.stderr)
        return 130
    except (RuntimeError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
