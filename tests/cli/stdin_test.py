#!/usr/bin/env python3
"""`dockless stdin`: a line, a file (larger than one request), standard input, in order and
byte for byte into a service with stdin = true (cat, whose output is its log); a clear refusal
for a service without it; and `dockless status`, the same as ps."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service  # noqa: E402

CONFIG = service("echo", ["cat"], stdin=True) + service("plain", ["sleep", "1105"])


class Stdin(h.TestCase):
    def setUp(self):
        self.d = self.daemon(CONFIG)
        self.d.wait_state("echo", "running")
        self.d.wait_state("plain", "running")

    def log_has(self, data, timeout=10):
        self.d.wait_for(lambda: self.d.read_log("echo").endswith(data), timeout,
                        what="%d bytes at the end of echo's log" % len(data))

    def test_a_line_a_file_and_standard_input_arrive_in_order(self):
        out = self.cli_ok(self.d, "stdin", "echo", "hello there")
        self.assertEqual(out, "echo: 12 bytes sent\n")
        self.log_has(b"hello there\n")
        # Three requests' worth, numbered: any reordering or loss shows.
        body = "".join("line %06d\n" % i for i in range(16000)).encode()
        self.assertGreater(len(body), 2 * 64 * 1024)
        path = os.path.join(self.d.dir, "input.txt")
        with open(path, "wb") as f:
            f.write(body)
        out = self.cli_ok(self.d, "stdin", "echo", "--file", path)
        self.assertEqual(out, "echo: %d bytes sent\n" % len(body))
        self.log_has(body)
        self.assertEqual(self.d.read_log("echo"), b"hello there\n" + body)
        piped = b"from a pipe\nno newline at the end"
        r = subprocess.run([h.harness.dockless_bin(), "--socket", self.d.socket_path, "stdin", "echo"],
                           input=piped, env=h.cli_env(), capture_output=True, timeout=30)
        self.assertEqual((r.returncode, r.stdout), (0, b"echo: %d bytes sent\n" % len(piped)), r.stderr)
        self.log_has(piped)

    def test_refused_without_stdin_and_for_bad_usage(self):
        rc, out, err = self.cli(self.d, "stdin", "plain", "hi")
        self.assertEqual(rc, 1, (out, err))
        self.assertIn("stdin is not enabled", err)
        rc, out, err = self.cli(self.d, "stdin", "nope", "hi")
        self.assertEqual(rc, 4, (out, err))
        rc, out, err = self.cli(self.d, "stdin", "echo", "hi", "--file", "/etc/hostname")
        self.assertEqual(rc, 2, (out, err))
        self.assertIn("not both", err)
        rc, out, err = self.cli(self.d, "stdin", "echo", "--file", os.path.join(self.d.dir, "missing"))
        self.assertEqual(rc, 2, (out, err))
        self.assertIn("cannot read", err)

    def test_status_is_ps(self):
        status = json.loads(self.cli_ok(self.d, "status", "--json"))
        ps = json.loads(self.cli_ok(self.d, "ps", "--json"))
        self.assertEqual([(s["name"], s["pid"]) for s in status], [(s["name"], s["pid"]) for s in ps])
        self.assertEqual(self.cli_ok(self.d, "status").splitlines()[0], self.cli_ok(self.d, "ps").splitlines()[0])


if __name__ == "__main__":
    h.main()
