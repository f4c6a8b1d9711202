"""Start and stop a controller cluster for a running lab (`controllers: 3`
or 5 in its spec; docs/cluster.md): each controller node runs in its own
namespace (`nsxl-ctlN`, made by the lab on the management network) an
etcd member and the controller (controllers.main --cluster-node), both
recorded by PID for `./run.py clean`.

    ctl = make(plan)            # Controller for one node, Cluster for more
    ctl.start(); ctl.get('/cluster'); ctl.member('ctl2').kill(); ...

A Cluster answers like a Controller (url, token, request, get, log_path:
its first node's) through the first node whose API answers; member(name)
reaches one node.
"""
import json
import os
import signal
import subprocess
import time
import urllib.error

from topologies import records

from .service import Controller, stop_process

ETCD_CLIENT, ETCD_PEER = 2379, 2380
# a dead etcd leader is replaced after 1-2 election timeouts (raft's
# randomized timer), and no write commits meanwhile: it bounds a takeover
# when the dead node led etcd (docs/cluster.md); etcd wants the timeout at
# least 5 heartbeats
HEARTBEAT_MS, ELECTION_MS = 50, 250
# etcd's members run at the datapaths' priority, not below them as the
# controllers do: a heartbeat late by a tick under the lab's load is an
# election for nothing (the three members: 22 % of one core at the
# controller-failover baseline, docs/cluster.md)
ETCD_NICE = 0
LEASE_S = 2          # a node's membership lasts this long without renewal


def make(plan, run_root=None, cfm_interval_ms=100):
    """The controller of a lab plan: one (Controller) or a cluster."""
    if plan.get('controllers'):
        return Cluster(plan, run_root, cfm_interval_ms)
    return Controller(plan, run_root, cfm_interval_ms)


def etcd_url(ip, port, tls):
    return f"{'https' if tls else 'http'}://{ip}:{port}"


def etcd_cmd(name, ip, data_dir, peers, tls, token, cert_dir=None):
    """etcd's command line for member `name` at `ip` ({name: ip} of every
    member in `peers`); with `tls` clients and peers need a certificate of
    the lab's CA (the controller node's, in `cert_dir`)."""
    cluster = ','.join(f'{n}={etcd_url(p, ETCD_PEER, tls)}'
                       for n, p in sorted(peers.items()))
    cmd = ['etcd', '--name', name, '--data-dir', data_dir,
           '--listen-peer-urls', etcd_url(ip, ETCD_PEER, tls),
           '--initial-advertise-peer-urls', etcd_url(ip, ETCD_PEER, tls),
           '--listen-client-urls', etcd_url(ip, ETCD_CLIENT, tls),
           '--advertise-client-urls', etcd_url(ip, ETCD_CLIENT, tls),
           '--initial-cluster', cluster, '--initial-cluster-state', 'new',
           '--initial-cluster-token', token,
           '--heartbeat-interval', str(HEARTBEAT_MS),
           '--election-timeout', str(ELECTION_MS), '--pre-vote',
           '--logger', 'zap', '--log-level', 'warn']
    if tls:
        key, cert, ca = (os.path.join(cert_dir, f) for f in (
            'controller.key', 'controller.pem', 'ca.pem'))
        for side in ('', 'peer-'):
            cmd += [f'--{side}cert-file', cert, f'--{side}key-file', key,
                    f'--{side}trusted-ca-file', ca,
                    f'--{side}client-cert-auth']
    return cmd


def leader_of(rows, hosts):
    """The node ({node: address} `hosts`) whose etcd member leads, from
    `etcdctl endpoint status --cluster -w json` rows, or None."""
    for r in rows:
        st = r.get('Status', {})
        if st.get('header', {}).get('member_id') == st.get('leader') and \
                st.get('leader'):
            host = r.get('Endpoint', '').split('://')[-1].rsplit(':', 1)[0]
            return next((n for n, h in hosts.items() if h == host), None)
    return None


def raft_term(rows):
    """The highest raft term the members report (etcdctl endpoint status
    rows): it grows by one at each election (none fail, with pre-vote)."""
    return max((int(r.get('Status', {}).get('raft_term', 0)) for r in rows),
               default=None)


class ClusterNode(Controller):
    """One controller node: its etcd member and its controller, in its
    namespace."""

    def __init__(self, plan, name, run_root=None, cfm_interval_ms=100):
        super().__init__(plan, run_root, cfm_interval_ms)
        root = run_root or records.RUN_ROOT
        me = plan['controllers'][name]
        self.name = name
        self.dir = os.path.join(root, name)
        self.pki_dir = self.dir          # controller.key/.pem, ca.pem
        self.host = me['mgmt_ip'].split('/')[0]
        self.url = self.url.replace(
            plan['mgmt']['root_ip'].split('/')[0], self.host)
        self.ns = records.ns_name(name)
        self.prefix, self.what = ['ip', 'netns', 'exec', self.ns], \
            f'controller {name}'
        self.etcd = None

    @property
    def peers(self):
        return {n: c['mgmt_ip'].split('/')[0]
                for n, c in self.plan['controllers'].items()}

    def extra_args(self):
        return ['--db', ':memory:', '--cluster-node', self.name, '--etcd',
                etcd_url(self.host, ETCD_CLIENT, self.tls), '--lease',
                str(LEASE_S)]

    @property
    def etcd_log(self):
        return os.path.join(self.dir, 'etcd.log')

    def start_etcd(self):
        os.makedirs(self.dir, exist_ok=True)
        log = open(self.etcd_log, 'a')
        self.etcd = subprocess.Popen(
            self.prefix + ['nice', '-n', str(ETCD_NICE)] + etcd_cmd(
                self.name, self.host, os.path.join(self.dir, 'etcd'),
                self.peers, self.tls, self.plan['name'], self.dir),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        records.add_process(self.etcd.pid, f'etcd {self.name}')
        return self

    def start(self, timeout=60):
        if self.etcd is None or self.etcd.poll() is not None:
            self.start_etcd()
        return super().start(timeout)

    def kill(self):
        """SIGKILL the node's controller and etcd member (a node that
        dies); start() brings it back with its etcd data."""
        procs = [p for p in (self.proc, self.etcd)
                 if p is not None and p.poll() is None]
        for p in procs:                # both at once, as a node dies
            p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait(5)

    def stop(self, grace=3.0):
        super().stop(grace)
        stop_process(self.etcd, grace)


class Cluster:
    """Every node of a lab's controller cluster (see the module's doc)."""

    def __init__(self, plan, run_root=None, cfm_interval_ms=100):
        self.plan = plan
        self.members = {n: ClusterNode(plan, n, run_root, cfm_interval_ms)
                        for n in plan['controllers']}
        first = next(iter(self.members.values()))
        self.tls, self.ca_path = first.tls, first.ca_path
        self.token = None

    def member(self, name):
        if name not in self.members:
            raise KeyError(f'no controller node {name!r}; the cluster has '
                           + ', '.join(self.members))
        return self.members[name]

    @property
    def first(self):
        return next(iter(self.members.values()))

    url = property(lambda self: self.first.url)
    log_path = property(lambda self: self.first.log_path)
    token_path = property(lambda self: self.first.token_path)

    @property
    def proc(self):
        return self.first.proc

    def start(self, timeout=90):
        """Every etcd member at once (they wait for each other), then the
        controllers; each given the same API token."""
        import secrets
        from topologies import pki
        if self.token is None:
            self.token = secrets.token_urlsafe(24)
        for m in self.members.values():
            os.makedirs(m.dir, exist_ok=True)
            m.token = self.token
            pki.write_private(m.token_path, self.token + '\n')
            m.start_etcd()
        deadline = time.monotonic() + timeout
        for m in self.members.values():
            m.start(max(5, deadline - time.monotonic()))
        return self

    def stop(self, grace=3.0):
        for m in self.members.values():
            m.stop(grace)

    def etcd_leader(self):
        """The node whose etcd member leads the raft group now, or None
        if none answers or there is no leader."""
        return self.etcd_status()[0]

    def etcd_status(self):
        """(the node whose etcd member leads, the raft term), asked of the
        first live member with etcdctl; (None, None) if none answers."""
        for m in self._live():
            cmd = m.prefix + ['etcdctl', '--endpoints',
                              etcd_url(m.host, ETCD_CLIENT, m.tls),
                              '--command-timeout', '2s', 'endpoint',
                              'status', '--cluster', '-w', 'json']
            if m.tls:
                cmd += ['--cacert', os.path.join(m.dir, 'ca.pem'), '--cert',
                        os.path.join(m.dir, 'controller.pem'), '--key',
                        os.path.join(m.dir, 'controller.key')]
            r = subprocess.run(cmd, capture_output=True, text=True,
                               env=dict(os.environ, ETCDCTL_API='3'),
                               timeout=10)
            try:
                rows = json.loads(r.stdout)
            except ValueError:
                continue
            return leader_of(rows, {n: c.host for n, c in
                                    self.members.items()}), raft_term(rows)
        return None, None

    def logs(self):
        """Every node's controller and etcd logs: the first node's
        controller log as controller.log (as a single controller's), the
        others as NODE-controller.log, and NODE-etcd.log."""
        out = {}
        for i, m in enumerate(self.members.values()):
            out['controller.log' if i == 0 else
                f'{m.name}-controller.log'] = m.log_path
            out[f'{m.name}-etcd.log'] = m.etcd_log
        return out

    def _live(self):
        return [m for m in self.members.values()
                if m.proc is not None and m.proc.poll() is None]

    def request(self, method, path, body=None):
        """Through the first node whose process runs and whose API
        answers (a cut-off node answers writes 503: the caller sees it)."""
        last = None
        for m in self._live():
            try:
                return m.request(method, path, body)
            except (OSError, urllib.error.URLError) as exc:
                last = exc
        raise RuntimeError(f'no controller node answered {method} {path}: '
                           f'{last}')

    def get(self, path):
        status, body = self.request('GET', path)
        if status != 200:
            raise RuntimeError(f'GET {path}: {status} {body}')
        return body
