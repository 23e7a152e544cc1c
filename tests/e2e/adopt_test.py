#!/usr/bin/env python3
"""Crash recovery: after a kill -9 of the daemon the next one adopts the native services
still running (pid + start time from state.json, never a recycled pid), keeps supervising
them (exit through the pidfd, restart per policy, health checks), shows the same pid,
ports and restart count, and captures their output again (pipes reopened through /proc).
What a service writes while no daemon runs meets a pipe without a reader (SIGPIPE)."""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import harness  # noqa: E402
from harness import alive, service, sh  # noqa: E402
import api_harness  # noqa: E402

WEB = r'''
import http.server, os, signal
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
signal.signal(signal.SIGUSR1, lambda *a: print("usr1", flush=True))
print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'''

# Fails twice, then stays up: restarts = 2 before the crash.
FLAKY = ('n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; '
         '[ $n -lt 3 ] && exit 1; echo up; exec sleep 1060')


def restart_after_kill9(d):
    """A killed daemon's ring is torn down asynchronously by the kernel, which may hold
    the listening socket a moment longer: wait until the port can be bound again."""
    d.wait_for(lambda: harness.port_is_free(d.port), 10, what="port %d free again" % d.port)
    d.start()


class AdoptTest(api_harness.TestCase):
    def svc(self, d, name):
        status, body = d.json("GET", "/v1/services/" + name)
        self.assertEqual(status, 200, body)
        return body

    def test_kill9_then_adopt_and_keep_supervising(self):
        d = self.daemon(None, start=False)
        os.makedirs(os.path.join(d.dir, "w"))
        d.write_config(
            service("web", ["python3", "-c", WEB], port="auto", restart="always", restart_delay="0s",
                    health={"http": "http://127.0.0.1:${PORT}/", "interval": "200ms"})
            + service("flaky", sh(FLAKY), working_dir=os.path.join(d.dir, "w"), restart_delay="0s"))
        d.start()
        d.wait_for(lambda: self.svc(d, "web")["health"] == "healthy", 10, what="web healthy")
        d.wait_for(lambda: self.svc(d, "flaky")["state"] == "running" and self.svc(d, "flaky")["restarts"] == 2,
                   10, what="flaky up after 2 restarts")
        d.wait_for(lambda: d.read_log("web") == b"listening\n", 5, what="web's first line")
        web, flaky = self.svc(d, "web"), self.svc(d, "flaky")
        d.wait_for(lambda: (d.service_state("web") or {}).get("pid") == web["pid"]
                   and (d.service_state("flaky") or {}).get("pid") == flaky["pid"], 3, what="state.json")
        old_max = d.events()[-1]["seq"]
        old_daemon = d.pid

        d.kill9()
        self.assertTrue(alive(web["pid"]) and alive(flaky["pid"]))
        restart_after_kill9(d)
        self.assertNotEqual(d.pid, old_daemon)
        after = lambda e: e["seq"] > old_max  # noqa: E731
        att = d.wait_event("attached", "web", where=after, timeout=10)[0]
        self.assertEqual((att["pid"], att["from"], att["exit_status"]), (web["pid"], "crash", "unknown"))
        self.assertIn("stdout", att["output"])
        d.wait_event("attached", "flaky", where=after, timeout=10)
        started = [e for e in d.events() if after(e) and e["kind"] == "started"]
        self.assertEqual(started, [], "an adopted service was started again")
        self.assertEqual([e for e in d.events() if after(e) and e["kind"] == "orphan_stopped"], [])
        # Same pid, ports and restart count; uptime continues; health checks resume.
        now_web, now_flaky = self.svc(d, "web"), self.svc(d, "flaky")
        self.assertEqual((now_web["pid"], now_web["ports"], now_web["restarts"], now_web["state"]),
                         (web["pid"], web["ports"], 0, "running"))
        self.assertEqual((now_flaky["pid"], now_flaky["restarts"]), (flaky["pid"], 2))
        self.assertGreaterEqual(now_web["uptime_seconds"], web["uptime_seconds"])
        d.wait_event("health", "web", where=lambda e: after(e) and e["health"] == "healthy", timeout=10)
        # Output is captured again: the pipe was opened anew through /proc.
        os.kill(web["pid"], signal.SIGUSR1)
        d.wait_for(lambda: d.read_log("web") == b"listening\nusr1\n", 5, what="usr1 in web's log")

        # Its exit is seen through the pidfd; init reaped it, so the status is unknown,
        # which the restart policy counts as a failure.
        os.kill(web["pid"], signal.SIGKILL)
        ex = d.wait_event("exited", "web", where=after, timeout=10)[0]
        self.assertEqual(ex["exit_status"], "unknown")
        d.wait_event("started", "web", where=after, timeout=10)
        d.wait_for(lambda: self.svc(d, "web")["state"] == "running" and self.svc(d, "web")["pid"] != web["pid"],
                   10, what="web restarted")
        again = self.svc(d, "web")
        self.assertEqual(again["restarts"], 1)
        d.stop()
        self.assertEqual(d.survivors(), [])

    def test_recycled_pid_is_never_adopted(self):
        """state.json names a live pid whose start time differs: another process now."""
        d = self.daemon(service("steady", ["sleep", "1061"]), start=False)
        import subprocess
        other = subprocess.Popen(["sleep", "1062"], start_new_session=True,
                                 env=dict(os.environ, E2E_TAG=d.tag))
        self.addCleanup(lambda: (other.kill(), other.wait()))
        os.makedirs(d.data_dir, exist_ok=True)
        with open(d.path("state.json"), "w") as f:
            json.dump({"version": 1, "services": {"steady": {
                "state": "running", "restarts": 4, "pid": other.pid,
                "pid_start_ticks": harness.start_ticks(other.pid) + 1}}}, f)
        d.start()
        new = d.wait_event("started", "steady", timeout=10)[0]["pid"]
        self.assertNotEqual(new, other.pid)
        d.wait_for(lambda: (d.service_state("steady") or {}).get("pid") == new, 3, what="state.json")
        self.assertEqual(d.events_of("steady", "attached"), [])
        self.assertEqual(d.events_of("steady", "orphan_stopped"), [])
        self.assertIsNone(other.poll(), "the unrelated process was touched")
        self.assertEqual(self.svc(d, "steady")["restarts"], 0)
        d.stop()

    def test_a_write_with_no_daemon_is_sigpipe(self):
        """Without systemd's fd store nobody holds the pipes while no daemon runs: a
        service writing then dies of SIGPIPE (or sees EPIPE) and is started anew."""
        d = self.daemon(service("chatty", sh("i=0; while :; do i=$((i+1)); echo line $i; sleep 0.02; done")))
        pid = d.wait_running("chatty")
        d.wait_for(lambda: d.read_log("chatty").count(b"\n") >= 5, 5, what="output")
        old_max = d.events()[-1]["seq"]
        d.kill9()
        d.wait_for(lambda: not alive(pid), 5, what="the writer killed by SIGPIPE")
        restart_after_kill9(d)
        ev = d.wait_event("started", "chatty", where=lambda e: e["seq"] > old_max, timeout=10)[0]
        self.assertNotEqual(ev["pid"], pid)
        d.stop()


if __name__ == "__main__":
    harness.main()
