"""API authentication and request guards, end to end: every refusal with its status, its
reason, and proof that nothing changed on the node (same pid, no service registered, no
event). HMAC signatures are made with the openssl CLI, never with the code under test."""
import http.client
import json
import os
import socket
import stat
import subprocess
import time

from api_harness import TestCase, harness, main, require, service, sh

require("openssl")

KEY = harness.TEST_API_KEY
HMAC_SECRET = "hmac-only-secret-abcdefghijklmnop"
WEB = service("web", sh("while true; do sleep 0.2; done"))


def openssl_sign(secret, method, path, timestamp, body=b""):
    """base64(HMAC-SHA256(secret, METHOD\\nPATH\\nTS\\nhex(sha256(body)))) by the openssl CLI."""
    digest = subprocess.run(["openssl", "dgst", "-sha256", "-r"], input=body, capture_output=True,
                            check=True).stdout.split()[0].decode()
    canonical = "%s\n%s\n%s\n%s" % (method.upper(), path, timestamp, digest)
    mac = subprocess.run(["openssl", "dgst", "-sha256", "-hmac", secret, "-binary"], input=canonical.encode(),
                         capture_output=True, check=True).stdout
    return subprocess.run(["openssl", "base64", "-A"], input=mac, capture_output=True,
                          check=True).stdout.decode().strip()


def hmac_header(secret, method, path, timestamp, body=b""):
    return "HMAC-SHA256 timestamp=%d,signature=%s" % (timestamp, openssl_sign(secret, method, path, timestamp, body))


def request(d, method, path, headers=None, body=None, source="127.0.0.1"):
    """(status, {lowercase header: [values]}, parsed JSON or raw bytes) without any default key."""
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10, source_address=(source, 0))
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
        hdrs = {}
        for k, v in r.getheaders():
            hdrs.setdefault(k.lower(), []).append(v)
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data
        return r.status, hdrs, parsed
    finally:
        c.close()


class Auth(TestCase):
    def snapshot(self, d):
        """What a refused request must not change: web's pid, the service list, the events."""
        d.wait_for(lambda: d.service_state("web"), 5, what="web in state.json")
        time.sleep(0.3)  # let the start-up events settle
        _, names = d.json("GET", "/v1/services", unix=True)
        return {"pid": d.service_state("web")["pid"], "names": sorted(s["name"] for s in names),
                "events": len(d.events())}

    def assertUnchanged(self, d, before):
        self.assertEqual(self.snapshot(d), before, "a refused request changed the node\n" + d.describe())

    def assertRefused(self, got, status, reason=None, what=""):
        self.assertEqual(got[0], status, "%s: %r" % (what, got))
        if reason:
            self.assertEqual(got[2]["detail"]["reason"], reason, what)
        return got

    def test_key_refusals_change_nothing(self):
        d = self.daemon(WEB, env={"DOCKLESS_HMAC_SECRET": HMAC_SECRET})
        d.wait_running("web")
        before = self.snapshot(d)
        spec = json.dumps({"name": "intruder", "command": ["sleep", "100"]})
        now = int(time.time())
        cases = [
            ("missing key", {}, "missing_key"),
            ("wrong key", {"Authorization": "Bearer wrong-key-0123456789abcdef"}, "unknown_key"),
            ("empty bearer", {"Authorization": "Bearer "}, "malformed_header"),
            ("other scheme", {"Authorization": "Basic " + KEY}, "malformed_header"),
            ("hmac secret as bearer", {"Authorization": "Bearer " + HMAC_SECRET}, "unknown_key"),
            ("malformed hmac", {"Authorization": "HMAC-SHA256 timestamp=abc,signature=AAAA"}, "malformed_header"),
        ]
        for what, hdrs, reason in cases:
            for method, path, body in (("POST", "/v1/services/web/restart", None),
                                       ("POST", "/v1/services", spec), ("DELETE", "/v1/services/web", None),
                                       ("GET", "/v1/services", None), ("GET", "/metrics", None)):
                h = dict(hdrs, **({"Content-Type": "application/json"} if body else {}))
                got = self.assertRefused(request(d, method, path, h, body), 401, reason, what + " " + path)
                self.assertIn('Bearer realm="dockless"', got[1].get("www-authenticate", []), what)
                self.assertNotIn(KEY, json.dumps(got[2]))
                self.assertNotIn(HMAC_SECRET, json.dumps(got[2]))
        # HMAC: a wrong secret, a stale and a future timestamp, each over the exact request.
        path = "/v1/services/web/restart"
        for what, secret, ts, reason in (("bad hmac", "not-the-secret-0123456789", now, "bad_signature"),
                                         ("stale", HMAC_SECRET, now - 600, "stale_timestamp"),
                                         ("future", HMAC_SECRET, now + 600, "future_timestamp")):
            got = request(d, "POST", path, {"Authorization": hmac_header(secret, "POST", path, ts)})
            self.assertRefused(got, 401, reason, what)
        # A signature over another path or body does not carry over.
        h = hmac_header(HMAC_SECRET, "POST", "/v1/services/web/stop", now)
        self.assertRefused(request(d, "POST", path, {"Authorization": h}), 401, "bad_signature", "other path")
        h = hmac_header(HMAC_SECRET, "POST", "/v1/services", now, b"{}")
        self.assertRefused(request(d, "POST", "/v1/services", {"Authorization": h, "Content-Type": "application/json"},
                                   spec), 401, "bad_signature", "other body")
        self.assertUnchanged(d, before)
        # The dashboard log shows no key either.
        self.assertNotIn(KEY, d.stderr_text())

        # Positive controls: the same requests with valid credentials do act.
        self.assertEqual(request(d, "GET", "/v1/services", {"Authorization": "Bearer " + KEY})[0], 200)
        for secret in (HMAC_SECRET, KEY):  # bearer keys sign too
            ts = int(time.time())
            got = request(d, "POST", path, {"Authorization": hmac_header(secret, "POST", path, ts)})
            self.assertEqual(got[0], 202, got)
        d.wait_for(lambda: d.service_state("web")["pid"] != before["pid"], 10, what="web restarted")
        body = json.dumps({"name": "signed", "command": ["sleep", "100"]}).encode()
        ts = int(time.time())
        # A v1 signature covers no query, so it is refused on a request with one (replay_test.py
        # has the v2 form, which signs it).
        got = request(d, "POST", "/v1/services?x=1", {"Authorization": hmac_header(HMAC_SECRET, "POST", "/v1/services", ts, body),
                                                      "Content-Type": "application/json"}, body)
        self.assertRefused(got, 401, "query_unsigned", "v1 with a query")
        got = request(d, "POST", "/v1/services", {"Authorization": hmac_header(HMAC_SECRET, "POST", "/v1/services", ts, body),
                                                  "Content-Type": "application/json"}, body)
        self.assertEqual(got[0], 201, got)

    def test_public_endpoints_unix_socket_and_public_read(self):
        d = self.daemon(WEB)
        for path in ("/health", "/healthz", "/readyz", "/", "/assets/app.js"):
            self.assertEqual(d.curl("GET", path, auth=False)[0], 200, path)
        for path in ("/metrics", "/v1/services", "/v1/events", "/v1/services/web/logs"):
            self.assertEqual(d.curl("GET", path, auth=False)[0], 401, path)
        # The unix socket needs no key: its file mode is the access control.
        self.assertEqual(d.curl("GET", "/v1/services", unix=True, auth=False)[0], 200)
        self.assertEqual(d.curl("GET", "/metrics", unix=True, auth=False)[0], 200)
        st = os.stat(d.sock)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o660)
        self.assertEqual(st.st_uid, 0)
        d.stop()

        d2 = self.daemon(WEB + "\n[http]\npublic_read = true\n")
        pid = d2.wait_running("web")
        for path in ("/metrics", "/v1/services", "/v1/services/web", "/v1/services/web/logs?tail=1"):
            self.assertEqual(d2.curl("GET", path, auth=False)[0], 200, path)
        self.assertEqual(d2.curl("HEAD", "/v1/services", auth=False)[0], 200)
        for method, path in (("POST", "/v1/services/web/restart"), ("DELETE", "/v1/services/web"),
                             ("POST", "/v1/reload")):
            self.assertEqual(d2.curl(method, path, auth=False)[0], 401, path)
        self.assertEqual(d2.service_state("web")["pid"], pid)

    def test_origin_and_cors(self):
        d = self.daemon(WEB + '\n[http]\nallowed_origins = ["http://ops.example:8080"]\n')
        d.wait_running("web")
        before = self.snapshot(d)
        auth = {"Authorization": "Bearer " + KEY}
        evil = "http://evil.example"
        got = request(d, "POST", "/v1/services/web/restart", dict(auth, Origin=evil))
        self.assertEqual(got[0], 403, got)
        self.assertIn(evil, got[2]["error"])
        self.assertEqual(got[2]["detail"]["origin"], evil)
        # Outside the list a read is refused too (issue 14: "403 whatever its method").
        got = request(d, "GET", "/v1/services", dict(auth, Origin=evil))
        self.assertEqual(got[0], 403)
        self.assertNotIn("access-control-allow-origin", got[1])
        pre = {"Origin": evil, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "authorization"}
        got = request(d, "OPTIONS", "/v1/services/web/restart", pre)
        self.assertEqual(got[0], 403, got)
        self.assertNotIn("access-control-allow-origin", got[1])
        self.assertUnchanged(d, before)

        # The listed origin: preflight answered, then the call itself carries ACAO.
        ok = "http://ops.example:8080"
        got = request(d, "OPTIONS", "/v1/services/web/restart", dict(pre, Origin=ok))
        self.assertEqual(got[0], 204, got)
        self.assertEqual(got[1]["access-control-allow-origin"], [ok])
        self.assertIn("POST", got[1]["access-control-allow-methods"][0])
        self.assertIn("Authorization", got[1]["access-control-allow-headers"][0])
        self.assertEqual(got[1]["access-control-max-age"], ["600"])
        self.assertEqual(got[1]["vary"], ["Origin"])
        got = request(d, "POST", "/v1/services/web/restart", dict(auth, Origin=ok))
        self.assertEqual(got[0], 202, got)
        self.assertEqual(got[1]["access-control-allow-origin"], [ok])
        # The preflight carries no key, the call itself still needs one.
        self.assertEqual(request(d, "POST", "/v1/services/web/stop", {"Origin": ok})[0], 401)
        # Same origin (the dashboard's own page) needs no listing.
        same = "http://127.0.0.1:%d" % d.port
        self.assertEqual(request(d, "POST", "/v1/services/web/stop", dict(auth, Origin=same))[0], 202)

    def test_oversized_body_refused_before_it_is_sent(self):
        d = self.daemon(WEB)
        d.wait_running("web")
        before = self.snapshot(d)
        for auth in (harness.auth_header() + "\r\n", ""):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(("POST /v1/services HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\n"
                       "Content-Length: 1000000000\r\n\r\n" % auth).encode())
            t0 = time.monotonic()
            head = s.recv(4096)
            self.assertTrue(head.startswith(b"HTTP/1.1 413 "), head)
            self.assertLess(time.monotonic() - t0, 3)
            self.assertIn(b"request body too large", head)
            s.close()
        self.assertUnchanged(d, before)

    def test_slow_client_dropped_while_others_served(self):
        d = self.daemon(WEB)
        d.wait_running("web")
        before = self.snapshot(d)
        slow = socket.create_connection(("127.0.0.1", d.port), timeout=20)
        slow.sendall(b"POST /v1/services/web/restart HTTP/1.1\r\nHost: x\r\n" + harness.auth_header().encode())
        t0 = time.monotonic()
        for _ in range(5):
            self.assertEqual(d.curl("GET", "/v1/services")[0], 200)
        self.assertLess(time.monotonic() - t0, 5)
        answer = slow.recv(4096)  # the header deadline (10 s) passes
        self.assertTrue(answer.startswith(b"HTTP/1.1 408 "), answer)
        self.assertEqual(slow.recv(4096), b"")  # and the connection is closed
        slow.close()
        self.assertUnchanged(d, before)

    def test_per_client_connection_cap(self):
        d = self.daemon(WEB + "\n[http]\nmax_connections_per_client = 4\n")
        d.wait_running("web")
        before = self.snapshot(d)
        held = [socket.create_connection(("127.0.0.1", d.port), timeout=5, source_address=("127.0.0.1", 0))
                for _ in range(4)]
        self.addCleanup(lambda: [s.close() for s in held])
        time.sleep(0.2)
        over = socket.create_connection(("127.0.0.1", d.port), timeout=5, source_address=("127.0.0.1", 0))
        over.sendall(b"POST /v1/services/web/restart HTTP/1.1\r\nHost: x\r\n" + harness.auth_header().encode()
                     + b"\r\n\r\n")
        answer = over.recv(4096)
        self.assertTrue(answer.startswith(b"HTTP/1.1 429 "), answer)
        over.close()
        # Another client is served meanwhile.
        got = request(d, "GET", "/v1/services", {"Authorization": "Bearer " + KEY}, source="127.0.0.2")
        self.assertEqual(got[0], 200, got)
        self.assertUnchanged(d, before)

    def test_first_boot_key_created_0600_and_reused(self):
        d = self.daemon(WEB, api_key=None)
        path = d.path("api-key")
        st = os.stat(path)
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o600)
        with open(path) as f:
            key = f.read().strip()
        self.assertRegex(key, r"^[0-9a-f]{64}$")
        self.assertIn(path, d.stderr_text())
        self.assertNotIn(key, d.stderr_text())
        self.assertEqual(d.curl("GET", "/v1/services", auth=False)[0], 401)
        self.assertEqual(d.curl("GET", "/v1/services", auth=False, headers=("Authorization: Bearer " + key,))[0], 200)
        d.stop()
        d.start()
        with open(path) as f:
            self.assertEqual(f.read().strip(), key)
        self.assertEqual(d.curl("GET", "/v1/services", auth=False, headers=("Authorization: Bearer " + key,))[0], 200)
        self.assertNotIn(key, d.stderr_text())

    def test_keys_file_mode_checked_and_reloaded_on_sighup(self):
        keys = "# ops keys\nalice  alice-key-0123456789abcdef\n\nbob-key-0123456789abcdef  # unnamed\n"
        d = self.daemon(WEB + '\n[http]\napi_keys_file = "keys"\n', start=False, api_key=None, files={"keys": keys})
        keys_path = os.path.join(d.dir, "keys")
        os.chmod(keys_path, 0o644)
        d.start(wait=False)
        self.assertEqual(d.proc.wait(10), 2, d.describe())
        self.assertIn("mode 0644", d.stderr_text())
        self.assertIn("chmod 600", d.stderr_text())
        self.assertFalse(os.path.exists(d.path("api-key")))
        os.chmod(keys_path, 0o600)
        d.start()
        for k in ("alice-key-0123456789abcdef", "bob-key-0123456789abcdef"):
            self.assertEqual(d.curl("GET", "/v1/services", auth=False, headers=("Authorization: Bearer " + k,))[0],
                             200, k)
        self.assertFalse(os.path.exists(d.path("api-key")), "no first-boot key when a keys file is configured")
        with open(keys_path, "w") as f:
            f.write("carol carol-key-0123456789abcdef\n")
        d.sighup()
        d.wait_for(lambda: d.curl("GET", "/v1/services", auth=False,
                                  headers=("Authorization: Bearer carol-key-0123456789abcdef",))[0] == 200,
                   10, what="carol's key after SIGHUP")
        self.assertEqual(d.curl("GET", "/v1/services", auth=False,
                                headers=("Authorization: Bearer alice-key-0123456789abcdef",))[0], 401)
        # A reload meeting an unsafe file keeps the running keys.
        os.chmod(keys_path, 0o666)
        d.sighup()
        d.wait_for(lambda: "API keys not reloaded" in d.stderr_text(), 10, what="the reload warning")
        self.assertEqual(d.curl("GET", "/v1/services", auth=False,
                                headers=("Authorization: Bearer carol-key-0123456789abcdef",))[0], 200)


if __name__ == "__main__":
    main()
