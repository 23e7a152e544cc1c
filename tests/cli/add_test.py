#!/usr/bin/env python3
"""`dockless add FILE.toml` registers a service (ps shows it, it runs), an invalid file is
refused with FILE:LINE:COL lines on stderr and exit 1, a taken name is refused, and `rm`
removes what `add` added."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service  # noqa: E402

CONFIG = service("base", ["sleep", "300"])


class Add(h.TestCase):
    def setUp(self):
        self.d = self.daemon(CONFIG)
        self.d.wait_state("base", "running")

    def write(self, name, text):
        path = os.path.join(self.tempdir(), name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_add_then_ps_then_rm(self):
        path = self.write("extra.toml", service("extra", ["sleep", "300"], restart="always"))
        out = self.cli_ok(self.d, "add", path)
        self.assertEqual(out, "added extra\n")
        s = self.d.wait_state("extra", "running")
        self.assertTrue(h.harness.alive(s["pid"]))
        names = [x["name"] for x in json.loads(self.cli_ok(self.d, "ps", "--json"))]
        self.assertEqual(names, ["base", "extra"])
        table = self.cli_ok(self.d, "ps")
        self.assertRegex(table, r"(?m)^extra\s+running\s+%d\s" % s["pid"])
        # The name is taken now.
        rc, out, err = self.cli(self.d, "add", path)
        self.assertEqual(rc, 1, err)
        self.assertIn("extra", err)
        out = self.cli_ok(self.d, "rm", "extra")
        self.assertEqual(out, "removed extra\n")
        self.d.wait_for(lambda: not h.harness.alive(s["pid"]), 10, what="extra's process gone")
        names = [x["name"] for x in json.loads(self.cli_ok(self.d, "ps", "--json"))]
        self.assertEqual(names, ["base"])
        rc, out, err = self.cli(self.d, "rm", "extra")
        self.assertEqual(rc, 4, err)

    def test_invalid_file_shows_file_line_col(self):
        text = ('[services.bad]\n'
                'command = ["sleep", "1"]\n'
                'restart = "sometimes"\n')
        path = self.write("bad.toml", text)
        rc, out, err = self.cli(self.d, "add", path)
        self.assertEqual(rc, 1, err)
        self.assertEqual(out, "")
        self.assertRegex(err, r"(?m)^%s:3:\d+: .*restart" % path.replace(".", r"\."))
        self.assertIsNone(self.d.service("bad"))
        # TOML syntax errors too.
        path = self.write("broken.toml", '[services.x]\ncommand = ["a",\n')
        rc, out, err = self.cli(self.d, "add", path)
        self.assertEqual(rc, 1, err)
        self.assertRegex(err, r"(?m)^%s:\d+:\d+: " % path.replace(".", r"\."))

    def test_missing_file_is_usage_error(self):
        rc, out, err = self.cli(self.d, "add", "/nonexistent/x.toml")
        self.assertEqual(rc, 2, err)
        self.assertIn("/nonexistent/x.toml", err)


if __name__ == "__main__":
    h.main()
