#!/usr/bin/env python3
"""Start-up of N services against a shell, and API latency while spawns churn (issue #12).

    python3 bench/startup_probe.py [--dockless build-release/tools/dockless] [--baseline OTHER] [--runs 5]
                                   [--n 10,100,500] [--seconds 5] [--skip-latency]

Start-up: each service is a `#!/bin/sh` script that touches its own marker file and then
`exec sleep 100000`. Measured from the exec of `dockless serve` (resp. the floor, a shell
that starts the same N scripts in the background) until all N markers exist, polled every
1 ms. Dockless and the floor alternate run by run; the medians of --runs are printed with
their ratio.

Latency: one daemon runs a zero-delay crash loop (`false`, restart = "always",
restart_delay = "0s", restart_limit = 0) and a `yes` flood into its captured stdout at once;
one keep-alive client times GET /v1/services for --seconds (bounded count). p50/p99/max ms.
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "faults"))


def write_scripts(d, n):
    marks = os.path.join(d, "marks")
    os.mkdir(marks)
    sleep = shutil.which("sleep") or "/bin/sleep"
    scripts = []
    for i in range(n):
        p = os.path.join(d, "s%03d.sh" % i)
        with open(p, "w") as f:
            f.write("#!/bin/sh\ntouch %s/s%03d\nexec %s 100000\n" % (marks, i, sleep))
        os.chmod(p, 0o755)
        scripts.append(p)
    return marks, scripts


def wait_marks(marks, n, proc, cap=120.0):
    deadline = time.monotonic() + cap
    while time.monotonic() < deadline:
        if len(os.listdir(marks)) >= n:
            return time.monotonic_ns()
        if proc.poll() is not None:
            raise SystemExit("process exited with %d before all markers" % proc.returncode)
        time.sleep(0.001)
    raise SystemExit("%d markers not there after %.0f s" % (n, cap))


def stop_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


def run_floor(n):
    d = tempfile.mkdtemp(prefix="startup-floor-")
    try:
        marks, scripts = write_scripts(d, n)
        body = "".join('"%s" &\n' % s for s in scripts) + "wait\n"
        with open(os.path.join(d, "floor.sh"), "w") as f:
            f.write(body)
        t0 = time.monotonic_ns()
        proc = subprocess.Popen(["/bin/sh", os.path.join(d, "floor.sh")], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            return (wait_marks(marks, n, proc) - t0) / 1e6
        finally:
            stop_group(proc)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run_dockless(binary, n):
    d = tempfile.mkdtemp(prefix="startup-dockless-")
    try:
        marks, scripts = write_scripts(d, n)
        data = os.path.join(d, "data")
        lines = ['data_dir = "%s"' % data]
        for i, s in enumerate(scripts):
            lines += ["[services.s%03d]" % i, 'command = ["%s"]' % s]
        with open(os.path.join(d, "config.toml"), "w") as f:
            f.write("\n".join(lines) + "\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKLESS_")}
        err = open(os.path.join(d, "daemon.err"), "wb")
        t0 = time.monotonic_ns()
        proc = subprocess.Popen([binary, "serve", "--config", "config.toml", "--data-dir", data,
                                 "--listen", "", "--socket", os.path.join(d, "d.sock")], cwd=d, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
        try:
            return (wait_marks(marks, n, proc) - t0) / 1e6
        except SystemExit:
            err.flush()
            sys.stderr.write(open(os.path.join(d, "daemon.err")).read()[-2000:])
            raise
        finally:
            stop_group(proc)
            err.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)


def startup(args):
    base = args.baseline
    print("| N | floor ms | dockless ms | ratio | goal |" + (" baseline ms | baseline ratio |" if base else ""))
    print("|---|---|---|---|---|" + ("---|---|" if base else ""))
    for n in args.n:
        floor, dl, bl = [], [], []
        for _ in range(args.runs):
            floor.append(run_floor(n))
            dl.append(run_dockless(args.dockless, n))
            if base:
                bl.append(run_dockless(base, n))
        f, x = statistics.median(floor), statistics.median(dl)
        goal = 2.0 if n <= 10 else 1.3
        row = "| %d | %.1f | %.1f | %.2fx | <= %.1fx (%s) |" % (
            n, f, x, x / f, goal, "met" if x / f <= goal else "MISSED")
        if base:
            b = statistics.median(bl)
            row += " %.1f | %.2fx |" % (b, b / f)
        print(row, flush=True)
        print("  runs floor %s dockless %s baseline %s" % (["%.1f" % v for v in floor], ["%.1f" % v for v in dl],
                                                          ["%.1f" % v for v in bl]), file=sys.stderr, flush=True)


def latency_once(binary, names, seconds):
    os.environ["DOCKLESS_BIN"] = os.path.abspath(binary)
    import faultlib
    from hostile_test import HOSTILE, register
    d = faultlib.Daemon("")
    try:
        d.start()
        c = faultlib.Client(d.port)
        for name in names:
            register(c, name, HOSTILE[name])
        for name in names:
            faultlib.wait_for(lambda: d.service_state(name), 10, what="started")
        time.sleep(1.0)
        lat = faultlib.latencies(d.port, seconds, max_requests=20000, client=c)
        c.close()
        return len(lat), faultlib.percentile(lat, 50), faultlib.percentile(lat, 99), max(lat)
    finally:
        d.cleanup()


def latency(args):
    """Each row --runs times, the binaries alternated run by run; medians, with the
    per-run p99s listed below the table (this machine's tails are noisy)."""
    binaries = [("dockless", args.dockless)] + ([("baseline", args.baseline)] if args.baseline else [])
    rows = [("idle", ()), ("crasher + firehose", ("crasher", "firehose"))]
    print("| running | binary | requests | p50 ms | p99 ms | max ms | goal |")
    print("|---|---|---|---|---|---|---|")
    for label, names in rows:
        runs = {b: [] for b, _ in binaries}
        for _ in range(args.runs):
            for b, path in binaries:
                runs[b].append(latency_once(path, names, args.seconds))
        for b, _ in binaries:
            r = runs[b]
            p99 = statistics.median(x[2] for x in r)
            print("| %s | %s | %d | %.2f | %.2f | %.1f | %s |" % (
                label, b, statistics.median(x[0] for x in r), statistics.median(x[1] for x in r), p99,
                statistics.median(x[3] for x in r),
                "p99 <= 5 ms (%s)" % ("met" if p99 <= 5.0 else "MISSED") if names else "-"), flush=True)
        for b, _ in binaries:
            print("  %s %s p99 per run: %s" % (label, b, ", ".join("%.2f" % x[2] for x in runs[b])),
                  file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    default = os.path.join(REPO, "build-release", "tools", "dockless")
    ap.add_argument("--dockless", default=default)
    ap.add_argument("--baseline", help="another dockless binary, run interleaved (before/after)")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--n", default="10,100,500")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-startup", action="store_true")
    args = ap.parse_args()
    args.n = [int(x) for x in args.n.split(",")]
    if not args.skip_startup:
        startup(args)
    if not args.skip_latency:
        latency(args)


if __name__ == "__main__":
    main()
