#!/usr/bin/env python3
"""`dockless logs`: -n N gives the last N lines, --stream picks one stream, -f prints what the
service writes after the follower started and exits 0 quietly on SIGINT and on a closed pipe."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service, sh  # noqa: E402

# 50 numbered lines on stdout, one on stderr; then "poke-N" for each poke file the test
# drops into the temp dir (the daemon runs with cwd = that dir, and so do its services).
SPEAKER = sh("i=1; while [ $i -le 50 ]; do echo line-$i; i=$((i+1)); done; echo oops >&2; "
             "while true; do for f in poke-*; do [ -e $f ] && echo $f && rm -f $f; done; "
             "sleep 0.05; done")
TICKER = sh("i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.05; done")

CONFIG = service("speaker", SPEAKER) + service("ticker", TICKER)


class Logs(h.TestCase):
    def setUp(self):
        self.d = self.daemon(CONFIG)
        self.d.wait_for(lambda: b"line-50" in self.d.read_log("speaker")
                        and b"oops" in self.d.read_log("speaker", "stderr"), 10,
                        what="speaker's output in its log")

    def poke(self, n):
        with open(os.path.join(self.d.dir, "poke-%d" % n), "w"):
            pass

    def test_tail(self):
        out = self.cli_ok(self.d, "logs", "-n", "3", "--stream", "stdout", "speaker")
        self.assertEqual(out, "line-48\nline-49\nline-50\n")
        out = self.cli_ok(self.d, "logs", "--tail=2", "--stream=stdout", "speaker")
        self.assertEqual(out, "line-49\nline-50\n")
        out = self.cli_ok(self.d, "logs", "--stream", "stderr", "speaker")
        self.assertEqual(out, "oops\n")
        # Both streams by default, interleaved by time: stderr's line comes after line-50.
        out = self.cli_ok(self.d, "logs", "-n", "all", "speaker")
        lines = out.splitlines()
        self.assertEqual(lines[:50], ["line-%d" % i for i in range(1, 51)])
        self.assertEqual(lines[50], "oops")
        out = self.cli_ok(self.d, "logs", "-n", "0", "speaker")
        self.assertEqual(out, "")

    def test_since(self):
        out = self.cli_ok(self.d, "logs", "--since", "10m", "--stream", "stdout", "speaker")
        self.assertIn("line-1\n", out)
        self.assertIn("line-50\n", out)

    def test_unknown_service_is_4(self):
        rc, out, err = self.cli(self.d, "logs", "nosuch")
        self.assertEqual(rc, 4, err)
        self.assertIn("no such service", err)
        rc, out, err = self.cli(self.d, "logs", "-f", "nosuch")
        self.assertEqual(rc, 4, err)

    def test_follow_prints_new_output_then_sigint_exits_0(self):
        p = self.popen_cli(self.d, "logs", "-f", "-n", "0", "--stream", "stdout", "speaker")
        # The follower is connected once the daemon holds a connection for it; a poke
        # written before that would be "the past". Poke repeatedly until one shows up.
        buf = b""
        for n in range(1, 40):
            self.poke(n)
            try:
                buf = self.read_until(p, b"poke-", timeout=0.5, already=buf)
                break
            except AssertionError:
                if p.poll() is not None:
                    raise
        self.assertIn(b"poke-", buf)
        self.assertNotIn(b"line-", buf, "-n 0 printed the past")
        self.poke(100)
        self.read_until(p, b"poke-100\n", timeout=5, already=buf)
        rc, err = self.interrupt(p)
        self.assertEqual(rc, 0, err)
        self.assertEqual(err, "")

    def test_follow_over_tcp(self):
        p = self.popen_cli(self.d, "logs", "-f", "ticker", via="tcp")
        buf = self.read_until(p, b"tick-", timeout=5)
        first = int(buf.split(b"tick-")[-1].split(b"\n")[0] or b"0")
        self.read_until(p, b"tick-%d\n" % (first + 5), timeout=5, already=buf)
        rc, err = self.interrupt(p)
        self.assertEqual(rc, 0, err)

    def test_follow_into_closed_pipe_exits_0_quietly(self):
        # `dockless logs -f ticker | head -n 2`: head leaves, the next write gets EPIPE.
        argv = [h.harness.dockless_bin(), "--socket", self.d.socket_path, "logs", "-f", "ticker"]
        r, w = os.pipe()
        p = subprocess.Popen(argv, env=h.cli_env(), stdin=subprocess.DEVNULL, stdout=w,
                             stderr=subprocess.PIPE)
        self.addCleanup(self._reap, p)
        os.close(w)
        with os.fdopen(r, "rb") as reader:
            got = reader.read(20)
        self.assertIn(b"tick-", got)
        try:
            rc = p.wait(10)
        except subprocess.TimeoutExpired:
            self.fail("logs -f did not exit after its pipe closed")
        self.assertEqual(rc, 0)
        self.assertEqual(p.stderr.read(), b"")

    def test_sigint_while_waiting_for_quiet_service(self):
        # No output at all for a while: the follower is blocked in its wait, and SIGINT
        # must still end it promptly (and with 0).
        p = self.popen_cli(self.d, "logs", "-f", "-n", "0", "--stream", "stderr", "speaker")
        time.sleep(0.5)
        t0 = time.monotonic()
        rc, err = self.interrupt(p, timeout=5)
        self.assertEqual(rc, 0, err)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual(err, "")


if __name__ == "__main__":
    h.main()
