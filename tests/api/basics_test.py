"""Health, readiness, service listing, errors of the server core (404/405), metrics,
events (NDJSON, follow, SSE), reload, and the unix socket."""
import json
import time

from api_harness import TICKER, Follower, TestCase, main, service, sh


class Basics(TestCase):
    def test_health_ready_list_get_and_unix_socket(self):
        d = self.daemon(service("tick", TICKER) + service("idle", ["sleep", "1000"], autostart=False))
        for path in ("/health", "/healthz"):
            self.assertEqual(self.assertStatus(d.json("GET", path), 200, path), {"status": "ok"})
        self.assertEqual(self.assertStatus(d.json("GET", "/readyz"), 200), {"ready": True})
        d.wait_running("tick")
        services = self.assertStatus(d.json("GET", "/v1/services"), 200)
        self.assertEqual([s["name"] for s in services], ["idle", "tick"])
        tick = services[1]
        for key in ("name", "state", "pid", "restarts", "started_at", "uptime_seconds", "exit_code",
                    "exit_signal", "health", "health_reason", "ports", "cpu_seconds", "rss_bytes",
                    "last_error", "next_restart_in_ms", "source", "command", "autostart", "stdin"):
            self.assertIn(key, tick)
        self.assertEqual(tick["state"], "running")
        self.assertIsInstance(tick["pid"], int)
        self.assertGreater(tick["rss_bytes"], 0)
        self.assertEqual(tick["source"], "config")
        self.assertRegex(tick["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        self.assertEqual(services[0]["state"], "stopped")
        self.assertIsNone(services[0]["pid"])
        one = self.assertStatus(d.json("GET", "/v1/services/tick"), 200)
        self.assertEqual(one["spec"]["command"], TICKER)
        self.assertEqual(one["spec"]["restart_delay"], "100ms")
        self.assertEqual(one["spec"]["log_max_size"], 10 << 20)
        err = self.assertStatus(d.json("GET", "/v1/services/nope"), 404)
        self.assertEqual(err, {"error": "no such service", "detail": {"name": "nope"}})
        # The same API over the unix socket.
        over_unix = self.assertStatus(d.json("GET", "/v1/services", unix=True), 200)
        self.assertEqual([s["name"] for s in over_unix], ["idle", "tick"])

    def test_unknown_route_and_method(self):
        d = self.daemon(service("idle", ["sleep", "1000"], autostart=False))
        self.assertStatus(d.json("GET", "/v1/nothing"), 404)
        err = self.assertStatus(d.json("PATCH", "/v1/services"), 405)
        self.assertIn("error", err)
        self.assertStatus(d.json("GET", "/v1/services/idle/start"), 405)

    def test_metrics(self):
        d = self.daemon(service("tick", TICKER))
        d.wait_running("tick")
        time.sleep(0.5)
        status, body = d.curl("GET", "/metrics")
        self.assertEqual(status, 200)
        text = body.decode()
        for line in ('dockless_service_up{service="tick"} 1',
                     'dockless_service_state{service="tick",state="running"} 1',
                     'dockless_service_state{service="tick",state="stopped"} 0',
                     'dockless_service_restarts_total{service="tick"} 0'):
            self.assertIn(line, text)
        for name in ('dockless_service_uptime_seconds{service="tick"}',
                     'dockless_service_cpu_seconds_total{service="tick"}',
                     'dockless_service_memory_rss_bytes{service="tick"}',
                     'dockless_service_log_bytes_total{service="tick",stream="stdout"}',
                     'dockless_service_log_bytes_total{service="tick",stream="stderr"}',
                     "dockless_rss_bytes ", "dockless_http_connections_open ", "dockless_events_log_bytes ",
                     "dockless_events_total ", "dockless_ring_cq_overflow_total "):
            self.assertIn(name, text)
        self.assertNotIn("dockless_service_healthy{", text)  # no health check
        self.assertGreater(d.metric("dockless_rss_bytes"), 0)

    def test_events_ndjson_follow_and_sse(self):
        d = self.daemon(service("a", ["sleep", "1000"]) + service("b", ["sleep", "1000"]))
        d.wait_running("a")
        d.wait_running("b")
        status, body = d.curl("GET", "/v1/events")
        self.assertEqual(status, 200)
        events = [json.loads(l) for l in body.decode().splitlines()]
        self.assertEqual(events[0]["kind"], "daemon_started")
        self.assertEqual([e["seq"] for e in events], sorted(e["seq"] for e in events))
        only_a = [json.loads(l) for l in d.curl("GET", "/v1/events?since=0&service=a")[1].decode().splitlines()]
        self.assertTrue(only_a)
        self.assertEqual({e["service"] for e in only_a}, {"a"})
        last = events[-1]["seq"]
        after = [json.loads(l) for l in d.curl("GET", "/v1/events?since=%d" % (last - 1))[1].decode().splitlines()]
        self.assertEqual([e["seq"] for e in after], [last])
        self.assertStatus(d.curl("GET", "/v1/events?since=x"), 400)
        # Follow (NDJSON) and SSE see a new event live.
        nd = Follower(d.base + "/v1/events?follow=1&since=%d&service=b" % last)
        sse = Follower(d.base + "/v1/events?service=b", extra=("-H", "Accept: text/event-stream",
                                                             "-H", "Last-Event-ID: %d" % last))
        self.addCleanup(nd.close)
        self.addCleanup(sse.close)
        time.sleep(0.3)
        self.assertStatus(d.json("POST", "/v1/services/b/restart"), 202)
        nd.wait_for_text('"kind":"restart_requested"')
        sse.wait_for_text('"kind":"restart_requested"')
        for line in nd.text().splitlines():
            self.assertEqual(json.loads(line)["service"], "b")
        self.assertRegex(sse.text(), r"id: \d+\ndata: \{.*\"kind\":\"restart_requested\"")

    def test_reload_ok_and_invalid(self):
        d = self.daemon(service("a", ["sleep", "1000"]))
        d.wait_running("a")
        d.write_config(service("a", ["sleep", "1000"]) + service("b", ["sleep", "1001"]))
        out = self.assertStatus(d.json("POST", "/v1/reload"), 200)
        self.assertEqual(out.pop("plan")["services"]["added"], ["b"])
        out.pop("generation")
        self.assertEqual(out, {"ok": True, "dry_run": False, "added": ["b"], "removed": [], "changed": [],
                               "updated_in_place": []})
        d.wait_running("b")
        d.write_config(service("a", ["sleep", "1000"]) + "[services.b]\ncommand = []\n")
        err = self.assertStatus(d.json("POST", "/v1/reload"), 422)
        self.assertEqual(err["error"], "config invalid")
        self.assertTrue(any("config.toml:" in e and "command" in e for e in err["detail"]), err)
        # The running config stays.
        self.assertEqual(self.assertStatus(d.json("GET", "/v1/services/b"), 200)["state"], "running")
        d.write_config(service("a", ["sleep", "1000"]))
        out = self.assertStatus(d.json("POST", "/v1/reload"), 200)
        self.assertEqual(out["removed"], ["b"])
        self.assertStatus(d.json("GET", "/v1/services/b"), 404)


if __name__ == "__main__":
    main()
