"""Service readiness: ready = "notify" (the service sends READY=1 to the NOTIFY_SOCKET
the daemon gives it) and ready = "fd:3" (s6's notification fd: a newline on fd 3). The
service is `starting` until it signals, `running` after; one that never signals is
killed at ready_timeout and its restart policy applies."""
import os
import shutil
import signal
import socket
import tempfile
import time

from sd_harness import ApiDaemon, TestCase, environ_of, main, service, sh, wait_for
from harness import parse_time  # noqa: E402  (on the path once sd_harness is imported)

# STATUS= first, READY=1 (with a STATUS) after a delay; in a child of the service, so
# the sender is not the main pid but a member of its process group.
NOTIFY_SERVICE = r"""
import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"STATUS=warming up", addr)
time.sleep(float(sys.argv[1]))
if os.fork() == 0:
    s.sendto(b"READY=1\nSTATUS=serving", addr)
    os._exit(0)
os.wait()
time.sleep(1000)
"""

# systemd-notify --ready in a shell script: a child sends READY=1 and is reaped before
# the daemon reads it (made certain by the test stopping the daemon meanwhile).
QUICK_SENDER = r"""
import os, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
go, done = sys.argv[1], sys.argv[2]
while not os.path.exists(go):
    time.sleep(0.01)
child = os.fork()
if child == 0:
    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", addr)
    os._exit(0)
os.waitpid(child, 0)
open(done, "w").close()
time.sleep(1000)
"""

# What systemd-notify (v254+) does: READY=1, then BARRIER=1 carrying a pipe's write end,
# and waits for the hang-up that says everything before it was read.
BARRIER_SENDER = r"""
import array, os, select, socket, sys, time
addr = os.environ["NOTIFY_SOCKET"]
addr = "\0" + addr[1:] if addr.startswith("@") else addr
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", addr)
r, w = os.pipe()
s.sendmsg([b"BARRIER=1"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [w]))], 0, addr)
os.close(w)
p = select.poll()
p.register(r, select.POLLIN)
with open(sys.argv[1], "w") as f:
    f.write("hang-up" if p.poll(10000) else "timeout")
time.sleep(1000)
"""


class Readiness(TestCase):
    def make(self, config):
        d = ApiDaemon(config)
        self.addCleanup(self._cleanup_daemon, d)
        return d.start(timeout=20)

    def states(self, d):
        status, body = d.json("GET", "/v1/services")
        self.assertEqual(status, 200)
        items = body["services"] if isinstance(body, dict) else body
        return {s["name"]: s for s in items}

    def watch(self, d, name, until, timeout=20.0):
        """Polls the API; returns the list of states seen for `name` until `until` is seen."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = self.states(d)[name]["state"]
            if not seen or seen[-1] != st:
                seen.append(st)
            if st == until:
                return seen
            time.sleep(0.05)
        raise AssertionError("%s never reached %s: %r\n%s" % (name, until, seen, d.describe()))

    # Judged from the events' times, not from polling the state at a given moment: a
    # slow machine (or an ASan build) may take longer to boot than the delay.
    def test_notify(self):
        d = self.make(service("n", ["python3", "-c", NOTIFY_SERVICE, "3"], ready="notify", ready_timeout="30s") +
                      service("after", ["sleep", "1000"], depends_on=["n"]))
        pid = wait_for(lambda: self.states(d)["n"]["pid"], 10, what="n spawned", context=d.describe)
        env = environ_of(pid)
        self.assertTrue(env.get("NOTIFY_SOCKET", "").startswith("@dockless/"), env.get("NOTIFY_SOCKET"))
        # Someone else's READY=1 does not count: only the service's process group may.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(b"READY=1", "\0" + env["NOTIFY_SOCKET"][1:])
        self.watch(d, "n", "running")
        started = d.events_of("n", "started")[0]
        ready = d.wait_event("ready", "n")[0]
        self.assertGreaterEqual(parse_time(ready["time"]) - parse_time(started["time"]), 2.9,
                                "running before the service's own READY=1")
        self.assertEqual(ready["status"], "serving")
        self.assertEqual(self.states(d)["n"]["notify_status"], "serving")
        # The dependent waits for `running`, i.e. for READY=1.
        after = d.wait_event("started", "after")[0]
        self.assertGreater(after["seq"], ready["seq"])
        d.stop()

    def test_notify_from_a_sender_gone_before_it_is_read(self):
        tmp = tempfile.mkdtemp(prefix="dockless-ready-")
        self.addCleanup(shutil.rmtree, tmp, True)
        go, done = os.path.join(tmp, "go"), os.path.join(tmp, "done")
        d = self.make(service("quick", ["python3", "-c", QUICK_SENDER, go, done], ready="notify",
                              ready_timeout="30s"))
        wait_for(lambda: self.states(d)["quick"]["pid"], 10, what="quick spawned", context=d.describe)
        d.signal(signal.SIGSTOP)  # nothing is read until the sender is gone and reaped
        try:
            open(go, "w").close()
            wait_for(lambda: os.path.exists(done), 10, what="the sender reaped")
        finally:
            d.signal(signal.SIGCONT)
        self.watch(d, "quick", "running")
        d.stop()

    def test_a_gone_sender_of_another_user_does_not_count(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to send as another user")
        d = self.make(service("mute", ["sleep", "1000"], ready="notify", ready_timeout="30s"))
        pid = wait_for(lambda: self.states(d)["mute"]["pid"], 10, what="mute spawned", context=d.describe)
        addr = "\0" + environ_of(pid)["NOTIFY_SOCKET"][1:]
        d.signal(signal.SIGSTOP)
        try:
            child = os.fork()
            if child == 0:
                try:
                    os.setgid(65534)
                    os.setuid(65534)
                    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", addr)
                finally:
                    os._exit(0)
            os.waitpid(child, 0)
        finally:
            d.signal(signal.SIGCONT)
        time.sleep(1.0)
        self.assertEqual(self.states(d)["mute"]["state"], "starting")
        self.assertEqual(d.events_of("mute", "ready"), [])
        d.stop()

    def test_barrier_is_answered(self):
        tmp = tempfile.mkdtemp(prefix="dockless-ready-")
        self.addCleanup(shutil.rmtree, tmp, True)
        out = os.path.join(tmp, "barrier")
        d = self.make(service("b", ["python3", "-c", BARRIER_SENDER, out], ready="notify", ready_timeout="30s"))
        self.watch(d, "b", "running")
        wait_for(lambda: os.path.exists(out) and open(out).read(), 15, what="the barrier's answer")
        with open(out) as f:
            self.assertEqual(f.read(), "hang-up")
        d.stop()

    def test_fd3(self):
        d = self.make(service("f", sh("sleep 2; echo >&3; exec sleep 1000"), ready="fd:3", ready_timeout="30s"))
        self.watch(d, "f", "running")
        started = d.events_of("f", "started")[0]
        ready = d.wait_event("ready", "f")[0]
        self.assertGreaterEqual(parse_time(ready["time"]) - parse_time(started["time"]), 1.9,
                                "running before the newline on fd 3")
        d.stop()

    def test_never_ready_fails_per_timeout(self):
        d = self.make(
            service("mute", ["sleep", "1000"], ready="notify", ready_timeout="1500ms", restart="no") +
            service("mute_fd", sh("exec 3>&-; exec sleep 1000"), ready="fd:3", ready_timeout="1500ms",
                    restart="on-failure", restart_delay="100ms", restart_limit=1, restart_window="60s"))
        seen = self.watch(d, "mute", "failed")
        self.assertNotIn("running", seen)
        killed = d.wait_event("killed", "mute")[0]
        self.assertEqual(killed["reason"], "ready_timeout expired")
        self.assertEqual(d.events_of("mute", "ready"), [])
        # on-failure: restarted once (restart_limit 1), then parked in failed.
        self.watch(d, "mute_fd", "failed", timeout=30)
        self.assertEqual(len(d.events_of("mute_fd", "started")), 2, d.describe())
        self.assertEqual(len(d.events_of("mute_fd", "killed")), 2)
        self.assertEqual(d.events_of("mute_fd", "ready"), [])
        d.stop()


if __name__ == "__main__":
    main()
