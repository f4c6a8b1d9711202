"""The API over HTTPS with the lab's CA (topologies/pki.py): a client that
trusts the lab's CA gets answers; one that trusts another CA, or that
speaks plain HTTP, is refused. A real uvicorn server on loopback."""
import json
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request

import pytest
import uvicorn

from controllers import api, model
from topologies import pki


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def https(tmp_path):
    t0 = time.monotonic()
    ca = pki.make_ca(str(tmp_path / 'pki'))
    cert, key = pki.issue(str(tmp_path / 'pki'), 'controller',
                          ips=['127.0.0.1'])
    made_ms = (time.monotonic() - t0) * 1000
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(
        api.create_app(model.Store(), token='t'), host='127.0.0.1',
        port=port, log_level='warning', ssl_certfile=cert,
        ssl_keyfile=key))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield {'url': f'https://127.0.0.1:{port}/api/v1', 'port': port,
           'ca': ca, 'made_ms': made_ms, 'dir': tmp_path}
    server.should_exit = True
    th.join(5)


def test_a_client_that_trusts_the_lab_ca_is_answered(https):
    ctx = ssl.create_default_context(cafile=https['ca'])
    with urllib.request.urlopen(https['url'] + '/logical-switches',
                                context=ctx, timeout=5) as r:
        assert r.status == 200 and json.loads(r.read()) == []
    # making the CA and the server's certificate costs milliseconds
    assert https['made_ms'] < 2000


def test_a_client_with_another_ca_or_plain_http_is_refused(https):
    other = pki.make_ca(str(https['dir'] / 'other'))
    ctx = ssl.create_default_context(cafile=other)
    with pytest.raises(urllib.error.URLError) as exc:
        urllib.request.urlopen(https['url'] + '/logical-switches',
                               context=ctx, timeout=5)
    assert isinstance(exc.value.reason, ssl.SSLCertVerificationError)
    with pytest.raises((urllib.error.URLError, ConnectionError,
                        http_errors())):
        urllib.request.urlopen(
            f"http://127.0.0.1:{https['port']}/api/v1/logical-switches",
            timeout=5).read()


def test_a_certificate_for_another_address_is_refused(https):
    ctx = ssl.create_default_context(cafile=https['ca'])
    # the server's certificate names 127.0.0.1; asking for it as
    # "localhost" must fail hostname checking
    with pytest.raises(urllib.error.URLError) as exc:
        urllib.request.urlopen(
            f"https://localhost:{https['port']}/api/v1/logical-switches",
            context=ctx, timeout=5)
    assert isinstance(exc.value.reason, ssl.SSLCertVerificationError)


def http_errors():
    import http.client
    return http.client.HTTPException


def _cert(path):
    from cryptography import x509
    with open(path, 'rb') as f:
        return x509.load_pem_x509_certificate(f.read())


def test_a_lab_pki_gives_each_node_its_key_certificate_and_ca(tmp_path):
    import os
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID as EKU
    nodes = {'hv1': (str(tmp_path / 'hv1'), '198.18.0.21'),
             'vtep1': (str(tmp_path / 'vtep1'), '198.18.0.31')}
    ctl = pki.make_lab(str(tmp_path / 'pki'), '198.18.0.1', nodes)
    ca = _cert(ctl['ca'])
    for name, (run_dir, ip) in list(nodes.items()) + [
            ('controller', (None, '198.18.0.1'))]:
        files = pki.node_files(run_dir) if run_dir else ctl
        cert = _cert(files['cert'])
        cert.verify_directly_issued_by(ca)
        assert cert.subject.rfc4514_string().startswith(f'CN={name}')
        ips = cert.extensions.get_extension_for_class(
            x509.SubjectAlternativeName).value.get_values_for_type(
                x509.IPAddress)
        assert [str(i) for i in ips] == [ip]
        # both ends of a session: OVS and os-ken verify in both directions
        usages = cert.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage).value
        assert set(usages) == {EKU.SERVER_AUTH, EKU.CLIENT_AUTH}
        assert os.stat(files['key']).st_mode & 0o777 == 0o600
        assert _cert(files['ca']) == ca
    # another lab's CA did not sign them
    other = _cert(pki.make_ca(str(tmp_path / 'other')))
    with pytest.raises(Exception):
        _cert(pki.node_files(nodes['hv1'][0])['cert']) \
            .verify_directly_issued_by(other)


def _mutual_tls(server_files, client_files):
    """A TLS handshake on loopback as os-ken's listener and OVS do it (the
    server asks for a certificate of its CA and checks the chain; the
    client checks the server's) -> None, or the error."""
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(server_files['cert'], server_files['key'])
    srv.verify_mode = ssl.CERT_REQUIRED
    srv.load_verify_locations(server_files['ca'])
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cli.check_hostname = False          # OVS checks the chain, not names
    cli.load_cert_chain(client_files['cert'], client_files['key'])
    cli.load_verify_locations(client_files['ca'])
    lsock = socket.socket()
    lsock.bind(('127.0.0.1', 0))
    lsock.listen(1)
    errors = {}

    def serve():
        conn, _ = lsock.accept()
        try:
            with srv.wrap_socket(conn, server_side=True) as s:
                s.sendall(b'hello')
        except (ssl.SSLError, OSError) as exc:
            errors['server'] = exc
    th = threading.Thread(target=serve)
    th.start()
    try:
        with socket.create_connection(lsock.getsockname(), timeout=5) as raw:
            with cli.wrap_socket(raw) as s:
                assert s.recv(5) == b'hello'
    except (ssl.SSLError, OSError, AssertionError) as exc:
        errors.setdefault('client', exc)
    th.join(5)
    lsock.close()
    return errors or None


def test_a_node_of_the_lab_is_accepted_and_a_stranger_refused(tmp_path):
    nodes = {'hv1': (str(tmp_path / 'hv1'), '198.18.0.21')}
    ctl = pki.make_lab(str(tmp_path / 'pki'), '198.18.0.1', nodes)
    hv1 = pki.node_files(nodes['hv1'][0])
    assert _mutual_tls(ctl, hv1) is None
    # a device whose certificate another CA signed (trusting the lab's CA,
    # as a device configured by hand might)
    stranger = pki.make_lab(str(tmp_path / 'other'), '198.18.0.1',
                            {'hv1': (str(tmp_path / 'x'), '198.18.0.21')})
    forged = dict(pki.node_files(str(tmp_path / 'x')), ca=ctl['ca'])
    refused = _mutual_tls(ctl, forged)
    assert refused and isinstance(refused.get('server'), ssl.SSLError), \
        refused
    assert 'certificate verify failed' in str(refused['server'])
    # and a controller the node does not know is refused by the node
    refused = _mutual_tls(dict(stranger, ca=ctl['ca']), hv1)
    assert refused and isinstance(refused.get('client'), ssl.SSLError)
