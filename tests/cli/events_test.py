#!/usr/bin/env python3
"""`dockless events`: the history as lines or NDJSON (--json), --service and --since filters,
and -f printing events as they happen until SIGINT (exit 0)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service  # noqa: E402

CONFIG = service("web", ["sleep", "300"]) + service("db", ["sleep", "300"])


class Events(h.TestCase):
    def setUp(self):
        self.d = self.daemon(CONFIG)
        self.d.wait_state("web", "running")
        self.d.wait_state("db", "running")

    def json_events(self, *args):
        out = self.cli_ok(self.d, "events", "--json", *args)
        return [json.loads(l) for l in out.splitlines() if l.strip()]

    def test_history_json_and_lines(self):
        evs = self.json_events()
        kinds = [e["kind"] for e in evs]
        self.assertIn("daemon_started", kinds)
        seqs = [e["seq"] for e in evs]
        self.assertEqual(seqs, sorted(seqs))
        out = self.cli_ok(self.d, "events")
        lines = out.splitlines()
        self.assertEqual(len(lines), len(evs), out)
        # "TIME  SERVICE  KIND  details": the daemon's own events name "dockless".
        started = [l for l in lines if "  daemon_started" in l]
        self.assertEqual(len(started), 1, out)
        self.assertRegex(started[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z  dockless  daemon_started  ")
        self.assertIn("pid=%d" % self.d.pid, started[0])

    def test_service_filter_and_since(self):
        evs = self.json_events("--service", "web")
        self.assertTrue(evs)
        self.assertEqual({e["service"] for e in evs}, {"web"})
        all_evs = self.json_events()
        mid = all_evs[len(all_evs) // 2]["seq"]
        later = self.json_events("--since", str(mid))
        self.assertTrue(all(e["seq"] > mid for e in later), later)
        self.assertEqual([e["seq"] for e in later], [e["seq"] for e in all_evs if e["seq"] > mid])
        rc, out, err = self.cli(self.d, "events", "--since", "yesterday")
        self.assertEqual(rc, 2, err)

    def test_follow(self):
        last = self.json_events()[-1]["seq"]
        p = self.popen_cli(self.d, "events", "-f", "--json", "--since", str(last), "--service", "db")
        self.cli_ok(self.d, "restart", "db")
        buf = self.read_until(p, b'"restart_requested"', timeout=10)
        self.cli_ok(self.d, "stop", "web")  # another service's events are filtered out
        self.cli_ok(self.d, "stop", "db")
        buf = self.read_until(p, b'"stop_requested"', timeout=10, already=buf)
        evs = [json.loads(l) for l in buf.decode().splitlines() if l.strip()]
        self.assertTrue(evs)
        self.assertEqual({e["service"] for e in evs}, {"db"})
        self.assertTrue(all(e["seq"] > last for e in evs))
        rc, err = self.interrupt(p)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")

    def test_follow_human(self):
        p = self.popen_cli(self.d, "events", "-f")
        self.read_until(p, b"daemon_started", timeout=10)
        self.cli_ok(self.d, "restart", "web")
        self.read_until(p, b"  web  restart_requested", timeout=10)
        rc, err = self.interrupt(p)
        self.assertEqual(rc, 0, err)


if __name__ == "__main__":
    h.main()
