#!/usr/bin/env python3
"""Restart gap of `dockless serve` against its two floors, interleaved, medians of runs.

The service is bench/restart_probe (appends "start <ns>", "exit <ns>", exits 1) with
restart = "always", restart_delay = "0s", restart_limit = 0; the gap is start[i+1] - exit[i]
from the probe's own CLOCK_MONOTONIC stamps. The floors run the same probe N times:
`restart_probe --loop N` (posix_spawn + waitpid in C) and a shell `while` loop (dash).
Each run reports p50 and p99 of its gaps; the table shows the median over runs of each,
and the ratios Dockless / floor (lower is better; issue #12 wants p50 <= 1.2x, p99 <= 1.5x).

  bench/restart_gap_probe.py --dockless build-release/tools/dockless \
      --probe build-release/bench/restart_probe [--gaps 200] [--runs 5]

--dockless may be repeated (LABEL=PATH, e.g. before=/tmp/dockless-old) to compare builds in
one interleaved run; the ratios are then given for each.

Self-contained (no environment marker): each daemon runs in its own session with a temp
dir and is SIGKILLed with its process group at the end; the probe outlives nothing, as it
exits at once by itself.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def stamps(path):
    try:
        with open(path) as f:
            return [(w, int(ns)) for w, ns in (line.split() for line in f.read().splitlines())]
    except FileNotFoundError:
        return []


def gaps(path):
    out, pending = [], None
    for word, ns in stamps(path):
        if word == "exit":
            pending = ns
        elif word == "start" and pending is not None:
            out.append((ns - pending) / 1e6)
            pending = None
    return out


def percentile(values, q):
    v = sorted(values)
    return v[max(0, min(len(v) - 1, int(-(-q * len(v) // 1)) - 1))]


def cpu_of(pid):
    """utime+stime in seconds of every thread of pid (io-wq workers included)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_dockless(args, binary, n, log_path):
    d = tempfile.mkdtemp(prefix="rgap-")
    port = free_port()
    cfg = os.path.join(d, "config.toml")
    with open(cfg, "w") as f:
        f.write(f'data_dir = "{d}/data"\nlisten_address = "127.0.0.1"\nlisten_port = {port}\n'
                f'\n[services.probe]\ncommand = ["{args.probe}", "{log_path}"]\n'
                'restart = "always"\nrestart_delay = "0s"\nrestart_limit = 0\n')
    proc = subprocess.Popen([binary, "serve", "--config", cfg, "--data-dir", d + "/data",
                             "--listen", f"127.0.0.1:{port}"], stdin=subprocess.DEVNULL,
                            stdout=open(os.path.join(d, "out"), "wb"), stderr=subprocess.STDOUT,
                            start_new_session=True, cwd=d)
    cpu = None
    try:
        deadline, first = time.monotonic() + args.cap, None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                sys.exit(f"dockless exited: {open(os.path.join(d, 'out')).read()[-1500:]}")
            starts = sum(w == "start" for w, _ in stamps(log_path))
            if first is None and starts > 0:
                first = (starts, cpu_of(proc.pid))
            if starts > n + 1:
                break
            time.sleep(0.02)
        if first is not None and starts > first[0]:
            cpu = (cpu_of(proc.pid) - first[1]) / (starts - first[0]) * 1000
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        proc.wait()
        shutil.rmtree(d, ignore_errors=True)
    return cpu


def one(side, args):
    fd, log_path = tempfile.mkstemp(prefix="rgap-probe-")
    os.close(fd)
    os.unlink(log_path)
    cpu = None
    try:
        n = args.gaps + 1
        if side in args.builds:
            cpu = run_dockless(args, args.builds[side], n, log_path)
        elif side == "c-loop":
            subprocess.run([args.probe, "--loop", str(n), log_path], check=True, timeout=args.cap * 3)
        else:
            script = f'i=0; while [ $i -lt {n} ]; do "$0" "$1"; i=$((i+1)); done'
            subprocess.run(["/bin/sh", "-c", script, args.probe, log_path], timeout=args.cap * 3)
        g = gaps(log_path)[: args.gaps]
    finally:
        if os.path.exists(log_path):
            os.unlink(log_path)
    return {"p50": percentile(g, 0.5), "p99": percentile(g, 0.99), "n": len(g), "cpu": cpu}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dockless", required=True, action="append", help="PATH or LABEL=PATH")
    ap.add_argument("--probe", required=True)
    ap.add_argument("--gaps", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cap", type=float, default=30)
    args = ap.parse_args()
    args.probe = os.path.abspath(args.probe)
    args.builds = {}
    for d in args.dockless:
        label, _, path = d.rpartition("=")
        args.builds[label or ("dockless" if len(args.dockless) == 1 else path)] = os.path.abspath(path)
    floors = ["c-loop", "sh-loop"]
    sides = list(args.builds) + floors
    res = {s: [] for s in sides}
    for r in range(args.runs):
        for s in sides:  # interleaved, so the machine's drift lands on every side
            out = one(s, args)
            res[s].append(out)
            cpu = f" cpu/restart {out['cpu']:.3f} ms" if out["cpu"] is not None else ""
            print(f"run {r + 1} {s:8} p50 {out['p50']:.3f} ms  p99 {out['p99']:.3f} ms  "
                  f"({out['n']} gaps){cpu}", file=sys.stderr)
    med = {s: {k: statistics.median(o[k] for o in res[s]) for k in ("p50", "p99")} for s in sides}
    print(f"medians of {args.runs} interleaved runs, {args.gaps} gaps each")
    for s in sides:
        print(f"  {s:8} p50 {med[s]['p50']:.3f} ms  p99 {med[s]['p99']:.3f} ms")
    for b in args.builds:
        cpus = [o["cpu"] for o in res[b] if o["cpu"] is not None]
        if cpus:
            print(f"  {b} daemon CPU per restart {statistics.median(cpus):.3f} ms")
        for f in floors:
            print(f"  {b} / {f}: p50 {med[b]['p50'] / med[f]['p50']:.2f}x  "
                  f"p99 {med[b]['p99'] / med[f]['p99']:.2f}x")


if __name__ == "__main__":
    main()
