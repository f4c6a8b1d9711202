"""The API over HTTPS with the lab's CA (controllers/pki.py): a client that
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

from controllers import api, model, pki


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
