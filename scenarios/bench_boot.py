"""`./run.py bench boot`: boot-to-verified time and memory against the number
of transport nodes. Each size is a full lab run (start, verify every VTEP
pair with 1600-byte don't-fragment packets, stop); the figures are what those
runs measured. Target: a VCF pod of 32 members with 100 transport nodes and
400 VMs verified in <= 60 s using <= 4 GiB on 2 cores.

With `overlay` (both fabrics unless one is given), each run also starts
the controller, provisions through the API, verifies every VM pair and the
isolation probes, then leaves the settled lab alone for `idle_s` and
measures its CPU per process kind (scenarios/cpuload). Targets at 100
transport nodes: overlay verified <= 90 s from the start, <= 4 GiB, idle
CPU <= 25 % of one core, no BFD/CFM flap, no service node declared down.
"""
import os
import platform
import subprocess

from topologies import builders

from . import results, topo

TARGET_NODES, TARGET_S, TARGET_MB = 100, 60.0, 4096.0
OVERLAY_TARGET_S, IDLE_TARGET_PCT = 90.0, 25.0


def lab_for(fabric, n):
    """A lab with `n` transport nodes (and 4 VMs per transport node)."""
    sn, gw = (2, 2) if n < 50 else (4, 3)
    common = dict(service_nodes=sn, gateways=gw, vms=4 * n, bare_metal=4,
                  logical_switches=8, servers=2, name=f'bench-{fabric}-{n}')
    if fabric == 'vcf':
        return builders.vcf(spines=4, leaves=28, hypervisors=n - sn - gw - 1,
                            **common)
    return builders.clos(spines=4, leaves=16, hw_vteps=2,
                         hypervisors=n - sn - gw - 2, **common)


def cpu_times():
    """The machine's CPU time counters (/proc/stat 'cpu' line), ticks."""
    with open('/proc/stat') as f:
        return [int(x) for x in f.readline().split()[1:]]


def steal_pct(before, after):
    """% of the CPU time between two cpu_times() that the hypervisor gave
    to someone else (steal): the machine was slower by that much, whatever
    was measured."""
    delta = [b - a for a, b in zip(before, after)]
    total = sum(delta[:8])          # guest time is already in user
    return round(100 * delta[7] / total, 1) if total and len(delta) > 7 \
        else None


def machine():
    def first(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  timeout=10).stdout.splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return 'unknown'
    cpu = 'unknown'
    try:
        with open('/proc/cpuinfo') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f
                       if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    with open('/proc/meminfo') as f:
        mem_kb = int(f.readline().split()[1])
    return {'cpu': cpu, 'cores': os.cpu_count(),
            'memory_gib': round(mem_kb / 2**20, 1),
            'kernel': platform.release(),
            'ovs': first(['ovs-vswitchd', '--version']),
            'frr': first(['/usr/lib/frr/zebra', '--version'])}


def plot(rows, fabric, path, overlay=False):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    xs = [r['transport_nodes'] for r in rows]
    n = 3 if overlay else 2
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4))
    a1, a2 = axes[0], axes[1]
    a1.plot(xs, [r['boot_s'] for r in rows], 'o-', label='underlay verified')
    a1.plot(xs, [r['start_s'] for r in rows], 's--', label='processes up')
    if overlay:
        a1.plot(xs, [r.get('overlay_boot_s') for r in rows], '^-',
                label='overlay verified (every VM pair)')
        a1.axhline(OVERLAY_TARGET_S, color='red', ls=':',
                   label=f'target {OVERLAY_TARGET_S:.0f} s @ 100')
    elif fabric == 'vcf':
        a1.axhline(TARGET_S, color='red', ls=':', label='target 60 s @ 100')
    a1.set_xlabel('transport nodes (4 VMs each)')
    a1.set_ylabel('seconds from the start')
    a1.legend(fontsize=8)
    a2.plot(xs, [r['peak_rss_mb'] for r in rows], 'o-', color='tab:green')
    a2.axhline(TARGET_MB, color='red', ls=':', label='target 4 GiB @ 100')
    a2.set_xlabel('transport nodes (4 VMs each)')
    a2.set_ylabel('memory, MiB (PSS of every lab process)')
    a2.legend(fontsize=8)
    if overlay:
        a3 = axes[2]
        a3.plot(xs, [r.get('idle_cpu_pct') for r in rows], 'o-',
                color='tab:purple', label='settled lab, all processes')
        a3.axhline(IDLE_TARGET_PCT, color='red', ls=':',
                   label=f'target {IDLE_TARGET_PCT:.0f} % @ 100')
        a3.set_xlabel('transport nodes (4 VMs each)')
        a3.set_ylabel('idle CPU, % of one core')
        a3.legend(fontsize=8)
    fig.suptitle(f'{fabric.upper()} lab boot vs size ({os.cpu_count()} '
                 'cores)' + (', with the controller and overlay'
                             if overlay else ''))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_idle(rows, path, top=8):
    """Idle CPU per process kind of the largest lab of each fabric."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    big = {}
    for r in rows:
        if r.get('idle_by_kind') and r['transport_nodes'] >= \
                big.get(r['fabric'], {}).get('transport_nodes', 0):
            big[r['fabric']] = r
    if not big:
        return
    fig, axes = plt.subplots(1, len(big), figsize=(6 * len(big), 4),
                             squeeze=False)
    for ax, (fab, r) in zip(axes[0], sorted(big.items())):
        kinds = r['idle_by_kind'][:top]
        labels = [f"{k['role']}\n{k['program']} x{k['processes']}"
                  for k in kinds]
        ax.barh(range(len(kinds)), [k['pct'] for k in kinds])
        ax.set_yticks(range(len(kinds)), labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel('% of one core')
        ax.set_title(f"{fab}: {r['transport_nodes']} transport nodes, "
                     f"idle {r['idle_cpu_pct']} % in all "
                     f"(BFD {r.get('bfd_interval_ms')} ms)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


ROW_KEYS = ('transport_nodes', 'vms', 'nodes', 'links', 'start_s', 'boot_s',
            'peak_rss_mb', 'vtep_pairs', 'reachable_pairs', 'bfd_interval_ms',
            'overlay_pairs', 'overlay_reachable', 'overlay_first_round',
            'overlay_boot_s', 'isolation_leaks', 'idle_cpu_pct',
            'idle_by_kind', 'idle_bfd_flaps', 'idle_cfm_flaps',
            'idle_service_node_down_events')


def run(fabric=None, sizes='10,25,50,100', progress=print, overlay=False,
        idle_s=60):
    counts = [int(x) for x in str(sizes).split(',') if x.strip()]
    bad = [n for n in counts if n < 8]
    if bad:
        raise ValueError('--sizes: each size is a transport-node count >= 8')
    if fabric in (None, 'both'):
        fabrics = ['vcf', 'clos'] if overlay or fabric == 'both' else ['vcf']
    else:
        fabrics = [fabric]
    name = f"bench-boot-{'-'.join(fabrics)}" + ('-overlay' if overlay else '')
    rows, passed, k = [], True, 0
    for fab in fabrics:
        for n in counts:
            k += 1
            progress(f'[{k}/{len(counts) * len(fabrics)}] {fab} lab with {n} '
                     'transport nodes')
            spec = lab_for(fab, n)
            res, _ = topo.run(spec, progress=progress, save=False,
                              overlay=overlay, idle_s=idle_s)
            m = res['metrics']
            row = {key: m.get(key) for key in ROW_KEYS if key in m}
            row.update(fabric=fab, passed=res['passed'])
            if not res['passed']:
                row['evidence'] = [a for a in res['artifacts']
                                   if a.endswith('result.json')]
            rows.append(row)
            passed = passed and res['passed']
    out_dir = results.run_dir(name)
    pngs = []
    for fab in fabrics:
        mine = [r for r in rows if r['fabric'] == fab]
        png = os.path.join(out_dir, f'boot-{fab}.png')
        plot(mine, fab, png, overlay)
        pngs.append(png)
    if overlay:
        png = os.path.join(out_dir, 'idle-by-process.png')
        plot_idle(rows, png)
        pngs.append(png)
    metrics = {'runs': rows, 'machine': machine(), 'overlay': overlay,
               'targets': targets(rows, overlay)}
    res = results.result(name, f"{'+'.join(fabrics)} sizes {sizes}",
                         passed, metrics, pngs)
    results.save(res, out_dir)
    res['table'] = table(rows, overlay)
    return res


def targets(rows, overlay):
    """[{'what', 'limit', 'measured', 'met'}] at TARGET_NODES."""
    out = []
    for r in rows:
        if r['transport_nodes'] != TARGET_NODES:
            continue
        fab = r['fabric']
        if not overlay:
            if fab == 'vcf':
                out.append({'what': 'vcf boot to underlay verified, s',
                            'limit': TARGET_S, 'measured': r['boot_s'],
                            'met': bool(r['passed'] and r['boot_s'] and
                                        r['boot_s'] <= TARGET_S)})
            out.append({'what': f'{fab} memory, MiB', 'limit': TARGET_MB,
                        'measured': r['peak_rss_mb'],
                        'met': r['peak_rss_mb'] <= TARGET_MB})
            continue
        ob = r.get('overlay_boot_s')
        out += [{'what': f'{fab} boot to overlay verified, s',
                 'limit': OVERLAY_TARGET_S, 'measured': ob,
                 'met': ob is not None and ob <= OVERLAY_TARGET_S},
                {'what': f'{fab} memory, MiB', 'limit': TARGET_MB,
                 'measured': r['peak_rss_mb'],
                 'met': r['peak_rss_mb'] <= TARGET_MB},
                {'what': f'{fab} settled idle CPU, % of one core',
                 'limit': IDLE_TARGET_PCT,
                 'measured': r.get('idle_cpu_pct'),
                 'met': r.get('idle_cpu_pct') is not None and
                 r['idle_cpu_pct'] <= IDLE_TARGET_PCT}]
    return out


def table(rows, overlay):
    head = ['fabric', 'transport', 'VMs', 'nodes', 'start s', 'underlay s',
            'MiB', 'VTEP pairs ok']
    if overlay:
        head += ['BFD ms', 'overlay s', 'VM pairs ok', 'idle %core',
                 'top idle', 'flaps', 'SN down']
    out = [tuple(head)]
    for r in rows:
        row = [r['fabric'], r['transport_nodes'], r['vms'], r['nodes'],
               r['start_s'], r['boot_s'], r['peak_rss_mb'],
               f"{r['reachable_pairs']}/{r['vtep_pairs']}"]
        if overlay:
            top = (r.get('idle_by_kind') or [{}])[0]
            row += [r.get('bfd_interval_ms'), r.get('overlay_boot_s'),
                    f"{r.get('overlay_reachable')}/{r.get('overlay_pairs')}",
                    r.get('idle_cpu_pct'),
                    f"{top.get('role')} {top.get('program')} {top.get('pct')}"
                    if top else '-',
                    (r.get('idle_bfd_flaps') or 0) +
                    (r.get('idle_cfm_flaps') or 0),
                    r.get('idle_service_node_down_events')]
        out.append(tuple(row))
    return out
