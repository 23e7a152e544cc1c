#!/usr/bin/env python3
"""start/stop/restart/signal/rm through the CLI: states change as asked, several names are
each tried, and the exit codes mean something (4 unknown service, 1 refused, 2 usage)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service, sh  # noqa: E402

# Prints "got HUP" on SIGHUP; the trap runs between sleeps.
TRAPPER = sh("trap 'echo got HUP' HUP; echo ready; while true; do sleep 0.05; done")

CONFIG = (service("one", ["sleep", "300"])
          + service("two", ["sleep", "300"])
          + service("trapper", TRAPPER))


class Control(h.TestCase):
    def setUp(self):
        self.d = self.daemon(CONFIG)
        for n in ("one", "two", "trapper"):
            self.d.wait_state(n, "running")

    def test_stop_start_restart(self):
        out = self.cli_ok(self.d, "stop", "one", "two")
        self.assertEqual(out, "one: stop requested\ntwo: stop requested\n")
        self.d.wait_state("one", "stopped")
        self.d.wait_state("two", "stopped")
        out = self.cli_ok(self.d, "start", "one")
        self.assertEqual(out, "one: start requested\n")
        pid = self.d.wait_state("one", "running")["pid"]
        self.assertEqual(self.d.service("two")["state"], "stopped")
        self.cli_ok(self.d, "restart", "one")
        s = self.d.wait_for(lambda: (lambda s: s if s and s["state"] == "running" and s["pid"] != pid
                                     else None)(self.d.service("one")),
                            10, what="one running with a new pid")
        self.assertFalse(h.harness.alive(pid))
        self.assertTrue(h.harness.alive(s["pid"]))

    def test_unknown_name_is_4(self):
        for cmd in ("start", "stop", "restart"):
            rc, out, err = self.cli(self.d, cmd, "nosuch")
            self.assertEqual(rc, 4, "%s: %s" % (cmd, err))
            self.assertIn("nosuch", err)
            self.assertIn("no such service", err)

    def test_several_names_one_unknown(self):
        rc, out, err = self.cli(self.d, "stop", "one", "nosuch", "two")
        self.assertEqual(rc, 4, err)
        self.assertIn("failed for nosuch", err)
        # The others were still stopped.
        self.d.wait_state("one", "stopped")
        self.d.wait_state("two", "stopped")
        self.assertEqual(out, "one: stop requested\ntwo: stop requested\n")

    def test_usage_errors_are_2(self):
        for args in (["start"], ["stop", "--bogus", "one"], ["signal", "one"], ["frobnicate"],
                     ["logs", "-n", "x", "one"], ["logs", "--stream", "both", "one"]):
            rc, out, err = self.cli(self.d, *args)
            self.assertEqual(rc, 2, "%r: %s" % (args, err))
            self.assertTrue(err.strip(), args)
        # Nothing was stopped by a usage error.
        self.assertEqual(self.d.service("one")["state"], "running")

    def test_signal(self):
        self.d.wait_for(lambda: b"ready" in self.d.read_log("trapper"), 5, what="trapper ready")
        out = self.cli_ok(self.d, "signal", "trapper", "HUP")
        self.assertIn("trapper: sent HUP", out)
        self.d.wait_for(lambda: b"got HUP" in self.d.read_log("trapper"), 5, what="got HUP in log")
        # By number and with the SIG prefix too. One at a time: signals pending together
        # while the shell waits for its sleep coalesce into one trap run.
        for count, sig in ((2, "1"), (3, "SIGHUP")):
            self.cli_ok(self.d, "signal", "trapper", sig)
            self.d.wait_for(lambda: self.d.read_log("trapper").count(b"got HUP") >= count, 5,
                            what="%d HUPs" % count)
        rc, out, err = self.cli(self.d, "signal", "trapper", "NOTASIGNAL")
        self.assertEqual(rc, 1, err)
        rc, out, err = self.cli(self.d, "signal", "nosuch", "HUP")
        self.assertEqual(rc, 4, err)
        self.cli_ok(self.d, "stop", "one")
        self.d.wait_state("one", "stopped")
        rc, out, err = self.cli(self.d, "signal", "one", "HUP")
        self.assertEqual(rc, 1, "signal to a stopped service: %s" % err)
        self.assertTrue(err.startswith("dockless: one: "), err)

    def test_rm(self):
        rc, out, err = self.cli(self.d, "rm", "one")
        self.assertEqual(rc, 1, "a config.toml service cannot be removed over the API: " + err)
        self.assertIn("config.toml", err)
        self.assertEqual(self.d.service("one")["state"], "running")
        rc, out, err = self.cli(self.d, "rm", "nosuch")
        self.assertEqual(rc, 4, err)


if __name__ == "__main__":
    h.main()
