#!/usr/bin/env python3
"""The real `dockless serve` under valgrind (memcheck, --leak-check=full) through an
end-to-end smoke run: services starting, crashing, restarting and stopping, the API (list,
inspect, register, replace, delete, control, signal, stdin, logs, events, metrics, errors),
a log follow and an event follow across restarts, a reload by API and by SIGHUP, and the
SIGTERM shutdown. Passes only when the daemon exits 0 with no memcheck error and no byte
definitely or indirectly lost.

io_uring: memcheck does not see what the kernel writes into buffers through the ring
(recv, read, statx results...), so such bytes could read as uninitialised. No such report
appears today (the buffers the ring fills are initialised before use); if one does, it is
a finding to judge, not to hide: this test keeps --undef-value-errors on."""
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from api_harness import ApiDaemon, Follower, TestCase, main, require, service, sh  # noqa: E402

require("valgrind")

# Memcheck's own exit code on errors, so it cannot be mistaken for the daemon's.
VG_ERROR_EXIT = 97
# Everything is ~20-50x slower under valgrind: generous bounds that still catch a hang.
SLOW = 60.0


class ValgrindDaemon(ApiDaemon):
    def __init__(self, config_text, **kw):
        super().__init__(config_text, **kw)
        self.vg_log = os.path.join(self.dir, "valgrind.log")

    def argv(self):
        return ["valgrind", "--tool=memcheck", "--leak-check=full",
                "--show-leak-kinds=definite,indirect,possible",
                # A leak fails the run only when it is certain (definite) or hangs off a
                # certain one (indirect); "possible" ones are reported in the log.
                "--errors-for-leak-kinds=definite,indirect",
                "--error-exitcode=%d" % VG_ERROR_EXIT, "--num-callers=30",
                "--log-file=" + self.vg_log] + super().argv()


TICKER = sh('i=0; while true; do i=$((i+1)); echo "tick $i"; echo "err $i" >&2; sleep 0.1; done')


def config(extra=""):
    return (service("ticker", TICKER)
            + service("crasher", sh('echo "up"; sleep 0.3; exit 3'), restart="always",
                      restart_delay="100ms", restart_delay_max="200ms", restart_limit=0)
            + service("db", ["sleep", "1000"])
            + service("web", sh('echo "web on $PORT"; exec sleep 1000'), depends_on=["db"], port="auto")
            + service("checked", ["sleep", "1000"],
                      health={"exec": ["true"], "interval": "500ms", "timeout": "5s"})
            + service("cat", ["cat"], stdin=True)
            + extra)


class Valgrind(TestCase):
    def daemon(self, config_text, start=True, **kw):
        d = ValgrindDaemon(config_text, **kw)
        self.addCleanup(self._cleanup_daemon, d)
        if start:
            d.start(timeout=SLOW)
        return d

    def ok(self, d, method, path, body=None, status=200, **kw):
        got = d.json(method, path, body, timeout=SLOW, **kw)
        self.assertEqual(got[0], status, "%s %s: %r" % (method, path, got[1]))
        return got[1]

    def state_of(self, d, name):
        return self.ok(d, "GET", "/v1/services/" + name)["state"]

    def test_smoke_run_is_clean(self):
        d = self.daemon(config())
        for name in ("ticker", "db", "web", "checked", "cat"):
            d.wait_running(name, timeout=SLOW)
        d.wait_event("started", "crasher", count=3, timeout=SLOW)

        logs = Follower(d.base + "/v1/services/ticker/logs?follow=1&tail=1")
        events = Follower(d.base + "/v1/events?follow=1")
        self.addCleanup(logs.close)
        self.addCleanup(events.close)
        logs.wait_for_text("tick", SLOW)

        # Reads, including the error paths.
        listed = {s["name"] for s in self.ok(d, "GET", "/v1/services")}
        self.assertTrue({"ticker", "crasher", "db", "web", "checked", "cat"} <= listed, listed)
        self.assertIn("spec", self.ok(d, "GET", "/v1/services/web"))
        self.ok(d, "GET", "/v1/services/ghost", status=404)
        status, body = d.curl("GET", "/v1/services/ticker/logs?tail=5", timeout=SLOW)
        self.assertEqual(status, 200)
        self.assertIn(b"tick", body)
        status, body = d.curl("GET", "/v1/events?since=0", timeout=SLOW)
        self.assertEqual(status, 200)
        self.assertIn(b"daemon_started", body)
        status, body = d.curl("GET", "/metrics", timeout=SLOW)
        self.assertEqual(status, 200)
        self.assertIn(b"dockless_rss_bytes", body)
        self.ok(d, "POST", "/v1/services", "{not json", status=400)
        self.ok(d, "GET", "/v1/services", status=401, auth=False)

        # Register, control, replace and delete a service through the API.
        spec = {"name": "extra", "command": ["sh", "-c", "echo extra; exec sleep 1000"]}
        self.ok(d, "POST", "/v1/services", spec, status=201)
        self.ok(d, "POST", "/v1/services", spec, status=409)
        d.wait_running("extra", timeout=SLOW)
        self.ok(d, "POST", "/v1/services/extra/restart", status=202)
        d.wait_event("started", "extra", count=2, timeout=SLOW)
        spec["command"] = ["sleep", "999"]
        self.ok(d, "PUT", "/v1/services/extra", spec)
        self.ok(d, "POST", "/v1/services/cat/stdin", "hello stdin\n", status=202, ctype="text/plain")
        d.wait_for(lambda: b"hello stdin" in d.read_log("cat"), SLOW, what="stdin echoed")
        self.ok(d, "POST", "/v1/services/db/signal", {"signal": "CONT"}, status=202)
        self.ok(d, "POST", "/v1/services/db/signal", {"signal": "NOPE"}, status=400)

        # Restarts the follower must survive, then a stop and a start.
        self.ok(d, "POST", "/v1/services/ticker/restart", status=202)
        d.wait_event("started", "ticker", count=2, timeout=SLOW)
        n = logs.text().count("tick 1\n")
        d.wait_for(lambda: logs.text().count("tick 1\n") > n or "tick 2\n" in logs.text().split("tick 1\n")[-1],
                   SLOW, what="the follow stream across the restart", interval=0.2)
        self.ok(d, "POST", "/v1/services/web/stop", status=202)
        d.wait_for(lambda: self.state_of(d, "web") == "stopped", SLOW, what="web stopped", interval=0.2)
        self.ok(d, "POST", "/v1/services/web/start", status=202)
        d.wait_running("web", timeout=SLOW)
        self.ok(d, "DELETE", "/v1/services/extra")
        d.wait_for(lambda: "extra" not in {s["name"] for s in self.ok(d, "GET", "/v1/services")},
                   SLOW, what="extra removed", interval=0.2)

        # Reload by API (one added), then by SIGHUP (one removed, one changed).
        d.write_config(config(service("late", ["sleep", "1000"])))
        out = self.ok(d, "POST", "/v1/reload")
        self.assertTrue(out["ok"], out)
        d.wait_running("late", timeout=SLOW)
        d.write_config(config().replace('"sleep", "1000"]\n', '"sleep", "1001"]\n', 1))
        d.sighup()
        d.wait_for(lambda: "late" not in {s["name"] for s in self.ok(d, "GET", "/v1/services")},
                   SLOW, what="late removed by SIGHUP", interval=0.2)
        d.wait_running("db", timeout=SLOW)
        events.wait_for_text('"kind":"reload_succeeded"', SLOW)

        # SIGTERM: every service stopped, the daemon exits 0 and valgrind finds nothing.
        d.signal(signal.SIGTERM)
        try:
            rc = d.proc.wait(SLOW * 2)
        except Exception:
            self.fail("no exit within %.0f s of SIGTERM\n%s" % (SLOW * 2, d.describe()))
        with open(d.vg_log) as f:
            report = f.read()
        self.assertEqual(rc, 0, "exit %d (%d = memcheck errors)\n%s" % (rc, VG_ERROR_EXIT, report[-6000:]))
        self.assertRegex(report, r"ERROR SUMMARY: 0 errors", report[-6000:])
        lost = {kind: int(n.replace(",", "")) for kind, n in
                re.findall(r"(definitely|indirectly) lost: ([\d,]+) bytes", report)}
        self.assertEqual(lost.get("definitely", 0), 0, report[-6000:])
        self.assertEqual(lost.get("indirectly", 0), 0, report[-6000:])
        # The leak check ran (it did not die before the summary).
        self.assertTrue("All heap blocks were freed" in report or "LEAK SUMMARY" in report, report[-3000:])
        self.assertEqual(d.survivors(), [])
        heap = re.search(r"total heap usage: ([\d,]+) allocs", report)
        print("valgrind: %s allocations, exit %d, %s" % (heap.group(1) if heap else "?", rc,
              json.dumps(lost)))


if __name__ == "__main__":
    main()
