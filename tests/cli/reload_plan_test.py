#!/usr/bin/env python3
"""Reload as a plan (issue #16): `dockless reload --dry-run`, POST /v1/reload?dry_run=1 and
`dockless check-config --plan` show what a reload would do and change nothing (same pids, no
event, the same plan again); the real reload then answers exactly that plan. One case per
kind of change: add, remove, restart (key diffs, secrets masked), limits in place, triggers
added/removed/changed, an [http] setting that needs a daemon restart."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service  # noqa: E402


def trigger(tid, secret, restart):
    return ('[[triggers]]\nid = "%s"\nkind = "webhook"\nprovider = "hmac"\nsecret = "%s"\n'
            'action = { restart = "%s" }\n' % (tid, secret, restart))


A = service("a", ["sleep", "300"], env={"TOKEN": "abc"})
B = service("b", ["sleep", "301"])


class ReloadPlan(h.TestCase):
    def snapshot(self, d, names):
        return {n: (d.service(n) or {}).get("pid") for n in names}, len(d.events())

    def settled(self, d, names):
        """The snapshot once the start-up events have stopped coming."""
        last = [None]

        def still():
            now = self.snapshot(d, names)
            same, last[0] = now == last[0], now
            return now if same else None
        return d.wait_for(lambda: time.sleep(0.3) or still(), 10, what="no new events")

    def dry_run(self, d, answer=False):
        status, plan = d.api_json("POST", "/v1/reload?dry_run=1")
        self.assertEqual(status, 200, plan)
        self.assertEqual((plan["ok"], plan["dry_run"]), (True, True))
        return plan if answer else plan["plan"]

    def check(self, before, after, names, head=""):
        """Runs before → after: a dry run (twice, nothing changes), then the real reload, whose
        plan must equal the dry run's. Returns the plan."""
        d = self.daemon(head + before)
        for n in names:
            d.wait_state(n, "running")
        pids, events = self.settled(d, names)
        d.write_config(head + after)
        first = self.dry_run(d, answer=True)
        plan = first["plan"]
        second = self.dry_run(d, answer=True)
        self.assertEqual(second["plan"], plan)
        self.assertEqual(second["generation"], first["generation"], "the dry run changed the supervisor's state")
        self.assertEqual(self.snapshot(d, names), (pids, events), "the dry run changed something")
        real = json.loads(self.cli_ok(d, "reload", "--json"))
        self.assertEqual((real["ok"], real["dry_run"]), (True, False))
        self.assertGreater(real["generation"], first["generation"])
        self.assertEqual(real["plan"], plan)
        ev = d.wait_event("reload_succeeded")[0]
        self.assertEqual(ev["plan"], plan)
        # Applied: planning again finds nothing left to do for the services and triggers.
        again = self.dry_run(d)
        self.assertEqual((again["services"], again["triggers"]),
                         ({"added": [], "removed": [], "restarted": [], "in_place": []},
                          {"added": [], "removed": [], "changed": []}))
        return d, plan

    def test_added_and_removed(self):
        d, plan = self.check(A + B, A + service("c", ["sleep", "302"]), "ab")
        self.assertEqual(plan["services"]["added"], ["c"])
        self.assertEqual(plan["services"]["removed"], ["b"])
        self.assertEqual(plan["services"]["restarted"], [])
        d.wait_state("c", "running")

    def test_restart_lists_keys_and_masks_secrets(self):
        after = service("a", ["sleep", "305"], env={"TOKEN": "xyz"}, stop_timeout="3s") + B
        d, plan = self.check(A + B, after, "ab")
        restarted = plan["services"]["restarted"]
        self.assertEqual([r["name"] for r in restarted], ["a"])
        self.assertEqual(restarted[0]["changes"], [
            {"key": "command", "from": ["sleep", "300"], "to": ["sleep", "305"]},
            {"key": "env.TOKEN", "from": "***", "to": "***", "masked": True},
            {"key": "stop_timeout", "from": "10s", "to": "3s"},
        ])
        self.assertNotIn("xyz", json.dumps(plan))
        self.assertNotIn("abc", json.dumps(plan))

    def test_limits_in_place(self):
        d, plan = self.check(B, service("b", ["sleep", "301"], pids_max=64), "b")
        self.assertEqual(plan["services"]["restarted"], [])
        self.assertEqual(plan["services"]["in_place"],
                         [{"name": "b", "changes": [{"key": "limits.pids_max", "from": None, "to": 64}]}])

    def test_triggers(self):
        d, plan = self.check(A + B + trigger("t1", "s3cret", "a") + trigger("t2", "x", "a"),
                             A + B + trigger("t1", "other", "b") + trigger("t3", "y", "a"), "ab")
        self.assertEqual(plan["triggers"]["added"], ["t3"])
        self.assertEqual(plan["triggers"]["removed"], ["t2"])
        self.assertEqual(plan["triggers"]["changed"], [{"id": "t1", "changes": [
            {"key": "action.restart", "from": "a", "to": "b"},
            {"key": "secret", "from": "***", "to": "***", "masked": True}]}])
        self.assertNotIn("s3cret", json.dumps(plan))

    def test_listener_setting_needs_a_daemon_restart(self):
        d, plan = self.check("[http]\nmax_body_bytes = 100000\n" + B, "[http]\nmax_body_bytes = 200000\n" + B, "b")
        self.assertEqual(plan["daemon_restart"],
                         [{"key": "http.max_body_bytes", "from": 100000, "to": 200000}])
        self.assertFalse(plan["empty"])

    def test_cli_output_and_check_config(self):
        d = self.daemon(A + B)
        d.wait_state("a", "running")
        d.write_config(service("a", ["sleep", "305"], env={"TOKEN": "xyz"}) + service("c", ["sleep", "302"]))
        out = self.cli_ok(d, "reload", "--dry-run")
        self.assertEqual(out, "dry run, nothing changed; a reload would do:\n"
                              "services:\n"
                              "  + c: add\n"
                              "  - b: remove (stop)\n"
                              "  ~ a: restart\n"
                              "    command: [\"sleep\",\"300\"] -> [\"sleep\",\"305\"]\n"
                              "    env.TOKEN: *** -> *** (secret, masked)\n")
        out = self.cli_ok(d, "check-config", "--plan", "config.toml")
        self.assertIn("config.toml: ok (2 service(s))\n", out)
        self.assertIn("  - b: remove (stop)\n", out)
        plan = json.loads(self.cli_ok(d, "check-config", "--plan", "--json", "config.toml"))
        self.assertEqual(plan["plan"]["services"]["removed"], ["b"])
        # No daemon: the plan of a first start.
        rc, out, err = self.cli(None, "--socket", os.path.join(d.dir, "none.sock"), "check-config", "--plan",
                                "config.toml", cwd=d.dir)
        self.assertEqual(rc, 0, err)
        self.assertIn("no daemon reachable; the plan of a first start:\nservices:\n  + a: add\n  + c: add\n", out)
        out = self.cli_ok(d, "reload")
        self.assertTrue(out.startswith("reloaded: added: c; removed: b; changed: a\nservices:\n"), out)

    def test_errors_and_auth_are_the_reloads(self):
        d = self.daemon(B)
        pid = d.wait_state("b", "running")["pid"]
        d.write_config(B + "bogus = 1\n")
        dry = d.api("POST", "/v1/reload?dry_run=1")
        real = d.api("POST", "/v1/reload")
        self.assertEqual(dry[0], 422)
        self.assertEqual(dry, real)
        # The log is written behind the answer: wait for the real one's, then count.
        d.wait_event("reload_failed", timeout=10)
        self.assertEqual(len(d.events_of(kind="reload_failed")), 1, "only the real reload records reload_failed")
        rc, out, err = self.cli(d, "reload", "--dry-run")
        self.assertEqual(rc, 1)
        self.assertIn("running config stays", err)
        self.assertEqual(d.service("b")["pid"], pid)
        rc, out, err = self.cli(d, "reload", "--dry-run", via="tcp", token=None)
        self.assertEqual(rc, 1, out + err)


if __name__ == "__main__":
    h.main()
