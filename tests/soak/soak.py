#!/usr/bin/env python3
"""Soak: the real `dockless serve` under sustained churn for a bounded time, sampled.

  tests/soak/soak.py [--minutes 10] [--dockless build-release/tools/dockless]

What runs meanwhile (every loop ends at the deadline):
  - 50 services writing ~4 KiB/s each into small rotating logs; a third of them crash by
    themselves (exit 1 or SIGKILL) after a random lifetime and are restarted by the daemon
    (restart = "always"); the others are restarted, or stopped and started, at random
    through the API;
  - 50 `GET /v1/services/NAME/logs?follow=1` streams and one `/v1/events?follow=1`, read
    and discarded by one selector thread (a stream that ends is an error: follows stay open
    across restarts and rotations);
  - API readers: list, inspect, log tails, events since a recent seq, /metrics.
Every --interval seconds it samples the daemon's RSS, its open fds (/proc/PID/fd),
events.log and data_dir sizes, and prints a table. The verdict fits a line through the
second half of the samples (after warm-up: logs have reached their rotation size) and fails
(exit 1) when RSS, fds or data_dir (without events.log) grow faster than the bounds, or
when events.log grows faster than it did in the first half (events.log is append-only by
design: its growth must follow the event rate, not accelerate). Runs shorter than
--judge-minutes (2) only check that everything worked (the meson smoke test, 0.5 min):
flatness cannot be judged from a few samples. Exit 0 pass, 1 fail, 77 no binary.
"""
import argparse
import http.client
import json
import os
import random
import re
import selectors
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import harness  # noqa: E402  (tests/e2e/harness.py: the daemon in a temp dir, cleanup by tag)
from harness import service, sh  # noqa: E402

KiB, MiB = 1024, 1024 * 1024

# ~2 KiB every 0.5 s; a stderr line every 10th tick. One external `sleep` per tick keeps the
# whole fleet at ~100 forks/s on top of the daemon's work.
TICKER = ('pad=$(printf "%02000d" 0); i=0; while :; do i=$((i+1)); echo "tick $i $pad"; '
          '[ $((i % 10)) -eq 0 ] && echo "err $i" >&2; sleep 0.5; done')
# Lives N ticks, then dies: exit 1, or SIGKILL (a signal death).
CRASHER = ('pad=$(printf "%02000d" 0); i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo "tick $i $pad"; '
           'sleep 0.5; done; echo "dying" >&2; {death}')


def parse_args():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    default_bin = os.environ.get("DOCKLESS_BIN") or os.path.join(root, "build-release", "tools", "dockless")
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--minutes", type=float, default=10.0, help="run time (default 10)")
    p.add_argument("--dockless", default=default_bin, help="the binary (default $DOCKLESS_BIN or build-release)")
    p.add_argument("--services", type=int, default=50)
    p.add_argument("--followers", type=int, default=50)
    p.add_argument("--readers", type=int, default=3, help="API reader threads")
    p.add_argument("--interval", type=float, default=0, help="seconds between samples (default: run/30, 1..10)")
    p.add_argument("--judge-minutes", type=float, default=2.0, help="shortest run whose flatness is judged")
    p.add_argument("--rss-slope", type=float, default=64.0, help="max RSS growth, KiB/min (second half)")
    # The fd count jitters by about +-6 between samples (restarts in flight hold pipes), so a
    # 5-minute slope of a flat series can reach +-1/min; this load restarts ~200 times a
    # minute, so one fd leaked per 100 restarts already exceeds 2/min.
    p.add_argument("--fd-slope", type=float, default=2.0, help="max fd-count growth per minute")
    p.add_argument("--disk-slope", type=float, default=256.0, help="max data_dir growth without events.log, KiB/min")
    p.add_argument("--json", help="also write the samples and the verdict here")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args()
    a.seconds = max(a.minutes * 60.0, 10.0)
    if a.interval <= 0:
        a.interval = min(10.0, max(1.0, a.seconds / 30.0))
    return a


def fleet(n, rng):
    """(config text, names restarted through the API, names that crash by themselves)."""
    text, api_driven, crashing = 'log_level = "warn"\n', [], []
    for i in range(n):
        name = "svc%02d" % i
        common = dict(log_max_size="32KiB", log_keep=2, restart="always", restart_limit=0,
                      restart_delay="200ms", restart_delay_max="2s", stop_timeout="2s")
        if i % 3 == 2:
            death = "exit 1" if i % 2 else "kill -KILL $$"
            text += service(name, sh(CRASHER.format(n=rng.randint(2, 30), death=death)), **common)
            crashing.append(name)
        else:
            text += service(name, sh(TICKER), **common)
            api_driven.append(name)
    return text, api_driven, crashing


class Stats:
    """Counters shared by the load threads (one lock: they are cheap and rare)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = []
        self.latencies = []          # seconds, GET /v1/services, since the last sample
        self.api_restarts = 0
        self.follow_bytes = 0
        self.follow_ended = []
        self.follow_stalled = []

    def error(self, what):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(what)
            else:
                self.errors[-1] = "... and more; last: " + what


class Api:
    """One keep-alive connection; reconnects after a failure (which is recorded)."""

    def __init__(self, port, stats):
        self.port, self.stats, self.conn = port, stats, None

    def request(self, method, path):
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=15)
            self.conn.request(method, path, headers={"Authorization": "Bearer " + harness.TEST_API_KEY})
            r = self.conn.getresponse()
            body = r.read()
            with self.stats.lock:
                self.stats.requests += 1
            if r.status >= 300:
                self.stats.error("%s %s -> %d %r" % (method, path, r.status, body[:120]))
            return r.status, body
        except (OSError, http.client.HTTPException) as e:
            self.stats.error("%s %s: %r" % (method, path, e))
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return 0, b""


def reader(port, names, stats, deadline, rng):
    api = Api(port, stats)
    seq = 0
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        status, body = api.request("GET", "/v1/services")
        if status == 200:
            with stats.lock:
                stats.latencies.append(time.monotonic() - t0)
        name = rng.choice(names)
        api.request("GET", "/v1/services/" + name)
        api.request("GET", "/v1/services/%s/logs?tail=20" % name)
        status, body = api.request("GET", "/v1/events?since=%d" % seq)
        lines = body.rstrip(b"\n").split(b"\n") if status == 200 and body else []
        if lines:
            seq = max(seq, json.loads(lines[-1]).get("seq", seq))
        if rng.random() < 0.1:
            api.request("GET", "/metrics")
        time.sleep(0.02)


def controller(port, names, stats, deadline, rng):
    """Restarts (and sometimes stops, later starts) the API-driven services at random."""
    api = Api(port, stats)
    stopped = []
    while time.monotonic() < deadline:
        if stopped and rng.random() < 0.5:
            api.request("POST", "/v1/services/%s/start" % stopped.pop(0))
        elif rng.random() < 0.1:
            name = rng.choice([n for n in names if n not in stopped] or names)
            if api.request("POST", "/v1/services/%s/stop" % name)[0] == 202:
                stopped.append(name)
        else:
            if api.request("POST", "/v1/services/%s/restart" % rng.choice(names))[0] == 202:
                with stats.lock:
                    stats.api_restarts += 1
        time.sleep(rng.uniform(0.2, 0.8))
    for name in stopped:  # leave the fleet whole for the shutdown
        api.request("POST", "/v1/services/%s/start" % name)


def follow_all(port, paths, stats, deadline, stop):
    """Every follow stream on one selector; a stream that ends is an error."""
    sel = selectors.DefaultSelector()
    last = {}
    for i, path in enumerate(paths):
        # Spread over 127.0.0.2-5: the daemon caps connections per client address (64).
        s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.%d" % (2 + i % 4), 0))
        s.sendall(("GET %s HTTP/1.1\r\nHost: soak\r\n%s\r\n\r\n" % (path, harness.auth_header())).encode())
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, path)
        last[path] = time.monotonic()
    while time.monotonic() < deadline and not stop.is_set():
        for key, _ in sel.select(timeout=0.5):
            try:
                data = key.fileobj.recv(256 * KiB)
            except BlockingIOError:
                continue
            except OSError as e:
                data = b""
                stats.error("follow %s: %r" % (key.data, e))
            if not data:
                with stats.lock:
                    stats.follow_ended.append(key.data)
                sel.unregister(key.fileobj)
                key.fileobj.close()
                continue
            last[key.data] = time.monotonic()
            with stats.lock:
                stats.follow_bytes += len(data)
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    sel.close()
    # Every stream's service writes at least every few seconds (a stopped one is started
    # again within seconds), so a long silence means a stuck stream.
    now = time.monotonic()
    with stats.lock:
        stats.follow_stalled = [p for p, t in last.items() if now - t > 30 and p not in stats.follow_ended]


def tree_bytes(path, skip=None):
    total = 0
    for d, _, files in os.walk(path):
        for f in files:
            p = os.path.join(d, f)
            if p != skip:
                try:
                    total += os.lstat(p).st_blocks * 512
                except OSError:
                    pass
    return total


def metric_sum(text, name):
    return sum(float(m) for m in re.findall(r"^%s(?:\{[^}]*\})? ([0-9.e+]+)$" % re.escape(name), text, re.M))


def sample(d, port, stats, t0):
    pid = d.pid
    with open("/proc/%d/status" % pid) as f:
        rss = int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * KiB
    fds = len(os.listdir("/proc/%d/fd" % pid))
    events_path = d.path("events.log")
    ev_bytes = os.path.getsize(events_path)
    disk = tree_bytes(d.data_dir, skip=events_path)
    _, text = Api(port, stats).request("GET", "/metrics")
    text = text.decode("utf-8", "replace")
    with stats.lock:
        lat = sorted(stats.latencies)
        stats.latencies = []
        s = dict(t=time.monotonic() - t0, rss=rss, fds=fds, events_bytes=ev_bytes, disk=disk,
                 events=int(metric_sum(text, "dockless_events_total")),
                 restarts=int(metric_sum(text, "dockless_service_restarts_total")) + stats.api_restarts,
                 requests=stats.requests, follow_bytes=stats.follow_bytes,
                 list_p50_ms=lat[len(lat) // 2] * 1e3 if lat else 0.0,
                 list_p99_ms=lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3 if lat else 0.0)
    return s


HEADER = ("%7s %8s %5s %12s %12s %8s %9s %8s %9s %9s %10s"
          % ("t(s)", "rss MiB", "fds", "events KiB", "other KiB", "events", "restarts", "req/s",
             "list p50", "list p99", "follow/s"))


def row(s, prev):
    dt = s["t"] - prev["t"] if prev else s["t"]
    req = (s["requests"] - (prev["requests"] if prev else 0)) / max(dt, 1e-9)
    fol = (s["follow_bytes"] - (prev["follow_bytes"] if prev else 0)) / max(dt, 1e-9)
    return ("%7.0f %8.2f %5d %12.0f %12.0f %8d %9d %8.0f %7.1fms %7.1fms %6.0fKiB"
            % (s["t"], s["rss"] / MiB, s["fds"], s["events_bytes"] / KiB, s["disk"] / KiB, s["events"],
               s["restarts"], req, s["list_p50_ms"], s["list_p99_ms"], fol / KiB))


def slope_per_min(samples, key):
    """Least-squares slope of samples[key] against time, per minute."""
    n = len(samples)
    if n < 2:
        return 0.0
    xs = [s["t"] / 60.0 for s in samples]
    ys = [float(s[key]) for s in samples]
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var


def verdict(a, samples, stats, failures):
    half = samples[len(samples) // 2:]
    first = samples[:len(samples) // 2 + 1]
    rss = slope_per_min(half, "rss") / KiB
    fds = slope_per_min(half, "fds")
    disk = slope_per_min(half, "disk") / KiB
    ev1 = slope_per_min(first, "events_bytes") / KiB
    ev2 = slope_per_min(half, "events_bytes") / KiB
    per_event = ((half[-1]["events_bytes"] - half[0]["events_bytes"])
                 / max(1, half[-1]["events"] - half[0]["events"])) if len(half) > 1 else 0.0
    print("\nsecond half (%d samples, %.1f min): RSS %+.1f KiB/min, fds %+.2f/min, "
          "data_dir without events.log %+.1f KiB/min" % (len(half), (half[-1]["t"] - half[0]["t"]) / 60, rss, fds, disk))
    print("fds: %d..%d over the run, %d..%d in the second half"
          % (min(s["fds"] for s in samples), max(s["fds"] for s in samples),
             min(s["fds"] for s in half), max(s["fds"] for s in half)))
    print("events.log: %.1f KiB/min in the first half, %.1f KiB/min in the second (%.0f bytes per event)"
          % (ev1, ev2, per_event))
    judged = a.seconds >= a.judge_minutes * 60
    if judged:
        if rss > a.rss_slope:
            failures.append("RSS grows %.1f KiB/min (bound %.1f)" % (rss, a.rss_slope))
        if fds > a.fd_slope:
            failures.append("fds grow %.2f/min (bound %.2f)" % (fds, a.fd_slope))
        if disk > a.disk_slope:
            failures.append("data_dir grows %.1f KiB/min without events.log (bound %.1f)" % (disk, a.disk_slope))
        if ev2 > ev1 * 1.5 + 4:
            failures.append("events.log growth accelerates: %.1f -> %.1f KiB/min" % (ev1, ev2))
    else:
        print("(a %.1f-minute run is too short to judge flatness; functional checks only)" % a.minutes)
    return dict(rss_kib_per_min=rss, fds_per_min=fds, disk_kib_per_min=disk, events_kib_per_min_first=ev1,
                events_kib_per_min_second=ev2, bytes_per_event=per_event, judged=judged)


def main():
    a = parse_args()
    os.environ["DOCKLESS_BIN"] = os.path.abspath(a.dockless)
    rng = random.Random(a.seed)
    text, api_driven, crashing = fleet(a.services, rng)
    names = api_driven + crashing
    d = harness.Daemon(text)
    stats, samples, failures = Stats(), [], []
    stop = threading.Event()
    print("soak: %d services (%d crash by themselves), %d log follows + 1 event follow, %d readers, "
          "%.1f min, a sample every %.0f s; daemon %s" % (a.services, len(crashing), a.followers, a.readers,
                                                           a.seconds / 60, a.interval, a.dockless))
    try:
        d.start(timeout=30)
        port = d.port
        print("daemon pid %d, data_dir %s" % (d.pid, d.data_dir))
        harness.wait_for(lambda: d.service_state(names[-1]) is not None, 30, what="the fleet in state.json",
                         context=d.describe)
        t0 = time.monotonic()
        deadline = t0 + a.seconds
        paths = ["/v1/services/%s/logs?follow=1&tail=1" % names[i % len(names)] for i in range(a.followers)]
        paths.append("/v1/events?follow=1")
        threads = [threading.Thread(target=follow_all, args=(port, paths, stats, deadline, stop), daemon=True),
                   threading.Thread(target=controller, args=(port, api_driven, stats, deadline,
                                                             random.Random(rng.random())), daemon=True)]
        threads += [threading.Thread(target=reader, args=(port, names, stats, deadline, random.Random(rng.random())),
                                     daemon=True) for _ in range(a.readers)]
        for t in threads:
            t.start()
        print(HEADER)
        next_at = t0
        while True:
            now = time.monotonic()
            if not d.running():
                failures.append("the daemon exited with %s during the soak" % d.proc.returncode)
                break
            if now >= next_at:
                samples.append(sample(d, port, stats, t0))
                print(row(samples[-1], samples[-2] if len(samples) > 1 else None), flush=True)
                next_at += a.interval
                if now >= deadline:
                    break
            time.sleep(max(0.0, min(next_at, deadline + 0.01) - time.monotonic()))
        stop.set()
        for t in threads:
            t.join(30)
            if t.is_alive():
                failures.append("a load thread did not finish within 30 s of the deadline")
        if d.running():
            took = d.stop(timeout=60)
            print("SIGTERM: exit 0 after %.2f s" % took)
        left = d.survivors()
        if left:
            failures.append("processes left after the shutdown: %r" % left[:5])
    except AssertionError as e:
        failures.append(str(e))
    finally:
        stop.set()
        d.cleanup()

    result = {}
    if len(samples) >= 3:
        result = verdict(a, samples, stats, failures)
    else:
        failures.append("only %d samples taken" % len(samples))
    if stats.errors:
        failures.append("%d API/follow error(s), first: %s" % (len(stats.errors), "; ".join(stats.errors[:5])))
    if stats.follow_ended:
        failures.append("%d follow stream(s) ended: %s" % (len(stats.follow_ended), stats.follow_ended[:5]))
    if stats.follow_stalled:
        failures.append("%d follow stream(s) silent for 30 s at the end: %s"
                        % (len(stats.follow_stalled), stats.follow_stalled[:5]))
    if samples:
        last = samples[-1]
        if last["restarts"] == 0 or last["requests"] == 0 or last["follow_bytes"] == 0:
            failures.append("no load happened: %d restarts, %d requests, %d follow bytes"
                            % (last["restarts"], last["requests"], last["follow_bytes"]))
        print("totals: %d restarts (%d through the API), %d API requests, %.1f MiB followed, %d events"
              % (last["restarts"], stats.api_restarts, last["requests"], last["follow_bytes"] / MiB, last["events"]))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(a).items()}, "samples": samples, "result": result,
                       "failures": failures}, f, indent=1)
    print("verdict: %s" % ("FAIL\n  " + "\n  ".join(failures) if failures else
                           "PASS (flat)" if result.get("judged") else "PASS (smoke)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
