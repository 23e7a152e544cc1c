#!/usr/bin/env python3
"""Dependency order: a <- b <- c (a needs b started, b needs c healthy). Start order is
c, b, a with b held back until c's health check passes; stop order is a, b, c, each
stop beginning only once its dependents are down."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import parse_time, service, sh  # noqa: E402


class DepsTest(harness.TestCase):
    def test_start_and_stop_order(self):
        d = self.daemon(None, start=False)
        ready = os.path.join(d.dir, "c.ready")
        d.write_config(
            # Declared a, b, c: the order in the file must not matter.
            service("a", ["sleep", "1010"], depends_on=["b"])
            + service("b", ["sleep", "1011"], depends_on={"c": "healthy"})
            + service("c", sh("sleep 0.3; touch %s; exec sleep 1012" % ready),
                      health={"exec": ["test", "-e", ready], "interval": "50ms", "retries": 1}))
        d.start()
        for name in ("a", "b", "c"):
            d.wait_running(name, timeout=10)
        evs = d.events()

        def first(kind, svc, where=lambda e: True):
            m = [e for e in evs if e["kind"] == kind and e.get("service") == svc and where(e)]
            self.assertTrue(m, "no %s event for %s" % (kind, svc))
            return m[0]
        started = {s: first("started", s) for s in "abc"}
        order = sorted("abc", key=lambda s: started[s]["seq"])
        self.assertEqual(order, ["c", "b", "a"])
        healthy = first("health", "c", lambda e: e["health"] == "healthy")
        self.assertLess(healthy["seq"], started["b"]["seq"], "b started before c was healthy")
        # c became healthy only after its ~300 ms start; b must not have started sooner.
        self.assertGreaterEqual(parse_time(started["b"]["time"]) - parse_time(started["c"]["time"]), 0.28)
        self.assertEqual([e["for"] for e in d.events_of("b", "waiting", evs)], [["c (healthy)"]])
        waiting_a = d.events_of("a", "waiting", evs)
        self.assertEqual(len(waiting_a), 1)
        self.assertEqual(waiting_a[0]["for"], ["b"])
        stop_from = d.events()[-1]["seq"]

        d.stop()
        evs = [e for e in d.events() if e["seq"] > stop_from]
        stopping = [e["service"] for e in evs if e["kind"] == "stopping"]
        self.assertEqual(stopping, ["a", "b", "c"])
        seq = {(e["service"], e["kind"]): e["seq"] for e in evs if e["kind"] in ("stopping", "stopped")}
        self.assertLess(seq[("a", "stopped")], seq[("b", "stopping")], "b stopped while a still ran")
        self.assertLess(seq[("b", "stopped")], seq[("c", "stopping")], "c stopped while b still ran")
        self.assertEqual(d.survivors(), [])

    def test_dependent_waits_while_dependency_is_unhealthy(self):
        d = self.daemon(None, start=False)
        ready = os.path.join(d.dir, "db.ready")
        d.write_config(
            service("web", ["sleep", "1013"], depends_on={"db": "healthy"})
            + service("db", ["sleep", "1014"],
                      health={"exec": ["test", "-e", ready], "interval": "50ms", "retries": 1}))
        d.start()
        d.wait_running("db")
        d.wait_event("health", "db", where=lambda e: e["health"] == "unhealthy")
        d.wait_event("waiting", "web")
        time.sleep(0.5)
        self.assertEqual(d.events_of("web", "started"), [], "web started on an unhealthy db")
        open(ready, "w").close()
        d.wait_running("web", timeout=5)
        d.stop()

    def test_shutdown_while_a_dependent_waits(self):
        d = self.daemon(service("web", ["sleep", "1015"], depends_on={"db": "healthy"})
                        + service("db", ["sleep", "1016"],
                                  health={"exec": ["false"], "interval": "50ms", "retries": 1}))
        d.wait_event("waiting", "web")
        d.wait_event("health", "db", where=lambda e: e["health"] == "unhealthy")
        took = d.stop()
        self.assertLess(took, 3.0)
        self.assertEqual(d.events_of("web", "started"), [])
        self.assertEqual(d.survivors(), [])
        self.assertEqual({n: s["state"] for n, s in d.state()["services"].items()},
                         {"web": "stopped", "db": "stopped"})


if __name__ == "__main__":
    harness.main()
