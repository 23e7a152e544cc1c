"""The two daemons of supervisor_bench.py (Dockless and supervisord) and the /proc
readings both sides are measured by. Each daemon runs in its own session and temp dir;
leaving its context stops it and SIGKILLs every process carrying this run's marker
(supervisord's services inherit it; Dockless's get it from their config `env`)."""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARK_VAR = "DOCKLESS_SUPBENCH_RUN"
MARK = f"{os.getpid()}-{secrets.token_hex(6)}"
CLK_TCK = os.sysconf("SC_CLK_TCK")
SIDES = ("dockless", "supervisord")


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


# ---------------------------------------------------------------- /proc readers

def children(pid):
    """Direct children of every thread of pid (CONFIG_PROC_CHILDREN, else a /proc scan)."""
    out = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            out.update(int(x) for x in read(f"/proc/{pid}/task/{tid}/children").split())
        return out
    except FileNotFoundError:
        pass
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = read(f"/proc/{d}/stat")
                if int(s[s.rindex(")") + 2:].split()[1]) == pid:
                    out.add(int(d))
            except OSError:
                pass
    return out


def comm(pid):
    try:
        return read(f"/proc/{pid}/comm").strip()
    except OSError:
        return ""


def proc_field(path, key):
    for line in read(path).splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"{key} not in {path}")


def snapshot(pid):
    """CPU seconds (all threads, utime+stime), voluntary switches (all threads), write_bytes."""
    s = read(f"/proc/{pid}/stat")
    f = s[s.rindex(")") + 2:].split()  # f[0] is field 3 (state): utime is f[11], stime f[12]
    ctx = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            ctx += proc_field(f"/proc/{pid}/task/{tid}/status", "voluntary_ctxt_switches")
        except OSError:
            pass  # a worker thread that just ended
    return {"cpu": (int(f[11]) + int(f[12])) / CLK_TCK, "ctx": ctx,
            "ctx_main": proc_field(f"/proc/{pid}/task/{pid}/status", "voluntary_ctxt_switches"),
            "wbytes": proc_field(f"/proc/{pid}/io", "write_bytes")}


def memory(pid):
    return {"rss": proc_field(f"/proc/{pid}/status", "VmRSS") / 1024,
            "pss": proc_field(f"/proc/{pid}/smaps_rollup", "Pss") / 1024}


def sweep():
    """SIGKILLs every process that carries this run's marker, with its process group."""
    needle = f"\0{MARK_VAR}={MARK}\0".encode()
    me, my_group = os.getpid(), os.getpgrp()
    for _ in range(20):
        found = []
        for d in os.listdir("/proc"):
            if d.isdigit() and int(d) != me:
                try:
                    if needle in b"\0" + read(f"/proc/{d}/environ", "rb") + b"\0":
                        found.append(int(d))
                except OSError:
                    pass
        if not found:
            return
        for pid in found:
            try:
                group = os.getpgid(pid)
                if group != my_group:
                    os.killpg(group, signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
    log("warning: processes of this run survived SIGKILL (still exiting?)")


# ---------------------------------------------------------------- the two daemons

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Daemon:
    """One daemon instance in its own temp dir; a context manager that always cleans up."""

    def __init__(self, side, args, services):
        # services: {name: (argv, {key: value})}; values are TOML literals for Dockless.
        self.side, self.args, self.services = side, args, services
        self.dir = tempfile.mkdtemp(prefix=f"supbench-{side}-")
        self.proc = None

    def __enter__(self):
        try:
            argv = self._dockless() if self.side == "dockless" else self._supervisord()
            env = dict(os.environ, **{MARK_VAR: MARK})
            self.out_path = os.path.join(self.dir, "daemon.out")
            with open(self.out_path, "wb") as out:
                self.t0 = time.monotonic_ns()
                self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True,
                                             cwd=self.dir)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _dockless(self):
        self.data = os.path.join(self.dir, "data")
        port = free_port()
        lines = [f"data_dir = {toml_str(self.data)}", 'listen_address = "127.0.0.1"',
                 f"listen_port = {port}"]
        for name, (argv, extra) in self.services.items():
            lines.append(f"\n[services.{name}]")
            lines.append("command = [" + ", ".join(toml_str(a) for a in argv) + "]")
            lines += [f"{k} = {v}" for k, v in extra.items()]
            # Services get a fixed environment, not the daemon's (#15): the marker that
            # sweep() finds them by is handed over explicitly.
            lines.append(f"env = {{ {MARK_VAR} = {toml_str(MARK)} }}")
        cfg = os.path.join(self.dir, "config.toml")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        argv = [self.args.dockless, "serve", "--config", cfg, "--data-dir", self.data,
                "--listen", f"127.0.0.1:{port}"]
        if self.args.has_socket:
            argv += ["--socket", os.path.join(self.dir, "d.sock")]
        self.ready_text = b"configured service(s)"
        return argv

    def _supervisord(self):
        os.mkdir(os.path.join(self.dir, "childlogs"))
        d = self.dir
        lines = [f"[unix_http_server]\nfile={d}/supervisor.sock\n",
                 "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = "
                 "supervisor.rpcinterface:make_main_rpcinterface\n",
                 f"[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\n"
                 f"pidfile={d}/supervisord.pid\nchildlogdir={d}/childlogs\nminfds=4096\n"
                 + ("user=root\n" if os.geteuid() == 0 else "")]
        for name, (argv, extra) in self.services.items():
            lines.append(f"[program:{name}]\ncommand={' '.join(argv)}\n"
                         + "".join(f"{k}={v}\n" for k, v in extra.items()))
        cfg = os.path.join(d, "supervisord.conf")
        with open(cfg, "w") as f:
            f.write("\n".join(lines))
        self.ready_text = b"supervisord started with pid"
        return [self.args.supervisord, "-n", "-c", cfg]

    def check_alive(self):
        if self.proc.poll() is not None:
            tail = read(self.out_path, "rb")[-1500:].decode(errors="replace")
            raise BenchError(f"{self.side} exited with {self.proc.returncode}:\n{tail}")

    def wait_ready(self, n, name="sleep", timeout=120, partial=False):
        """Monotonic ns when the daemon has n children that exec'd `name` (n == 0: its
        start-up log line), polled every millisecond. With partial, a timeout returns
        (None, how many were running) instead of raising."""
        deadline = time.monotonic() + timeout
        seen = set()
        while time.monotonic() < deadline:
            self.check_alive()
            if n == 0:
                if self.ready_text in read(self.out_path, "rb"):
                    return time.monotonic_ns(), 0
            else:
                kids = children(self.proc.pid)
                if len(kids) >= n:
                    seen |= {k for k in kids - seen if comm(k) == name}
                    if len(seen & kids) >= n:
                        return time.monotonic_ns(), n
            time.sleep(0.001)
        if partial:
            return None, sum(comm(k) == name for k in children(self.proc.pid))
        raise BenchError(f"{self.side}: {n} x {name} not running after {timeout} s")

    def __exit__(self, *exc):
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)  # both stop their services on SIGTERM
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    log(f"{self.side} still stopping after 3 s; killing it and its services")
            if self.proc is not None:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except OSError:
                    pass
                self.proc.wait()
        finally:
            sweep()
            shutil.rmtree(self.dir, ignore_errors=True)
        return False
