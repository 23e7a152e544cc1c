#!/usr/bin/env python3
"""Health checks against real processes and sockets: exec (a flag file flipping),
http (python's http.server on an "auto" port), tcp (a closed port), and
restart_on_unhealthy."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import alive, free_port, service  # noqa: E402


def health_values(d, name):
    return [e["health"] for e in d.events_of(name, "health")]


class HealthTest(harness.TestCase):
    def test_exec_flips_healthy_unhealthy_healthy(self):
        d = self.daemon(None, start=False)
        flag = os.path.join(d.dir, "ok")
        open(flag, "w").close()
        d.write_config(service("svc", ["sleep", "1020"],
                               health={"exec": ["test", "-e", flag], "interval": "50ms", "retries": 1}))
        d.start()
        pid = d.wait_running("svc")
        d.wait_for(lambda: health_values(d, "svc") == ["healthy"], 5, what="healthy")
        os.unlink(flag)
        d.wait_for(lambda: health_values(d, "svc") == ["healthy", "unhealthy"], 5, what="unhealthy")
        open(flag, "w").close()
        d.wait_for(lambda: health_values(d, "svc") == ["healthy", "unhealthy", "healthy"], 5,
                   what="healthy again")
        unhealthy = d.events_of("svc", "health")[1]
        self.assertIn("exited with 1", unhealthy["reason"])
        # Not restart_on_unhealthy: the same process throughout.
        self.assertEqual(d.events_of("svc", "restart_unhealthy"), [])
        self.assertEqual(len(d.events_of("svc", "started")), 1)
        self.assertTrue(alive(pid))
        d.stop()

    def test_http_on_auto_port(self):
        harness.require("python3")
        d = self.daemon(service("web", ["python3", "-m", "http.server", "$PORT", "--bind", "127.0.0.1"],
                                port="auto",
                                health={"http": "http://127.0.0.1:${PORT}/", "interval": "100ms",
                                        "retries": 1, "start_period": "10s"}))
        started = d.wait_event("started", "web")[0]
        port = started["ports"][0]
        self.assertGreater(port, 0)
        self.assertNotEqual(port, d.port)
        ev = d.wait_event("health", "web", timeout=15, where=lambda e: e["health"] == "healthy")[0]
        self.assertEqual(health_values(d, "web"), ["healthy"])  # start_period: no early unhealthy
        self.assertIn(str(port), ev["reason"])
        # The checker's port is the one the service really listens on.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        d.stop()

    def test_tcp_to_closed_port_is_unhealthy(self):
        closed = free_port()
        d = self.daemon(service("svc", ["sleep", "1021"],
                                health={"tcp": "127.0.0.1:%d" % closed, "interval": "50ms", "retries": 2}))
        pid = d.wait_running("svc")
        ev = d.wait_event("health", "svc", timeout=5)[0]
        self.assertEqual(ev["health"], "unhealthy")
        self.assertIn("refused", ev["reason"].lower())
        self.assertIn(str(closed), ev["reason"])
        time.sleep(0.3)
        self.assertEqual(health_values(d, "svc"), ["unhealthy"])
        self.assertTrue(alive(pid))  # reported, not acted on
        self.assertEqual(d.service_state("svc")["pid"], pid)
        d.stop()

    def test_hung_exec_check_times_out_and_is_reaped(self):
        d = self.daemon(service("svc", ["sleep", "1024"],
                                health={"exec": ["sleep", "1025"], "interval": "50ms", "timeout": "200ms",
                                        "retries": 1}))
        d.wait_running("svc")
        ev = d.wait_event("health", "svc", timeout=5)[0]
        self.assertEqual(ev["health"], "unhealthy")
        self.assertIn("timed out", ev["reason"])
        time.sleep(1.0)  # several more checks time out
        hung = [p for p in d.survivors() if p.cmdline == ["sleep", "1025"]]
        self.assertLessEqual(len(hung), 1, "timed-out checks left running: %s" % hung)
        d.stop()
        self.assertEqual(d.survivors(), [])

    def test_restart_on_unhealthy(self):
        d = self.daemon(None, start=False)
        flag = os.path.join(d.dir, "ok")
        open(flag, "w").close()
        d.write_config(service("svc", ["sleep", "1022"], restart_delay="50ms",
                               health={"exec": ["test", "-e", flag], "interval": "50ms", "retries": 1,
                                       "restart_on_unhealthy": True}))
        d.start()
        old = d.wait_running("svc")
        d.wait_event("health", "svc", where=lambda e: e["health"] == "healthy")
        os.unlink(flag)
        d.wait_event("restart_unhealthy", "svc", timeout=5)
        open(flag, "w").close()
        started = d.wait_event("started", "svc", count=2, timeout=5)
        new = started[1]["pid"]
        self.assertNotEqual(new, old)
        d.wait_for(lambda: not alive(old), 3, what="old instance gone")
        evs = d.events_of("svc")
        kinds = [e["kind"] for e in evs]
        i = kinds.index("restart_unhealthy")
        self.assertEqual(kinds[i:i + 4], ["restart_unhealthy", "stopping", "exited", "started"], kinds)
        # An asked-for restart is not a crash: no backoff, no restart count.
        self.assertEqual(d.events_of("svc", "backoff"), [])
        d.stop()


if __name__ == "__main__":
    harness.main()
