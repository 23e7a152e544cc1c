"""CLI test harness: the e2e harness's Daemon (a real `dockless serve` in a temp dir, every
process it starts tagged and killed at cleanup) with its API on a unix socket and on TCP,
plus helpers that run the real `dockless` CLI against it."""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import harness  # noqa: E402
from harness import main, service, sh, wait_for, tagged  # noqa: E402,F401

ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Variables that would redirect the CLI away from the daemon under test.
CLEAN_ENV = ("DOCKLESS_CONFIG", "DOCKLESS_DATA_DIR", "DOCKLESS_LISTEN", "DOCKLESS_SOCKET",
             "DOCKLESS_HOST", "DOCKLESS_TOKEN", "NO_COLOR", "JOURNAL_STREAM")


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


class Daemon(harness.Daemon):
    """A daemon serving the API on <dir>/api.sock and 127.0.0.1:<port>."""

    def __init__(self, config_text, **kw):
        super().__init__(config_text, **kw)
        self.socket_path = os.path.join(self.dir, "api.sock")

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def argv(self):
        return super().argv() + ["--socket", self.socket_path]

    def api(self, method, path, body=None, headers=None, timeout=10):
        """One request over the unix socket: (status, body bytes)."""
        c = UnixHTTPConnection(self.socket_path, timeout)
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            return r.status, r.read()
        finally:
            c.close()

    def api_json(self, method, path, body=None):
        status, data = self.api(method, path, body)
        try:
            return status, json.loads(data)
        except ValueError:
            return status, None

    def start(self, wait=True, timeout=10.0):
        super().start(wait, timeout)
        if wait:
            def healthy():
                try:
                    return self.api("GET", "/health", timeout=2)[0] == 200
                except OSError:
                    return False
            self.wait_for(healthy, timeout, what="GET /health on " + self.socket_path)
        return self

    def service(self, name):
        """The API's Service object for name (None on any failure)."""
        try:
            status, obj = self.api_json("GET", "/v1/services/" + name)
        except OSError:
            return None
        return obj if status == 200 else None

    def wait_state(self, name, state, timeout=10.0):
        def found():
            s = self.service(name)
            return s if s and s.get("state") == state else None
        return self.wait_for(found, timeout, what="%s in state %s (API)" % (name, state))


def cli_env(extra=None, token=harness.TEST_API_KEY):
    """The CLI's environment: DOCKLESS_TOKEN is the test key unless token=None."""
    e = dict(os.environ)
    for k in CLEAN_ENV + ("DOCKLESS_API_KEYS", "DOCKLESS_HMAC_SECRET"):
        e.pop(k, None)
    e["E2E_TAG"] = uuid.uuid4().hex
    if token:
        e["DOCKLESS_TOKEN"] = token
    e.update(extra or {})
    return e


class TestCase(harness.TestCase):
    def daemon(self, config_text, start=True, **kw):
        d = Daemon(config_text, **kw)
        self.addCleanup(self._cleanup_daemon, d)
        if start:
            d.start()
        return d

    def cli(self, d, *args, via="socket", env=None, timeout=40.0, cwd=None, token=harness.TEST_API_KEY):
        """Runs `dockless ARGS` against d (its socket, or --host over TCP): (rc, out, err)."""
        if d is None:
            target = []
        elif via == "socket":
            target = ["--socket", d.socket_path]
        else:
            target = ["--host", d.url]
        e = cli_env(env, token)
        try:
            r = subprocess.run([harness.dockless_bin()] + target + list(args),
                               cwd=cwd or (d.dir if d else None), env=e,
                               stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
        finally:
            left = [p for p in tagged(e["E2E_TAG"]) if p.state != "Z"]
            for p in left:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    pass
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")

    def cli_ok(self, d, *args, **kw):
        rc, out, err = self.cli(d, *args, **kw)
        self.assertEqual(rc, 0, "dockless %s: rc=%d\nstdout: %s\nstderr: %s" % (" ".join(args), rc, out, err))
        return out

    def popen_cli(self, d, *args, via="socket", env=None, token=harness.TEST_API_KEY):
        """A long-running CLI (follow mode) with stdout/stderr pipes; killed at cleanup."""
        target = ["--socket", d.socket_path] if via == "socket" else ["--host", d.url]
        p = subprocess.Popen([harness.dockless_bin()] + target + list(args), cwd=d.dir,
                             env=cli_env(env, token), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(self._reap, p)
        os.set_blocking(p.stdout.fileno(), False)
        return p

    @staticmethod
    def _reap(p):
        if p.poll() is None:
            p.kill()
        p.wait(10)
        for f in (p.stdout, p.stderr):
            if f:
                f.close()

    def read_until(self, p, needle, timeout=10.0, already=b""):
        """Reads p's stdout until it contains needle (bytes); returns everything read."""
        buf = bytearray(already)

        def found():
            try:
                chunk = p.stdout.read()
            except BlockingIOError:
                chunk = None
            if chunk:
                buf.extend(chunk)
            return needle in buf or (p.poll() is not None and needle in buf)
        try:
            wait_for(lambda: found() or p.poll() is not None, timeout, what="%r from the CLI" % needle)
        except AssertionError:
            raise AssertionError("timed out waiting for %r; got %r" % (needle, bytes(buf[-2000:])))
        found()
        if needle not in buf:
            raise AssertionError("CLI exited (rc=%s) before printing %r; got %r\nstderr: %r"
                                 % (p.returncode, needle, bytes(buf[-2000:]), p.stderr.read()))
        return bytes(buf)

    def interrupt(self, p, timeout=10.0):
        """SIGINT → the CLI's exit code and remaining stderr."""
        p.send_signal(signal.SIGINT)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("CLI did not exit within %.0fs of SIGINT" % timeout)
        return rc, p.stderr.read().decode("utf-8", "replace")


def run_in_pty(argv, env, timeout=20.0):
    """Runs argv with stdout on a pseudo-terminal: (rc, output text)."""
    import pty
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=slave,
                             stderr=subprocess.PIPE)
    finally:
        os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every slave fd is closed
            break
        if not chunk:
            break
        out.extend(chunk)
    os.close(master)
    rc = p.wait(timeout)
    p.stderr.close()
    return rc, out.decode("utf-8", "replace").replace("\r\n", "\n")
