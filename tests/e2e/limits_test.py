#!/usr/bin/env python3
"""Resource limits with the real daemon, where the limits cannot be enforced (the
development machines' cgroup2 offers no controller; the aarch64 VM's actors test covers
enforcement): a service with a limit does not start, and spawn_failed names the key and
how to get the controller — with a cgroup that lacks it, and with no cgroup2 at all. A
reload that changes only limits restarts nothing: the service is listed under
updated_in_place and limits_applied says what happened; any other change restarts as
before. Needs root and a writable cgroup2; skipped otherwise."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import cgroups  # noqa: E402
import harness  # noqa: E402
from harness import service, sh  # noqa: E402
import api_harness  # noqa: E402
from cgroup_test import NoCgroup2Daemon, cgroup2_writable  # noqa: E402


def offered_controllers():
    """Controllers a daemon started from here could enable for its services."""
    own = cgroups.fs_path(cgroups.of())
    try:
        with open(os.path.join(own, "cgroup.controllers")) as f:
            return f.read().split()
    except (OSError, TypeError):
        return []


class LimitsTest(api_harness.TestCase):
    def setUp(self):
        if not cgroup2_writable():
            self.skipTest("needs root and a writable cgroup2")

    def spawn_error(self, d, name):
        ev = d.wait_event("spawn_failed", name, timeout=10)[0]
        status, body = d.json("GET", "/v1/services/" + name)
        self.assertEqual(status, 200, body)
        self.assertNotEqual(body["state"], "running")
        self.assertIsNone(body.get("pid"))
        return ev["error"]

    def test_a_limit_without_its_controller_keeps_the_service_from_starting(self):
        if "pids" in offered_controllers():
            self.skipTest("this cgroup offers the pids controller: the limit would be enforced")
        d = self.daemon(service("capped", sh("exec sleep 1051"), pids_max=20, restart="no")
                        + service("free", sh("exec sleep 1052")))
        error = self.spawn_error(d, "capped")
        self.assertIn("pids_max", error)
        self.assertIn("pids controller", error)
        self.assertIn("Delegate=yes", error)
        d.wait_running("free")  # the others are not held up
        d.stop()

    def test_reload_changing_only_limits_restarts_nothing(self):
        pids_offered = "pids" in offered_controllers()
        v1 = service("web", sh("exec sleep 1053")) + service("other", sh("exec sleep 1054"))
        d = self.daemon(v1)
        web, other = d.wait_running("web"), d.wait_running("other")
        before = d.events()[-1]["seq"]
        d.write_config(service("web", sh("exec sleep 1053"), pids_max=64) + service("other", sh("exec sleep 1054")))
        status, out = d.json("POST", "/v1/reload")
        self.assertEqual(status, 200, out)
        self.assertEqual((out["changed"], out["updated_in_place"]), ([], ["web"]))
        ev = d.wait_event("limits_applied", "web", where=lambda e: e["seq"] > before, timeout=10)[0]
        self.assertEqual(ev["limits"], {"pids_max": "64"})
        self.assertEqual(ev["ok"], pids_offered, ev)
        if not pids_offered:
            self.assertIn("pids_max", ev["error"])
        reloaded = d.wait_event("reload_succeeded", where=lambda e: e["seq"] > before, timeout=10)[0]
        self.assertEqual(reloaded["updated_in_place"], ["web"])
        # Not restarted: the same instance runs on.
        self.assertEqual(d.service_state("web")["pid"], web)
        self.assertTrue(harness.alive(web))
        self.assertEqual(d.events_of("web", "exited"), [])
        # The limit removed again: in place too, and nothing left that could be refused.
        before = d.events()[-1]["seq"]
        d.write_config(v1)
        status, out = d.json("POST", "/v1/reload")
        self.assertEqual((out["changed"], out["updated_in_place"]), ([], ["web"]))
        ev = d.wait_event("limits_applied", "web", where=lambda e: e["seq"] > before, timeout=10)[0]
        self.assertEqual((ev["ok"], ev["limits"], ev["error"]), (True, {}, ""))
        self.assertEqual(d.service_state("web")["pid"], web)
        # A change beyond limits restarts as before.
        d.write_config(service("web", sh("exec sleep 1055")) + service("other", sh("exec sleep 1054")))
        status, out = d.json("POST", "/v1/reload")
        self.assertEqual((out["changed"], out["updated_in_place"]), (["web"], []))
        d.wait_for(lambda: (d.service_state("web") or {}).get("pid") not in (None, web), 10, what="web restarted")
        self.assertEqual(d.service_state("other")["pid"], other)
        d.stop()

    def test_services_show_usage_from_the_cgroup(self):
        """cgroup_stats come from the instance's cgroup (children included); on this hybrid
        layout only what its files offer: cpu.stat is in every v2 cgroup, memory.current
        and the others only with their controllers, PSI with CONFIG_PSI."""
        d = self.daemon(service("busy", sh("sleep 1058 & exec sleep 1059"))
                        + service("idle", sh("exec sleep 1060"), autostart=False))
        d.wait_running("busy")
        status, body = d.json("GET", "/v1/services/busy")
        self.assertEqual(status, 200, body)
        stats = body["cgroup_stats"]
        self.assertIsInstance(stats, dict, body)
        self.assertIsInstance(stats["cpu_usage_usec"], int)
        self.assertGreaterEqual(stats["cpu_usage_usec"], 0)
        fs = cgroups.fs_path(body["cgroup"])
        for key, name in (("memory_current", "memory.current"), ("memory_peak", "memory.peak"),
                          ("pids_current", "pids.current"), ("memory_pressure", "memory.pressure"),
                          ("cpu_pressure", "cpu.pressure")):
            self.assertEqual(key in stats, os.path.exists(os.path.join(fs, name)), (key, stats))
        if "pids_current" in stats:
            self.assertGreaterEqual(stats["pids_current"], 2)  # the shell's child counts
        status, listing = d.json("GET", "/v1/services")
        by_name = {s["name"]: s for s in listing}
        self.assertIn("cpu_usage_usec", by_name["busy"]["cgroup_stats"])
        self.assertIsNone(by_name["idle"]["cgroup_stats"])  # not running: no cgroup
        _, metrics = d.curl("GET", "/metrics")
        self.assertIn('dockless_service_cgroup_cpu_seconds_total{service="busy"}', metrics.decode())
        d.stop()


class LimitsShownTest(api_harness.TestCase):
    def test_services_and_metrics_show_each_limit_in_the_units_of_usage(self):
        """GET /v1/services carries the limits a start writes (shares of RAM resolved here,
        cpu_max in CPUs) whether or not they could be enforced, so the dashboard can put each
        next to its usage; /metrics has a gauge for each bounded one."""
        d = self.daemon(service("capped", sh("exec sleep 1061"), memory_max="64M", memory_high="50%",
                                memory_swap_max="max", cpu_max="50%", cpu_weight=50, pids_max=32,
                                restart="no")
                        + service("free", sh("exec sleep 1062")))
        d.wait_running("free")
        ram = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGESIZE")
        status, listing = d.json("GET", "/v1/services")
        self.assertEqual(status, 200, listing)
        by_name = {s["name"]: s for s in listing}
        self.assertEqual(by_name["capped"]["limits"], {
            "memory_max": 64 << 20, "memory_high": ram // 2, "memory_swap_max": "max",
            "cpu_max": 0.5, "cpu_weight": 50, "pids_max": 32})
        self.assertIsNone(by_name["free"]["limits"])
        _, metrics = d.curl("GET", "/metrics")
        samples = {}
        for line in metrics.decode().splitlines():
            if line.split("{")[0].endswith(("_max_bytes", "_max_cpus", "_pids_max")):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        self.assertEqual(samples, {
            'dockless_service_memory_max_bytes{service="capped"}': 64 << 20,
            'dockless_service_cpu_max_cpus{service="capped"}': 0.5,
            'dockless_service_pids_max{service="capped"}': 32})
        self.assertIn('dockless_service_memory_high_bytes{service="capped"} %d' % (ram // 2), metrics.decode())
        d.stop()


class NoCgroup2LimitsTest(api_harness.TestCase):
    def test_a_limit_with_no_cgroup2_keeps_the_service_from_starting(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (unshare --mount)")
        harness.require("unshare")
        d = NoCgroup2Daemon(service("capped", sh("exec sleep 1056"), memory_max="64M", restart="no")
                            + service("free", sh("exec sleep 1057")))
        self.addCleanup(self._cleanup_daemon, d)
        d.start()
        ev = d.wait_event("spawn_failed", "capped", timeout=10)[0]
        self.assertIn("memory_max: cannot be enforced", ev["error"])
        self.assertIn("Delegate=yes", ev["error"])
        d.wait_running("free")
        d.stop()


if __name__ == "__main__":
    unittest.main()
