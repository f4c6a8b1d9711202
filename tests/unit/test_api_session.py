"""The kept-open API session (controllers.service.ApiSession) against a
local HTTP server: JSON both ways, the token on writes only, one
connection for many requests, a new one after close()."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from controllers.service import ApiSession


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'          # keep-alive
    seen = []

    def _answer(self):
        n = int(self.headers.get('content-length') or 0)
        body = json.loads(self.rfile.read(n)) if n else None
        Handler.seen.append((self.command, self.path,
                             self.headers.get('authorization'), body,
                             self.client_address[1]))
        out = json.dumps({'ok': True}).encode()
        self.send_response(201 if self.command == 'POST' else 200)
        self.send_header('content-length', str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


def test_a_session_keeps_one_connection_and_sends_the_token_on_writes():
    Handler.seen = []
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        api = ApiSession(f'http://127.0.0.1:{srv.server_port}/api/v1',
                         'tok', None)
        assert api.request('GET', '/x') == (200, {'ok': True})
        assert api.request('POST', '/y', {'a': 1}) == (201, {'ok': True})
        (m1, p1, auth1, _, port1), (m2, p2, auth2, body2, port2) = \
            Handler.seen
        assert (m1, p1, auth1) == ('GET', '/api/v1/x', None)
        assert (m2, p2, auth2, body2) == ('POST', '/api/v1/y',
                                          'Bearer tok', {'a': 1})
        assert port1 == port2                     # the same connection
        api.close()                               # a new one afterwards
        assert api.request('GET', '/z')[0] == 200
        assert Handler.seen[-1][4] != port1
        api.close()
    finally:
        srv.shutdown()
        srv.server_close()
