#!/usr/bin/env python3
"""Files under data_dir: private modes whatever the umask the daemon was started with, and
a symlink planted where a log goes redirects nothing (the log is refused, loudly)."""
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import service, sh  # noqa: E402


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


class DataFilesTest(harness.TestCase):
    def test_modes_are_private_under_a_permissive_umask(self):
        old = os.umask(0)  # inherited by the daemon
        try:
            d = self.daemon(service("web", sh("echo hello; exec sleep 1090")))
        finally:
            os.umask(old)
        d.wait_running("web")
        d.wait_for(lambda: d.read_log("web") == b"hello\n", what="the log line")
        d.wait_for(lambda: os.path.exists(d.path("state.json")), what="state.json")
        want = {"state.json": 0o600, ".lock": 0o600, "events.log": 0o640,
                "logs/web/stdout.log": 0o640, "logs/web/stderr.log": 0o640}
        for name, m in want.items():
            with self.subTest(file=name):
                self.assertEqual(oct(mode(d.path(name))), oct(m))

    def test_a_planted_log_symlink_redirects_nothing(self):
        d = self.daemon(service("web", sh("echo secret-output; exec sleep 1091")), start=False)
        victim = os.path.join(d.dir, "victim")
        with open(victim, "w") as f:
            f.write("untouched\n")
        os.makedirs(d.path("logs", "web"))
        os.symlink(victim, d.log_path("web"))
        d.start()
        d.wait_running("web")
        ev = d.wait_event("log_unavailable", service="web")
        self.assertIn("Too many levels of symbolic links", ev[0]["error"])
        with open(victim) as f:
            self.assertEqual(f.read(), "untouched\n")
        self.assertTrue(os.path.islink(d.log_path("web")), "the planted link was replaced, not refused")


if __name__ == "__main__":
    harness.main()
