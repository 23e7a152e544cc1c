#!/usr/bin/env python3
"""Log capture: 100 MiB written as fast as a process can is stored byte-exact (across
rotations), stderr goes to its own file, and rotation keeps exactly log_keep files per
stream with the newest content last."""
import hashlib
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import service, sh  # noqa: E402

MiB = 1 << 20

# The writer and the test build the same bytes: 1 MiB blocks of a fixed pseudo-random
# base, each stamped with its block number, so loss, duplication, reordering and
# corruption all change the hash. Writes are of odd sizes to cross every boundary.
WRITER = r"""
import hashlib, sys
total, stamp_err = int(sys.argv[1]), sys.argv[2] == "1"
MiB = 1 << 20
seed = hashlib.sha256(b"dockless-e2e").digest()
base = bytearray()
while len(base) < MiB:
    seed = hashlib.sha256(seed).digest()
    base += seed
base = bytes(base[:MiB])
out = sys.stdout.buffer
if stamp_err:
    sys.stderr.write("stderr begin\n"); sys.stderr.flush()
written, block, sizes, k = 0, 0, (65537, 12345, 300001, 7, 131072), 0
pending = b""
while written < total:
    if len(pending) < 400000:
        pending += (b"#%015d\n" % block) + base[16:]
        block += 1
    n = min(sizes[k % len(sizes)], total - written)
    k += 1
    out.write(pending[:n]); out.flush()
    pending = pending[n:]
    written += n
if stamp_err:
    sys.stderr.write("stderr end\n"); sys.stderr.flush()
"""


def expected_bytes(total):
    seed = hashlib.sha256(b"dockless-e2e").digest()
    base = bytearray()
    while len(base) < MiB:
        seed = hashlib.sha256(seed).digest()
        base += seed
    base = bytes(base[:MiB])
    out = bytearray()
    block = 0
    while len(out) < total:
        out += (b"#%015d\n" % block) + base[16:]
        block += 1
    return bytes(out[:total])


def stream_files(d, service_name, stream="stdout"):
    """The stream's log files oldest first: NAME.log.K ... NAME.log.1, NAME.log."""
    folder = d.path("logs", service_name)
    pat = re.compile(re.escape(stream) + r"\.log(?:\.(\d+))?$")
    found = []
    for f in os.listdir(folder):
        m = pat.match(f)
        if m:
            found.append((int(m.group(1) or 0), f))
    return [os.path.join(folder, f) for _, f in sorted(found, reverse=True)]


def concat(paths):
    out = bytearray()
    for p in paths:
        with open(p, "rb") as f:
            out += f.read()
    return bytes(out)


class LogsTest(harness.TestCase):
    def test_100mib_byte_exact(self):
        total = 100 * MiB
        d = self.daemon(None, start=False)
        writer = os.path.join(d.dir, "writer.py")
        with open(writer, "w") as f:
            f.write(WRITER)
        d.write_config(service("flood", ["python3", writer, str(total), "1"], restart="no",
                               log_max_size="16MiB", log_keep=10))
        want = hashlib.sha256(expected_bytes(total)).hexdigest()
        t0 = time.monotonic()
        d.start()
        exited = d.wait_event("exited", "flood", timeout=120)[0]
        self.assertEqual(exited["code"], 0)
        size = lambda: sum(os.path.getsize(p) for p in stream_files(d, "flood"))
        d.wait_for(lambda: size() >= total, 20, what="all %d bytes in the files" % total)
        took = time.monotonic() - t0
        files = stream_files(d, "flood")
        self.assertEqual(size(), total)
        got = hashlib.sha256(concat(files)).hexdigest()
        self.assertEqual(got, want, "captured stdout differs from what was written")
        self.assertEqual(d.read_log("flood", "stderr"), b"stderr begin\nstderr end\n")
        self.assertEqual(d.events_of("flood", "log_dropped"), [])
        sys.stderr.write("\n  100 MiB captured in %.2f s (%.0f MiB/s incl. start), %d files\n"
                         % (took, 100 / took, len(files)))
        d.stop()

    def test_rotation_keeps_log_keep_files(self):
        total = 1 * MiB
        d = self.daemon(None, start=False)
        writer = os.path.join(d.dir, "writer.py")
        with open(writer, "w") as f:
            f.write(WRITER)
        d.write_config(service("rot", ["python3", writer, str(total), "0"], restart="no",
                               log_max_size="64KiB", log_keep=3))
        d.start()
        data = expected_bytes(total)
        d.wait_event("exited", "rot", timeout=20)
        d.wait_for(lambda: concat(stream_files(d, "rot")).endswith(data[-4096:]), 10,
                   what="the last bytes written in the current files")
        names = sorted(os.path.basename(p) for p in stream_files(d, "rot"))
        self.assertEqual(names, ["stdout.log", "stdout.log.1", "stdout.log.2"])
        files = stream_files(d, "rot")
        sizes = [os.path.getsize(p) for p in files]
        limit = 64 * 1024
        for p, s in zip(files, sizes):
            # A rotation happens once a file reaches the limit; one pipe's worth may land past it.
            self.assertLessEqual(s, limit + 64 * 1024, p)
        for p, s in zip(files[:-1], sizes[:-1]):
            self.assertGreaterEqual(s, limit, "rotated before reaching log_max_size: %s" % p)
        kept = concat(files)
        self.assertTrue(data.endswith(kept), "kept files are not the tail of what was written")
        self.assertGreaterEqual(len(kept), 2 * limit)
        self.assertEqual(os.path.getsize(d.log_path("rot", "stderr")), 0)
        d.stop()

    def test_output_of_every_run_is_kept_in_order(self):
        d = self.daemon(service("runs", sh("echo run $$; echo err $$ >&2; exit 1"),
                                restart_delay="50ms", restart_limit=3))
        d.wait_event("failed", "runs", timeout=5)
        pids = [e["pid"] for e in d.events_of("runs", "started")]
        self.assertEqual(len(pids), 4)
        d.wait_for(lambda: d.read_log("runs").count(b"\n") == 4, 3, what="4 lines in stdout.log")
        self.assertEqual(d.read_log("runs"), b"".join(b"run %d\n" % p for p in pids))
        d.wait_for(lambda: d.read_log("runs", "stderr").count(b"\n") == 4, 3, what="4 lines in stderr.log")
        self.assertEqual(d.read_log("runs", "stderr"), b"".join(b"err %d\n" % p for p in pids))
        d.stop()

    def test_shutdown_while_flooding(self):
        harness.require("yes")
        d = self.daemon(service("yes", ["yes", "dockless"], log_max_size="1MiB", log_keep=2))
        d.wait_running("yes")
        d.wait_for(lambda: len(stream_files(d, "yes")) == 2, 10, what="a rotation")
        took = d.stop()
        self.assertLess(took, 3.0)
        self.assertEqual(d.survivors(), [])
        # Whatever was captured is the one line `yes` writes, over and over: the oldest
        # file may start mid-line (rotation is by size) and the newest end mid-line.
        data = concat(stream_files(d, "yes"))
        first, _, rest = data.partition(b"\n")
        body, _, last = rest.rpartition(b"\n")
        self.assertTrue(b"dockless".endswith(first), first[:100])
        bad = [line for line in set(body.split(b"\n")) if line != b"dockless"]
        self.assertEqual(bad, [], "corrupted capture")
        self.assertTrue(b"dockless".startswith(last), last[:100])


if __name__ == "__main__":
    harness.require("python3")
    harness.main()
