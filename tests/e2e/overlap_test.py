#!/usr/bin/env python3
"""Overlap restarts (`restart_mode = "overlap"`): `dockless restart` of a running
socket-activated ready = "notify" service starts the new instance beside the old one; the
old one serves until the new one says READY=1, then is stopped. A client connecting in a
loop through the restart of a slow starter sees no refusal and no failure, and answers from
the old instance while the new one starts. A new instance that exits before READY=1, or
says nothing within ready_timeout, is killed and recorded; the old one goes on. A stop
during the overlap takes both down. Both instances' output is in the service's log."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import cli_harness as h  # noqa: E402
from harness import alive, free_port, service  # noqa: E402
from socket_client import LoopingClient, ask  # noqa: E402

SERVER = ["python3", os.path.join(HERE, "sd_server.py")]


class Overlap(h.TestCase):
    def start_web(self, **settings):
        port = free_port()
        mode = os.path.join(self.tempdir(), "mode")
        d = self.daemon(service("web", SERVER, ready="notify", restart_mode="overlap", stop_timeout="5s",
                                env={"MODE_FILE": mode},
                                sockets=[{"listen": "127.0.0.1:%d" % port, "name": "http"}], **settings))
        pid = d.wait_state("web", "running")["pid"]
        self.assertEqual(ask(port), "py http %d\n" % pid)
        return d, port, mode, pid

    def set_mode(self, path, text):
        with open(path, "w") as f:
            f.write(text)

    def test_slow_starter_replaces_the_old_one_without_a_gap(self):
        d, port, mode, old = self.start_web()
        self.set_mode(mode, "delay 2")
        with LoopingClient(port) as c:
            d.wait_for(lambda: c.ok >= 10, 10, what="10 answers before the restart")
            self.cli_ok(d, "restart", "web")
            started = d.wait_event("overlap_started", "web", timeout=10)[0]
            new = started["pid"]
            self.assertEqual(started["replacing"], old)
            self.assertEqual(d.service("web")["next_pid"], new)
            # While the new one starts (2 s), the old one answers: no connection waits for it.
            before = c.ok
            d.wait_for(lambda: c.ok >= before + 20, 10, what="20 answers while the new instance starts")
            self.assertTrue(alive(new), "the new instance should still be starting")
            self.assertEqual(d.events_of("web", "replaced"), [], "replaced before its READY=1")
            replaced = d.wait_event("replaced", "web", timeout=15)[0]
            self.assertEqual((replaced["pid"], replaced["replaced_pid"]), (new, old))
            exited = d.wait_event("exited", "web", timeout=10, where=lambda e: e.get("replaced"))[0]
            self.assertEqual(exited["pid"], old)
            d.wait_for(lambda: new in c.seen, 10, what="an answer from the new instance")
            before = c.ok
            d.wait_for(lambda: c.ok >= before + 10, 10, what="10 answers after the old one left")
        self.assertEqual(c.refused + c.failed, [], "connections refused or failed through an overlap restart")
        self.assertIn(old, c.seen)
        s = d.service("web")
        self.assertEqual((s["state"], s["pid"], s["next_pid"], s["restarts"]), ("running", new, None, 0))
        self.assertEqual(s["notify_status"], "serving")
        self.assertFalse(alive(old))
        if s.get("cgroup"):
            self.assertTrue(s["cgroup"].endswith("/svc.web@1"), s["cgroup"])
        # Both instances wrote to the one log, nothing lost.
        log = d.wait_for(lambda: (lambda t: t if "pid %d ready" % new in t else None)(d.read_log("web").decode()), 5,
                         what="the new instance's line in the log")
        self.assertIn("pid %d ready" % old, log)
        # The new one is the service's now: a plain stop takes it down.
        self.cli_ok(d, "stop", "web")
        d.wait_state("web", "stopped")
        self.assertFalse(alive(new))

    def test_new_instance_that_exits_before_ready_leaves_the_old_one(self):
        d, port, mode, old = self.start_web()
        self.set_mode(mode, "exit 3")
        with LoopingClient(port) as c:
            self.cli_ok(d, "restart", "web")
            failed = d.wait_event("overlap_failed", "web", timeout=10)[0]
            self.assertIn("exited before READY=1", failed["reason"])
            self.assertIn("exited with 3", failed["reason"])
            before = c.ok
            d.wait_for(lambda: c.ok >= before + 10, 10, what="answers after the failed overlap")
        self.assertEqual(c.refused + c.failed, [])
        self.assertEqual(c.seen, {old})
        s = d.service("web")
        self.assertEqual((s["state"], s["pid"], s["next_pid"]), ("running", old, None))
        self.assertEqual(d.events_of("web", "replaced"), [])
        # Why it failed is in the log.
        self.assertIn("exiting before READY=1", d.read_log("web").decode())

    def test_new_instance_silent_past_ready_timeout_is_killed(self):
        d, port, mode, old = self.start_web(ready_timeout="1s")
        self.set_mode(mode, "never")
        self.cli_ok(d, "restart", "web")
        new = d.wait_event("overlap_started", "web", timeout=10)[0]["pid"]
        failed = d.wait_event("overlap_failed", "web", timeout=10)[0]
        self.assertEqual(failed["reason"], "no READY=1 within ready_timeout")
        self.assertEqual(failed["pid"], new)
        d.wait_for(lambda: not alive(new), 10, what="the silent instance killed")
        self.assertEqual(ask(port), "py http %d\n" % old)
        self.assertEqual(d.service("web")["pid"], old)

    def test_stop_during_the_overlap_takes_both_down(self):
        d, port, mode, old = self.start_web()
        self.set_mode(mode, "never")
        self.cli_ok(d, "restart", "web")
        new = d.wait_event("overlap_started", "web", timeout=10)[0]["pid"]
        self.cli_ok(d, "stop", "web")
        d.wait_state("web", "stopped")
        self.assertIn("stopped before", d.wait_event("overlap_failed", "web")[0]["reason"])
        d.wait_for(lambda: not alive(new) and not alive(old), 10, what="both instances gone")


if __name__ == "__main__":
    h.main()
