#!/usr/bin/env python3
"""`dockless upgrade` and SIGUSR2: the daemon re-executes its binary in the same pid and
hands the new image its services (pidfds: still its children), their log pipes (what
they write meanwhile waits in the pipe), the listening sockets (a client connecting
meanwhile is served) and a state blob. Continuous writers lose no byte and duplicate
none; no service restarts; a broken binary leaves the running image in charge."""
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import harness  # noqa: E402
from harness import service, wait_for  # noqa: E402
import api_harness  # noqa: E402
from api_harness import Follower  # noqa: E402

# About 2,000 lines a second on stdout, a third of that on stderr, until killed.
WRITER = r'''
import itertools, sys, time
for i in itertools.count(1):
    sys.stdout.write("out %d\n" % i); sys.stdout.flush()
    if i % 3 == 0:
        sys.stderr.write("err %d\n" % i); sys.stderr.flush()
    time.sleep(0.0005)
'''

WEB = r'''
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''


def numbers(data, prefix):
    """The numbers of complete lines "PREFIX N" in order."""
    out = []
    for line in data.decode().split("\n")[:-1]:
        m = re.fullmatch(prefix + r" (\d+)", line)
        if m:
            out.append(int(m.group(1)))
    return out


class Prober:
    """Opens a new connection to /health every few ms until stopped; counts failures.
    Across an upgrade every one must be answered: the listener never closes."""

    def __init__(self, d):
        self.d, self.ok, self.failed, self.stop = d, 0, [], False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        import http.client
        while not self.stop:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.d.port, timeout=10)
                c.request("GET", "/health")
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    self.ok += 1
                else:
                    self.failed.append(r.status)
            except Exception as e:
                self.failed.append(repr(e))
            time.sleep(0.005)

    def finish(self):
        self.stop = True
        self.thread.join(15)
        return self.ok, self.failed


class UpgradeTest(api_harness.TestCase):
    def setUp(self):
        # The daemon runs from a copy, so the test can replace "the installed binary".
        self.bindir = self.tempdir()
        self.bin = os.path.join(self.bindir, "dockless")
        shutil.copy2(harness.dockless_bin(), self.bin)

    def install(self, source=None, text=None, mode=0o755):
        """Replaces the installed binary the way a package manager does (new file, rename)."""
        tmp = self.bin + ".new"
        if text is not None:
            with open(tmp, "w") as f:
                f.write(text)
        else:
            shutil.copy2(source, tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, self.bin)

    def start_daemon(self):
        d = self.daemon(None, start=False)
        d.bin = self.bin
        d.write_config(service("writer", ["python3", "-c", WRITER])
                       + service("web", ["python3", "-c", WEB], port="auto",
                                 health={"http": "http://127.0.0.1:${PORT}/", "interval": "200ms"}))
        d.start()
        return d

    def svc(self, d, name):
        status, body = d.json("GET", "/v1/services/" + name)
        self.assertEqual(status, 200, body)
        return body

    def upgrade_state(self, d):
        status, body = d.json("GET", "/v1/upgrade")
        self.assertEqual(status, 200, body)
        return body

    def cli(self, d, *args):
        return self.run_cli(["--socket", d.sock, *args], cwd=d.dir, timeout=90)

    def check_log(self, d, stream, prefix, step=1):
        data = d.read_log("writer", stream)
        nums = numbers(data, prefix)
        self.assertTrue(nums, "no %s lines" % stream)
        expected = list(range(nums[0], nums[0] + step * len(nums), step))
        if nums != expected:
            bad = next(i for i, (a, b) in enumerate(zip(nums, expected)) if a != b)
            self.fail("%s: a gap or a duplicate at line %d: %r" % (stream, bad, nums[max(0, bad - 3):bad + 3]))
        return nums

    def test_upgrade_and_sigusr2_keep_services_logs_and_listener(self):
        d = self.start_daemon()
        d.wait_for(lambda: self.svc(d, "web")["health"] == "healthy", 10, what="web healthy")
        before = {n: self.svc(d, n) for n in ("writer", "web")}
        d.wait_for(lambda: len(numbers(d.read_log("writer"), "out")) > 200, 10, what="writer output")
        self.assertEqual(self.upgrade_state(d)["image"], 1)
        follower = Follower(d.base + "/v1/services/writer/logs?follow=1&stream=stdout&tail=0")
        self.addCleanup(follower.close)
        follower.wait_for_text("\n", 10)
        prober = Prober(d)
        try:
            time.sleep(0.3)
            rc, out, err = self.cli(d, "upgrade")
            self.assertEqual(rc, 0, out + err)
            self.assertRegex(out, r"upgraded: dockless \S+ \(pid %d, image 2\)" % d.pid)
            time.sleep(0.3)
            # The same thing through the signal.
            os.kill(d.pid, signal.SIGUSR2)
            d.wait_for(lambda: self.upgrade_state(d)["image"] == 3, 30, what="image 3 after SIGUSR2")
            time.sleep(0.3)
        finally:
            ok, failed = prober.finish()
        self.assertEqual(failed, [], "requests not served across the upgrades")
        self.assertGreater(ok, 20)
        self.assertTrue(d.running())
        state = self.upgrade_state(d)
        self.assertEqual((state["pid"], state["failures"]), (d.pid, 0))

        # Same instances, no restart, nothing started or exited.
        for name in ("writer", "web"):
            now = self.svc(d, name)
            self.assertEqual((now["pid"], now["restarts"], now["state"], now["ports"]),
                             (before[name]["pid"], 0, "running", before[name]["ports"]), name)
        evs = d.events()
        self.assertEqual([e["kind"] for e in evs if e["kind"] in ("started", "exited", "stopped")],
                         ["started", "started"])
        attached = [e for e in evs if e["kind"] == "attached"]
        self.assertEqual(len(attached), 4, attached)
        self.assertTrue(all(e["from"] == "upgrade" and e["exit_status"] == "known" for e in attached))
        ups = [e for e in evs if e["kind"] == "upgraded"]
        self.assertEqual(len(ups), 2)
        execs = [e for e in evs if e["kind"] == "upgrade_exec"]
        gaps = [(harness.parse_time(u["time"]) - harness.parse_time(x["time"])) * 1000
                for x, u in zip(execs, ups)]
        sys.stderr.write("\n  exec -> new image booted: %s ms; %d probes served\n"
                         % (", ".join("%.0f" % g for g in gaps), prober.ok))
        d.wait_event("health", "web", count=2, where=lambda e: e["health"] == "healthy", timeout=10)

        # Every byte once: the writer kept writing into its pipe during both execs.
        mark = numbers(d.read_log("writer"), "out")[-1]
        d.wait_for(lambda: numbers(d.read_log("writer"), "out")[-1] > mark + 200, 10, what="output after")
        outs = self.check_log(d, "stdout", "out")
        errs = self.check_log(d, "stderr", "err", step=3)
        self.assertEqual((outs[0], errs[0]), (1, 3))
        # The follow stream ended cleanly at the first upgrade (documented); what it got
        # is a gap-free run of the log.
        follower.proc.wait(10)
        self.assertEqual(follower.proc.returncode, 0)
        got = numbers(follower.data, "out")
        self.assertTrue(got)
        self.assertEqual(got, list(range(got[0], got[0] + len(got))))
        # A real exit code again (the instance is still the daemon's child).
        os.kill(before["writer"]["pid"], signal.SIGTERM)
        ex = d.wait_event("exited", "writer", timeout=10)[0]
        self.assertEqual(ex.get("signal"), "SIGTERM")
        d.stop()
        self.assertEqual(d.survivors(), [])

    def test_a_broken_binary_leaves_the_running_image(self):
        d = self.start_daemon()
        d.wait_running("writer")
        before = self.svc(d, "writer")
        good = os.path.join(self.bindir, "good")
        shutil.copy2(self.bin, good)
        for what, text, mode in (("fails", "#!/bin/sh\nexit 3\n", 0o755),
                                 ("not executable", "#!/bin/sh\nexit 0\n", 0o644),
                                 ("garbage", "\x7fELF garbage", 0o755)):
            self.install(text=text, mode=mode)
            rc, out, err = self.cli(d, "upgrade")
            self.assertEqual(rc, 1, "%s: %s%s" % (what, out, err))
            self.assertIn("this image keeps running", err, what)
            st = self.upgrade_state(d)
            self.assertEqual((st["image"], st["pid"]), (1, d.pid), what)
        now = self.svc(d, "writer")
        self.assertEqual((now["pid"], now["restarts"]), (before["pid"], 0))
        # SIGUSR2 with a broken binary: refused the same way, recorded as an event.
        os.kill(d.pid, signal.SIGUSR2)
        d.wait_event("upgrade_failed", timeout=20)
        self.assertEqual(self.upgrade_state(d)["failures"], 1)
        # A good binary installed over the running one (its inode is now deleted).
        self.install(source=good)
        rc, out, err = self.cli(d, "upgrade")
        self.assertEqual(rc, 0, out + err)
        self.assertEqual(self.svc(d, "writer")["pid"], before["pid"])
        self.check_log(d, "stdout", "out")
        d.stop()
        self.assertEqual(d.survivors(), [])


if __name__ == "__main__":
    harness.main()
