"""controllers/oflisten.py: the OpenFlow listener reports each TLS
session it refuses (os-ken's native hub would swallow it) and hands the
accepted ones to os-ken's handler. A real listener on loopback."""
import socket
import ssl
import threading
import time

from os_ken.lib import hub

from controllers import oflisten
from topologies import pki


def _listen(ctl, on_refused, handled):
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    cls = oflisten.listener_class(on_refused)
    srv = cls(('127.0.0.1', port), lambda sock, addr: handled.append(
        sock.recv(5)), keyfile=ctl['key'], certfile=ctl['cert'],
        cert_reqs=ssl.CERT_REQUIRED, ca_certs=ctl['ca'],
        ssl_ctx=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return port


def _client(port, files, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_cert_chain(files['cert'], files['key'])
    ctx.load_verify_locations(ca)
    with socket.create_connection(('127.0.0.1', port), timeout=5) as raw:
        try:
            with ctx.wrap_socket(raw) as s:
                s.sendall(b'hello')
                s.recv(1)            # the server's verdict, or its close
        except (ssl.SSLError, OSError):
            pass


def _until(fn, timeout=5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return True
        time.sleep(0.02)
    return False


def test_refusals_are_reported_and_lab_nodes_served(tmp_path):
    ctl = pki.make_lab(str(tmp_path / 'pki'), '127.0.0.1',
                       {'hv1': (str(tmp_path / 'hv1'), '127.0.0.1')})
    pki.make_lab(str(tmp_path / 'other'), '127.0.0.1',
                         {'hv1': (str(tmp_path / 'x'), '127.0.0.1')})
    refused, handled = [], []
    port = _listen(ctl, lambda a, r: refused.append((a, r)), handled)
    _client(port, pki.node_files(str(tmp_path / 'hv1')), ctl['ca'])
    assert _until(lambda: handled == [b'hello']) and refused == []
    _client(port, pki.node_files(str(tmp_path / 'x')), ctl['ca'])
    assert _until(lambda: refused)
    assert refused[0][0] == '127.0.0.1'
    assert 'certificate' in refused[0][1], refused
    # a peer that speaks no TLS at all
    with socket.create_connection(('127.0.0.1', port), timeout=5) as raw:
        raw.sendall(b'\x04\x00\x00\x08\x00\x00\x00\x01')   # OpenFlow HELLO
    assert _until(lambda: len(refused) == 2), refused
    assert handled == [b'hello']


def test_a_plain_listener_is_left_to_os_ken(tmp_path):
    cls = oflisten.listener_class(lambda a, r: None)
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]

    def handle(sock, addr):
        pass
    srv = cls(('127.0.0.1', port), handle)
    assert srv.handle is handle and isinstance(srv, hub.StreamServer)
    srv.server.close()


def test_a_switch_that_closes_its_session_is_declared_dead_at_once():
    """os-ken's native hub cannot stop a datapath's send loop: without
    wake_sender the datapath stays alive until something is sent to it.
    A real Datapath on a loopback TCP session; the switch side closes."""
    from os_ken import cfg
    from os_ken.base import app_manager  # noqa: F401  (import order)
    import os_ken.controller.controller as ofc
    from os_ken.controller.handler import DEAD_DISPATCHER
    cfg.CONF(args=[], project='os_ken')
    plain = ofc.Datapath._recv_loop
    try:
        oflisten.install(lambda *a: None, cfg.CONF)
        assert ofc.Datapath._recv_loop.wakes_sender
        oflisten.install(lambda *a: None, cfg.CONF)       # not twice
        assert ofc.Datapath._recv_loop.__closure__[0].cell_contents is plain
        with socket.socket() as srv:
            srv.bind(('127.0.0.1', 0))
            srv.listen(1)
            switch = socket.create_connection(srv.getsockname())
            ours, _ = srv.accept()
        dp = ofc.Datapath(ours, ('127.0.0.1', 1))
        threading.Thread(target=dp.serve, daemon=True).start()
        assert switch.recv(8)[1] == 0            # the controller's HELLO
        t0 = time.monotonic()
        switch.close()
        # dead, and the send loop ended (its queue dropped), in < 0.5 s
        while (dp.state != DEAD_DISPATCHER or dp.send_q is not None) and \
                time.monotonic() - t0 < 5:
            time.sleep(0.005)
        assert dp.state == DEAD_DISPATCHER and dp.send_q is None
        assert time.monotonic() - t0 < 0.5
    finally:
        ofc.Datapath._recv_loop = plain
        cfg.CONF.clear_override('echo_request_interval')
        cfg.CONF.clear_override('maximum_unreplied_echo_requests')
