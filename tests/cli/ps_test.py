#!/usr/bin/env python3
"""`dockless ps` and `inspect` against a real daemon: the table's columns and values, --json,
colour only on a terminal (and never with NO_COLOR), inspect's pretty and compact JSON, and
exit code 4 for an unknown service."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service, sh  # noqa: E402

HEADER = ["NAME", "STATE", "PID", "UPTIME", "RESTARTS", "HEALTH", "CPU", "MEM", "PORTS"]

def config(port):
    return (service("alpha", sh("echo up; exec sleep 300"), port=port)
            + service("beta", ["sleep", "300"], autostart=False)
            + service("gamma", sh("exit 3"), restart="no")
            + service("delta", ["true"], restart="no"))


def table(out):
    """The ps table as {name: {column: value}}; asserts the header."""
    lines = [l for l in out.splitlines() if l.strip()]
    header = lines[0].split()
    assert header == HEADER, "header %r" % header
    rows = {}
    for line in lines[1:]:
        cells = re.split(r"\s{3,}", line.strip())
        assert len(cells) == len(HEADER), "row %r has %d cells" % (line, len(cells))
        rows[cells[0]] = dict(zip(HEADER, cells))
    return rows


class Ps(h.TestCase):
    def setUp(self):
        self.port = h.harness.free_port()
        self.d = self.daemon(config(self.port))
        self.d.wait_state("alpha", "running")

    def test_table_columns_and_values(self):
        out = self.cli_ok(self.d, "ps")
        self.assertNotIn("\x1b[", out, "colour on a pipe")
        rows = table(out)
        self.assertEqual(sorted(rows), ["alpha", "beta", "delta", "gamma"])
        a, b = rows["alpha"], rows["beta"]
        self.assertEqual(a["STATE"], "running")
        self.assertEqual(int(a["PID"]), self.d.service("alpha")["pid"])
        self.assertTrue(h.harness.alive(int(a["PID"])))
        self.assertRegex(a["UPTIME"], r"^\d+s$|^\d+m\d+s$")
        self.assertEqual(a["RESTARTS"], "0")
        self.assertEqual(a["HEALTH"], "-")
        self.assertRegex(a["CPU"], r"^\d+\.\ds$")
        self.assertRegex(a["MEM"], r"^\d+\.\d[KMG]$|^\d+B$")
        self.assertEqual(a["PORTS"], str(self.port))
        self.assertEqual(b["STATE"], "stopped")
        for col in ("PID", "UPTIME", "CPU", "MEM", "PORTS"):
            self.assertEqual(b[col], "-", col)

    def test_json_is_the_api_array(self):
        out = self.cli_ok(self.d, "ps", "--json")
        arr = json.loads(out)
        self.assertEqual([s["name"] for s in arr], ["alpha", "beta", "delta", "gamma"])
        self.assertEqual(arr[0]["state"], "running")
        self.assertIsInstance(arr[0]["pid"], int)

    def test_colour_only_on_a_tty(self):
        argv = [h.harness.dockless_bin(), "--socket", self.d.socket_path, "ps"]
        rc, out = h.run_in_pty(argv, h.cli_env())
        self.assertEqual(rc, 0, out)
        self.assertIn("\x1b[32mrunning\x1b[0m", out)   # green
        self.assertIn("\x1b[90mstopped\x1b[0m", out)   # grey
        # Columns still line up: without the escapes it is the plain table.
        rows = table(h.ANSI.sub("", out))
        self.assertEqual(rows["alpha"]["STATE"], "running")
        rc, out = h.run_in_pty(argv, h.cli_env({"NO_COLOR": "1"}))
        self.assertEqual(rc, 0, out)
        self.assertNotIn("\x1b[", out)
        self.assertIn("running", out)

    def test_failed_red_and_clean_exit_grey(self):
        # restart = "no": a non-zero exit parks the service in failed, a clean one in exited.
        self.d.wait_state("gamma", "failed")
        self.d.wait_state("delta", "exited")
        rows = table(self.cli_ok(self.d, "ps"))
        self.assertEqual(rows["gamma"]["STATE"], "failed")
        self.assertEqual(rows["gamma"]["PID"], "-")
        self.assertEqual(rows["delta"]["STATE"], "exited(0)")
        rc, out = h.run_in_pty([h.harness.dockless_bin(), "--socket", self.d.socket_path, "ps"],
                               h.cli_env())
        self.assertIn("\x1b[31mfailed\x1b[0m", out)
        self.assertIn("\x1b[90mexited(0)\x1b[0m", out)

    def test_inspect_pretty_and_compact(self):
        out = self.cli_ok(self.d, "inspect", "alpha")
        self.assertGreater(len(out.splitlines()), 5, "not indented: %r" % out[:200])
        obj = json.loads(out)
        self.assertEqual(obj["name"], "alpha")
        self.assertEqual(obj["state"], "running")
        self.assertIn("spec", obj)
        self.assertEqual(obj["spec"]["command"], sh("echo up; exec sleep 300"))
        out = self.cli_ok(self.d, "inspect", "--json", "alpha")
        self.assertEqual(len(out.strip().splitlines()), 1)
        self.assertEqual(json.loads(out)["name"], "alpha")

    def test_inspect_unknown_is_4(self):
        rc, out, err = self.cli(self.d, "inspect", "nosuch")
        self.assertEqual(rc, 4, err)
        self.assertIn("nosuch", err)
        self.assertIn("no such service", err)
        self.assertEqual(out, "")


if __name__ == "__main__":
    h.main()
