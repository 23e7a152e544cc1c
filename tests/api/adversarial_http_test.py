"""A hostile HTTP client against the real daemon (issue #15), over raw sockets on
127.0.0.1: chunked trailers, Host rules, field syntax, absolute-form targets,
unimplemented codings and methods, duplicated credentials, 100-continue for refused
requests, DNS rebinding against the same-origin check, and JSON nested to crash
depth. Each refusal also proves the daemon is still up and nothing changed."""
import json
import socket
import time

from api_harness import TestCase, harness, main, service, sh

KEY = harness.TEST_API_KEY
AUTH = harness.auth_header()
WEB = service("web", sh("while true; do sleep 0.2; done"))


def exchange(port, raw, send_more=None, timeout=10):
    """Sends `raw`, then reads until the daemon closes or answers; returns the bytes.
    `send_more` (an iterable of chunks) is streamed after, stopping when refused."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(raw)
        sent = 0
        if send_more is not None:
            for chunk in send_more:
                try:
                    s.sendall(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    break
                sent += len(chunk)
        data = b""
        try:
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
                if b"\r\n\r\n" in data:
                    head, _, body = data.partition(b"\r\n\r\n")
                    length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                    if length and len(body) >= int(length[0].split(b":")[1]):
                        break
                    if head.startswith(b"HTTP/1.1 100 "):
                        continue
        except (ConnectionResetError, socket.timeout):
            pass
        return data, sent
    finally:
        s.close()


def status(data):
    return int(data[9:12]) if data.startswith(b"HTTP/1.1 ") else 0


class AdversarialHttp(TestCase):
    def setUp(self):
        # A list, so a foreign Origin is refused (without one every origin is allowed: issue 14).
        self.d = self.daemon(WEB + '\n[http]\nallowed_origins = ["https://ops.example"]\n')
        self.d.wait_running("web")
        self.pid = self.d.service_state("web")["pid"]

    def tearDown(self):
        self.assertTrue(self.d.running(), self.d.describe())
        self.assertEqual(self.d.curl("GET", "/health")[0], 200)

    def answer(self, raw):
        return exchange(self.d.port, raw.encode() if isinstance(raw, str) else raw)[0]

    def test_trailer_authorization_does_not_authenticate(self):
        got = self.answer("POST /v1/services/web/restart HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "0\r\n%s\r\n\r\n" % AUTH)
        self.assertEqual(status(got), 401, got)
        self.assertEqual(self.d.service_state("web")["pid"], self.pid)

    def test_endless_trailer_refused_early(self):
        # Public path, no key: trailers were kept without limit before.
        head = b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-Flood: "
        chunks = (b"a" * 65536 for _ in range(4096))  # 256 MiB offered
        got, sent = exchange(self.d.port, head, chunks)
        self.assertEqual(status(got), 431, got[:200])
        self.assertLess(sent, 64 << 20)  # cut off long before the end
        ext = b"POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;x="
        got, _ = exchange(self.d.port, ext, (b"e" * 65536 for _ in range(256)))
        self.assertEqual(status(got), 431, got[:200])

    def test_host_rules(self):
        for raw in ("GET /health HTTP/1.1\r\n\r\n",
                    "GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                    "GET /health HTTP/1.1\r\nHost: a b\r\n\r\n",
                    "GET /health HTTP/1.1\r\nHost: a/b@c\r\n\r\n"):
            self.assertEqual(status(self.answer(raw)), 400, raw)
        self.assertEqual(status(self.answer("GET /health HTTP/1.0\r\n\r\n")), 200)

    def test_field_syntax(self):
        for raw in ("GET /health HTTP/1.1\r\nHost : x\r\n\r\n",
                    "GET /health HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
                    "GET /v1/services HTTP/1.1\r\nHost: x\r\n%s\r\nAuthorization: Bearer other\r\n\r\n" % AUTH,
                    "GET /v1/services HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer other\r\n%s\r\n\r\n" % AUTH):
            self.assertEqual(status(self.answer(raw)), 400, raw)

    def test_absolute_form_and_unimplemented(self):
        got = self.answer("GET http://127.0.0.1:%d/v1/services HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % (self.d.port, AUTH))
        self.assertEqual(status(got), 200, got[:300])
        self.assertEqual(status(self.answer("BREW /health HTTP/1.1\r\nHost: x\r\n\r\n")), 501)
        self.assertEqual(status(self.answer("TRACE /health HTTP/1.1\r\nHost: x\r\n\r\n")), 501)
        got = self.answer("POST /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
        self.assertEqual(status(got), 501, got)

    def test_no_continue_for_a_refused_request(self):
        for raw, want in (
                ("POST /v1/services HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Length: 20\r\nExpect: 100-continue\r\n\r\n", 401),
                ("POST /v1/services HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong-key-0123456789\r\n"
                 "Content-Length: 20\r\nExpect: 100-continue\r\n\r\n", 401),
                ("POST /v1/services HTTP/1.1\r\nHost: x\r\n%s\r\nOrigin: http://evil.example\r\n"
                 "Content-Length: 20\r\nExpect: 100-continue\r\n\r\n" % AUTH, 403),
                ("POST /v1/services HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: 999999999\r\n"
                 "Expect: 100-continue\r\n\r\n" % AUTH, 413)):
            got = self.answer(raw)
            self.assertEqual(status(got), want, got)
            self.assertNotIn(b"100 Continue", got)

    def test_dns_rebinding_is_not_same_origin(self):
        # evil.example resolves to 127.0.0.1: Host and Origin agree, the listener does not.
        evil = "evil.example:%d" % self.d.port
        got = self.answer("POST /v1/services/web/restart HTTP/1.1\r\nHost: %s\r\nOrigin: http://%s\r\n%s\r\n"
                          "Content-Length: 0\r\n\r\n" % (evil, evil, AUTH))
        self.assertEqual(status(got), 403, got)
        self.assertEqual(self.d.service_state("web")["pid"], self.pid)
        for same in ("http://127.0.0.1:%d" % self.d.port, "http://localhost:%d" % self.d.port):
            got = self.answer("GET /v1/services HTTP/1.1\r\nHost: x\r\nOrigin: %s\r\n%s\r\n\r\n" % (same, AUTH))
            self.assertEqual(status(got), 200, got[:300])
            self.assertIn(b"Access-Control-Allow-Origin: " + same.encode(), got)

    def test_json_nested_to_crash_depth(self):
        body = b"[" * 30000 + b"]" * 30000
        for path, method in (("/v1/services", "POST"), ("/v1/services/deep", "PUT")):
            got = self.answer(("%s %s HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Type: application/json\r\n"
                               "Content-Length: %d\r\n\r\n" % (method, path, AUTH, len(body))).encode() + body)
            self.assertEqual(status(got), 400, got[:300])
            self.assertEqual(json.loads(got.partition(b"\r\n\r\n")[2])["detail"]["limit"], 64)
            self.assertTrue(self.d.running(), self.d.describe())
        nested = b'{"name": "deep", "command": ["true"], "env": ' + b'{"a": ' * 100 + b'"x"' + b"}" * 101
        got = self.answer(("POST /v1/services HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Type: application/json\r\n"
                           "Content-Length: %d\r\n\r\n" % (AUTH, len(nested))).encode() + nested)
        self.assertEqual(status(got), 400, got[:300])


if __name__ == "__main__":
    main()
