#!/usr/bin/env python3
"""`dockless top --once` (and top without a terminal) against a real daemon sampling every
second: the node line, a row per service with its state, CPU, memory, restarts and a
sparkline of the last hour once points exist."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service, sh  # noqa: E402

HEADER = ["NAME", "STATE", "CPU", "MEM", "RESTARTS", "CPU, LAST HOUR"]
SPARK = re.compile("[▁▂▃▄▅▆▇█]")


def rows(out):
    lines = out.splitlines()
    assert lines[0].startswith("load "), lines
    head = next(i for i, l in enumerate(lines) if l.startswith("NAME"))
    assert re.split(r"\s{3,}", lines[head].strip()) == HEADER, lines[head]
    return {l.split()[0]: l for l in lines[head + 1:] if l.strip()}


class Top(h.TestCase):
    def test_once_shows_every_service_with_its_last_hour(self):
        d = self.daemon(service("busy", sh("while :; do :; done")) + service("idle", ["sleep", "300"], autostart=False),
                        env={"DOCKLESS_HISTORY_INTERVAL": "1"})
        d.wait_state("busy", "running")

        def sampled():
            out = self.cli_ok(d, "top", "--once")
            r = rows(out)
            return out if len(SPARK.findall(r.get("busy", ""))) >= 2 else None

        out = d.wait_for(sampled, 20, what="two sparkline points for busy")
        self.assertRegex(out.splitlines()[0], r"^load \d+\.\d\d \d+\.\d\d \d+\.\d\d \(\d+ CPUs\)   mem \S+/\S+   disk \S+/\S+$")
        r = rows(out)
        self.assertEqual(set(r), {"busy", "idle"})
        busy = re.split(r"\s{3,}", r["busy"].strip())
        self.assertEqual(busy[1], "running")
        self.assertRegex(busy[2], r"^\d+(\.\d)?%$")
        self.assertRegex(busy[3], r"^\d+(\.\d)?[BKMG]$")
        self.assertEqual(busy[4], "0")
        self.assertNotIn("\x1b[", out, "no escape codes without a terminal")
        idle = re.split(r"\s{3,}", r["idle"].strip())
        self.assertEqual(idle[1:5], ["stopped", "-", "-", "0"])
        self.assertIsNone(SPARK.search(r["idle"]))
        # Without a terminal, plain `top` is the same one snapshot, then exit 0.
        self.assertIn("busy", self.cli_ok(d, "top", timeout=20))

    def test_unreachable_daemon(self):
        rc, _, err = self.cli(None, "--socket", "/nonexistent/d.sock", "top", "--once")
        self.assertEqual(rc, 3, err)


if __name__ == "__main__":
    h.main()
