#!/usr/bin/env python3
"""A full disk: data_dir is a small tmpfs, filled up by a filler file while a service writes
logs. The daemon must keep supervising (a killed service restarts), keep answering the API,
drop only log bytes — counted in /metrics and announced by a log_dropped event — and recover
when the filler is deleted: capture resumes (log_resumed with the dropped count), the events
queued in memory meanwhile reach events.log in order, with no gap in the sequence."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
from faultlib import count_marked, harness, service, sh  # noqa: E402

STEADY = "faults-disk-steady-2081"
# 8 KiB every 10 ms (~800 KiB/s), numbered lines, so resumed output is recognisable.
WRITER = ("import sys, time\n"
          "i = 0\n"
          "while True:\n"
          "    out = []\n"
          "    for _ in range(128):\n"
          "        i += 1\n"
          "        out.append('w %09d %s\\n' % (i, 'x' * 50))\n"
          "    sys.stdout.write(''.join(out)); sys.stdout.flush()\n"
          "    time.sleep(0.01)\n")
CONFIG = (service("writer", ["python3", "-c", WRITER], log_max_size="256KiB", log_keep=2)
          + service("steady", ["sh", "-c", "sleep 100000; :", STEADY]))
DROPPED = "dockless_service_log_dropped_bytes_total"


def api_events(client):
    status, data, _ = client.request("GET", "/v1/events?since=0")
    assert status == 200, status
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]


class DiskFullTest(faultlib.TestCase):
    def mount_tmpfs(self, size):
        if os.geteuid() != 0:
            self.skipTest("mounting a tmpfs needs root")
        where = self.tempdir()
        mnt = os.path.join(where, "data")
        os.mkdir(mnt)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", mnt],
                           capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % r.stderr.decode().strip())
        # Registered after tempdir's rmtree, so it runs before it (cleanups are LIFO); lazy,
        # in case something still holds a file there.
        self.addCleanup(subprocess.run, ["umount", "-l", mnt], capture_output=True)
        return where, mnt

    def fill(self, mnt):
        """Writes a filler file until the tmpfs refuses; returns its path."""
        path = os.path.join(mnt, "filler")
        with open(path, "wb") as f:
            chunk = b"\0" * 65536
            for _ in range(100000):  # bounded: far more than any test tmpfs holds
                try:
                    f.write(chunk)
                    f.flush()
                except OSError:
                    break
        st = os.statvfs(mnt)
        self.assertLess(st.f_bavail * st.f_frsize, 65536, "the tmpfs is not full")
        return path

    def test_full_disk_drops_only_log_bytes_and_recovers(self):
        where, mnt = self.mount_tmpfs("4m")
        d = self.daemon(CONFIG, dir=where, data_dir=mnt)
        c = self.client(d)
        d.wait_running("writer")
        steady = d.wait_running("steady")
        d.wait_for(lambda: len(d.read_log("writer")) > 50000, 10, what="writer logging")
        seq_before = d.events()[-1]["seq"]

        filler = self.fill(mnt)
        t_full = time.monotonic()
        # Dropped, counted and announced — through the API, since events.log is on the full disk.
        d.wait_for(lambda: any(e["kind"] == "log_dropped" and e["service"] == "writer"
                               for e in api_events(c)), 10, what="log_dropped in GET /v1/events")
        d.wait_for(lambda: (c.metric(DROPPED, 'service="writer",stream="stdout"') or 0) > 100000, 10,
                   what="dropped bytes counted in /metrics")
        # Supervision goes on: kill the steady service, it comes back.
        os.kill(steady, signal.SIGKILL)
        new_steady = d.wait_for(lambda: (lambda s: s["pid"] if s["state"] == "running" and s["pid"] != steady
                                         else None)(c.services()["steady"]), 10, what="steady restarted")
        # Running is published at spawn; the argv carries the marker once the child has exec'd.
        d.wait_for(lambda: [p.pid for p in count_marked(STEADY)] == [new_steady], 5,
                   what="exactly one steady instance, the new one")
        # The API keeps answering: listing, one service, metrics, a control call.
        self.assertEqual(c.request("GET", "/v1/services/writer")[0], 200)
        self.assertEqual(c.request("POST", "/v1/services/steady/restart")[0], 202)
        newer = d.wait_for(lambda: (lambda s: s["pid"] if s["state"] == "running" and s["pid"] != new_steady
                                    else None)(c.services()["steady"]), 10, what="steady restarted by API")
        d.wait_for(lambda: [p.pid for p in count_marked(STEADY)] == [newer], 5,
                   what="exactly one steady instance, the newer one")
        self.assertEqual(c.services()["writer"]["state"], "running")
        full_for = time.monotonic() - t_full

        os.unlink(filler)
        resumed = d.wait_for(lambda: [e for e in api_events(c) if e["kind"] == "log_resumed"
                                      and e["service"] == "writer"], 10, what="log_resumed")
        self.assertGreater(resumed[0]["dropped_bytes"], 100000)
        dropped = c.metric(DROPPED, 'service="writer",stream="stdout"')
        # Capture goes on: the log file grows again.
        size = len(d.read_log("writer"))
        d.wait_for(lambda: len(d.read_log("writer")) != size, 10, what="writer logged again")
        # Every event of the full-disk episode reaches events.log, in order, no gap.
        d.wait_for(lambda: any(e["kind"] == "log_resumed" for e in d.events()), 10,
                   what="events.log written again")
        evs = [e for e in d.events() if e["seq"] > seq_before]
        seqs = [e["seq"] for e in evs]
        self.assertEqual(seqs, list(range(seq_before + 1, seq_before + 1 + len(seqs))))
        kinds = [e["kind"] for e in evs]
        for k in ("log_dropped", "exited", "started", "restart_requested", "log_resumed"):
            self.assertIn(k, kinds)
        d.stop()
        # The clean shutdown wrote its state: nothing lost but the log bytes.
        self.assertEqual(d.state()["services"]["steady"]["state"], "stopped")
        self.assertNothingLeft(d)
        sys.stderr.write("\n  full for %.1f s: %d log bytes dropped (counted), %d events kept\n"
                         % (full_for, dropped, len(evs)))


if __name__ == "__main__":
    faultlib.main()
