#!/usr/bin/env python3
"""Dependency-aware start and stop, through the CLI and the API: a start brings up what the
service depends on first (in dependency order, each waiting for its condition), a stop takes
down what depends on it first; --no-deps / ?deps=false does only the named service — a start
then does not wait for a dependency nobody starts. A start during an ordered stop calls the
rest of that stop off."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service, sh  # noqa: E402

# api -> web -> (db, cache); nothing starts by itself. cache ignores SIGTERM (its stop
# takes stop_timeout) and `other` depends on nothing here.
CONFIG = (service("db", ["sleep", "1101"], autostart=False)
          + service("cache", sh("trap '' TERM; while :; do sleep 0.1; done"), autostart=False,
                    stop_timeout="3s")
          + service("web", ["sleep", "1102"], depends_on=["db", "cache"], autostart=False)
          + service("api", ["sleep", "1103"], depends_on=["web"], autostart=False)
          + service("other", ["sleep", "1104"]))


def seq_of(evs, name, kind):
    m = [e["seq"] for e in evs if e.get("service") == name and e["kind"] == kind]
    return m[0] if m else None


class DepsControl(h.TestCase):
    def setUp(self):
        self.d = self.daemon(CONFIG)
        self.d.wait_state("other", "running")

    def up(self, *names):
        return {n: self.d.wait_state(n, "running")["pid"] for n in names}

    def test_start_brings_up_what_it_depends_on_first(self):
        mark = self.d.events()[-1]["seq"]
        out = self.cli_ok(self.d, "start", "api")
        self.assertEqual(out, "api: start requested (with cache, db, web)\n")
        self.up("db", "cache", "web", "api")
        # The file is written behind the API's answers, in seq order: once api's start is in
        # it, everything before it is.
        self.d.wait_event("started", "api", where=lambda e: e["seq"] > mark, timeout=10)
        evs = [e for e in self.d.events() if e["seq"] > mark]
        for dep in ("db", "cache"):
            self.assertLess(seq_of(evs, dep, "started"), seq_of(evs, "web", "started"), dep)
        self.assertLess(seq_of(evs, "web", "started"), seq_of(evs, "api", "started"))
        self.assertEqual([e.get("for") for e in evs if e["kind"] == "start_requested"],
                         ["api", "api", "api", None])
        # Already up: a second start brings nothing else along.
        status, body = self.d.api_json("POST", "/v1/services/api/start")
        self.assertEqual((status, body["dependencies_started"]), (202, []))

    def test_stop_takes_down_what_depends_on_it_first(self):
        self.cli_ok(self.d, "start", "api")
        pids = self.up("db", "cache", "web", "api")
        mark = self.d.events()[-1]["seq"]
        status, body = self.d.api_json("POST", "/v1/services/db/stop")
        self.assertEqual((status, body["dependents_stopped"]), (202, ["api", "web"]))
        for n in ("api", "web", "db"):
            self.d.wait_state(n, "stopped")
        self.d.wait_event("stopped", "db", where=lambda e: e["seq"] > mark, timeout=10)
        evs = [e for e in self.d.events() if e["seq"] > mark]
        self.assertLess(seq_of(evs, "api", "stopped"), seq_of(evs, "web", "stopping"), "web stopped before api")
        self.assertLess(seq_of(evs, "web", "stopped"), seq_of(evs, "db", "stopping"), "db stopped before web")
        # What db's stop does not concern keeps running.
        self.assertEqual(self.d.service("cache")["pid"], pids["cache"])
        self.assertEqual(self.d.service("other")["state"], "running")

    def test_no_deps_does_only_the_named_service(self):
        out = self.cli_ok(self.d, "start", "--no-deps", "web")
        self.assertEqual(out, "web: start requested\n")
        web = self.up("web")["web"]  # at once: db and cache are not waited for
        self.assertEqual(self.d.service("db")["state"], "stopped")
        self.d.wait_event("started", "web", timeout=10)  # a waiting event would be before it
        self.assertEqual(self.d.events_of("web", "waiting"), [])
        self.cli_ok(self.d, "start", "--no-deps", "db")
        db = self.up("db")["db"]
        out = self.cli_ok(self.d, "stop", "--no-deps", "db")
        self.assertEqual(out, "db: stop requested\n")
        self.d.wait_state("db", "stopped")
        self.assertEqual(self.d.service("web")["pid"], web, "web kept running")
        self.assertFalse(h.harness.alive(db))
        status, body = self.d.api_json("POST", "/v1/services/web/stop?deps=maybe")
        self.assertEqual(status, 400, body)
        self.assertIn("deps", body["detail"]["message"])

    def test_a_start_during_an_ordered_stop_calls_the_rest_off(self):
        self.cli_ok(self.d, "start", "web")
        pids = self.up("db", "cache", "web")
        # Stopping cache stops web first; then cache itself takes its 3 s stop_timeout
        # (it ignores SIGTERM). Starting web meanwhile calls off what is left: cache's stop
        # has begun and finishes, web starts again once cache is back.
        self.cli_ok(self.d, "stop", "cache")
        self.d.wait_state("web", "stopped")
        self.d.wait_state("cache", "stopping", timeout=5)
        out = self.cli_ok(self.d, "start", "web")
        self.assertEqual(out, "web: start requested\n")  # cache is still up (stopping): not brought along
        self.d.wait_state("cache", "stopped", timeout=10)
        self.assertEqual(self.d.service("db")["pid"], pids["db"], "db untouched")
        # web waits for cache, which nobody asked to start again: the wait is visible.
        self.d.wait_event("waiting", "web", where=lambda e: "cache" in e["for"], timeout=10)
        out = self.cli_ok(self.d, "start", "web")
        self.assertEqual(out, "web: start requested (with cache)\n")
        self.up("cache", "web")


if __name__ == "__main__":
    h.main()
