#!/usr/bin/env python3
"""Restart policy end to end: backoff growth, the crash-loop limit, restart = "no" and
"always", and stop_timeout escalating to SIGKILL when the daemon stops."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import alive, parse_time, service, sh  # noqa: E402


class RestartTest(harness.TestCase):
    def test_crash_restarts_with_growing_backoff(self):
        d = self.daemon(service("crashy", sh("exit 3"), restart_delay="100ms",
                                restart_delay_max="10s", restart_limit=0))
        backoffs = d.wait_event("backoff", "crashy", count=3, timeout=5)[:3]
        self.assertEqual([b["delay_ms"] for b in backoffs], [100, 200, 400])
        self.assertEqual([b["restarts"] for b in backoffs], [1, 2, 3])
        # Every crash is reported as what it was, and each restart honours its delay.
        d.wait_event("started", "crashy", count=4, timeout=5)
        evs = d.events_of("crashy")
        exited = [e for e in evs if e["kind"] == "exited"][:3]
        for e in exited:
            self.assertEqual((e["code"], e["signaled"], e["description"]), (3, False, "exited with 3"))
        started = [e for e in evs if e["kind"] == "started"]
        self.assertEqual(len({s["pid"] for s in started}), len(started), "each start is a new process")
        for b in backoffs:
            nxt = next(s for s in started if s["seq"] > b["seq"])
            waited_ms = (parse_time(nxt["time"]) - parse_time(b["time"])) * 1000
            self.assertGreaterEqual(waited_ms, b["delay_ms"] - 5, "restart came before its delay")
        # Kinds alternate started → exited → backoff → started, nothing else in between.
        kinds = [e["kind"] for e in evs if e["kind"] in ("started", "exited", "backoff")][:9]
        self.assertEqual(kinds, ["started", "exited", "backoff"] * 3)
        d.stop()

    def test_crash_loop_ends_in_failed(self):
        d = self.daemon(service("loop", sh("exit 1"), restart_delay="50ms", restart_limit=3,
                                restart_window="10s"))
        failed = d.wait_event("failed", "loop", timeout=5)
        self.assertEqual(len(failed), 1)
        self.assertTrue(failed[0]["reason"].startswith("crash loop"), failed[0])
        # limit 3: the first run plus 3 restarts, then parked.
        evs = d.events_of("loop")
        self.assertEqual(len([e for e in evs if e["kind"] == "started"]), 4)
        self.assertEqual([e["delay_ms"] for e in evs if e["kind"] == "backoff"], [50, 100, 200])
        self.assertEqual(evs[-1]["kind"], "failed")
        d.wait_for(lambda: (d.service_state("loop") or {}).get("state") == "failed", 2,
                   what="state.json: loop failed")
        st = d.service_state("loop")
        self.assertNotIn("pid", st)
        self.assertEqual(st["restarts"], 3)
        time.sleep(0.5)  # parked means parked: no further start
        self.assertEqual(len(d.events_of("loop", "started")), 4)
        d.stop()

    def test_restart_no_stays_down(self):
        d = self.daemon(service("clean", sh("exit 0"), restart="no", restart_delay="50ms")
                        + service("dirty", sh("exit 7"), restart="no", restart_delay="50ms"))
        d.wait_for(lambda: (d.service_state("clean") or {}).get("state") == "exited"
                   and (d.service_state("dirty") or {}).get("state") == "failed", 3,
                   what="clean exited and dirty failed in state.json")
        time.sleep(0.4)
        for name, code in (("clean", 0), ("dirty", 7)):
            self.assertEqual(len(d.events_of(name, "started")), 1, name)
            self.assertEqual(d.events_of(name, "backoff"), [], name)
            self.assertEqual([e["code"] for e in d.events_of(name, "exited")], [code])
        # restart = "no" is not a crash loop: no "failed" event with a crash-loop reason.
        self.assertEqual(d.events_of("dirty", "failed"), [])
        d.stop()

    def test_restart_always_after_clean_exit(self):
        d = self.daemon(service("again", sh("exit 0"), restart="always", restart_delay="50ms",
                                restart_delay_max="50ms", restart_limit=0))
        started = d.wait_event("started", "again", count=3, timeout=5)
        self.assertEqual(len({s["pid"] for s in started}), len(started))
        exited = d.events_of("again", "exited")
        self.assertTrue(exited and all(e["code"] == 0 for e in exited), exited)
        self.assertEqual(d.events_of("again", "failed"), [])
        d.stop()

    def test_stop_timeout_escalates_to_sigkill(self):
        script = ("import signal, sys, time\n"
                  "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "print('ready', flush=True)\n"
                  "time.sleep(1000)\n")
        d = self.daemon(service("stubborn", ["python3", "-c", script], stop_timeout="700ms"))
        pid = d.wait_running("stubborn")
        d.wait_for(lambda: d.read_log("stubborn") == b"ready\n", 10, what="SIGTERM ignored")
        took = d.stop()
        self.assertGreaterEqual(took, 0.65, "stopped before stop_timeout: SIGTERM was not ignored?")
        self.assertLess(took, 5.0)
        self.assertFalse(alive(pid))
        evs = d.events_of("stubborn")
        kinds = [e["kind"] for e in evs]
        i = kinds.index("stopping")
        self.assertEqual(kinds[i:i + 4], ["stopping", "killed", "exited", "stopped"], kinds)
        stopping, killed, exited = evs[i], evs[i + 1], evs[i + 2]
        self.assertEqual((stopping["signal"], stopping["timeout_ms"]), ("SIGTERM", 700))
        waited = parse_time(killed["time"]) - parse_time(stopping["time"])
        self.assertGreaterEqual(waited, 0.69)
        self.assertLess(waited, 2.0)
        self.assertEqual((exited["signaled"], exited["signal"]), (True, "SIGKILL"))
        self.assertEqual(d.events_of(None, "daemon_stopped")[-1]["seq"], d.events()[-1]["seq"])
        self.assertEqual(d.survivors(), [])

    def test_killed_service_restarts_and_state_json_follows(self):
        d = self.daemon(service("victim", ["sleep", "1023"], restart_delay="50ms"))
        pid = d.wait_running("victim")
        self.assertEqual(d.events_of("victim", "started")[0]["pid"], pid)
        os.kill(pid, signal.SIGKILL)
        started = d.wait_event("started", "victim", count=2)[1]
        t_started = time.time()
        exited = d.events_of("victim", "exited")[0]
        self.assertEqual((exited["signaled"], exited["signal"], exited["description"]),
                         (True, "SIGKILL", "killed by SIGKILL"))
        # state.json catches up within its 200 ms batching.
        d.wait_for(lambda: (d.service_state("victim") or {}).get("pid") == started["pid"], 1.0,
                   what="state.json with the new pid", interval=0.01)
        self.assertLess(time.time() - t_started, 0.6)
        st = d.service_state("victim")
        self.assertEqual((st["state"], st["restarts"]), ("running", 1))
        self.assertEqual(st["pid_start_ticks"], harness.start_ticks(started["pid"]))
        d.stop()

    def test_shutdown_during_backoff_is_prompt(self):
        d = self.daemon(service("slow", sh("exit 1"), restart_delay="30s"))
        d.wait_event("backoff", "slow")
        took = d.stop()
        self.assertLess(took, 3.0, "SIGTERM waited for the backoff timer")
        self.assertEqual(len(d.events_of("slow", "started")), 1)
        self.assertEqual(d.events_of("slow")[-1]["kind"], "stopped")
        self.assertEqual(d.service_state("slow")["state"], "stopped")

    def test_missing_program_is_spawn_failed(self):
        d = self.daemon(service("ghost", ["/nonexistent/e2e-prog", "x"], restart_delay="50ms",
                                restart_limit=2))
        fails = d.wait_event("spawn_failed", "ghost", count=3)
        self.assertIn("/nonexistent/e2e-prog", fails[0]["error"])
        self.assertIn("No such file or directory", fails[0]["error"])
        d.wait_event("failed", "ghost")
        self.assertEqual(d.events_of("ghost", "started"), [])
        d.wait_for(lambda: (d.service_state("ghost") or {}).get("state") == "failed", 2,
                   what="ghost failed in state.json")
        d.stop()

    def test_stop_signal_and_sigint(self):
        script = ("import signal, sys, time\n"
                  "def bye(n, f):\n"
                  "    print('got', signal.Signals(n).name, flush=True)\n"
                  "    sys.exit(0)\n"
                  "signal.signal(signal.SIGINT, bye)\n"
                  "signal.signal(signal.SIGTERM, bye)\n"
                  "print('ready', flush=True)\n"
                  "time.sleep(1000)\n")
        d = self.daemon(service("polite", ["python3", "-c", script], stop_signal="INT"))
        d.wait_running("polite")
        d.wait_for(lambda: d.read_log("polite") == b"ready\n", 10, what="handlers installed")
        # SIGINT stops the daemon like SIGTERM does.
        d.signal(signal.SIGINT)
        self.assertEqual(d.proc.wait(10), 0, d.describe())
        self.assertEqual(d.read_log("polite"), b"ready\ngot SIGINT\n")
        stopping = d.events_of("polite", "stopping")[0]
        self.assertEqual(stopping["signal"], "SIGINT")
        exited = d.events_of("polite", "exited")[-1]
        self.assertEqual((exited["signaled"], exited["code"]), (False, 0))
        self.assertEqual(d.events_of("polite", "killed"), [])
        # The final snapshot: everything stopped, no pids.
        self.assertEqual(d.state()["services"], {"polite": {"state": "stopped", "restarts": 0}})
        daemon_kinds = [e["kind"] for e in d.events() if e["service"] is None]
        self.assertEqual(daemon_kinds, ["daemon_started", "daemon_stopping", "daemon_stopped"])


if __name__ == "__main__":
    harness.require("python3")
    harness.main()
