#!/usr/bin/env python3
"""HTTP API benchmark: requests/s of GET /v1/services with 100 services (wrk, 1 and 64
connections; baseline GET /health on the same daemon), and log-follow latency (a
service prints timestamped lines; a raw-socket follower measures arrival; baseline: a
pipe write -> read in this process). Prints one table; nothing is asserted.

    bench/http_bench.py [--bin build/tools/dockless] [--seconds 5] [--lines 300]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_daemon(binary, tmp, config):
    port = free_port()
    with open(os.path.join(tmp, "config.toml"), "w") as f:
        f.write(config)
    err = open(os.path.join(tmp, "daemon.err"), "wb")
    proc = subprocess.Popen([binary, "serve", "--config", "config.toml", "--data-dir", os.path.join(tmp, "data"),
                             "--listen", "127.0.0.1:%d" % port, "--socket", ""], cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % port, timeout=1) as r:
                if r.status == 200:
                    return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("daemon did not become ready")


def stop_daemon(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wrk(port, path, conns, seconds):
    out = subprocess.run(["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", "%ds" % seconds,
                          "--latency", "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    lat = None
    if p99:
        lat = float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    return (float(rps.group(1)) if rps else float("nan")), lat


def follow_latency(port, service, lines):
    """Latencies (ms) from the service's timestamp to arrival at a raw socket."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(("GET /v1/services/%s/logs?follow=1&tail=0&stream=stdout HTTP/1.1\r\nHost: x\r\n\r\n"
               % service).encode())
    buf, lat = b"", []
    s.settimeout(30)
    while len(lat) < lines:
        chunk = s.recv(65536)
        now = time.time_ns()
        if not chunk:
            break
        buf += chunk
        for m in re.finditer(rb"T(\d{19})\n", buf):
            lat.append((now - int(m.group(1))) / 1e6)
        buf = buf[buf.rfind(b"\n") + 1:]
    s.close()
    return lat


def pipe_latency(lines):
    r, w = os.pipe()
    lat = []

    def reader():
        f = os.fdopen(r, "rb", buffering=0)
        while len(lat) < lines:
            data = f.read(64)
            now = time.time_ns()
            if not data:
                return
            for m in re.finditer(rb"T(\d{19})\n", data):
                lat.append((now - int(m.group(1))) / 1e6)

    t = threading.Thread(target=reader)
    t.start()
    for _ in range(lines):
        os.write(w, b"T%d\n" % time.time_ns())
        time.sleep(0.01)
    t.join(10)
    os.close(w)
    return lat


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100))] if v else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("DOCKLESS_BIN", "build/tools/dockless"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--lines", type=int, default=300)
    args = ap.parse_args()
    rows = []
    tmp = tempfile.mkdtemp(prefix="dockless-httpbench-")
    try:
        config = "".join('[services.s%03d]\ncommand = ["sleep", "100000"]\n' % i for i in range(100))
        # The ticker prints "T<unix ns>" every 10 ms, flushed per line.
        ticker = ("import time,sys\\nwhile True:\\n    sys.stdout.write('T%d\\\\n' % time.time_ns()); "
                  "sys.stdout.flush(); time.sleep(0.01)")
        config += '[services.ticker]\ncommand = ["python3", "-c", "%s"]\n' % ticker
        proc, port = start_daemon(args.bin, tmp, config)
        time.sleep(1)
        with urllib.request.urlopen("http://127.0.0.1:%d/v1/services" % port) as r:
            n = len(json.load(r))
        if shutil.which("wrk"):
            for conns in (1, 64):
                base, base_p99 = wrk(port, "/health", conns, args.seconds)
                got, got_p99 = wrk(port, "/v1/services", conns, args.seconds)
                rows.append(("GET /v1/services (%d svc), %d conn" % (n, conns), "%.0f req/s" % got,
                             "GET /health: %.0f req/s" % base, "%.2fx" % (got / base),
                             "p99 %.2f ms vs %.2f ms" % (got_p99 or 0, base_p99 or 0)))
        else:
            rows.append(("GET /v1/services", "skipped: wrk not installed", "", "", ""))
        lat = follow_latency(port, "ticker", args.lines)
        stop_daemon(proc)
        base = pipe_latency(args.lines)
        rows.append(("log follow latency p50", "%.3f ms" % pct(lat, 50), "pipe: %.3f ms" % pct(base, 50),
                     "%.1fx" % (pct(lat, 50) / max(pct(base, 50), 1e-9)), "%d lines" % len(lat)))
        rows.append(("log follow latency p99", "%.3f ms" % pct(lat, 99), "pipe: %.3f ms" % pct(base, 99),
                     "%.1fx" % (pct(lat, 99) / max(pct(base, 99), 1e-9)), "mean %.3f ms" % statistics.mean(lat)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head = ("benchmark", "dockless", "baseline", "ratio", "note")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(5)]
    for r in [head, tuple("-" * w for w in widths)] + rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
