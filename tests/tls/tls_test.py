"""HTTPS: the real daemon with --cert/--key (a self-signed certificate made by the
`openssl` CLI in the test), driven by the real curl and openssl s_client, and by
Python's ssl module where a test needs exact bytes (pipelining, half a handshake)."""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import api_harness  # noqa: E402  (tests/api/api_harness.py, used read-only)
import harness  # noqa: E402  (tests/e2e/harness.py, on the path through api_harness)
from api_harness import TICKER, Follower, main, require, service, wait_for  # noqa: E402

require("openssl")


def make_cert(dir, name, cn="dockless-test"):
    """A self-signed EC certificate for 127.0.0.1 (its own CA): (cert path, key path)."""
    cert, key = os.path.join(dir, name + ".crt"), os.path.join(dir, name + ".key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def fingerprint(pem_text):
    """SHA-256 fingerprint of a PEM certificate, computed by the openssl CLI."""
    p = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"], input=pem_text,
                       capture_output=True, text=True, check=True, timeout=30)
    return p.stdout.strip().split("=", 1)[1]


def served_fingerprint(port):
    """The fingerprint of the certificate the server presents right now."""
    p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost"],
                       input="", capture_output=True, text=True, timeout=30)
    start = p.stdout.find("-----BEGIN CERTIFICATE-----")
    end = p.stdout.find("-----END CERTIFICATE-----")
    if start < 0 or end < 0:
        raise AssertionError("no certificate from s_client: %s" % p.stderr[-500:])
    return fingerprint(p.stdout[start:end + len("-----END CERTIFICATE-----")] + "\n")


def copy(src, dst):
    """Atomic replacement, as a certificate renewal tool would do it."""
    with open(src, "rb") as f:
        data = f.read()
    with open(dst + ".tmp", "wb") as f:
        f.write(data)
    os.replace(dst + ".tmp", dst)


class TlsDaemon(api_harness.ApiDaemon):
    def __init__(self, config_text, cert=None, key=None, cacert=None, **kw):
        super().__init__(config_text, **kw)
        self.cert, self.key, self.cacert = cert, key, cacert

    def argv(self):
        extra = []
        if self.cert:
            extra += ["--cert", self.cert]
        if self.key:
            extra += ["--key", self.key]
        return super().argv() + extra

    @property
    def base(self):
        return "https://127.0.0.1:%d" % self.port

    def curl(self, method, path, body=None, ctype=None, unix=False, headers=(), timeout=10, cacert=None, auth=True):
        return super().curl(method, path, body, ctype, unix, headers, timeout, auth,
                            tcp_options=("--cacert", cacert or self.cacert))


class TestCase(api_harness.TestCase):
    def setUp(self):
        self.certs = self.tempdir()
        self.cert, self.key = make_cert(self.certs, "a")

    def tls_daemon(self, config_text, start=True, **kw):
        kw.setdefault("cert", self.cert)
        kw.setdefault("key", self.key)
        kw.setdefault("cacert", self.cert)
        d = TlsDaemon(config_text, **kw)
        self.addCleanup(self._cleanup_daemon, d)
        if start:
            d.start()
        return d

    def _cleanup_daemon(self, d):
        # A clean SIGTERM exit, so an ASan build reports leaks and errors here.
        try:
            if d.running():
                d.stop()
            self.assertNotIn("Sanitizer", d.stderr_text())
        finally:
            super()._cleanup_daemon(d)

    def ssl_context(self, cafile=None):
        ctx = ssl.create_default_context(cafile=cafile or self.cert)
        return ctx

    def startup_failure(self, d, timeout=15):
        """Starts a daemon expected to refuse to start: (exit code, stderr)."""
        d.start(wait=False)
        code = d.proc.wait(timeout)
        return code, d.stderr_text()


class Https(TestCase):
    def test_health_json_keepalive_pipelining(self):
        d = self.tls_daemon(service("tick", TICKER))
        status, body = d.curl("GET", "/health")
        self.assertEqual(status, 200, body)
        self.assertStatus(d.json("GET", "/v1/services"), 200)
        services = d.json("GET", "/v1/services")[1]
        self.assertIn("tick", json.dumps(services))
        # A JSON body in, JSON out, over TLS.
        status, out = d.json("POST", "/v1/services/tick/restart", {})
        self.assertIn(status, (200, 202), out)
        # Keep-alive: curl reuses one TLS connection for three requests.
        p = subprocess.run(["curl", "-sS", "--cacert", self.cert, "-w", "%{http_code} %{num_connects}\n"]
                           + ["-o", "/dev/null", d.base + "/health"] * 3,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.stdout.split("\n")[:3], ["200 1", "200 0", "200 0"], p.stderr)
        # The unix socket stays plain HTTP.
        self.assertEqual(d.curl("GET", "/health", unix=True)[0], 200)
        # Pipelining: three requests in one TLS record, three answers in order.
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as raw:
            with self.ssl_context().wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertEqual(s.version() in ("TLSv1.2", "TLSv1.3"), True)
                auth = harness.auth_header().encode()
                reqs = b"".join(b"GET /v1/services/%s HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n" % (n, auth)
                                for n in (b"tick", b"ghost", b"tick"))
                s.sendall(reqs + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                data = b""
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    b = s.recv(65536)
                    if not b:
                        break
                    data += b
                codes = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
                self.assertEqual(codes, [b"200", b"404", b"200", b"200"], data[-500:])
        # ALPN offers http/1.1 and nothing else.
        ctx = self.ssl_context()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertEqual(s.selected_alpn_protocol(), "http/1.1")
        # TLS 1.1 is refused.
        ctx = self.ssl_context()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as raw:
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.assertEqual(d.curl("GET", "/health")[0], 200)

    def test_follow_stream(self):
        d = self.tls_daemon(service("tick", TICKER))
        d.wait_running("tick")
        f = Follower(d.base + "/v1/services/tick/logs?follow=1&stream=stdout&tail=0", extra=("--cacert", self.cert))
        self.addCleanup(f.proc.stdout.close)
        self.addCleanup(f.close)
        f.wait_for_text("out ")
        n = len(f.text())
        wait_for(lambda: len(f.text()) > n + 10, 10, what="more lines")
        self.assertTrue(all(l.startswith("out ") for l in f.text().splitlines()[:-1]))

    def test_plain_http_to_tls_port(self):
        d = self.tls_daemon("")
        p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                            "http://127.0.0.1:%d/health" % d.port], capture_output=True, text=True, timeout=15)
        self.assertNotEqual(p.stdout, "200")
        # A raw plaintext request: answered at once with a plaintext 400 that says to
        # use https, then closed.
        with socket.create_connection(("127.0.0.1", d.port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            t0 = time.monotonic()
            data = b""
            try:
                while True:
                    b = s.recv(4096)
                    if not b:
                        break
                    data += b
            except ConnectionResetError:
                pass
            self.assertLess(time.monotonic() - t0, 5)
            self.assertTrue(data.startswith(b"HTTP/1.1 400 "), data)
            head, _, body = data.partition(b"\r\n\r\n")
            self.assertIn(b"https://", json.loads(body)["error"].encode())
            self.assertIn(b"\r\nContent-Length: %d\r\n" % len(body), head)
        self.assertTrue(d.running())
        self.assertEqual(d.curl("GET", "/health")[0], 200)

    def test_tls12_offers_only_ecdhe_aead(self):
        # An RSA certificate, so static-RSA suites could be chosen if they were offered.
        cert, key = os.path.join(self.certs, "rsa.crt"), os.path.join(self.certs, "rsa.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=dockless-rsa", "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        d = self.tls_daemon("", cert=cert, key=key, cacert=cert)

        def handshake(*args):
            p = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % d.port, *args],
                               input="", capture_output=True, text=True, timeout=30)
            m = re.search(r"Cipher is (\S+)", p.stdout)
            return m.group(1) if m and m.group(1) != "(NONE)" else None

        for cbc_or_static in ("AES128-SHA", "AES256-SHA256", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA",
                              "ECDHE-RSA-AES256-SHA384"):
            self.assertIsNone(handshake("-tls1_2", "-cipher", cbc_or_static), cbc_or_static)
        self.assertEqual(handshake("-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"), "ECDHE-RSA-AES128-GCM-SHA256")
        self.assertEqual(handshake("-tls1_2", "-cipher", "ECDHE-RSA-CHACHA20-POLY1305"), "ECDHE-RSA-CHACHA20-POLY1305")
        self.assertEqual(handshake("-tls1_3"), "TLS_AES_256_GCM_SHA384")

    def test_slow_clients_dropped_at_header_timeout(self):
        d = self.tls_daemon("")
        # One client sends nothing; one sends half a ClientHello.
        silent = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        self.addCleanup(silent.close)
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = self.ssl_context().wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
        with self.assertRaises(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = outgoing.read()
        self.assertGreater(len(hello), 20)
        half = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        self.addCleanup(half.close)
        half.sendall(hello[:len(hello) // 2])
        t0 = time.monotonic()
        # Others are served meanwhile.
        for _ in range(5):
            self.assertEqual(d.curl("GET", "/health")[0], 200)
        # The default header timeout is 10 s: both are closed around then.
        for s in (silent, half):
            s.settimeout(max(1.0, 20 - (time.monotonic() - t0)))
            try:
                self.assertEqual(s.recv(4096), b"")
            except ConnectionResetError:
                pass
        elapsed = time.monotonic() - t0
        self.assertGreater(elapsed, 7, "dropped too early")
        self.assertLess(elapsed, 16, "not dropped at the header timeout")
        self.assertEqual(d.curl("GET", "/health")[0], 200)


class Cli(TestCase):
    def test_cli_over_https(self):
        d = self.tls_daemon(service("tick", TICKER))
        d.wait_running("tick")
        url = "https://127.0.0.1:%d" % d.port

        def cli(*args, env=None, timeout=20):
            e = {k: v for k, v in os.environ.items() if not k.startswith("DOCKLESS_")}
            e["DOCKLESS_TOKEN"] = harness.TEST_API_KEY
            e.update(env or {})
            return subprocess.run([d.bin, *args], capture_output=True, text=True, timeout=timeout, env=e)

        p = cli("--host", url, "--cacert", self.cert, "ps")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("tick", p.stdout)
        p = cli("ps", env={"DOCKLESS_HOST": url, "DOCKLESS_CACERT": self.cert})
        self.assertEqual(p.returncode, 0, p.stderr)
        # Not trusted without the CA; a name the certificate does not carry is refused.
        p = cli("--host", url, "ps")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("not trusted", p.stderr)
        p = cli("--host", "https://localhost:%d" % d.port, "--cacert", self.cert, "ps")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn("hostname mismatch", p.stderr)
        # A streamed body (chunked) over TLS: logs -n 3 of the ticker.
        d.wait_for(lambda: d.read_log("tick").count(b"\n") >= 3, 10, what="three lines logged")
        p = cli("--host", url, "--cacert", self.cert, "logs", "-n", "3", "--stream", "stdout", "tick")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(len(p.stdout.splitlines()), 3, p.stdout)


class Reload(TestCase):
    def test_sighup_new_certificate_keeps_open_streams(self):
        live_cert, live_key = os.path.join(self.certs, "live.crt"), os.path.join(self.certs, "live.key")
        copy(self.cert, live_cert)
        copy(self.key, live_key)
        cert_b, key_b = make_cert(self.certs, "b", cn="dockless-test-b")
        with open(self.cert) as f:
            fp_a = fingerprint(f.read())
        with open(cert_b) as f:
            fp_b = fingerprint(f.read())
        self.assertNotEqual(fp_a, fp_b)
        d = self.tls_daemon(service("tick", TICKER), cert=live_cert, key=live_key)
        d.wait_running("tick")
        self.assertEqual(served_fingerprint(d.port), fp_a)
        f = Follower(d.base + "/v1/services/tick/logs?follow=1&stream=stdout&tail=0", extra=("--cacert", self.cert))
        self.addCleanup(f.proc.stdout.close)
        self.addCleanup(f.close)
        f.wait_for_text("out ")

        copy(cert_b, live_cert)
        copy(key_b, live_key)
        d.sighup()
        d.wait_event("tls_reloaded", timeout=10)
        self.assertEqual(served_fingerprint(d.port), fp_b)
        self.assertEqual(d.curl("GET", "/health", cacert=cert_b)[0], 200)
        self.assertNotEqual(d.curl("GET", "/health", cacert=self.cert)[0], 200)
        # The stream opened under the old certificate goes on.
        n = len(f.text())
        wait_for(lambda: len(f.text()) > n + 20, 10, what="the old stream still streaming")
        self.assertIsNone(f.proc.poll())

        # A broken new certificate: the running one stays, the outcome says why.
        with open(live_cert, "w") as fh:
            fh.write("not a certificate\n")
        status, out = d.json("POST", "/v1/reload", {}, unix=True)
        self.assertEqual(status, 422, out)
        self.assertIn("invalid certificate", json.dumps(out["detail"]))
        failed = d.events_of(kind="reload_failed")
        self.assertEqual(len(failed), 1)
        self.assertIn("invalid certificate", json.dumps(failed[0]))
        self.assertEqual(served_fingerprint(d.port), fp_b)
        self.assertEqual(d.curl("GET", "/health", cacert=cert_b)[0], 200)
        # A key that does not match the certificate is refused on reload too.
        copy(self.cert, live_cert)
        d.sighup()
        d.wait_event("reload_failed", count=2, timeout=10)
        self.assertIn("does not match", json.dumps(d.events_of(kind="reload_failed")[-1]))
        self.assertEqual(served_fingerprint(d.port), fp_b)
        # And a good pair again through the API.
        copy(self.key, live_key)
        status, out = d.json("POST", "/v1/reload", {}, unix=True)
        self.assertEqual(status, 200, out)
        self.assertEqual(out["tls"]["fingerprint"], fp_a.replace(":", ":"), out)
        self.assertEqual(served_fingerprint(d.port), fp_a)
        self.assertIsNone(f.proc.poll())
        d.stop()


class Startup(TestCase):
    def expect_refusal(self, needle, **kw):
        d = self.tls_daemon("", start=False, **kw)
        code, err = self.startup_failure(d)
        self.assertEqual(code, 2, err)
        self.assertIn(needle, err)
        self.assertNotIn("API on", err)  # failed before binding
        self.assertEqual(d.events_of(kind="daemon_started"), [])

    def test_errors(self):
        _, other_key = make_cert(self.certs, "other")
        self.expect_refusal("does not match", key=other_key)
        self.expect_refusal("cannot read certificate", cert=os.path.join(self.certs, "missing.crt"))
        self.expect_refusal("cannot read key", key=os.path.join(self.certs, "missing.key"))
        self.expect_refusal("needs a key", key="")
        self.expect_refusal("needs a certificate", cert="")
        garbage = os.path.join(self.certs, "garbage.crt")
        with open(garbage, "w") as fh:
            fh.write("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
        self.expect_refusal("invalid certificate", cert=garbage)
        self.expect_refusal("invalid key", key=garbage)

    def test_env_config_and_precedence(self):
        # Environment only.
        d = self.tls_daemon("", cert=None, key=None, env={"DOCKLESS_CERT": self.cert, "DOCKLESS_KEY": self.key})
        self.assertEqual(d.curl("GET", "/health")[0], 200)
        d.stop()
        # Config keys only.
        cfg = "[http]\ncert = %s\nkey = %s\n" % (json.dumps(self.cert), json.dumps(self.key))
        d = self.tls_daemon(cfg, cert=None, key=None)
        self.assertEqual(d.curl("GET", "/health")[0], 200)
        d.stop()
        # Flags beat the environment, which beats the config.
        cert_b, key_b = make_cert(self.certs, "b")
        bad_cfg = "[http]\ncert = \"/nonexistent.crt\"\nkey = \"/nonexistent.key\"\n"
        d = self.tls_daemon(bad_cfg, cert=cert_b, key=key_b, cacert=cert_b,
                            env={"DOCKLESS_CERT": "/nonexistent2.crt", "DOCKLESS_KEY": "/nonexistent2.key"})
        self.assertEqual(d.curl("GET", "/health")[0], 200)
        d.stop()
        d = self.tls_daemon(bad_cfg, cert=None, key=None, env={"DOCKLESS_CERT": self.cert, "DOCKLESS_KEY": self.key})
        self.assertEqual(d.curl("GET", "/health")[0], 200)
        d.stop()


if __name__ == "__main__":
    main()
