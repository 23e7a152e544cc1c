#!/usr/bin/env python3
"""SIGHUP reload: only the diff is applied (unchanged untouched, changed restarted,
removed stopped, added started); an invalid file changes nothing and the daemon keeps
running; fixing it and sending SIGHUP again applies it."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import alive, proc_info, service, sh  # noqa: E402

V1 = (service("a", ["sleep", "1040"])
      + service("b", ["sleep", "1041"])
      + service("c", ["sleep", "1042"]))
V2 = (service("a", ["sleep", "1040"])
      + service("b", ["sleep", "1043"])
      + service("d", ["sleep", "1044"]))
INVALID = V2 + 'bogus_key = 1\n'


class ReloadTest(harness.TestCase):
    def running_pids(self, d, names):
        return {n: d.wait_running(n) for n in names}

    def wait_restarted(self, d, name, old_pid):
        def new_pid():
            s = d.service_state(name) or {}
            pid = s.get("pid")
            return pid if s.get("state") == "running" and pid and pid != old_pid and alive(pid) else None
        return d.wait_for(new_pid, 5, what="%s running with a new pid" % name)

    def reload(self, d, text, kind="reload_succeeded"):
        before = d.events()[-1]["seq"]
        d.write_config(text)
        d.sighup()
        return d.wait_event(kind, where=lambda e: e["seq"] > before, timeout=10)[0], before

    def test_reload_applies_only_the_diff(self):
        d = self.daemon(V1)
        pids = self.running_pids(d, "abc")
        ev, before = self.reload(d, V2)
        self.assertEqual((ev["added"], ev["removed"], ev["changed"]), (["d"], ["c"], ["b"]))
        self.wait_restarted(d, "b", pids["b"])
        new = self.running_pids(d, "abd")
        self.assertEqual(new["a"], pids["a"], "unchanged a was restarted")
        self.assertNotEqual(new["b"], pids["b"])
        self.assertEqual(proc_info(new["b"]).cmdline, ["sleep", "1043"])
        for gone in (pids["b"], pids["c"]):
            d.wait_for(lambda: not alive(gone), 3, what="pid %d gone" % gone)
        self.assertEqual(proc_info(new["d"]).cmdline, ["sleep", "1044"])
        d.wait_for(lambda: "c" not in d.state()["services"], 2, what="c gone from state.json")
        after = [e for e in d.events() if e["seq"] > before]
        self.assertEqual([e for e in after if e.get("service") == "a"], [], "a was touched")
        self.assertEqual([e["kind"] for e in after if e.get("service") == "c"],
                         ["stopping", "exited", "stopped"])
        # The survivors are exactly the new set.
        self.assertEqual(sorted(" ".join(p.cmdline) for p in d.survivors()),
                         ["sleep 1040", "sleep 1043", "sleep 1044"])
        d.stop()

    def test_invalid_reload_changes_nothing(self):
        d = self.daemon(V1)
        pids = self.running_pids(d, "abc")
        ev, before = self.reload(d, INVALID, kind="reload_failed")
        self.assertEqual(ev["errors"], ['config.toml:7:1: unknown key "bogus_key" in [services.d]'])
        time.sleep(0.5)
        self.assertTrue(d.running(), "an invalid reload stopped the daemon")
        after = [e for e in d.events() if e["seq"] > before]
        self.assertEqual([e["kind"] for e in after], ["reload_failed"])
        self.assertEqual(self.running_pids(d, "abc"), pids)
        self.assertTrue(all(alive(p) for p in pids.values()))
        self.assertNotIn("d", d.state()["services"])
        self.assertIn("reload failed", d.stderr_text())

        # Fixed: the next SIGHUP applies the diff against what actually runs (V1).
        ev, before = self.reload(d, V2)
        self.assertEqual((ev["added"], ev["removed"], ev["changed"]), (["d"], ["c"], ["b"]))
        d.wait_running("d")
        self.wait_restarted(d, "b", pids["b"])
        self.assertEqual(d.wait_running("a"), pids["a"])
        d.stop()

    def test_reload_with_no_change_touches_nothing(self):
        d = self.daemon(V1)
        pids = self.running_pids(d, "abc")
        ev, before = self.reload(d, V1)
        self.assertEqual((ev["added"], ev["removed"], ev["changed"]), ([], [], []))
        time.sleep(0.3)
        self.assertEqual([e["kind"] for e in d.events() if e["seq"] > before], ["reload_succeeded"])
        self.assertEqual(self.running_pids(d, "abc"), pids)
        d.stop()

    def test_reload_cannot_remove_a_dependency(self):
        d = self.daemon(service("app", ["sleep", "1045"], depends_on=["db"])
                        + service("db", ["sleep", "1046"]))
        pids = self.running_pids(d, ["app", "db"])
        ev, _ = self.reload(d, service("app", ["sleep", "1045"], depends_on=["db"]), kind="reload_failed")
        self.assertEqual(ev["errors"], ['config.toml:3:15: services.app.depends_on: unknown service "db"'])
        time.sleep(0.3)
        self.assertEqual(self.running_pids(d, ["app", "db"]), pids)
        d.stop()

    def test_reload_fixes_failed_and_backoff_services(self):
        d = self.daemon(service("broken", sh("exit 1"), restart_delay="50ms", restart_limit=1)
                        + service("slow", sh("exit 1"), restart_delay="30s"))
        d.wait_event("failed", "broken", timeout=5)
        d.wait_event("backoff", "slow")
        ev, before = self.reload(d, service("broken", ["sleep", "1047"], restart_delay="50ms", restart_limit=1)
                                 + service("slow", ["sleep", "1048"], restart_delay="30s"))
        self.assertEqual(sorted(ev["changed"]), ["broken", "slow"])
        for name, cmd in (("broken", ["sleep", "1047"]), ("slow", ["sleep", "1048"])):
            pid = d.wait_running(name, timeout=3)
            self.assertEqual(proc_info(pid).cmdline, cmd)
        d.stop()

    def test_sighup_burst(self):
        d = self.daemon(V1)
        pids = self.running_pids(d, "abc")
        for _ in range(5):
            d.sighup()
        d.wait_event("reload_succeeded")
        time.sleep(0.5)
        self.assertTrue(d.running())
        self.assertEqual(self.running_pids(d, "abc"), pids)
        evs = d.events_of(None, "reload_succeeded")
        self.assertTrue(1 <= len(evs) <= 5)
        self.assertTrue(all(e["added"] == e["removed"] == e["changed"] == [] for e in evs))
        d.stop()


if __name__ == "__main__":
    harness.main()
