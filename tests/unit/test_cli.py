"""run.py as a user meets it without root: listing, plans, bad input."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def run(*args):
    return subprocess.run([sys.executable, os.path.join(ROOT, 'run.py'),
                           *args], capture_output=True, text=True, cwd=ROOT)


def test_the_default_job_is_the_small_clos_lab_checked_with_overlay():
    """`./run.py` alone (make run) once failed before any lab started: it
    built its own options and missed the ones added to topo since."""
    sys.path.insert(0, ROOT)
    import run as runpy
    args = runpy.default_args()
    assert (args.command, args.topo, args.check, args.overlay) == \
        ('topo', 'clos', True, True)
    spec = runpy.lab_spec(args)            # every option it reads is set
    assert spec['name'] == 'clos-small' and 'tls' not in spec
    assert runpy.default_args(as_json=True).json


def test_list_shows_labs():
    r = run('list')
    assert r.returncode == 0
    for lab in ('clos-small', 'vcf-small', 'clos-large', 'vcf-large'):
        assert lab in r.stdout


def test_plan_needs_no_root_and_is_json():
    r = run('topo', '--topo', 'vcf', '--leaves', '3', '--plan')
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan['fabric'] == 'vcf'
    assert sum(p['role'] == 'leaf' for p in plan['nodes'].values()) == 3


def test_bad_sizes_are_refused_with_the_field(tmp_path):
    r = run('topo', '--topo', 'vcf', '--leaves', '31', '--plan')
    assert r.returncode == 2
    assert 'vcf.leaves: a Virtual Chassis Fabric pod has at most 30 leaves' \
        in r.stderr


def test_bad_lab_file_lists_every_problem(tmp_path):
    bad = tmp_path / 'bad.yaml'
    bad.write_text('name: x\nfabric: clos\nnodes:\n  s1: {role: spine}\n'
                   '  l1: {role: leaf, color: red}\nlinks: [s1-l1, l1-zz]\n')
    r = run('topo', '--topo', str(bad), '--plan')
    assert r.returncode == 2
    assert 'nodes.l1.color: unknown key for a leaf' in r.stderr
    assert "unknown node 'zz'" in r.stderr
