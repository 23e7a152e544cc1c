#!/usr/bin/env python3
"""Log capture against its floor: the real `dockless serve` with one writer service beside
`writer | cat > file`, in interleaved runs, medians of N (see bench/README.md, "Log capture").

The writer (restart_probe --write MIB STAMP KIB) stamps `start`, writes MIB MiB to stdout in
KIB KiB write()s, stamps `end`. Throughput: MiB from its `start` stamp until every byte is in
the file (Dockless: stdout.log* polled every ms; floor: cat has exited). CPU: the daemon's
utime+stime over the same span (/proc/PID/stat: every thread, io-wq workers included, also
those that exited), against cat's (wait4). The service waits on a FIFO before it execs the
writer, so the daemon's start-up is not in its CPU figure.
"""
import argparse
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def cpu_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    f = s[s.rindex(")") + 2:].split()  # f[11] utime, f[12] stime (fields 14, 15)
    return (int(f[11]) + int(f[12])) / CLK_TCK


def start_stamp(path):
    with open(path) as f:
        for line in f:
            word, ns = line.split()
            if word == "start":
                return int(ns)
    raise RuntimeError(f"no start stamp in {path}")


def prime_memory(args, tmp):
    """Writes and deletes a file of the measured size, right before the measured transfer
    (for Dockless: after its start-up). In a VM with free page reporting (virtio-balloon
    REPORTING, on here), free memory is handed back to the host within seconds, and the
    first touch of it after that faults in the host: a copy into fresh page cache then runs
    at a fraction of its speed, whichever side meets it."""
    path = os.path.join(tmp, "prime")
    with open(path, "wb") as out:
        subprocess.run([args.probe, "--write", str(args.mib), os.devnull], stdout=out, check=True)
    os.unlink(path)


def floor_run(args, tmp):
    prime_memory(args, tmp)
    stamp, target = os.path.join(tmp, "floor.stamp"), os.path.join(tmp, "floor.out")
    with open(target, "wb") as out:
        w = subprocess.Popen([args.probe, "--write", str(args.mib), stamp, str(args.kib)],
                             stdout=subprocess.PIPE)
        c = subprocess.Popen(["cat"], stdin=w.stdout, stdout=out)
        w.stdout.close()
        _, status, ru = os.wait4(c.pid, 0)
        end = time.monotonic_ns()
        c.returncode = os.waitstatus_to_exitcode(status)
        w.wait()
    size = os.stat(target).st_size
    os.unlink(target)
    if w.returncode != 0 or c.returncode != 0 or size != args.mib << 20:
        raise RuntimeError(f"floor: writer {w.returncode}, cat {c.returncode}, {size} bytes")
    secs = (end - start_stamp(stamp)) / 1e9
    os.unlink(stamp)
    return args.mib / secs, ru.ru_utime + ru.ru_stime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dockless_run(args, tmp, binary):
    d = os.path.join(tmp, "dl")
    os.mkdir(d)
    data, fifo, stamp = os.path.join(d, "data"), os.path.join(d, "go"), os.path.join(d, "stamp")
    os.mkfifo(fifo)
    port = free_port()
    # The shell blocks opening the FIFO until we open it; then it execs the writer.
    script = f'read x < "{fifo}"; exec "{args.probe}" --write {args.mib} "{stamp}" {args.kib}'
    with open(os.path.join(d, "config.toml"), "w") as f:
        f.write(f'data_dir = "{data}"\nlisten_address = "127.0.0.1"\nlisten_port = {port}\n\n'
                f"[services.writer]\ncommand = [\"/bin/sh\", \"-c\", '{script}']\n"
                + 'restart = "no"\nlog_max_size = "2GiB"\nlog_keep = 2\n')
    argv = [binary, "serve", "--config", os.path.join(d, "config.toml"), "--data-dir", data,
            "--listen", f"127.0.0.1:{port}", "--socket", os.path.join(d, "d.sock")]
    out = open(os.path.join(d, "daemon.out"), "wb")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                         start_new_session=True)
    try:
        # log_max_size 2 GiB: no rotation, so one stat() a poll (cheap beside a glob).
        path = os.path.join(data, "logs", "writer", "stdout.log")
        deadline = time.monotonic() + 30
        while not os.path.exists(path) or not any(
                open(f"/proc/{k}/comm").read().strip() == "sh" for k in children(p.pid)):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daemon did not start the writer:\n" +
                                   open(os.path.join(d, "daemon.out")).read()[-1500:])
            time.sleep(0.01)
        time.sleep(0.3)  # let start-up work (state.json, events) settle
        prime_memory(args, tmp)
        cpu0 = cpu_of(p.pid)
        with open(fifo, "w") as f:
            f.write("go\n")
        total = args.mib << 20
        deadline = time.monotonic() + 300
        while os.stat(path).st_size < total:
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockless: {os.stat(path).st_size} of {total} bytes logged")
            time.sleep(0.001)
        end = time.monotonic_ns()
        cpu = cpu_of(p.pid) - cpu0
        return args.mib / ((end - start_stamp(stamp)) / 1e9), cpu
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        p.wait()
        out.close()
        shutil.rmtree(d, ignore_errors=True)


def children(pid):
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    build = os.path.join(REPO, "build-release")
    ap.add_argument("--dockless", default=os.path.join(build, "tools", "dockless"))
    ap.add_argument("--probe", default=os.path.join(build, "bench", "restart_probe"))
    ap.add_argument("--before", metavar="PATH",
                    help="a second dockless binary, measured in the same interleaved runs")
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--kib", type=int, default=64, help="size of each write()")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--nice", type=int, default=-10,
                    help="niceness of the bench and all it starts (root only; others keep 0)")
    args = ap.parse_args()
    if os.geteuid() == 0 and args.nice:
        # On a shared machine, other work then decides less; every side inherits it alike.
        os.nice(args.nice)
    tmp = tempfile.mkdtemp(prefix="logcap-")
    sides = [("floor", lambda: floor_run(args, tmp)),
             ("dockless", lambda: dockless_run(args, tmp, args.dockless))]
    if args.before:
        sides.append(("before", lambda: dockless_run(args, tmp, args.before)))
    res = {name: [] for name, _ in sides}
    try:
        for i in range(args.runs):
            # Interleaved, the order rotating, so a noisy stretch lands on every side.
            for name, fn in sides[i % len(sides):] + sides[:i % len(sides)]:
                mibs, cpu = fn()
                res[name].append((mibs, cpu))
                log(f"run {i + 1} {name:8}: {mibs:7.0f} MiB/s  cpu {cpu:.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    med = {s: (statistics.median(m for m, _ in v), statistics.median(c for _, c in v))
           for s, v in res.items()}
    fm, fc = med["floor"]
    print(f"log capture, {args.mib} MiB in {args.kib} KiB writes, medians of {args.runs}")
    print(f"  {'floor (writer | cat > file)':28} {fm:7.0f} MiB/s  CPU {fc:.3f} s (cat)")
    for name in [n for n, _ in sides if n != "floor"]:
        m, c = med[name]
        label = name if name == "dockless" else f"dockless {name}"
        print(f"  {label:28} {m:7.0f} MiB/s  CPU {c:.3f} s (daemon)  throughput {m / fm:.2f}x "
              f"floor (goal >= 1.0), CPU {c / fc if fc else float('inf'):.2f}x floor's (goal <= 0.5)")


if __name__ == "__main__":
    main()
