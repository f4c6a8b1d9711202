"""Start and stop the controller process for a running lab (root
namespace, management address), recorded by PID for `./run.py clean`.

The API's writes need a token made here at the first start (kept for
restarts) and saved beside the controller's log as `api-token` (mode 0600);
`request()` sends it, `./run.py cli` prints it. With TLS (the lab's
default) the controller uses the certificate the lab's CA made for it at
the lab's start (topologies/pki.py, in the lab's `pki/` directory): the API
is HTTPS, OpenFlow and OVSDB run over TLS, and `pki/ca.pem` is what
clients trust (`request()` does)."""
import http.client
import json
import os
import secrets
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from topologies import boot, pki, records

from .main import API_PORT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NICE = 10


def nice():
    """The controller's nice value: NICE, or NSXLAB_CONTROLLER_NICE (an
    integer -20..19) for an experiment on what bounds the control plane
    (README, "The distributed firewall": the dfw scenario on clos-pod at
    10 and at 0)."""
    raw = os.environ.get('NSXLAB_CONTROLLER_NICE')
    if raw is None:
        return NICE
    try:
        value = int(raw)
        if not -20 <= value <= 19:
            raise ValueError
    except ValueError:
        raise SystemExit(f'NSXLAB_CONTROLLER_NICE={raw!r}: an integer '
                         '-20..19 (the controller\'s nice value; unset: '
                         f'{NICE})') from None
    return value


def stop_process(proc, grace=3.0):
    """SIGTERM `proc` (a Popen, or None), SIGKILL after `grace` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class Controller:
    def __init__(self, plan, run_root=None, cfm_interval_ms=100):
        self.plan = plan
        self.cfm_interval_ms = cfm_interval_ms
        root = run_root or records.RUN_ROOT
        self.dir = os.path.join(root, 'controller')
        self.pki_dir = os.path.join(root, 'pki')
        self.host = plan['mgmt']['root_ip'].split('/')[0]
        self.tls = boot.tls(plan)
        scheme = 'https' if self.tls else 'http'
        self.url = f'{scheme}://{self.host}:{API_PORT}/api/v1'
        self.proc = None
        self.token = None
        self._ssl = None
        self.prefix, self.what = [], 'controller'    # (a cluster node's)

    def extra_args(self):
        return ['--db', os.path.join(self.dir, 'nsx.db')]

    @property
    def ca_path(self):
        return pki.controller_files(self.pki_dir)['ca'] if self.tls else None

    def _tls_args(self):
        """--pki for the controller, once the lab's CA made its
        certificate (Lab.start does, before any node boots)."""
        files = pki.controller_files(self.pki_dir)
        missing = [f for f in files.values() if not os.path.exists(f)]
        if missing:
            raise RuntimeError(
                f"TLS is on but the lab's PKI is missing {missing[0]}: start "
                "the lab first (its start makes the CA and every "
                "certificate), or set tls: false in the lab's spec")
        self._ssl = ssl.create_default_context(cafile=files['ca'])
        return ['--pki', self.pki_dir]

    def as_client(self):
        """Talk to a controller another process started (`./run.py map`
        beside a running lab): trust the lab's CA for its HTTPS API."""
        if self.tls:
            self._tls_args()
        return self

    @property
    def token_path(self):
        return os.path.join(self.dir, 'api-token')

    @property
    def log_path(self):
        return os.path.join(self.dir, 'controller.log')

    def start(self, timeout=30):
        os.makedirs(self.dir, exist_ok=True)
        plan_path = os.path.join(self.dir, 'plan.json')
        with open(plan_path, 'w') as f:
            json.dump(self.plan, f)
        tls_args = self._tls_args() if self.tls else []
        if self.token is None:
            self.token = secrets.token_urlsafe(24)
            pki.write_private(self.token_path, self.token + '\n')
        log = open(self.log_path, 'a')
        # The controller is management plane: on a 2-core box its start-up
        # (imports, first reconciliation) must not starve the userspace
        # datapaths that carry traffic, so it runs at a lower priority.
        self.proc = subprocess.Popen(
            self.prefix + ['nice', '-n', str(nice()), sys.executable, '-m',
                           'controllers.main', '--plan', plan_path,
                           '--listen', self.host, '--cfm-interval',
                           str(self.cfm_interval_ms), '--token-file',
                           self.token_path] + self.extra_args() + tls_args,
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
        log.close()
        records.add_process(self.proc.pid, self.what)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('the controller exited at start; see '
                                   + self.log_path)
            try:
                self.get('/transport-nodes')
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        raise RuntimeError(f'the controller API did not answer within '
                           f'{timeout} s; see {self.log_path}')

    def logs(self):
        """{name to save it under: path} of every log the controller
        writes."""
        return {'controller.log': self.log_path}

    def stop(self, grace=3.0):
        stop_process(self.proc, grace)

    def request(self, method, path, body=None):
        data, headers = _encoded(method, body, self.token)
        req = urllib.request.Request(self.url + path, data=data,
                                     method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30,
                                        context=self._ssl) as resp:
                text = resp.read()
                return resp.status, json.loads(text) if text else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b'null')

    def session(self):
        """A persistent (keep-alive) API session, as a client making many
        writes keeps one: request() opens a connection per call, and on a
        busy 2-core box its TLS handshake alone costs tens of ms."""
        return ApiSession(self.url, self.token, self._ssl)

    def get(self, path):
        status, body = self.request('GET', path)
        if status != 200:
            raise RuntimeError(f'GET {path}: {status} {body}')
        return body


def _encoded(method, body, token):
    """A request's body and headers: JSON, and the token on writes."""
    data = None if body is None else json.dumps(body).encode()
    headers = {'content-type': 'application/json'}
    if method != 'GET' and token:
        headers['authorization'] = f'Bearer {token}'
    return data, headers


class ApiSession:
    """One HTTP(S) connection to the API, kept open between requests
    (Controller.session); request() answers like Controller.request."""

    def __init__(self, url, token, context):
        u = urllib.parse.urlsplit(url)
        self.base, self.token = u.path, token
        self._open = (lambda: http.client.HTTPSConnection(
            u.hostname, u.port, context=context, timeout=30)) \
            if u.scheme == 'https' else \
            (lambda: http.client.HTTPConnection(u.hostname, u.port,
                                                timeout=30))
        self.conn = None

    def request(self, method, path, body=None):
        data, headers = _encoded(method, body, self.token)
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = self._open()
            try:
                self.conn.request(method, self.base + path, data, headers)
                resp = self.conn.getresponse()
                text = resp.read()
                return resp.status, json.loads(text) if text else None
            except (http.client.RemoteDisconnected, BrokenPipeError,
                    ConnectionResetError):
                # the server closed the idle connection before this
                # request reached it: once more on a new one
                self.close()
                if attempt == 2:
                    raise

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None
