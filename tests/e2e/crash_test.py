#!/usr/bin/env python3
"""kill -9 of the daemon while it writes events: events.log keeps only whole, ordered
lines; the next daemon on the same data_dir adopts the service instance still running
(no duplicate runs; adopt_test.py has the details) or stops it when its service is gone,
and its events continue the sequence numbers."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import alive, read_events_file, service, sh  # noqa: E402

CONFIG = (service("looper", sh("exit 1"), restart_delay="0s", restart_delay_max="0s", restart_limit=0)
          + service("steady", ["sleep", "1050"]))


def check_log(test, path):
    """Every complete line parses (read_events_file raises otherwise); seqs go up by one."""
    evs = read_events_file(path, strict=True)
    seqs = [e["seq"] for e in evs]
    test.assertTrue(seqs, "empty events.log")
    holes = [(a, b) for a, b in zip(seqs, seqs[1:]) if b != a + 1]
    test.assertEqual(holes, [], "seq not strictly consecutive")
    return evs


def steady_instances(d):
    return [p for p in d.survivors() if p.cmdline == ["sleep", "1050"]]


class CrashTest(harness.TestCase):
    def test_kill9_mid_write_then_restart(self):
        d = self.daemon(CONFIG)
        log = d.path("events.log")
        last_max = 0
        torn = 0
        # No subTest: a round builds on the previous one, so the first failure ends the test.
        for round_ in range(3):
            steady = d.wait_running("steady")
            d.wait_event("started", "looper", count=20, timeout=10,
                         where=lambda e: e["seq"] > last_max)
            time.sleep(0.5)
            d.kill9()
            with open(log, "rb") as f:
                torn += not f.read().endswith(b"\n")
            if round_ == 1:
                # A kill -9 rarely tears a line (one pwrite per batch), a power cut can:
                # fake one. The next daemon must cut it, not count its seq, not append to it.
                with open(log, "ab") as f:
                    f.write(b'{"seq":999999,"time":"2026-01-01T00:00:00.000Z","service":"ste')
            size_at_kill = os.path.getsize(log)
            evs = check_log(self, log)
            old_max = evs[-1]["seq"]
            self.assertGreater(old_max, last_max)
            # The service outlived the daemon (its own session): an orphan now.
            self.assertTrue(alive(steady))
            self.assertEqual([p.pid for p in steady_instances(d)], [steady])

            d.wait_for(lambda: harness.port_is_free(d.port), 10, what="port free again")
            d.start()
            attached = d.wait_event("attached", "steady", timeout=10,
                                    where=lambda e: e["seq"] > old_max)
            self.assertEqual([a["pid"] for a in attached], [steady])
            self.assertEqual(d.wait_running("steady"), steady)
            # Never two: adopted, not started again.
            evs = check_log(self, log)
            self.assertEqual(d.events_of("steady", "started", [e for e in evs if e["seq"] > old_max]), [])
            self.assertEqual([p.pid for p in steady_instances(d)], [steady])
            # The torn tail (if any) was cut; numbering continues above the old maximum.
            boot = [e for e in evs if e["kind"] == "daemon_started" and e["pid"] == d.pid][0]
            self.assertEqual(boot["seq"], old_max + 1)
            self.assertGreaterEqual(os.path.getsize(log), size_at_kill - 200)
            last_max = evs[-1]["seq"]
        sys.stderr.write("\n  %d of 3 kills left a torn last line\n" % torn)
        d.stop()
        check_log(self, log)
        self.assertEqual(d.survivors(), [])

    def test_kill9_after_a_burst_of_restarts(self):
        """Hundreds of zero-delay restarts (events written at once, fdatasyncs paced, state.json
        coalesced), then kill -9: state.json is fresh and names the steady instance, events.log
        reaches the kill, and the next daemon adopts the steady one and restarts the looper."""
        d = self.daemon(CONFIG)
        log = d.path("events.log")
        last_max = 0
        for _ in range(2):
            steady = d.wait_running("steady")
            d.wait_event("started", "looper", count=300, timeout=30,
                         where=lambda e: e["seq"] > last_max)
            # state.json keeps up with the loop (written every 200 ms, never starved by it).
            d.wait_for(lambda: time.time() * 1000 - ((d.state() or {}).get("written_unix_ms") or 0) < 1000,
                       5, what="a fresh state.json during the loop")
            killed_at = time.time()
            d.kill9()
            evs = check_log(self, log)
            old_max = evs[-1]["seq"]
            # Written as they came, not when their sync was due.
            self.assertGreater(harness.parse_time(evs[-1]["time"]), killed_at - 1.0)
            self.assertEqual(d.service_state("steady")["pid"], steady)
            d.wait_for(lambda: harness.port_is_free(d.port), 10, what="port free again")
            d.start()
            attached = d.wait_event("attached", "steady", timeout=10, where=lambda e: e["seq"] > old_max)
            self.assertEqual([a["pid"] for a in attached], [steady])
            d.wait_event("started", "looper", count=5, timeout=10, where=lambda e: e["seq"] > old_max)
            evs = check_log(self, log)
            boot = [e for e in evs if e["kind"] == "daemon_started" and e["pid"] == d.pid][0]
            self.assertEqual(boot["seq"], old_max + 1)
            self.assertEqual([p.pid for p in steady_instances(d)], [steady])
            last_max = evs[-1]["seq"]
        d.stop()
        check_log(self, log)
        self.assertEqual({n: s["state"] for n, s in d.state()["services"].items()},
                         {"looper": "stopped", "steady": "stopped"})
        self.assertEqual(d.survivors(), [])

    def test_clean_restart_has_no_orphans(self):
        d = self.daemon(CONFIG)
        d.wait_running("steady")
        d.stop()
        old_max = check_log(self, d.path("events.log"))[-1]["seq"]
        self.assertEqual({n: s["state"] for n, s in d.state()["services"].items()},
                         {"looper": "stopped", "steady": "stopped"})
        d.start()
        d.wait_running("steady")
        evs = [e for e in check_log(self, d.path("events.log")) if e["seq"] > old_max]
        self.assertEqual(evs[0]["kind"], "daemon_started")
        self.assertEqual(evs[0]["seq"], old_max + 1)
        self.assertEqual([e for e in evs if e["kind"] == "orphan_stopped"], [])
        d.stop()

    def test_a_restart_waits_briefly_for_its_port(self):
        """What a crash leaves: the port still held for a moment (the old ring's accept).
        The next daemon waits for it, a bounded while, instead of exiting."""
        d = self.daemon(service("steady", ["sleep", "1052"]), start=False)
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", d.port))
        holder.listen(1)
        d.start(wait=False)
        d.wait_for(lambda: b"is still in use; waiting" in d.stderr_text().encode(), what="the wait said")
        time.sleep(0.3)
        self.assertIsNone(d.proc.poll(), "gave up on a port about to be free")
        holder.close()
        d.wait_event("daemon_started", timeout=5.0)
        d.wait_running("steady")
        d.stop()

    def test_a_port_held_for_good_still_fails_clearly(self):
        d = self.daemon(service("steady", ["sleep", "1053"]), start=False)
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind(("127.0.0.1", d.port))
        holder.listen(1)
        started = time.monotonic()
        d.start(wait=False)
        rc = d.proc.wait(15)
        self.assertEqual(rc, 1)
        self.assertLess(time.monotonic() - started, 10, "the wait is bounded")
        self.assertIn("cannot listen on 127.0.0.1:%d: Address already in use" % d.port, d.stderr_text())
        self.assertEqual(d.survivors(), [])

    def test_one_daemon_per_data_dir(self):
        d = self.daemon(service("steady", ["sleep", "1051"]))
        d.wait_running("steady")
        before = len(d.events())
        rc, out, err = self.run_cli(["serve", "--config", "config.toml", "--data-dir", d.data_dir,
                                     "--listen", "127.0.0.1:%d" % harness.free_port()], cwd=d.dir)
        self.assertEqual(rc, 1, err)
        self.assertIn("another dockless daemon is using " + d.data_dir, err)
        self.assertEqual(len(d.events()), before, "the refused daemon wrote events")
        self.assertEqual(len([p for p in d.survivors() if p.cmdline == ["sleep", "1051"]]), 1)
        d.stop()

    def test_stubborn_orphan_tree_of_a_removed_service_is_killed(self):
        script = ("import signal, subprocess, time\n"
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "subprocess.Popen(['sleep', '1053'])\n"
                  "print('ready', flush=True)\n"
                  "time.sleep(1000)\n")
        d = self.daemon(service("stubborn", ["python3", "-c", script], stop_timeout="500ms"))
        leader = d.wait_running("stubborn")
        d.wait_for(lambda: d.read_log("stubborn") == b"ready\n", 10, what="SIGTERM ignored")
        group = [p.pid for p in harness.processes().values() if p.pgid == leader]
        self.assertEqual(len(group), 2)
        d.wait_for(lambda: (d.service_state("stubborn") or {}).get("pid") == leader, 2,
                   what="the pid in state.json")
        d.kill9()
        self.assertTrue(all(alive(p) for p in group))
        # The next daemon has no such service: nothing adopts the instance, it is stopped.
        d.write_config(service("other", ["sleep", "1054"]))
        d.wait_for(lambda: harness.port_is_free(d.port), 10, what="port free again")
        d.start()
        # The service is gone from the config, so its stop_timeout is too: the default 10 s
        # passes before the SIGKILL.
        orphan = d.wait_event("orphan_stopped", "stubborn", timeout=30)[0]
        self.assertEqual((orphan["pid"], orphan["forced"]), (leader, True))
        d.wait_for(lambda: not any(alive(p) for p in group), 3, what="the orphan's whole group gone")
        d.wait_running("other")
        self.assertEqual(d.events_of("stubborn", "attached"), [])
        d.stop()
        self.assertEqual(d.survivors(), [])


if __name__ == "__main__":
    harness.main()
