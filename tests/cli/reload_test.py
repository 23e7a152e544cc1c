#!/usr/bin/env python3
"""`dockless reload`: prints what was added/removed/changed (or --json), and on an invalid
config prints the config.toml:LINE:COL errors, exits 1 and leaves the running config alone."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service  # noqa: E402


class Reload(h.TestCase):
    def test_reload_ok(self):
        d = self.daemon(service("a", ["sleep", "300"]) + service("b", ["sleep", "300"]))
        d.wait_state("a", "running")
        out = self.cli_ok(d, "reload")
        self.assertEqual(out, "reloaded: no changes\n")
        d.write_config(service("a", ["sleep", "301"]) + service("c", ["sleep", "300"]))
        out = self.cli_ok(d, "reload")
        # The summary line, then the plan it applied (tests/cli/reload_plan_test.py).
        self.assertTrue(out.startswith("reloaded: added: c; removed: b; changed: a\nservices:\n"), out)
        d.wait_state("c", "running")
        self.assertIsNone(d.service("b"))
        d.write_config(service("a", ["sleep", "301"]))
        obj = json.loads(self.cli_ok(d, "reload", "--json"))
        self.assertEqual(obj.pop("plan")["services"]["removed"], ["c"])
        obj.pop("generation")
        self.assertEqual(obj, {"ok": True, "dry_run": False, "added": [], "removed": ["c"], "changed": [],
                               "updated_in_place": []})

    def test_reload_with_errors(self):
        d = self.daemon(service("a", ["sleep", "300"]))
        pid = d.wait_state("a", "running")["pid"]
        d.write_config(service("a", ["sleep", "300"]) + '[services.z]\ncommand = ["x"]\nrestart = 7\n')
        rc, out, err = self.cli(d, "reload")
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, "")
        self.assertRegex(err, r"(?m)^config\.toml:5:\d+: ")
        self.assertIn("running config stays", err)
        s = d.service("a")
        self.assertEqual((s["state"], s["pid"]), ("running", pid))
        self.assertIsNone(d.service("z"))
        rc, out, err = self.cli(d, "reload", "--json")
        self.assertEqual(rc, 1, err)
        obj = json.loads(out)
        self.assertEqual(obj["error"], "config invalid")
        self.assertTrue(any(l.startswith("config.toml:5:") for l in obj["detail"]), obj)


if __name__ == "__main__":
    h.main()
