#!/usr/bin/env python3
"""HTTP API benchmark: requests/s of GET /v1/services with 100 services (wrk, 1 and 64
connections; baseline GET /health on the same daemon), and log-follow latency (a
service prints timestamped lines; a raw-socket follower measures arrival; baseline: a
pipe write -> read in this process). Then the cost of TLS: GET /health over HTTPS
(self-signed certificate from the openssl CLI) on kept-alive connections and with a
handshake per request (Connection: close), against plain HTTP. Prints one table;
nothing is asserted.

    bench/http_bench.py [--bin build/tools/dockless] [--seconds 5] [--lines 300]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import ssl
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


# The daemon's API key (the API needs one over TCP); /health stays public.
API_KEY = "dockless-bench-key-0123456789abcdef"


def start_daemon(binary, tmp, config, extra=()):
    port = free_port()
    with open(os.path.join(tmp, "config.toml"), "w") as f:
        f.write(config)
    err = open(os.path.join(tmp, "daemon.err"), "wb")
    proc = subprocess.Popen([binary, "serve", "--config", "config.toml", "--data-dir", os.path.join(tmp, "data"),
                             "--listen", "127.0.0.1:%d" % port, "--socket", "", *extra], cwd=tmp,
                            stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
                            env=dict(os.environ, DOCKLESS_API_KEYS=API_KEY))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen("%s://127.0.0.1:%d/readyz" % ("https" if extra else "http", port),
                                        timeout=1, context=ssl._create_unverified_context()) as r:
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


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(port, path, conns, seconds, pid, scheme="http", headers=()):
    """(requests/s, p99 ms, daemon CPU µs per request). The last one does not depend on
    what else the machine runs: 1e6 / it is what one core of the daemon can serve."""
    cpu0 = cpu_seconds(pid)
    hdr = [a for h in headers for a in ("-H", h)]
    out = subprocess.run(["wrk", "-t", str(min(conns, 2)), "-c", str(conns), "-d", "%ds" % seconds, *hdr,
                          "-H", "Authorization: Bearer " + API_KEY,
                          "--latency", "%s://127.0.0.1:%d%s" % (scheme, port, path)],
                         capture_output=True, text=True).stdout
    cpu = cpu_seconds(pid) - cpu0
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    lat = None
    if p99:
        lat = float(p99.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[p99.group(2)]
    per_req = cpu * 1e6 / int(total.group(1)) if total and int(total.group(1)) else float("nan")
    return (float(rps.group(1)) if rps else float("nan")), lat, per_req


def follow_latency(port, service, lines):
    """Latencies (ms) from the service's timestamp to arrival at a raw socket."""
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(("GET /v1/services/%s/logs?follow=1&tail=0&stream=stdout HTTP/1.1\r\nHost: x\r\n"
               "Authorization: Bearer %s\r\n\r\n" % (service, API_KEY)).encode())
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


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def followers_rss(port, pid, service, count):
    """Daemon RSS (KiB) before and while `count` clients follow one service's log."""
    before = rss_kib(pid)
    socks = []
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(("GET /v1/services/%s/logs?follow=1&tail=0 HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\n\r\n" % (service, API_KEY)).encode())
            socks.append(s)
        for s in socks:  # every stream is live: its response head arrived
            s.recv(4096)
        time.sleep(1)  # a few lines flow to all of them
        for s in socks:
            s.setblocking(False)
            try:
                while s.recv(65536):
                    pass
            except BlockingIOError:
                pass
        return before, rss_kib(pid)
    finally:
        for s in socks:
            s.close()


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


def tls_rows(args, tmp):
    """GET /health over HTTPS vs plain HTTP on one daemon each, same machine."""
    cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=bench"],
                   check=True, capture_output=True)
    rows = []
    runs = [("%d conn, kept alive" % c, c, ()) for c in (1, 64)] + [("8 conn, handshake per request", 8, ("Connection: close",))]
    plain_dir, tls_dir = os.path.join(tmp, "plain"), os.path.join(tmp, "tls")
    os.makedirs(plain_dir)
    os.makedirs(tls_dir)
    plain, pport = start_daemon(args.bin, plain_dir, "")
    secure, sport = start_daemon(args.bin, tls_dir, "", ("--cert", cert, "--key", key))
    try:
        for what, conns, headers in runs:
            base, _, base_cpu = wrk(pport, "/health", conns, args.seconds, plain.pid, "http", headers)
            got, _, got_cpu = wrk(sport, "/health", conns, args.seconds, secure.pid, "https", headers)
            rows.append(("GET /health over TLS, " + what, "%.0f req/s" % got, "plain: %.0f req/s" % base,
                         "%.2fx" % (got / base), "daemon CPU %.1f us vs %.1f us per request" % (got_cpu, base_cpu)))
    finally:
        stop_daemon(plain)
        stop_daemon(secure)
    return rows


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
        # 200 follow streams come from one address: lift the per-client cap (default 64).
        config = "[http]\nmax_connections_per_client = 0\n"
        config += "".join('[services.s%03d]\ncommand = ["sleep", "100000"]\n' % i for i in range(100))
        # The ticker prints "T<unix ns>" every 10 ms, flushed per line.
        ticker = ("import time,sys\\nwhile True:\\n    sys.stdout.write('T%d\\\\n' % time.time_ns()); "
                  "sys.stdout.flush(); time.sleep(0.01)")
        config += '[services.ticker]\ncommand = ["python3", "-c", "%s"]\n' % ticker
        proc, port = start_daemon(args.bin, tmp, config)
        time.sleep(1)
        listing = urllib.request.Request("http://127.0.0.1:%d/v1/services" % port,
                                         headers={"Authorization": "Bearer " + API_KEY})
        with urllib.request.urlopen(listing) as r:
            n = len(json.load(r))
        if shutil.which("wrk"):
            for conns in (1, 64):
                base, base_p99, base_cpu = wrk(port, "/health", conns, args.seconds, proc.pid)
                got, got_p99, got_cpu = wrk(port, "/v1/services", conns, args.seconds, proc.pid)
                rows.append(("GET /v1/services (%d svc), %d conn" % (n, conns), "%.0f req/s" % got,
                             "GET /health: %.0f req/s" % base, "%.2fx" % (got / base),
                             "p99 %.2f ms vs %.2f ms" % (got_p99 or 0, base_p99 or 0)))
                rows.append(("  daemon CPU per request, %d conn" % conns, "%.1f us" % got_cpu,
                             "GET /health: %.1f us" % base_cpu, "%.2fx" % (got_cpu / base_cpu),
                             "one core: %.0f req/s" % (1e6 / got_cpu)))
        else:
            rows.append(("GET /v1/services", "skipped: wrk not installed", "", "", ""))
        lat = follow_latency(port, "ticker", args.lines)
        before, during = followers_rss(port, proc.pid, "ticker", 200)
        rows.append(("daemon RSS, 200 follow streams", "%.1f MiB" % (during / 1024.0),
                     "no streams: %.1f MiB" % (before / 1024.0), "%.2fx" % (during / max(before, 1)),
                     "%.1f KiB per stream" % ((during - before) / 200.0)))
        stop_daemon(proc)
        base = pipe_latency(args.lines)
        rows.append(("log follow latency p50", "%.3f ms" % pct(lat, 50), "pipe: %.3f ms" % pct(base, 50),
                     "%.1fx" % (pct(lat, 50) / max(pct(base, 50), 1e-9)), "%d lines" % len(lat)))
        rows.append(("log follow latency p99", "%.3f ms" % pct(lat, 99), "pipe: %.3f ms" % pct(base, 99),
                     "%.1fx" % (pct(lat, 99) / max(pct(base, 99), 1e-9)), "mean %.3f ms" % statistics.mean(lat)))
        if shutil.which("wrk") and shutil.which("openssl"):
            rows += tls_rows(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head = ("benchmark", "dockless", "baseline", "ratio", "note")
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(5)]
    for r in [head, tuple("-" * w for w in widths)] + rows:
        print(" | ".join(str(c).ljust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
