#!/usr/bin/env python3
"""Ports: a duplicate in the config is refused before anything runs, a port someone else
holds keeps the service in backoff (never started), and "auto" hands the service a free
port in $PORT."""
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import free_port, port_is_free, service, sh  # noqa: E402


class PortsTest(harness.TestCase):
    def test_duplicate_port_refused_with_positions(self):
        p = free_port()
        d = self.daemon(service("web", ["sleep", "1030"], port=p)
                        + service("api", ["sleep", "1031"], ports=[p + 1 if p < 65535 else p - 1, p]),
                        start=False)
        d.start(wait=False)
        rc = d.proc.wait(10)
        self.assertEqual(rc, 2)
        err = d.stderr_text()
        # [services.api] is at line 4; `ports = [X, P]` is line 6, P at column 10 + len("X, ").
        col = 12 + len(str(p + 1 if p < 65535 else p - 1))
        want = 'config.toml:6:%d: services.api: port %d is already claimed by service "web"' % (col, p)
        self.assertIn(want, err)
        self.assertIn("not starting: the config is invalid", err)
        self.assertFalse(os.path.exists(d.data_dir), "a refused config created the data dir")
        self.assertEqual(d.survivors(), [])

    def test_port_taken_by_another_process(self):
        for address in ("127.0.0.1", "0.0.0.0"):
            with self.subTest(address=address):
                self.port_taken(address)

    def port_taken(self, address):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(holder.close)
        holder.bind((address, 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        d = self.daemon(service("web", ["sleep", "1032"], port=port, restart_delay="100ms",
                                restart_delay_max="200ms", restart_limit=0))
        fails = d.wait_event("spawn_failed", "web", count=2, timeout=5)
        for f in fails:
            self.assertIn("port %d" % port, f["error"])
            self.assertIn("in use", f["error"].lower())
        d.wait_event("backoff", "web", count=2)
        self.assertEqual(d.events_of("web", "started"), [])
        st = d.wait_for(lambda: d.service_state("web"), 2, what="web in state.json")
        self.assertIn(st["state"], ("backoff", "starting"))
        self.assertNotIn("pid", st)
        # Freed: the next attempt gets it.
        holder.close()
        started = d.wait_event("started", "web", timeout=5)[0]
        self.assertEqual(started["ports"], [port])
        d.wait_running("web")
        d.stop()
        d.cleanup()

    def test_auto_port_in_environment(self):
        # `env | grep`, not "$PORT": the daemon substitutes $PORT in argv itself, and this
        # test is about the environment.
        d = self.daemon(service("auto", sh("env | grep '^PORT='; exec sleep 1033"), port="auto")
                        + service("fixed", sh("env | grep '^PORT=' || echo none; exec sleep 1034")))
        started = d.wait_event("started", "auto")[0]
        d.wait_running("auto")
        d.wait_running("fixed")
        out = d.wait_for(lambda: re.fullmatch(rb"PORT=(\d+)\n", d.read_log("auto")), 5,
                         what="PORT=N in auto's stdout")
        port = int(out.group(1))
        self.assertEqual(started["ports"], [port])
        self.assertTrue(1024 <= port <= 65535)
        self.assertNotEqual(port, d.port)
        self.assertTrue(port_is_free(port), "the picked port is held by someone")
        d.wait_for(lambda: d.read_log("fixed") == b"none\n", 5, what="no PORT without a port")
        self.assertNotIn("ports", d.events_of("fixed", "started")[0])
        d.stop()


if __name__ == "__main__":
    harness.main()
