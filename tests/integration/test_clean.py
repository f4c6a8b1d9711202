"""A lab killed with SIGKILL leaves leftovers; `./run.py clean` removes
every namespace, root link and process of it, and nothing else."""
import os
import signal
import subprocess
import sys
import time

from topologies import expand, labs, records

from .conftest import ROOT, run_py


def test_clean_after_sigkill_leaves_nothing():
    outsider = subprocess.Popen(['sleep', '300'])     # not ours: must survive
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'run.py'),
                             'cli', '--topo', 'vcf'], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stderr:
            if 'is up' in line:
                break
        else:
            raise AssertionError('the lab never came up')
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        left = records.leftovers()
        n_ns = len([n for n in expand.expand(labs.resolve('vcf'))['nodes']])
        assert len(left['namespaces']) == n_ns and left['links']
        pids = [p for ps in records.pids_in(left['namespaces']).values()
                for p in ps]
        assert pids, 'a killed lab leaves its daemons running'
        # the controller runs in the root namespace: recorded by PID
        ctl = [p['pid'] for p in records.read_state()['processes']
               if p['what'] == 'controller']
        assert ctl and records._alive(ctl[0])
        pids += ctl
        r = run_py('topo', '--topo', 'vcf')
        assert r.returncode == 1 and './run.py clean' in r.stderr
        r = run_py('clean')
        assert r.returncode == 0, r.stderr
        assert f'removed {n_ns} namespace(s)' in r.stdout
        after = records.leftovers()
        assert after == {'namespaces': [], 'links': [], 'state': False}
        out = subprocess.run(['ip', '-o', 'link'], capture_output=True,
                             text=True).stdout
        assert records.PREFIX not in out
        time.sleep(0.2)
        assert [p for p in pids if records._alive(p)] == []
        assert outsider.poll() is None
    finally:
        outsider.kill()
        if proc.poll() is None:
            proc.kill()
        if records.leftovers()['namespaces']:    # never poison later tests
            run_py('clean')


def test_vagrantfile_validates():
    r = subprocess.run(['vagrant', 'validate', '--ignore-provider'],
                       cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'validated successfully' in r.stdout


def test_ctrl_c_tears_the_lab_down():
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'run.py'),
                             'topo', '--topo', 'clos', '--check'], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        for line in proc.stderr:
            if 'started in' in line:       # up, now probing the underlay
                break
        assert records.leftovers()['namespaces']
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=60)[1]
        assert proc.returncode == 130
        assert 'interrupted: lab torn down' in rest
        assert records.leftovers() == {'namespaces': [], 'links': [],
                                       'state': False}
    finally:
        if proc.poll() is None:
            proc.kill()
