"""The four sides of peers_bench.py: runit, s6, the floor (a shell, no supervisor) and
Dockless. Each run of a side is a context manager that lays out its own temp dir, starts
the supervisor in its own session (so its process group is its own), and on leaving stops
it, SIGKILLs its group and every process carrying this run's marker (supbench_daemons.sweep),
and removes the dir. Nothing here touches /etc/service, /etc/sv or /run/runit."""
import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time

from supbench_daemons import (BenchError, MARK, MARK_VAR, children, comm, free_port, log, read,
                              sweep, toml_str)

SIDES = ("runit", "s6", "floor", "dockless")
BINARIES = {"runit": ("runsvdir", "runsv", "svlogd"), "s6": ("s6-svscan", "s6-supervise", "s6-log")}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def missing(side):
    """The binaries of side that are not installed (empty: the side can run)."""
    return [b for b in BINARIES.get(side, ()) if shutil.which(b) is None]


def script(path, body):
    with open(path, "w") as f:
        # The marker is exported too, so a service carries it even on a supervisor that
        # gives its services a fixed environment (Dockless also gets it in its config).
        f.write(f"#!/bin/sh\nexport {MARK_VAR}={MARK}\n{body}\n")
    os.chmod(path, 0o755)


def pss_kib(pid):
    for line in read(f"/proc/{pid}/smaps_rollup").splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise BenchError(f"no Pss in /proc/{pid}/smaps_rollup")


def pss_breakdown(pid, top=12):
    """[(mapping name, KiB)] from /proc/PID/smaps, summed by name, largest first."""
    sums, name = {}, "?"
    for line in read(f"/proc/{pid}/smaps").splitlines():
        head = line.split(None, 5)
        if head and "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
            name = head[5].strip() if len(head) == 6 else "[anon]"
        elif line.startswith("Pss:"):
            sums[name] = sums.get(name, 0) + int(line.split()[1])
    return sorted(sums.items(), key=lambda kv: -kv[1])[:top]


def cpu_seconds(pid):
    """utime+stime of every thread of pid, live or ended (io-wq workers are threads)."""
    s = read(f"/proc/{pid}/stat")
    f = s[s.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / CLK_TCK


class Run:
    """One run of one side with services {name: body of its #!/bin/sh run script}; logged
    names get a logger (runit: log/ with svlogd; s6: log/ with s6-log; Dockless: its own
    capture). Services in `restart` restart at once (Dockless: restart_delay "0s"; the
    floor: a shell `while` loop running it `loops` times)."""

    def __init__(self, side, args, services, logged=(), restart=(), loops=0):
        self.side, self.args, self.loops = side, args, loops
        self.services, self.logged, self.restart = services, set(logged), set(restart)
        self.dir = tempfile.mkdtemp(prefix=f"peers-{side}-")
        self.svc = os.path.join(self.dir, "svc")
        self.proc = None

    def run_path(self, name):
        return os.path.join(self.svc, name, "run")

    def __enter__(self):
        try:
            os.mkdir(self.svc)
            for name, body in self.services.items():
                os.mkdir(os.path.join(self.svc, name))
                script(self.run_path(name), body)
            argv = getattr(self, "_" + self.side)()
            self.out_path = os.path.join(self.dir, "supervisor.out")
            with open(self.out_path, "wb") as out:
                env = dict(os.environ, **{MARK_VAR: MARK})
                # The history ticks every 10 s; at 1 s its first tick (and what it maps) is
                # inside the 5 s before the footprint is read, as on a daemon that has run a while.
                if self.side == "dockless":
                    env["DOCKLESS_HISTORY_INTERVAL"] = "1"
                self.t0 = time.monotonic_ns()
                self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                             stderr=subprocess.STDOUT, start_new_session=True,
                                             cwd=self.dir)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _logger_dir(self, name):
        d = os.path.join(self.svc, name, "log")
        os.mkdir(d)
        os.mkdir(os.path.join(d, "main"))
        return d

    def _runit(self):
        for name in self.logged:
            d = self._logger_dir(name)
            with open(os.path.join(d, "main", "config"), "w") as f:
                f.write("s0\n")  # never rotate: every byte stays in main/current
            script(os.path.join(d, "run"), "exec svlogd ./main")
        # No -P: every runsv stays in runsvdir's process group, the group this run kills.
        return ["runsvdir", self.svc]

    def _s6(self):
        for name in self.logged:
            d = self._logger_dir(name)
            # Rotation at 256 MiB keeps up to 100 archives: nothing is dropped.
            script(os.path.join(d, "run"), "exec s6-log -b n100 s268435455 ./main")
        return ["s6-svscan", self.svc]

    def _floor(self):
        # The floor: one shell starting the same scripts in the background, nothing else;
        # for restart, a shell `while` loop running the script back to back.
        path = os.path.join(self.dir, "floor.sh")
        with open(path, "w") as f:
            if self.restart:
                run = self.run_path(next(iter(self.restart)))
                f.write(f"i=0\nwhile [ $i -lt {self.loops} ]; do {run}; i=$((i+1)); done\n")
            else:
                f.write("".join(f"{self.run_path(n)} &\n" for n in self.services) + "wait\n")
        return ["/bin/sh", path]

    def _dockless(self):
        self.data = os.path.join(self.dir, "data")
        port = free_port()
        lines = [f"data_dir = {toml_str(self.data)}", 'listen_address = "127.0.0.1"',
                 f"listen_port = {port}"]
        for name in self.services:
            lines += [f"\n[services.{name}]", f"command = [{toml_str(self.run_path(name))}]",
                      f"env = {{ {MARK_VAR} = {toml_str(MARK)} }}"]
            if name in self.restart:
                lines += ['restart = "always"', 'restart_delay = "0s"', "restart_limit = 0"]
            else:
                lines += ['restart = "no"']
            if name in self.logged:
                lines += ['log_max_size = "2GiB"', "log_keep = 2"]
        cfg = os.path.join(self.dir, "config.toml")
        with open(cfg, "w") as f:
            f.write("\n".join(lines) + "\n")
        return [self.args.dockless, "serve", "--config", cfg, "--data-dir", self.data,
                "--listen", f"127.0.0.1:{port}", "--socket", os.path.join(self.dir, "d.sock")]

    # ------------------------------------------------------------ what is measured

    def check_alive(self):
        if self.side != "floor" and self.proc.poll() is not None:
            tail = read(self.out_path, "rb")[-1500:].decode(errors="replace")
            raise BenchError(f"{self.side} exited with {self.proc.returncode}:\n{tail}")

    def own_pids(self, loggers=False):
        """The supervisor's own processes: Dockless the daemon; runit runsvdir + every
        runsv; s6 s6-svscan + every s6-supervise; with loggers also svlogd / s6-log
        (found as children of runsv / s6-supervise)."""
        top = self.proc.pid
        if self.side == "dockless":
            return [top]
        sup = {"runit": "runsv", "s6": "s6-supervise"}[self.side]
        logger = {"runit": "svlogd", "s6": "s6-log"}[self.side]
        pids = [top] + [k for k in children(top) if comm(k) == sup]
        if loggers:
            pids += [k for p in pids[1:] for k in children(p) if comm(k) == logger]
        return pids

    def footprint_kib(self):
        return sum(pss_kib(p) for p in self.own_pids())

    def cpu(self, pids):
        return sum(cpu_seconds(p) for p in pids)

    def log_pattern(self, name):
        if self.side == "dockless":
            return [os.path.join(self.data, "logs", name, "stdout.log*")]
        main = os.path.join(self.svc, name, "log", "main")
        return [os.path.join(main, "current"), os.path.join(main, "@*")]

    def logged_bytes(self, name):
        total = 0
        for pattern in self.log_pattern(name):
            for p in glob.glob(pattern):
                if not p.endswith(".idx"):
                    try:
                        total += os.stat(p).st_size
                    except FileNotFoundError:
                        pass  # rotated between glob and stat
        return total

    def __exit__(self, *exc):
        try:
            if self.proc is not None and self.proc.poll() is None:
                # runsvdir, s6-svscan and Dockless stop their services on SIGTERM.
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=3)
                except subprocess.TimeoutExpired:
                    log(f"{self.side} still stopping after 3 s; killing its group")
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
