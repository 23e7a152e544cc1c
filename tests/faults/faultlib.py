"""Shared helpers of the fault-injection tests: the daemon under test is tests/e2e/harness.py's
Daemon (imported, not copied); this adds what the faults need to measure from outside — a
keep-alive HTTP client timed per request, and the daemon's fds, RSS and CPU time from /proc."""
import http.client
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402  (tests/e2e/harness.py, used read-only)
from harness import main, service, sh, wait_for  # noqa: E402,F401


class Client:
    """One keep-alive HTTP/1.1 connection carrying the test API key; reconnects once when
    the daemon closed it (idle timeout, restart)."""

    def __init__(self, port, timeout=10.0, host="127.0.0.1"):
        self.port, self.timeout, self.host = port, timeout, host
        self.conn = None

    def request(self, method, path, body=None):
        """(status, body bytes, seconds the round trip took)."""
        headers = {"Authorization": "Bearer " + harness.TEST_API_KEY}
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        daemon = getattr(self, "daemon", None)
        if daemon is not None and daemon.port != self.port:
            self.close()
            self.port = daemon.port
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                return r.status, data, time.perf_counter() - t0
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError):
                self.close()
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")

    def json(self, method, path, body=None):
        status, data, _ = self.request(method, path, body)
        return status, (json.loads(data) if data else None)

    def services(self):
        status, body = self.json("GET", "/v1/services")
        assert status == 200, (status, body)
        return {s["name"]: s for s in body}

    def metric(self, name, label=None):
        """Value of a /metrics sample: `name` alone or `name{label}` with label like
        'service="x"'; None when absent."""
        status, data, _ = self.request("GET", "/metrics")
        assert status == 200, status
        want = name + ("{%s}" % label if label else "")
        for line in data.decode().splitlines():
            if line.startswith(want + " "):
                return float(line.split()[1])
        return None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def latencies(port, seconds, max_requests=100000, path="/v1/services", client=None):
    """GET path over one keep-alive connection (`client`'s, else a new one) for `seconds`
    (bounded in count too); the list of round trips in milliseconds. Every answer must be 200."""
    c = client or Client(port)
    out = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and len(out) < max_requests:
            status, _, took = c.request("GET", path)
            assert status == 200, "GET %s answered %d" % (path, status)
            out.append(took * 1000.0)
    finally:
        if client is None:
            c.close()
    return out


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_targets(pid):
    """Sorted list of what the daemon's fds point at (sockets, pipes, files)."""
    out = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except OSError:
            pass
    return sorted(out)


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    """utime + stime of the process, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        stat = f.read()
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def sanitized(pid):
    """True when the process runs with AddressSanitizer (its RSS then holds the quarantine
    of freed memory, so RSS bounds mean nothing; LeakSanitizer checks at exit instead)."""
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libasan" in f.read()
    except OSError:
        return False


def count_marked(marker):
    """Service instances whose argv contains `marker`: live process-group leaders (each
    service leads its own group; a shell's child between fork and exec shows the shell's
    argv for a moment and is no instance)."""
    return [p for p in harness.processes().values()
            if p.state != "Z" and p.pid == p.pgid and marker in p.cmdline]


class Daemon(harness.Daemon):
    """harness.Daemon with its own unix socket (the default path is shared by every daemon on
    the machine) and optional argv prefix (e.g. prlimit)."""

    def __init__(self, config_text, prefix=(), **kw):
        super().__init__(config_text, **kw)
        self.sock = os.path.join(self.dir, "d.sock")
        self.prefix = list(prefix)

    def argv(self):
        return self.prefix + super().argv() + ["--socket", self.sock]


class TestCase(harness.TestCase):
    def assertNothingLeft(self, d, timeout=2.0):
        """No process of the daemon's is left. Waited for, briefly: a group member that the
        daemon SIGKILLed as it exited may still be runnable (state R, re-parented to init)
        until the scheduler lets it die — seen on this loaded 2-vCPU VM."""
        d.wait_for(lambda: d.survivors() == [], timeout, what="no process left")

    def daemon(self, config_text, start=True, **kw):
        d = Daemon(config_text, **kw)
        self.addCleanup(self._cleanup_daemon, d)
        if start:
            d.start()
        return d

    def client(self, d, **kw):
        """A Client that follows the daemon's port (a restart may have to move it)."""
        c = Client(d.port, **kw)
        c.daemon = d
        self.addCleanup(c.close)
        return c

    def wait_api(self, d, timeout=10.0):
        c = Client(d.port, timeout=2)

        def up():
            try:
                return c.request("GET", "/readyz")[0] == 200
            except OSError:
                return False
        try:
            d.wait_for(up, timeout, what="/readyz 200")
        finally:
            c.close()
