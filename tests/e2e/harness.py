"""End-to-end harness: runs the real `dockless serve` in a fresh temp dir and observes it
through what it leaves on disk (events.log, state.json, logs/) and through /proc.

Every process a test starts carries a unique marker in its environment (E2E_TAG). The
daemon passes nothing of its environment on, but marks what it starts (services, their
children, health checks, trigger jobs) with DOCKLESS_SUPERVISOR=<its data_dir>, which
survives a kill -9 of the daemon; tagged() finds both (a tag is registered with the data
dirs of the daemons it started). Cleanup kills every process holding either marker
(re-parented orphans included), so a failing test never leaves a service running, and
"nothing survived" is a question /proc can answer.
"""
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import cgroups  # noqa: E402  (tests/e2e/cgroups.py, beside this file)

SKIP = 77

# Every daemon the harnesses start knows this API key (DOCKLESS_API_KEYS) unless a test
# passes api_key=None (then the daemon makes its own first-boot key in data_dir/api-key),
# and every request the harnesses send over TCP carries it unless told auth=False.
TEST_API_KEY = "dockless-test-key-0123456789abcdef"


def auth_header(key=TEST_API_KEY):
    return "Authorization: Bearer " + key


def dockless_bin():
    """The binary under test (meson passes DOCKLESS_BIN); exits 77 when unusable."""
    path = os.environ.get("DOCKLESS_BIN", "")
    if not path or not os.access(path, os.X_OK):
        print("DOCKLESS_BIN not set or not executable: %r" % path, file=sys.stderr)
        sys.exit(SKIP)
    return path


def require(program):
    """Exits 77 (skip) when a program the test needs is not installed."""
    if shutil.which(program) is None:
        print("skipping: %s not found" % program, file=sys.stderr)
        sys.exit(SKIP)


def main():
    """unittest.main() that maps "everything skipped" to exit 77 for meson."""
    dockless_bin()
    prog = unittest.main(exit=False, verbosity=2)
    r = prog.result
    if not r.wasSuccessful():
        sys.exit(1)
    if r.testsRun > 0 and len(r.skipped) == r.testsRun:
        sys.exit(SKIP)
    sys.exit(0)


# ---------------------------------------------------------------------------- helpers

def toml_str(s):
    """A TOML basic string (JSON string escapes are valid TOML escapes)."""
    return json.dumps(s)


def toml_list(items):
    return "[" + ", ".join(toml_str(i) for i in items) + "]"


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return toml_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(i) for i in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (k, toml_value(x)) for k, x in v.items()) + " }"
    raise TypeError("no TOML form for %r" % (v,))


def service(name, command, **settings):
    """A [services.NAME] table; command is an argv list (no word splitting surprises)."""
    lines = ["[services.%s]" % name, "command = " + toml_value(command)]
    lines += ["%s = %s" % (k, toml_value(v)) for k, v in settings.items()]
    return "\n".join(lines) + "\n"


def sh(script):
    """argv running a shell script. Write $VAR, never ${VAR}: the config substitutes
    ${...} itself, and the daemon replaces a bare $PORT in argv."""
    return ["sh", "-c", script]


def free_port():
    """A port that was free on 127.0.0.1 and 0.0.0.0 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def wait_for(predicate, timeout=5.0, interval=0.02, what="condition", context=None):
    """Polls predicate() until it returns something truthy (returned) or timeout passes
    (AssertionError naming `what`, plus context() when given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            extra = ""
            if context is not None:
                try:
                    extra = "\n" + context()
                except Exception as e:  # the context is a diagnostic, never the failure
                    extra = "\n(context failed: %r)" % e
            raise AssertionError("timed out after %.1fs waiting for %s%s" % (timeout, what, extra))
        time.sleep(interval)


def parse_time(text):
    """The events' "time": 2026-11-23T13:30:00.123Z → seconds since the epoch."""
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.replace(tzinfo=datetime.timezone.utc).timestamp()


def read_events_file(path, strict=True):
    """Complete lines of an events.log, parsed. A last line without '\\n' is torn (a write
    in progress or a crash) and is ignored; a complete line that does not parse raises
    (strict) or is returned as {"_unparsable": text}."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    lines.pop()  # b"" after a final '\n', else the torn tail
    out = []
    for n, line in enumerate(lines, 1):
        try:
            out.append(json.loads(line))
        except ValueError:
            if strict:
                raise AssertionError("%s:%d: not JSON: %r" % (path, n, line[:200]))
            out.append({"_unparsable": line})
    return out


# ---------------------------------------------------------------------------- /proc

class Proc:
    __slots__ = ("pid", "ppid", "pgid", "sid", "state", "cmdline", "comm")

    def __repr__(self):
        return "Proc(pid=%d ppid=%d pgid=%d state=%s cmd=%r)" % (
            self.pid, self.ppid, self.pgid, self.state, self.cmdline or self.comm)


def proc_info(pid):
    """Proc for a pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read().decode("utf-8", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    p = Proc()
    p.pid = pid
    lp, rp = stat.find("("), stat.rfind(")")
    p.comm = stat[lp + 1:rp]
    fields = stat[rp + 2:].split()
    p.state, p.ppid, p.pgid, p.sid = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            p.cmdline = [a.decode("utf-8", "replace") for a in f.read().split(b"\0") if a]
    except OSError:
        p.cmdline = []
    return p


def processes():
    """Every process on the machine: {pid: Proc}."""
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            p = proc_info(int(name))
            if p is not None:
                out[p.pid] = p
    return out


def alive(pid):
    """True while the pid exists and is not a zombie."""
    p = proc_info(pid)
    return p is not None and p.state != "Z"


def descendants(pid, procs=None):
    """Every live descendant of pid (by ppid)."""
    procs = procs if procs is not None else processes()
    children = {}
    for p in procs.values():
        children.setdefault(p.ppid, []).append(p)
    out, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c.pid)
    return out


# tag -> directories: a process whose DOCKLESS_SUPERVISOR is one of them or lies under one
# belongs to the tag too (what a daemon started with that tag started in turn).
_SUPERVISED = {}


def supervise(tag, directory):
    """Counts what a daemon on a data_dir under `directory` starts as carrying `tag`."""
    _SUPERVISED.setdefault(tag, set()).add(os.path.realpath(directory).encode())


def _marked(env, tag):
    dirs = _SUPERVISED.get(tag, ())
    for entry in env.split(b"\0"):
        if entry == b"E2E_TAG=" + tag.encode():
            return True
        if dirs and entry.startswith(b"DOCKLESS_SUPERVISOR="):
            value = entry[len(b"DOCKLESS_SUPERVISOR="):]
            if any(value == d or value.startswith(d + b"/") for d in dirs):
                return True
    return False


def tagged(tag):
    """Processes whose environment holds E2E_TAG=tag, or DOCKLESS_SUPERVISOR naming a data
    dir registered for tag (zombies have no environment)."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % name, "rb") as f:
                env = f.read()
        except OSError:
            continue
        if _marked(env, tag):
            p = proc_info(int(name))
            if p is not None:
                out.append(p)
    return out


def start_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return 0
    return int(stat[stat.rfind(")") + 2:].split()[19])


# ---------------------------------------------------------------------------- daemon

class Daemon:
    """One `dockless serve` in its own temp dir (config.toml, data/, daemon.out/err).

    The daemon runs in a new session (its pgid is its pid) with cwd = the temp dir, so the
    config is named "config.toml" in its messages."""

    def __init__(self, config_text, dir=None, files=None, env=None, data_dir=None, api_key=TEST_API_KEY):
        self.bin = dockless_bin()
        self.tag = uuid.uuid4().hex
        self.owns_dir = dir is None
        self.dir = dir or tempfile.mkdtemp(prefix="dockless-e2e-")
        self.data_dir = data_dir or os.path.join(self.dir, "data")
        self.config_path = os.path.join(self.dir, "config.toml")
        self.port = free_port()
        self.proc = None
        self.extra_env = env or {}
        self.api_key = api_key
        supervise(self.tag, self.data_dir)
        for name, text in (files or {}).items():
            with open(os.path.join(self.dir, name), "w") as f:
                f.write(text)
        self._out = self._err = None
        if config_text is not None:
            self.write_config(config_text)

    # -- files

    def write_config(self, text):
        # Atomic, so a SIGHUP never reads half a file.
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def path(self, *parts):
        return os.path.join(self.data_dir, *parts)

    def events(self, strict=True):
        return read_events_file(self.path("events.log"), strict)

    def events_of(self, service=None, kind=None, events=None):
        evs = self.events() if events is None else events
        return [e for e in evs
                if (service is None or e.get("service") == service)
                and (kind is None or e.get("kind") == kind)]

    def state(self):
        """state.json parsed, or None when absent or (never expected) unparsable."""
        try:
            with open(self.path("state.json")) as f:
                return json.load(f)
        except (FileNotFoundError, ValueError):
            return None

    def service_state(self, name):
        s = self.state()
        return (s or {}).get("services", {}).get(name)

    def log_path(self, service, stream="stdout"):
        return self.path("logs", service, stream + ".log")

    def read_log(self, service, stream="stdout"):
        try:
            with open(self.log_path(service, stream), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return b""

    def stderr_text(self):
        try:
            with open(os.path.join(self.dir, "daemon.err"), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def describe(self, n=40):
        """Diagnostics for a failure message: the daemon's stderr and the last events."""
        err = self.stderr_text().splitlines()
        lines = ["--- daemon stderr (tail) ---"]
        # A sanitizer report's headline and first frames come before its long legend.
        sanitizer = [i for i, l in enumerate(err) if "Sanitizer" in l or "runtime error:" in l]
        if sanitizer:
            lines += err[sanitizer[0]:sanitizer[0] + 12] + ["..."]
        lines += err[-20:]
        lines.append("--- events.log (last %d) ---" % n)
        try:
            evs = self.events(strict=False)
        except Exception as e:
            evs = [{"_error": repr(e)}]
        lines += [json.dumps(e) for e in evs[-n:]]
        lines.append("--- state.json ---")
        lines.append(json.dumps(self.state()))
        return "\n".join(lines)

    # -- lifecycle

    def argv(self):
        return [self.bin, "serve", "--config", "config.toml", "--data-dir", self.data_dir,
                "--listen", "127.0.0.1:%d" % self.port]

    def start(self, wait=True, timeout=10.0):
        env = dict(os.environ)
        for k in ("DOCKLESS_CONFIG", "DOCKLESS_DATA_DIR", "DOCKLESS_LISTEN", "JOURNAL_STREAM"):
            env.pop(k, None)
        env["E2E_TAG"] = self.tag
        for k in ("DOCKLESS_API_KEYS", "DOCKLESS_HMAC_SECRET", "DOCKLESS_TOKEN"):
            env.pop(k, None)
        if self.api_key is not None:
            env["DOCKLESS_API_KEYS"] = self.api_key
        env.update(self.extra_env)
        restart = self.proc is not None
        for attempt in range(2):
            self._close_outputs()
            err_path = os.path.join(self.dir, "daemon.err")
            err_before = os.path.getsize(err_path) if os.path.exists(err_path) else 0
            self._out = open(os.path.join(self.dir, "daemon.out"), "ab")
            self._err = open(err_path, "ab")
            self.proc = subprocess.Popen(self.argv(), cwd=self.dir, env=env, stdin=subprocess.DEVNULL,
                                         stdout=self._out, stderr=self._err, start_new_session=True)
            if not wait:
                return self
            pid = self.proc.pid
            self.wait_for(lambda: any(e.get("kind") == "daemon_started" and e.get("pid") == pid
                                      for e in self.events())
                          or self.proc.poll() is not None,
                          timeout, what="daemon_started")
            if self.proc.poll() is None:
                return self
            # A restart reuses the port the last daemon freed; meanwhile a client of a test
            # running in parallel may have been given it as its ephemeral source port. Only
            # then is the port changed, once: every other start failure is the test's result.
            with open(err_path, "rb") as f:
                f.seek(err_before)
                said = f.read()
            if not (restart and attempt == 0 and b"Address already in use" in said):
                break
            self.port = free_port()
        raise AssertionError("daemon exited with %d at start\n%s" % (self.proc.returncode, self.describe()))

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def sighup(self):
        self.signal(signal.SIGHUP)

    def wait_for(self, predicate, timeout=5.0, what="condition", interval=0.02):
        return wait_for(predicate, timeout, interval, what, context=self.describe)

    def wait_event(self, kind, service=None, count=1, timeout=5.0, where=None):
        """Waits until at least `count` events match; returns all that match."""
        def found():
            evs = [e for e in self.events_of(service, kind) if where is None or where(e)]
            return evs if len(evs) >= count else None
        return self.wait_for(found, timeout,
                             what="%d x %s event(s) for %s" % (count, kind, service or "(daemon)"))

    def wait_running(self, service, timeout=5.0):
        """Waits for state.json to show the service running with a live pid; returns the pid."""
        def found():
            s = self.service_state(service)
            if s and s.get("state") == "running" and s.get("pid") and alive(s["pid"]):
                return s["pid"]
            return None
        return self.wait_for(found, timeout, what="%s running in state.json" % service)

    def stop(self, timeout=20.0, expect_code=0):
        """SIGTERM, wait for the exit, assert the exit code; returns the seconds it took."""
        t0 = time.monotonic()
        self.signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError("daemon did not exit within %.0fs of SIGTERM\n%s"
                                 % (timeout, self.describe()))
        took = time.monotonic() - t0
        if rc != expect_code:
            raise AssertionError("daemon exited with %d, expected %d\n%s"
                                 % (rc, expect_code, self.describe()))
        return took

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def _close_outputs(self):
        for f in (self._out, self._err):
            if f is not None:
                f.close()
        self._out = self._err = None

    def survivors(self):
        """Live processes started under this daemon (services, their children, orphans)."""
        return [p for p in tagged(self.tag) if p.state != "Z" and p.pid != getattr(self.proc, "pid", -1)]

    def cleanup(self, remove_dir=True):
        """Kills the daemon and everything it started; removes the temp dir. Idempotent."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        for _ in range(50):
            left = tagged(self.tag)
            if not left:
                break
            for p in left:
                for kill in (lambda: os.killpg(p.pgid, signal.SIGKILL),
                             lambda: os.kill(p.pid, signal.SIGKILL)):
                    try:
                        kill()
                    except OSError:
                        pass
            time.sleep(0.02)
        self._close_outputs()
        if os.geteuid() == 0:
            cgroups.remove_tree(cgroups.daemon_dir(self.data_dir))
        if remove_dir and self.owns_dir and not os.environ.get("E2E_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)


class TestCase(unittest.TestCase):
    """Base class: self.daemon(config) gives a started Daemon that is always cleaned up;
    a failing test prints the daemon's stderr and last events."""

    def daemon(self, config_text, start=True, **kw):
        d = Daemon(config_text, **kw)
        self.addCleanup(self._cleanup_daemon, d)
        if start:
            d.start()
        return d

    def _cleanup_daemon(self, d):
        outcome = getattr(self, "_outcome", None)
        failed = outcome is not None and not getattr(outcome, "success", True)
        if failed:
            sys.stderr.write("\n[%s] %s\n" % (self.id(), d.describe()))
        d.cleanup()

    def run_cli(self, args, cwd, timeout=20.0, env=None):
        """Runs the dockless binary to completion: (exit code, stdout, stderr)."""
        e = dict(os.environ)
        for k in ("DOCKLESS_CONFIG", "DOCKLESS_DATA_DIR", "DOCKLESS_LISTEN", "JOURNAL_STREAM",
                  "DOCKLESS_API_KEYS", "DOCKLESS_HMAC_SECRET", "DOCKLESS_TOKEN"):
            e.pop(k, None)
        e["E2E_TAG"] = uuid.uuid4().hex
        e.update(env or {})
        # A `serve` run here keeps its data dir under cwd, or names it with --data-dir.
        for directory in [cwd] + [args[i + 1] for i, a in enumerate(args[:-1]) if a == "--data-dir"]:
            if directory:
                supervise(e["E2E_TAG"], os.path.join(cwd or "", directory))
        # What a daemon already running on that data dir started is not this command's.
        before = {(p.pid, start_ticks(p.pid)) for p in tagged(e["E2E_TAG"])}
        try:
            r = subprocess.run([dockless_bin()] + args, cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=timeout, start_new_session=True)
        finally:
            # A command expected to exit must not leave anything running.
            left = [p for p in tagged(e["E2E_TAG"])
                    if p.state != "Z" and (p.pid, start_ticks(p.pid)) not in before]
            for p in left:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    pass
        self.assertEqual(left, [], "processes left behind by dockless %s" % " ".join(args))
        return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")

    def tempdir(self):
        d = tempfile.mkdtemp(prefix="dockless-e2e-")
        if not os.environ.get("E2E_KEEP"):
            self.addCleanup(shutil.rmtree, d, True)
        return d
