"""GET /v1/services/NAME/history, /v1/history and /v1/node against a real daemon sampling
every second (DOCKLESS_HISTORY_INTERVAL=1): a real busy child's CPU and memory show up
in its series, its exits and restarts in its timeline, and an idle service has none."""
from api_harness import TestCase, main, service, sh

FAST = {"DOCKLESS_HISTORY_INTERVAL": "1"}
BUSY = sh("while :; do :; done")
# Exits with 3 after a moment, restarted by the policy: a timeline of starts and exits.
FLAKY = sh("sleep 0.3; exit 3")


class History(TestCase):
    def history(self, d, name):
        return self.assertStatus(d.json("GET", "/v1/services/%s/history" % name), 200)

    def test_busy_child_shows_cpu_and_memory(self):
        d = self.daemon(service("busy", BUSY) + service("idle", ["sleep", "1000"], autostart=False), env=FAST)
        d.wait_running("busy")

        def busy_points():
            h = self.history(d, "busy")
            cpu = [c for c in h["cpu_percent"] if c is not None]
            return h if len(cpu) >= 3 and max(cpu) >= 20 else None

        h = d.wait_for(busy_points, 30, what="three CPU points, one of them busy")
        self.assertEqual(h["name"], "busy")
        self.assertEqual(h["state"], "running")
        self.assertEqual(h["interval_seconds"], 1)
        self.assertEqual(len(h["cpu_percent"]), len(h["memory_bytes"]))
        self.assertLessEqual(len(h["cpu_percent"]), 360)
        self.assertTrue(h["start"].endswith("Z"))
        self.assertTrue(any(m for m in h["memory_bytes"] if m), h["memory_bytes"])
        self.assertIn("started", [e["kind"] for e in h["events"]])
        # The series grows while the service runs.
        n = len(h["cpu_percent"])
        d.wait_for(lambda: len(self.history(d, "busy")["cpu_percent"]) > n, 15, what="the series to grow")

        idle = self.history(d, "idle")
        self.assertEqual((idle["cpu_percent"], idle["memory_bytes"], idle["events"]), ([], [], []))
        self.assertIsNone(idle["start"])

        err = self.assertStatus(d.json("GET", "/v1/services/ghost/history"), 404)
        self.assertEqual(err["error"], "no such service")
        self.assertEqual(err["detail"]["name"], "ghost")

    def test_exits_and_restarts_on_the_timeline(self):
        d = self.daemon(service("flaky", FLAKY, restart="always", restart_delay="100ms", restart_limit=100), env=FAST)

        def exits():
            h = self.history(d, "flaky")
            ex = [e for e in h["events"] if e["kind"] == "exited"]
            return h if len(ex) >= 2 else None

        h = d.wait_for(exits, 30, what="two exits on the timeline")
        kinds = [e["kind"] for e in h["events"]]
        self.assertIn("started", kinds)
        self.assertIn("backoff", kinds)
        exited = [e for e in h["events"] if e["kind"] == "exited"]
        self.assertEqual(exited[0]["code"], 3, exited)
        self.assertIsNone(exited[0]["signal"])
        times = [e["time"] for e in h["events"]]
        self.assertEqual(times, sorted(times))
        self.assertGreaterEqual(h["restarts"], 1)

    def test_all_services_and_the_node(self):
        d = self.daemon(service("a", ["sleep", "1000"]) + service("b", ["sleep", "1000"], autostart=False), env=FAST)
        d.wait_running("a")
        d.wait_for(lambda: self.history(d, "a")["memory_bytes"], 15, what="a memory point for a")
        every = self.assertStatus(d.json("GET", "/v1/history"), 200)
        self.assertEqual([s["name"] for s in every["services"]], ["a", "b"])
        self.assertTrue(every["services"][0]["memory_bytes"])
        node = self.assertStatus(d.json("GET", "/v1/node"), 200)
        self.assertEqual(set(node), {"cpus", "load", "memory", "disk"})
        self.assertGreaterEqual(node["cpus"], 1)
        self.assertEqual(len(node["load"]), 3)
        self.assertGreater(node["memory"]["total_bytes"], node["memory"]["available_bytes"])
        self.assertGreater(node["disk"]["total_bytes"], 0)
        self.assertEqual(every["node"].keys(), node.keys())


if __name__ == "__main__":
    main()
