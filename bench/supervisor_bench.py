#!/usr/bin/env python3
"""Supervisor benchmark: the real `dockless serve` beside supervisord, one table.

Every Dockless figure is printed beside a baseline measured in the same run (supervisord
running the same services; for log capture also the writer straight into a file and into
/dev/null), with the ratio (how many times better Dockless is: > 1 means Dockless wins)
and the goal. Figures are medians of runs interleaved Dockless, supervisord, Dockless, ...
so the drift of a noisy machine lands on both sides. See bench/README.md for the rows.

Each daemon runs in its own session with temp dirs, a free loopback port and an
environment marker that every service carries (Dockless hands it over in each service's config
`env`, since services no longer inherit the daemon's environment); whatever happens (failure, Ctrl-C,
SIGTERM from `meson test --benchmark`'s timeout), the daemon is stopped and every process
carrying the marker is SIGKILLed with its process group before the script returns.
"""
import argparse
import glob
import os
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import idle_writes
from supbench_daemons import (BenchError, Daemon, MARK, MARK_VAR, REPO, log, memory, read, snapshot, sweep)

# ---------------------------------------------------------------- the measurements

def stamps(path):
    try:
        return [(w, int(ns)) for w, ns in (line.split() for line in read(path).splitlines())]
    except FileNotFoundError:
        return []


def percentile(values, q):
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(-(-q * len(v) // 1)) - 1))]


def restart_run(side, args, n, cap):
    """p50/p99 of start[i+1] - exit[i] in ms, from the probe's own stamps; also the
    daemon's CPU time per restart (its own work, apart from the kernel's exec)."""
    probe_log = tempfile.mktemp(prefix="supbench-probe-", suffix=".log")
    extra = ({"restart": '"always"', "restart_delay": '"0s"', "restart_limit": "0"}
             if side == "dockless" else
             {"startsecs": "0", "autorestart": "true", "startretries": "1000000"})
    cpu = None
    try:
        if side == "loop":  # the floor: posix_spawn + waitpid in a C loop, no supervisor
            subprocess.run([args.probe, "--loop", str(n + 1), probe_log], check=True,
                           timeout=cap * 3, env=dict(os.environ, **{MARK_VAR: MARK}))
        else:
            with Daemon(side, args, {"probe": ([args.probe, probe_log], extra)}) as d:
                deadline, first = time.monotonic() + cap, None
                while time.monotonic() < deadline:
                    d.check_alive()
                    starts = sum(w == "start" for w, _ in stamps(probe_log))
                    if first is None and starts > 0:  # the daemon's start-up is behind us
                        first = (starts, snapshot(d.proc.pid)["cpu"])
                    if starts > n + 1:
                        break
                    time.sleep(0.02)
                if first is not None and starts > first[0]:
                    cpu = (snapshot(d.proc.pid)["cpu"] - first[1]) / (starts - first[0])
        lat, pending = [], None
        for word, ns in stamps(probe_log):
            if word == "exit":
                pending = ns
            elif word == "start" and pending is not None:
                lat.append((ns - pending) / 1e6)
                pending = None
    finally:
        if os.path.exists(probe_log):
            os.unlink(probe_log)
    if len(lat) < 2:
        raise BenchError(f"{side}: only {len(lat)} restarts in {cap} s")
    out = {"p50": percentile(lat, 0.50), "p99": percentile(lat, 0.99), "count": len(lat)}
    if cpu is not None:
        out["cpu_ms"] = cpu * 1000
    return out


def sleepers(n):
    return {f"s{i:03d}": ([args_sleep(), "100000"], {}) for i in range(n)}


def args_sleep():
    return shutil.which("sleep") or "/bin/sleep"


def startup_run(side, args, n, cap):
    """Start-up time in ms, or (when the cap expires first) a lower bound and the count."""
    extra = {} if side == "dockless" else {"startsecs": "0"}
    services = {k: (argv, dict(extra)) for k, (argv, _) in sleepers(n).items()}
    with Daemon(side, args, services) as d:
        at, running = d.wait_ready(n, timeout=cap, partial=True)
        if at is None:
            return {"start_ms": cap * 1000.0, "running": running}
        cpu = snapshot(d.proc.pid)["cpu"]
        time.sleep(2)  # settle, then the memory figures of row 4 at n services
        return dict(memory(d.proc.pid), start_ms=(at - d.t0) / 1e6, running=n, cpu=cpu)


def memory_run(side, args, n):
    extra = {} if side == "dockless" else {"startsecs": "0"}
    services = {k: (argv, dict(extra)) for k, (argv, _) in sleepers(n).items()}
    with Daemon(side, args, services) as d:
        d.wait_ready(n)
        time.sleep(2)
        return memory(d.proc.pid)


def idle_run(side, args, n, window):
    extra = {} if side == "dockless" else {"startsecs": "0"}
    services = {k: (argv, dict(extra)) for k, (argv, _) in sleepers(n).items()}
    with Daemon(side, args, services) as d:
        d.wait_ready(n)
        time.sleep(2)
        out = memory(d.proc.pid)
        before = snapshot(d.proc.pid)
        time.sleep(window)
        d.check_alive()
        after = snapshot(d.proc.pid)
        out.update({k: after[k] - before[k] for k in before})
        return out


def sdcard_run(side, args, n, window):
    """Disk writes per idle hour with n services (bench/idle_writes.py): the daemon's
    whole temp dir is watched, its data dir and its own output included."""
    extra = {} if side == "dockless" else {"startsecs": "0"}
    services = {k: (argv, dict(extra)) for k, (argv, _) in sleepers(n).items()}
    with Daemon(side, args, services) as d:
        d.wait_ready(n)
        time.sleep(2)
        return idle_writes.measure(d.proc.pid, d.dir, window, d.check_alive)


def log_files_size(pattern):
    total = 0
    for p in glob.glob(pattern):
        if not p.endswith(".idx"):
            try:
                total += os.stat(p).st_size
            except FileNotFoundError:
                pass  # rotated away between glob and stat
    return total


def prime_memory(args, mib):
    """Writes and deletes a file of the size about to be measured. In a VM, memory the
    guest has not touched lately is slow to fault in (the host backs it lazily), and which
    side of a comparison meets it first is chance; after this, every side starts with
    recently used pages."""
    path = tempfile.mktemp(prefix="supbench-prime-")
    try:
        with open(path, "wb") as out:
            subprocess.run([args.probe, "--write", str(mib), os.devnull], stdout=out, check=True,
                           timeout=300)
    finally:
        if os.path.exists(path):
            os.unlink(path)


def logs_run(side, args, mib):
    """MiB/s from the writer's start stamp to the moment the last byte is in the log files."""
    prime_memory(args, mib)
    total = mib << 20
    stamp = tempfile.mktemp(prefix="supbench-writer-", suffix=".log")
    argv = [args.probe, "--write", str(mib), stamp]
    try:
        if side in ("file", "/dev/null"):
            target = tempfile.mktemp(prefix="supbench-out-") if side == "file" else os.devnull
            try:
                with open(target, "wb") as out:
                    env = dict(os.environ, **{MARK_VAR: MARK})
                    subprocess.run(argv, stdout=out, env=env, check=True, timeout=300)
                if side == "file" and os.stat(target).st_size != total:
                    raise BenchError("writer > file: short file")
            finally:
                if side == "file" and os.path.exists(target):
                    os.unlink(target)
            s = dict(stamps(stamp))
            return {"mibs": mib / ((s["end"] - s["start"]) / 1e9)}
        if side == "dockless":
            extra = {"restart": '"no"', "log_max_size": '"2GiB"', "log_keep": "2"}
        else:
            extra = {"startsecs": "0", "autorestart": "false", "stdout_logfile_maxbytes": "0",
                     "stdout_logfile_backups": "0"}
        d = Daemon(side, args, {"writer": (argv, extra)})
        if side == "supervisord":
            extra["stdout_logfile"] = os.path.join(d.dir, "writer.out")
        with d:
            pattern = (os.path.join(d.data, "logs", "writer", "stdout.log*")
                       if side == "dockless" else os.path.join(d.dir, "writer.out*"))
            deadline = time.monotonic() + 300
            while log_files_size(pattern) < total:
                if time.monotonic() > deadline:
                    raise BenchError(f"{side}: {log_files_size(pattern)} of {total} bytes "
                                     "logged after 300 s")
                d.check_alive()
                time.sleep(0.002)
            end = time.monotonic_ns()
        s = dict(stamps(stamp))
        return {"mibs": mib / ((end - s["start"]) / 1e9)}
    finally:
        if os.path.exists(stamp):
            os.unlink(stamp)


# ---------------------------------------------------------------- the table

def is_static(path):
    """True when the ELF file has no PT_INTERP (no dynamic loader runs before main)."""
    with open(path, "rb") as f:
        head = f.read(64)
        wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
        phoff, phentsize, phnum = (struct.unpack_from(order + "Q", head, 32)[0], *struct.unpack_from(
            order + "HH", head, 54)) if wide else (struct.unpack_from(order + "I", head, 28)[0],
                                                   *struct.unpack_from(order + "HH", head, 42))
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if struct.unpack(order + "I", f.read(4))[0] == 3:  # PT_INTERP
                return False
    return True


class Results:
    def __init__(self):
        self.values, self.errors, self.notes = {}, [], []
        self.lower = set()  # (key, side) whose figure is a lower bound (a cap expired)

    def add(self, key, side, value):
        self.values.setdefault((key, side), []).append(value)

    def median(self, key, side):
        v = self.values.get((key, side))
        return statistics.median(v) if v else None

    def attempt(self, label, fn):
        try:
            return fn()
        except (BenchError, OSError, subprocess.SubprocessError) as e:
            self.errors.append(f"{label}: {e}")
            log(f"  failed: {label}: {e}")
            return None


def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v:.3f} ms" if v < 10 else f"{v:.0f} ms"
    if unit == "MiB/s":
        return f"{v:.0f} MiB/s"
    if unit == "MiB":
        return f"{v:.2f} MiB"
    if unit == "KiB":
        return f"{v:.0f} KiB"
    if unit == "s":
        return f"{v:.2f} s"
    return f"{v:.0f}{unit}"


def ratio(d, b, higher_better):
    if d is None or b is None:
        return "-"
    if higher_better:
        d, b = b, d
    if d == 0:
        return "=" if b == 0 else "inf"
    return f"{b / d:.2f}x"


def table(res, p, sides):
    W = p["window"]
    rows = [  # label, key, baseline side, unit, higher is better, goal text, goal test
        ("restart latency p50 (exit -> next exec)", "restart_p50", "supervisord", "ms", False,
         "< 1 ms", lambda v: v < 1),
        ("  same vs C loop: posix_spawn + waitpid", "restart_p50", "loop", "ms", False, "-", None),
        ("restart latency p99", "restart_p99", "supervisord", "ms", False, "-", None),
        ("  same vs C loop: posix_spawn + waitpid", "restart_p99", "loop", "ms", False, "-", None),
        ("daemon CPU per restart (utime+stime / restarts)", "restart_cpu", "supervisord", "ms",
         False, "-", None),
        ("start-up, 500 services (exec -> 500 x sleep)", "start_ms", "supervisord", "ms", False,
         "-", None),
        ("  daemon CPU until then (utime+stime)", "start_cpu", "supervisord", "s", False, "-",
         None),
        (f"log capture, {p['mib']} MiB", "mibs", "supervisord", "MiB/s", True, "-", None),
        ("  same vs writer > file (ceiling)", "mibs", "file", "MiB/s", True, "-", None),
        ("  same vs writer > /dev/null", "mibs", "/dev/null", "MiB/s", True, "-", None),
        ("  best run (noise only slows a run down)", "mibs_best", "supervisord", "MiB/s", True,
         "-", None),
        ("  best run vs writer > file", "mibs_best", "file", "MiB/s", True, "-", None),
    ]
    for n in (0, 10, 100, 500):
        rows.append((f"RSS, {n} idle services", f"rss{n}", "supervisord", "MiB", False,
                     "< 4 MiB" if n == 100 else "-", (lambda v: v < 4) if n == 100 else None))
    for n in (0, 10, 100, 500):
        rows.append((f"PSS, {n} idle services", f"pss{n}", "supervisord", "MiB", False, "-", None))
    for side in sides + ["file"]:
        if res.values.get(("mibs", side)):
            res.values[("mibs_best", side)] = [max(res.values[("mibs", side)])]
    for side in sides:  # derived: what one more service costs the daemon
        r0, r500 = res.median("rss0", side), res.median("rss500", side)
        if r0 is not None and r500 is not None:
            res.values[("rss_per", side)] = [(r500 - r0) * 1024 / 500]
    rows += [
        ("RSS per service ((500 - 0) / 500)", "rss_per", "supervisord", "KiB", False, "-", None),
        (f"idle CPU over {W} s, 100 services", "cpu", "supervisord", "s", False, "0",
         lambda v: v == 0),
        (f"idle voluntary ctx switches over {W} s, main thread", "ctx_main", "supervisord", "",
         False, "0", lambda v: v == 0),
        ("  same, all threads (io_uring io-wq workers too)", "ctx", "supervisord", "", False,
         "0", lambda v: v == 0),
        (f"idle disk writes over {W} s (write_bytes)", "wbytes", "supervisord", " B", False, "0",
         lambda v: v == 0),
        (f"disk writes per idle hour, 20 services ({p['sd_window']} s window x "
         f"{3600 // p['sd_window']})", "sd_wbytes_h", "supervisord", " B", False, "0", lambda v: v == 0),
        ("  write syscalls per idle hour (syscw)", "sd_syscw_h", "supervisord", "", False, "0",
         lambda v: v == 0),
        ("  files written while idle (size or mtime)", "sd_files", "supervisord", "", False, "0",
         lambda v: v == 0),
    ]
    head = ["measure", "dockless", "baseline", "baseline value", "ratio", "goal"]
    lines = []
    for label, key, base, unit, hb, goal, test in rows:
        d, b = res.median(key, "dockless"), res.median(key, base)
        g = goal
        if test is not None and d is not None:
            g += " (met)" if test(d) else " (MISSED)"
        cells = [fmt(d, unit), fmt(b, unit), ratio(d, b, hb)]
        for i, side in ((0, "dockless"), (1, base)):
            if (key, side) in res.lower:  # a cap expired: the figure is a bound
                cells[i] = ("> " if not hb else "< ") + cells[i]
                cells[2] = (">= " if i == 1 else "<= ") + cells[2]
        lines.append([label, cells[0], base, cells[1], cells[2], g])
    widths = [max(len(r[i]) for r in lines + [head]) for i in range(len(head))]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in lines]
    return "\n".join(out)


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dockless", help="the dockless binary (default: build-release/tools/"
                    "dockless, else build/tools/dockless)")
    ap.add_argument("--probe", help="restart_probe (default: bench/restart_probe next to the "
                    "dockless binary's build dir)")
    ap.add_argument("--quick", action="store_true", help="smaller counts, under 2 minutes")
    ap.add_argument("--runs", type=int, help="runs of every measurement (median is shown)")
    ap.add_argument("--nice", type=int, default=-10, help="niceness of the bench, the daemons "
                    "and their services when run as root (default -10; 0 leaves it)")
    ap.add_argument("--only", help="comma-separated: restart,startup,logs,memory,idle,sdcard")
    args = ap.parse_args()
    if args.dockless is None:
        for c in ("build-release", "build"):
            if os.access(os.path.join(REPO, c, "tools", "dockless"), os.X_OK):
                args.dockless = os.path.join(REPO, c, "tools", "dockless")
                break
    if args.dockless is None or not os.access(args.dockless, os.X_OK):
        ap.error(f"no dockless binary ({args.dockless or 'build*/tools/dockless'}); build it or "
                 "pass --dockless PATH")
    args.dockless = os.path.abspath(args.dockless)
    if args.probe is None:
        args.probe = os.path.join(os.path.dirname(os.path.dirname(args.dockless)), "bench",
                                  "restart_probe")
    if not os.access(args.probe, os.X_OK):
        ap.error(f"no restart_probe at {args.probe}; `ninja -C BUILD bench/restart_probe` or "
                 "pass --probe PATH")
    args.probe = os.path.abspath(args.probe)
    args.only = set(args.only.split(",")) if args.only else None
    return args


def on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds through every Daemon.__exit__


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    q, runs = args.quick, args.runs
    p = {"restarts": 200 if q else 500, "mib": 256 if q else 1024, "window": 10 if q else 30,
         "restart_cap": 3 if q else 15, "startup_cap": 5 if q else 45,
         "runs": runs or (2 if q else 5), "startup_runs": runs or (1 if q else 3),
         "memory_runs": runs or (1 if q else 3), "idle_runs": runs or (1 if q else 2),
         "sd_window": 20 if q else 60, "sd_runs": runs or 1}
    args.supervisord = shutil.which("supervisord")
    sides = ["dockless"]
    if args.supervisord:
        sides.append("supervisord")
        sup_version = subprocess.run([args.supervisord, "--version"], capture_output=True,
                                     text=True).stdout.strip()
    else:
        sup_version = "absent"
        log("supervisord is not installed: its column shows '-'. Install it with "
            "`apt-get install supervisor` (Debian package `supervisor`) for the baseline.")
    helptext = subprocess.run([args.dockless, "serve", "--help"], capture_output=True, text=True,
                              timeout=10)
    args.has_socket = "--socket" in helptext.stdout + helptext.stderr
    if os.geteuid() == 0 and args.nice:
        # The same higher priority for both daemons and their services (inherited): on a
        # shared machine it keeps other people's builds from deciding the figures.
        os.setpriority(os.PRIO_PROCESS, 0, args.nice)
    want = lambda name: args.only is None or name in args.only
    res, t_start = Results(), time.monotonic()
    uname = os.uname()
    print(f"supervisor_bench {time.strftime('%Y-%m-%d %H:%M')} {'quick' if q else 'full'}\n"
          f"kernel:      {uname.sysname} {uname.release} {uname.machine}, nproc {os.cpu_count()},"
          f" load at start {os.getloadavg()[0]:.1f}\n"
          f"dockless:    {args.dockless}\n"
          f"probe:       {args.probe} ({'static' if is_static(args.probe) else 'dynamic'})\n"
          f"supervisord: {sup_version}\n"
          f"priority:    nice {os.getpriority(os.PRIO_PROCESS, 0)} (bench, daemons, services)",
          flush=True)
    try:
        if want("restart"):
            log(f"restart latency: {p['runs']} runs x >= {p['restarts']} restarts")
            for r in range(p["runs"]):
                for side in sides + ["loop"]:
                    out = res.attempt(f"restart/{side}", lambda: restart_run(
                        side, args, p["restarts"], p["restart_cap"]))
                    if out:
                        res.add("restart_count", side, out["count"])
                        if "cpu_ms" in out:
                            res.add("restart_cpu", side, out["cpu_ms"])
                        res.add("restart_p50", side, out["p50"])
                        res.add("restart_p99", side, out["p99"])
        if want("startup"):
            log(f"start-up of 500 services: {p['startup_runs']} runs")
            capped = set()
            for r in range(p["startup_runs"]):
                for side in sides:
                    if side in capped:
                        continue  # once a cap expired, more runs only repeat the bound
                    out = res.attempt(f"startup/{side}", lambda: startup_run(
                        side, args, 500, p["startup_cap"]))
                    if out:
                        res.add("start_ms", side, out["start_ms"])
                        if out["running"] < 500:
                            capped.add(side)
                            res.lower.add(("start_ms", side))
                            res.notes.append(f"start-up: {side} had {out['running']} of 500 "
                                             f"running when the {p['startup_cap']} s cap expired")
                        else:
                            res.add("start_cpu", side, out["cpu"])
                            res.add("rss500", side, out["rss"])
                            res.add("pss500", side, out["pss"])
        if want("logs"):
            log(f"log capture of {p['mib']} MiB: {p['runs']} runs")
            res.attempt("logs/warm-up", lambda: prime_memory(args, p["mib"]))
            for r in range(p["runs"]):
                for side in sides + ["file", "/dev/null"]:
                    out = res.attempt(f"logs/{side}", lambda: logs_run(side, args, p["mib"]))
                    if out:
                        res.add("mibs", side, out["mibs"])
        if want("memory"):
            log(f"memory with 0 and 10 services: {p['memory_runs']} runs")
            for r in range(p["memory_runs"]):
                for n in (0, 10):
                    for side in sides:
                        out = res.attempt(f"memory{n}/{side}", lambda: memory_run(side, args, n))
                        if out:
                            res.add(f"rss{n}", side, out["rss"])
                            res.add(f"pss{n}", side, out["pss"])
        if want("idle"):
            log(f"idle with 100 services: {p['idle_runs']} runs x {p['window']} s")
            for r in range(p["idle_runs"]):
                for side in sides:
                    out = res.attempt(f"idle/{side}",
                                      lambda: idle_run(side, args, 100, p["window"]))
                    if out:
                        for k in ("rss", "pss"):
                            res.add(f"{k}100", side, out[k])
                        for k in ("cpu", "ctx", "ctx_main", "wbytes"):
                            res.add(k, side, out[k])
        if want("sdcard"):
            log(f"disk writes while idle, 20 services: {p['sd_runs']} runs x {p['sd_window']} s")
            for r in range(p["sd_runs"]):
                for side in sides:
                    out = res.attempt(f"sdcard/{side}",
                                      lambda: sdcard_run(side, args, 20, p["sd_window"]))
                    if out:
                        for k in ("wbytes_h", "syscw_h", "files"):
                            res.add("sd_" + k, side, out[k])
                        if out["changed"]:
                            res.notes.append(f"sdcard: {side} wrote while idle: "
                                             + ", ".join(out["changed"][:10]))
                        if out["fstype"] in ("tmpfs", "ramfs"):
                            res.notes.append(f"sdcard: {side}'s dir is on {out['fstype']}: "
                                             "write_bytes stays 0 there; set TMPDIR to a disk")
    except KeyboardInterrupt:
        log("interrupted: every process of this run was stopped")
        sweep()
        return 130
    finally:
        sweep()
    print()
    print(table(res, p, sides))
    print(f"\nmedians of interleaved runs (restart/logs {p['runs']}, start-up {p['startup_runs']},"
          f" memory {p['memory_runs']}, idle {p['idle_runs']}, sdcard {p['sd_runs']});"
          " ratio > 1: Dockless is better;"
          f" total {time.monotonic() - t_start:.0f} s")
    for side in sides + ["loop"]:
        counts = res.values.get(("restart_count", side))
        if counts:
            print(f"restart samples per run, {side}: {', '.join(map(str, counts))} (p50/p99 are "
                  f"medians of the per-run percentiles; cap {p['restart_cap']} s a run)")
    for n in res.notes:
        print(f"note: {n}")
    for e in res.errors:
        print(f"error: {e}")
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
