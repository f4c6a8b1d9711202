"""`./run.py bench boot`: boot-to-verified time and memory against the number
of transport nodes. Each size is a full lab run (start, verify every VTEP
pair with 1600-byte don't-fragment packets, stop); the figures are what those
runs measured. Target (issue): a VCF pod of 32 members with 100 transport
nodes and 400 VMs verified in <= 60 s using <= 4 GiB on 2 cores.
"""
import os
import platform
import subprocess

from topologies import builders

from . import results, topo

TARGET_NODES, TARGET_S, TARGET_MB = 100, 60.0, 4096.0


def lab_for(fabric, n):
    """A lab with `n` transport nodes (and 4 VMs per transport node)."""
    sn, gw = (2, 2) if n < 50 else (4, 3)
    common = dict(service_nodes=sn, gateways=gw, vms=4 * n, bare_metal=4,
                  logical_switches=8, servers=2, name=f'bench-{fabric}-{n}')
    if fabric == 'vcf':
        return builders.vcf(spines=4, leaves=28, hypervisors=n - sn - gw - 1,
                            **common)
    return builders.clos(spines=4, leaves=8, hw_vteps=2,
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


def plot(rows, fabric, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    xs = [r['transport_nodes'] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(xs, [r['boot_s'] for r in rows], 'o-', label='boot to verified')
    a1.plot(xs, [r['start_s'] for r in rows], 's--', label='processes up')
    a1.set_xlabel('transport nodes (4 VMs each)')
    a1.set_ylabel('seconds')
    a2.plot(xs, [r['peak_rss_mb'] for r in rows], 'o-', color='tab:green')
    a2.set_xlabel('transport nodes (4 VMs each)')
    a2.set_ylabel('memory, MiB (PSS of every lab process)')
    if fabric == 'vcf':
        a1.axhline(TARGET_S, color='red', ls=':', label='target 60 s @ 100')
        a2.axhline(TARGET_MB, color='red', ls=':', label='target 4 GiB @ 100')
        a2.legend()
    a1.legend()
    fig.suptitle(f'{fabric.upper()} lab boot: time and memory vs size '
                 f'({os.cpu_count()} cores)')
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def run(fabric='vcf', sizes='10,25,50,100', progress=print):
    counts = [int(x) for x in str(sizes).split(',') if x.strip()]
    bad = [n for n in counts if n < 8]
    if bad:
        raise ValueError('--sizes: each size is a transport-node count >= 8')
    rows, passed = [], True
    for i, n in enumerate(counts, 1):
        progress(f'[{i}/{len(counts)}] {fabric} lab with {n} transport '
                 'nodes')
        res, _ = topo.run(lab_for(fabric, n), progress=progress, save=False)
        m = res['metrics']
        rows.append({k: m.get(k) for k in (
            'transport_nodes', 'vms', 'nodes', 'links', 'start_s', 'boot_s',
            'peak_rss_mb', 'vtep_pairs', 'reachable_pairs')} |
            {'passed': res['passed']})
        passed = passed and res['passed']
    out_dir = results.run_dir(f'bench-boot-{fabric}')
    png = os.path.join(out_dir, 'boot.png')
    plot(rows, fabric, png)
    at_target = [r for r in rows if r['transport_nodes'] == TARGET_NODES]
    metrics = {'runs': rows, 'machine': machine()}
    if fabric == 'vcf' and at_target:
        r = at_target[0]
        metrics['target_met'] = bool(r['passed'] and r['boot_s'] <= TARGET_S
                                     and r['peak_rss_mb'] <= TARGET_MB)
    res = results.result(f'bench-boot-{fabric}', f'{fabric} sizes {sizes}',
                         passed, metrics, [png])
    results.save(res, out_dir)
    table = [('transport', 'VMs', 'nodes', 'start s', 'boot s', 'MiB',
              'pairs ok')]
    table += [(r['transport_nodes'], r['vms'], r['nodes'], r['start_s'],
               r['boot_s'], r['peak_rss_mb'],
               f"{r['reachable_pairs']}/{r['vtep_pairs']}") for r in rows]
    res['table'] = table
    return res
