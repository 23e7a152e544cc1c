"""Harness for the HTTP API tests: the real `dockless serve` (tests/e2e/harness.py's
Daemon, with a unix socket added) driven by the real curl, plus raw sockets where a
test needs hundreds of clients or exact timing."""
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402  (tests/e2e/harness.py, used read-only)
from harness import main, require, service, sh, wait_for  # noqa: E402,F401

require("curl")


class ApiDaemon(harness.Daemon):
    def __init__(self, config_text, **kw):
        super().__init__(config_text, **kw)
        self.sock = os.path.join(self.dir, "run", "d.sock")

    def argv(self):
        return super().argv() + ["--socket", self.sock]

    def start(self, wait=True, timeout=10.0):
        # The base waits for daemon_started in events.log: the event-log actor writes it after
        # the record, so /readyz can answer 200 while the file is still empty, and a test that
        # reads the file (events()[-1]) right after start would find nothing.
        super().start(wait=wait, timeout=timeout)
        if wait:
            self.wait_for(lambda: self.proc.poll() is not None or self.ready(), timeout, what="/readyz 200")
            if self.proc.poll() is not None:
                raise AssertionError("daemon exited with %d\n%s" % (self.proc.returncode, self.describe()))
        return self

    def ready(self):
        try:
            return self.curl("GET", "/readyz", timeout=2)[0] == 200
        except Exception:
            return False

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def curl(self, method, path, body=None, ctype=None, unix=False, headers=(), timeout=10, auth=True,
             tcp_options=()):
        """(status, body bytes) of one request made by curl; over TCP it carries the
        daemon's API key unless auth=False, and `tcp_options` (e.g. --cacert)."""
        argv = ["curl", "-sS", "-X", method, "-o", "-", "-w", "\n@@%{http_code}", "--max-time", str(timeout)]
        if auth and not unix and self.api_key:
            argv += ["-H", harness.auth_header(self.api_key)]
        if unix:
            argv += ["--unix-socket", self.sock, "http://localhost" + path]
        else:
            argv += [*tcp_options, self.base + path]
        if body is not None:
            argv += ["--data-binary", "@-"]
            if ctype:
                argv += ["-H", "Content-Type: " + ctype]
        for h in headers:
            argv += ["-H", h]
        if isinstance(body, str):
            body = body.encode()
        p = subprocess.run(argv, input=body, capture_output=True, timeout=timeout + 5)
        out, _, code = p.stdout.rpartition(b"\n@@")
        return int(code or 0), out

    def json(self, method, path, body=None, ctype="application/json", **kw):
        if body is not None and not isinstance(body, (str, bytes)):
            body = json.dumps(body)
        status, out = self.curl(method, path, body, ctype if body is not None else None, **kw)
        try:
            return status, json.loads(out) if out else None
        except ValueError:
            raise AssertionError("not JSON (%d): %r" % (status, out[:300]))

    def metric(self, name):
        """Value of an unlabelled metric line."""
        _, text = self.curl("GET", "/metrics")
        for line in text.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None


class Follower:
    """`curl -N URL` in the background, its output collected by a thread."""

    def __init__(self, url, extra=(), key=harness.TEST_API_KEY):
        auth = ("-H", harness.auth_header(key)) if key else ()
        self.proc = subprocess.Popen(["curl", "-sSN", *auth, *extra, url], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        self.data = b""
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        while True:
            b = self.proc.stdout.read1(65536)
            if not b:
                return
            with self.lock:
                self.data += b

    def text(self):
        with self.lock:
            return self.data.decode("utf-8", "replace")

    def wait_for_text(self, needle, timeout=10.0):
        wait_for(lambda: needle in self.text(), timeout, what="%r in the follow output" % needle,
                 context=lambda: "output so far: %r" % self.text()[-2000:])

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(5)
        self.thread.join(5)


def dechunk(raw):
    """The body of a raw chunked HTTP/1.1 response (headers included in raw); as much
    as is complete."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    body = b""
    while True:
        line, sep, after = rest.partition(b"\r\n")
        if not sep:
            break
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            break
        if n == 0 or len(after) < n + 2:
            break
        body += after[:n]
        rest = after[n + 2:]
    return head, body


def raw_get(port, path, source="127.0.0.1", key=harness.TEST_API_KEY):
    """A connected socket (from address `source`) that has sent GET path with the key."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    auth = (harness.auth_header(key) + "\r\n") if key else ""
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, auth)).encode())
    return s


class TestCase(harness.TestCase):
    def daemon(self, config_text, start=True, **kw):
        d = ApiDaemon(config_text, **kw)
        self.addCleanup(self._cleanup_daemon, d)
        if start:
            d.start()
        return d

    def assertStatus(self, got, status, what=""):
        self.assertEqual(got[0], status, "%s: %r" % (what, got[1]))
        return got[1]


TICKER = sh('i=0; while true; do i=$((i+1)); echo "out $i"; echo "err $i" >&2; sleep 0.2; done')
