#!/usr/bin/env python3
"""Peers benchmark: Dockless beside runit, s6 and the floor (a shell, no supervisor), one table.

Measured as issue #12's "How it is measured" says, all four sides in one run: footprint
(Pss of the supervisor's own processes 5 s after N services are up), start-up (exec of the
supervisor until N marker files exist), log capture (one service writes MiB to stdout in
64 KiB writes) and restart (gap from a service's exit to its next start). Every service is a
#!/bin/sh script. Each measurement is repeated (--runs, default 5) with the sides
interleaved in a rotating order, and the table shows medians; on a noisy machine compare
the ratios of one run, never absolute figures across runs. See bench/README.md.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from peers_sides import SIDES, Run, missing, pss_breakdown
from supbench_daemons import BenchError, MARK, MARK_VAR, REPO, log, read, sweep

METRICS = ("footprint", "startup", "logs", "restart")


def wait_until(cond, cap, what, run=None, step=0.001):
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        if cond():
            return time.monotonic_ns()
        if run is not None:
            run.check_alive()
        time.sleep(step)
    raise BenchError(f"{what}: not done after {cap} s")


# ---------------------------------------------------------------- the measurements

def startup_run(side, args, n, footprint, want_breakdown):
    """Start-up in ms (exec -> n markers, polled every 1 ms); then, with footprint, the
    Pss of the supervisor's own processes 5 s later."""
    markers = tempfile.mkdtemp(prefix="peers-markers-")
    try:
        services = {f"s{i:03d}": f"touch {markers}/s{i:03d}\nexec sleep 100000" for i in range(n)}
        with Run(side, args, services) as r:
            at = wait_until(lambda: len(os.listdir(markers)) >= n, args.p["startup_cap"],
                            f"{side}: {n} markers", r)
            out = {"start_ms": (at - r.t0) / 1e6}
            if footprint and side != "floor":
                time.sleep(5)
                r.check_alive()
                out["pss_mib"] = r.footprint_kib() / 1024
                out["procs"] = len(r.own_pids())
                if side == "dockless" and want_breakdown:
                    out["breakdown"] = pss_breakdown(r.proc.pid)
            return out
    finally:
        for f in os.listdir(markers):
            os.unlink(os.path.join(markers, f))
        os.rmdir(markers)


def stamps(path):
    try:
        return [(w, int(ns)) for w, ns in (line.split() for line in read(path).splitlines())]
    except FileNotFoundError:
        return []


def gaps_of(path):
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


def restart_run(side, args, gaps):
    """p50/p99 in ms of start[i+1] - exit[i] over `gaps` gaps, from the probe's stamps."""
    fd, probe_log = tempfile.mkstemp(prefix="peers-restart-", suffix=".log")
    os.close(fd)
    try:
        body = f"exec {args.probe} {probe_log}"
        with Run(side, args, {"probe": body}, restart={"probe"}, loops=gaps + 1) as r:
            # runit and s6 wait 1 s before restarting a service that ran under a second.
            wait_until(lambda: len(gaps_of(probe_log)) >= gaps, gaps * 1.5 + 15,
                       f"{side}: {gaps} restarts", r, step=0.01)
        lat = gaps_of(probe_log)[:gaps]
    finally:
        os.unlink(probe_log)
    return {"p50": percentile(lat, 0.50), "p99": percentile(lat, 0.99)}


def floor_logs(args, mib, stamp, target):
    """`writer | cat > file`: the time until the file holds every byte, and cat's CPU."""
    env = dict(os.environ, **{MARK_VAR: MARK})
    writer = cat = None
    try:
        with open(target, "wb") as out:
            writer = subprocess.Popen([args.probe, "--write-text", str(mib), "64", stamp],
                                      stdout=subprocess.PIPE, env=env, start_new_session=True)
            cat = subprocess.Popen(["cat"], stdin=writer.stdout, stdout=out, env=env,
                                   start_new_session=True)
            writer.stdout.close()
        total = mib << 20
        end = wait_until(lambda: os.stat(target).st_size >= total, args.p["log_cap"],
                         "floor: cat", step=0.002)
        _, status, ru = os.wait4(cat.pid, 0)  # its rusage, before Popen reaps it
        cat.returncode = os.waitstatus_to_exitcode(status)
        return end, ru.ru_utime + ru.ru_stime
    finally:
        for p in (writer, cat):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()


def logs_run(side, args, mib):
    """MiB/s from the writer's start stamp until every byte is in the log file(s), and the
    CPU seconds of the capture path over that time."""
    d = tempfile.mkdtemp(prefix="peers-logs-")
    stamp, go, ready = (os.path.join(d, f) for f in ("stamp", "go", "ready"))
    total = mib << 20
    try:
        if side == "floor":
            end, cpu = floor_logs(args, mib, stamp, os.path.join(d, "out"))
        else:
            # The writer waits for `go`, so the CPU count starts after the supervisor's
            # own start-up; the wait is bounded (60 s) like every loop here.
            # runit and s6 restart it when it exits: the second instance only sleeps.
            body = (f"[ -e {ready} ] && exec sleep 100000\ntouch {ready}\ni=0\n"
                    f"while [ ! -e {go} ] && [ $i -lt 6000 ]; do sleep 0.01; i=$((i+1)); done\n"
                    f"exec {args.probe} --write-text {mib} 64 {stamp}")
            with Run(side, args, {"writer": body}, logged={"writer"}) as r:
                wait_until(lambda: os.path.exists(ready), 30, f"{side}: writer up", r)
                # The logger (svlogd / s6-log) starts beside the writer: count it in.
                n = {"runit": 3, "s6": 4, "dockless": 1}[side]
                wait_until(lambda: len(r.own_pids(loggers=True)) >= n, 30,
                           f"{side}: logger up", r, step=0.01)
                pids = r.own_pids(loggers=True)
                before = r.cpu(pids)
                open(go, "w").close()
                end = wait_until(lambda: r.logged_bytes("writer") >= total, args.p["log_cap"],
                                 f"{side}: {mib} MiB logged", r, step=0.002)
                cpu = r.cpu(pids) - before
                got = r.logged_bytes("writer")
                if got != total:
                    raise BenchError(f"{side}: {got} bytes logged, {total} written")
        start = dict(stamps(stamp)).get("start")
        if start is None:
            raise BenchError(f"{side}: the writer left no start stamp")
        return {"mibs": mib / ((end - start) / 1e9), "cpu_s": cpu, "procs": len(pids)
                if side != "floor" else 1}
    finally:
        for f in os.listdir(d):
            os.unlink(os.path.join(d, f))
        os.rmdir(d)


# ---------------------------------------------------------------- results and the table

class Results:
    def __init__(self):
        self.values, self.errors, self.breakdown = {}, [], None

    def add(self, key, side, value):
        self.values.setdefault(f"{key}/{side}", []).append(value)

    def median(self, key, side):
        v = self.values.get(f"{key}/{side}")
        return statistics.median(v) if v else None

    def paired_ratio(self, key, base):
        """Median over repetitions of Dockless / base within the same repetition: the
        interleaved pair shares the machine's state at that moment, so its ratio is what a
        noisy machine still measures well. None without complete pairs."""
        d, b = self.values.get(f"{key}/dockless", []), self.values.get(f"{key}/{base}", [])
        pairs = [x / y for x, y in zip(d, b) if y]
        return statistics.median(pairs) if pairs and len(d) == len(b) else None

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
        return f"{v:.2f} ms" if v < 10 else f"{v:.0f} ms"
    if unit == "MiB":
        return f"{v:.2f} MiB"
    if unit == "MiB/s":
        return f"{v:.0f} MiB/s"
    return f"{v:.3f} s"


def rows(res, p):
    """[(metric, key, unit, baseline side or 'peers', goal ratio or absolute, higher better)]"""
    out = []
    for n in p["sizes"]:
        goal = {10: 1.0, 100: 2.5, 500: 5.0}.get(n)
        out.append((f"PSS, {n} services", f"pss{n}", "MiB", "peers", ("abs", goal), False))
    for n in p["sizes"]:
        out.append((f"start-up, {n} services", f"start{n}", "ms", "floor",
                    ("ratio", 2.0 if n <= 10 else 1.3), False))
    out += [(f"log {p['mib']} MiB, throughput", "mibs", "MiB/s", "floor", ("ratio", 1.0), True),
            (f"log {p['mib']} MiB, capture CPU", "logcpu", "s", "floor", ("ratio", 0.5), False),
            (f"restart gap p50 ({p['gaps']} gaps)", "gap50", "ms", "floor", ("ratio", 1.2), False),
            (f"restart gap p99 ({p['gaps']} gaps)", "gap99", "ms", "floor", ("ratio", 1.5), False)]
    return out


def table(res, p):
    head = ["metric", "runit", "s6", "floor", "Dockless", "Dockless ratio", "goal"]
    lines, summary = [], []
    for label, key, unit, base, (kind, goal), hb in rows(res, p):
        vals = {s: res.median(key, s) for s in SIDES}
        if not any(v is not None for v in vals.values()):
            continue
        d = vals["dockless"]
        if base == "peers":  # the lighter of runit and s6
            cands = [(vals[s], s) for s in ("runit", "s6") if vals[s] is not None]
            b, bname = min(cands) if cands else (None, "peers")
        else:
            b, bname = vals[base], base
        r = res.paired_ratio(key, base) if base != "peers" else None
        if r is None:
            r = d / b if d is not None and b else None
        ratio = f"{r:.2f}x {bname}" if r is not None else "-"
        if goal is None:
            g = "-"
        elif kind == "abs":
            g = f"<= {fmt(goal, unit)}" + ("" if d is None else " (met)" if d <= goal
                                            else " (MISSED)")
        else:
            g = f"{'>=' if hb else '<='} {goal}x {base}" + (
                "" if r is None else " (met)" if (r >= goal if hb else r <= goal) else " (MISSED)")
        cells = [label] + [fmt(vals[s], unit) for s in SIDES] + [ratio, g]
        lines.append(cells)
        summary.append({"metric": label, **{s: vals[s] for s in SIDES}, "ratio": r,
                        "baseline": bname, "goal": g})
    widths = [max(len(c[i]) for c in lines + [head]) for i in range(len(head))]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"
            for cells in lines]
    return "\n".join(out), summary


# ---------------------------------------------------------------- main

def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dockless", default=os.path.join(REPO, "build-release", "tools", "dockless"),
                    help="the dockless binary (default build-release/tools/dockless)")
    ap.add_argument("--probe", help="restart_probe (default: bench/restart_probe in the dockless "
                    "binary's build dir)")
    ap.add_argument("--quick", action="store_true", help="fewer and smaller runs, < 3 minutes")
    ap.add_argument("--runs", type=int, help="repetitions of every measurement (default 5)")
    ap.add_argument("--only", help="comma-separated: " + ",".join(METRICS))
    ap.add_argument("--sizes", help="service counts for footprint and start-up (default "
                    "10,100,500)")
    ap.add_argument("--mib", type=int, help="MiB the log writer writes (default 256; the "
                    "issue's 512 takes runit's svlogd about a minute a run here)")
    ap.add_argument("--json", help="also write every figure (all runs, medians) to FILE")
    ap.add_argument("--pss-breakdown", action="store_true", help="print Dockless's Pss per "
                    "mapping (/proc/PID/smaps, top 12) at the smallest size")
    args = ap.parse_args()
    args.only = set(args.only.split(",")) if args.only else set(METRICS)
    if not args.only <= set(METRICS):
        ap.error(f"--only takes {','.join(METRICS)}")
    try:
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else None
    except ValueError:
        ap.error("--sizes takes comma-separated counts")
    if sizes is not None and not all(0 < s <= 2000 for s in sizes):
        ap.error("--sizes: each count 1..2000")
    if args.runs is not None and not 1 <= args.runs <= 50:
        ap.error("--runs: 1..50")
    if args.mib is not None and not 1 <= args.mib <= 4096:
        ap.error("--mib: 1..4096")
    q = args.quick
    args.p = {"runs": args.runs or (2 if q else 5), "sizes": sizes or ([10] if q else
              [10, 100, 500]), "mib": args.mib or (32 if q else 256), "gaps": 10 if q else 30,
              "startup_cap": 60, "log_cap": 300}
    args.dockless = os.path.abspath(args.dockless)
    if not os.access(args.dockless, os.X_OK):
        ap.error(f"no dockless binary at {args.dockless}; build it or pass --dockless PATH")
    if args.probe is None:
        args.probe = os.path.join(os.path.dirname(os.path.dirname(args.dockless)), "bench",
                                  "restart_probe")
    args.probe = os.path.abspath(args.probe)
    if not os.access(args.probe, os.X_OK):
        ap.error(f"no restart_probe at {args.probe}; `ninja -C BUILD bench/restart_probe` or "
                 "pass --probe PATH")
    return args


def on_sigterm(signum, frame):
    raise KeyboardInterrupt  # unwinds through every Run.__exit__


def measure(args, res, sides):
    p, only = args.p, args.only
    for rep in range(p["runs"]):
        order = sides[rep % len(sides):] + sides[:rep % len(sides)]  # no side always first
        log(f"repetition {rep + 1}/{p['runs']}, order {', '.join(order)}")
        if only & {"footprint", "startup"}:
            for n in p["sizes"]:
                for side in order:
                    if side == "floor" and "startup" not in only:
                        continue
                    want_bd = n == min(p["sizes"])
                    out = res.attempt(f"startup{n}/{side}", lambda: startup_run(
                        side, args, n, "footprint" in only, want_bd))
                    if out:
                        if "startup" in only:
                            res.add(f"start{n}", side, out["start_ms"])
                        if "pss_mib" in out:
                            res.add(f"pss{n}", side, out["pss_mib"])
                        if "breakdown" in out:
                            res.breakdown = {"services": n, "pid_pss_kib": out["breakdown"]}
        if "logs" in only:
            for side in order:
                out = res.attempt(f"logs/{side}", lambda: logs_run(side, args, p["mib"]))
                if out:
                    res.add("mibs", side, out["mibs"])
                    res.add("logcpu", side, out["cpu_s"])
        if "restart" in only:
            for side in order:
                out = res.attempt(f"restart/{side}", lambda: restart_run(side, args, p["gaps"]))
                if out:
                    res.add("gap50", side, out["p50"])
                    res.add("gap99", side, out["p99"])


def version(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def main():
    args = parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    sides = []
    for side in SIDES:
        gone = missing(side)
        if gone:
            log(f"{side}: {', '.join(gone)} not installed; its column shows '-' "
                "(apt-get install runit s6)")
        else:
            sides.append(side)
    res, t0 = Results(), time.monotonic()
    p = args.p
    uname = os.uname()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    dpkg = version(["dpkg-query", "-W", "-f", "${Package} ${Version}  ", "runit", "s6"])
    print(f"peers_bench {time.strftime('%Y-%m-%d %H:%M %Z')} {'quick' if args.quick else 'full'}, "
          f"{p['runs']} runs\n"
          f"machine:  {uname.sysname} {uname.release} {uname.machine}, nproc {os.cpu_count()}, "
          f"load average {load}\n"
          f"dockless: {args.dockless}\nprobe:    {args.probe}\npeers:    {dpkg or 'absent'}",
          flush=True)
    interrupted = False
    try:
        measure(args, res, sides)
    except KeyboardInterrupt:
        # The figures so far are still printed: a long run cut short is not all lost.
        log("interrupted: every process of this run was stopped")
        interrupted = True
    finally:
        sweep()
    text, summary = table(res, p)
    print()
    print(text)
    print(f"\nmedians of {p['runs']} interleaved runs; ratio = Dockless / baseline (against the floor: the "
          "median of the per-repetition ratios; peers = the "
          f"lighter of runit and s6); load average at the end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}; total {time.monotonic() - t0:.0f} s")
    if args.pss_breakdown and res.breakdown:
        print(f"\nDockless Pss by mapping, {res.breakdown['services']} services (/proc/PID/smaps):")
        for name, kib in res.breakdown["pid_pss_kib"]:
            print(f"  {kib:>7} KiB  {name}")
    for e in res.errors:
        print(f"error: {e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"params": p, "load_start": load, "runs": res.values, "table": summary,
                       "pss_breakdown": res.breakdown, "errors": res.errors}, f, indent=1)
    if interrupted:
        print("interrupted: medians of the runs completed so far")
        return 130
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
