#!/usr/bin/env python3
"""Hostile services, all at once: one forks 2,000 sleeping children, one ignores SIGTERM, one
closes its stdout and stderr and runs on, one crash-loops with no delay, one writes to stdout
as fast as it can (`yes`). Meanwhile GET /v1/services keeps answering (p50/p99 printed; only a
bound that catches a wedged loop is asserted — the timing goal is bench/fault_latency.py's),
the daemon's RSS stays bounded, and removing each service leaves none of its processes.

The services are registered through the API (POST /v1/services), so they can be removed
(DELETE) like an operator would."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
from faultlib import harness, percentile, rss_kib  # noqa: E402

FORKS = 2000
# Spawned by the tests and by bench/fault_latency.py (which imports this module).
HOSTILE = {
    "forker": {"command": ["sh", "-c", "i=0; while [ $i -lt %d ]; do sleep 100000 & i=$((i+1)); done; "
                                       "echo forked; wait" % FORKS]},
    "stubborn": {"command": ["sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done"],
                 "stop_timeout": "1s"},
    "closer": {"command": ["sh", "-c", "echo bye; exec >&- 2>&-; while :; do sleep 1; done"]},
    "crasher": {"command": ["false"], "restart": "always", "restart_delay": "0s",
                "restart_delay_max": "0s", "restart_limit": 0},
    "firehose": {"command": ["yes", "faults firehose line"], "log_max_size": "16MiB", "log_keep": 2},
}
P99_BOUND_MS = 200.0
RSS_BOUND_KIB = 64 * 1024


def register(client, name, spec):
    body = dict(spec, name=name)
    status, data, _ = client.request("POST", "/v1/services", body)
    assert status == 201, (status, data)


def group(pgid):
    """Live members of a process group."""
    return [p for p in harness.processes().values() if p.pgid == pgid and p.state != "Z"]


class HostileTest(faultlib.TestCase):
    def test_hostile_services_meanwhile_api_and_rss(self):
        d = self.daemon("")
        c = self.client(d)
        for name, spec in HOSTILE.items():
            register(c, name, spec)
        leaders = {}
        for name in ("forker", "stubborn", "closer", "firehose"):
            leaders[name] = d.wait_running(name, timeout=10)
        d.wait_for(lambda: b"forked" in d.read_log("forker"), 60, what="2,000 children forked")
        self.assertGreaterEqual(len(group(leaders["forker"])), FORKS)
        d.wait_for(lambda: len(d.events_of("crasher", "exited")) >= 50, 20, what="crash loop turning")
        d.wait_for(lambda: len(d.read_log("firehose")) > (4 << 20), 20, what="firehose logging")

        lat = faultlib.latencies(d.port, 5.0)
        p50, p99 = percentile(lat, 50), percentile(lat, 99)
        rss = rss_kib(d.pid)
        crashes = len(d.events_of("crasher", "exited"))
        sys.stderr.write("\n  GET /v1/services under all five: %d requests, p50 %.2f ms, p99 %.2f ms, "
                         "max %.1f ms; daemon RSS %.1f MiB; %d crash-loop exits so far\n"
                         % (len(lat), p50, p99, max(lat), rss / 1024.0, crashes))
        self.assertGreater(len(lat), 50)
        asan = faultlib.sanitized(d.pid)
        # ASan's instrumentation and quarantine: a slower loop and an RSS that means nothing.
        self.assertLess(p99, P99_BOUND_MS * (5 if asan else 1), "the loop looks wedged")
        if not asan:
            self.assertLess(rss, RSS_BOUND_KIB)

        # The closer runs on without its output; the daemon still supervises it.
        svcs = c.services()
        self.assertEqual(svcs["closer"]["state"], "running")
        self.assertEqual(svcs["closer"]["pid"], leaders["closer"])
        for name in ("forker", "stubborn", "closer", "firehose"):
            self.assertEqual(svcs[name]["pid"], leaders[name], name)

        # The stubborn one: stop escalates to SIGKILL after its stop_timeout (1 s).
        t0 = time.monotonic()
        self.assertEqual(c.request("POST", "/v1/services/stubborn/stop")[0], 202)
        d.wait_event("killed", "stubborn", timeout=10)
        d.wait_for(lambda: c.services()["stubborn"]["state"] == "stopped", 10, what="stubborn stopped")
        took = time.monotonic() - t0
        self.assertGreaterEqual(took, 0.9)
        self.assertLess(took, 8.0)
        self.assertEqual(group(leaders["stubborn"]), [])

        # Removing each service leaves nothing of it behind: 2,000 children included.
        for name in HOSTILE:
            status, data, _ = c.request("DELETE", "/v1/services/" + name)
            self.assertEqual(status, 200, (name, data))
        for name, leader in leaders.items():
            d.wait_for(lambda: group(leader) == [], 30, what="%s's process group gone" % name)
        self.assertEqual(c.services(), {})
        self.assertNothingLeft(d)
        if not asan:
            self.assertLess(rss_kib(d.pid), RSS_BOUND_KIB)
        d.stop()


if __name__ == "__main__":
    faultlib.main()
