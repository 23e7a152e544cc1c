"""start/stop/restart/signal/stdin and their error statuses."""
import time

from api_harness import TestCase, main, service, sh


class Control(TestCase):
    def test_start_stop_restart_signal(self):
        trap = sh('trap "echo got-hup" HUP; while true; do sleep 0.05; done')
        d = self.daemon(service("svc", trap, autostart=False) + service("idle", ["sleep", "1000"], autostart=False))
        self.assertStatus(d.json("POST", "/v1/services/ghost/start"), 404)
        err = self.assertStatus(d.json("POST", "/v1/services/svc/signal", {"signal": "HUP"}), 409)
        self.assertEqual(err["error"], "not running")
        out = self.assertStatus(d.json("POST", "/v1/services/svc/start"), 202)
        self.assertEqual(out["name"], "svc")
        pid = d.wait_running("svc")
        # One at a time: signals sent while the trap is pending merge into one.
        for n, sig in enumerate(("HUP", "SIGHUP", 1, "1"), 1):
            self.assertStatus(d.json("POST", "/v1/services/svc/signal", {"signal": sig}), 202, repr(sig))
            d.wait_for(lambda: d.read_log("svc").count(b"got-hup") >= n, 10, what="got-hup #%d" % n)
        for bad in ({"signal": "NOPE"}, {"signal": 999}, {}, "[", {"signal": True}):
            self.assertStatus(d.json("POST", "/v1/services/svc/signal", bad), 400, repr(bad))
        self.assertStatus(d.json("POST", "/v1/services/svc/restart"), 202)
        d.wait_for(lambda: (d.service_state("svc") or {}).get("pid") not in (None, pid), 10, what="a new pid")
        self.assertStatus(d.json("POST", "/v1/services/svc/stop"), 202)
        d.wait_for(lambda: self.assertStatus(d.json("GET", "/v1/services/svc"), 200)["state"] == "stopped",
                   15, what="svc stopped")

    def test_stdin(self):
        d = self.daemon(service("cat", ["cat"], stdin=True) + service("nostdin", ["sleep", "1000"]))
        d.wait_running("cat")
        d.wait_running("nostdin")
        self.assertStatus(d.curl("POST", "/v1/services/cat/stdin", b"hello from stdin\n",
                                 "application/octet-stream"), 202)
        d.wait_for(lambda: b"hello from stdin\n" in d.read_log("cat"), 5, what="echo in the log")
        status, body = d.curl("GET", "/v1/services/cat/logs")
        self.assertIn(b"hello from stdin", body)
        err = self.assertStatus(d.json("POST", "/v1/services/nostdin/stdin", "x", ctype="text/plain"), 409)
        self.assertIn("stdin", err["error"])
        self.assertStatus(d.json("POST", "/v1/services/cat/stop"), 202)
        d.wait_for(lambda: (d.service_state("cat") or {}).get("state") == "stopped", 15, what="cat stopped")
        err = self.assertStatus(d.json("POST", "/v1/services/cat/stdin", "x", ctype="text/plain"), 409)
        self.assertEqual(err["error"], "not running")
        self.assertStatus(d.json("POST", "/v1/services/ghost/stdin", "x", ctype="text/plain"), 404)

    def test_listing_reflects_changes_at_once(self):
        # The listing body is cached between changes; a change must never be served stale.
        d = self.daemon(service("a", ["sleep", "1000"]) + service("b", ["sleep", "1000"], autostart=False))
        pid = d.wait_running("a")

        def listed():
            return {s["name"]: s for s in self.assertStatus(d.json("GET", "/v1/services"), 200)}

        self.assertEqual(listed()["b"]["state"], "stopped")
        self.assertEqual(listed()["a"]["pid"], pid)  # warm: served from the cache
        self.assertStatus(d.json("POST", "/v1/services/a/restart"), 202)
        d.wait_for(lambda: (d.service_state("a") or {}).get("pid") not in (None, pid), 10, what="a new pid")
        inspected = self.assertStatus(d.json("GET", "/v1/services/a"), 200)
        self.assertEqual(listed()["a"]["pid"], inspected["pid"])
        self.assertStatus(d.json("POST", "/v1/services/b/start"), 202)
        d.wait_for(lambda: listed()["b"]["state"] == "running", 10, what="b running in the listing")
        self.assertStatus(d.json("POST", "/v1/services", {"name": "c", "command": ["sleep", "1000"],
                                                          "autostart": False}), 201)
        self.assertIn("c", listed())
        self.assertStatus(d.json("DELETE", "/v1/services/c"), 200)
        self.assertNotIn("c", listed())


if __name__ == "__main__":
    main()
