"""The systemd unit and `meson install`: `systemd-analyze verify` prints nothing for
dockless.service (its exit code alone misses unknown keys and bad values, so any
output fails), the settings supervision depends on are there, and `meson install`
installs the binary, the unit and an example config that it never overwrites.
systemd is not started (RECIPES.md: a manager here would take over the machine).

argv: UNIT (the configured dockless.service) BUILD_ROOT MESON"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
from harness import dockless_bin, main, require  # noqa: E402

UNIT, BUILD_ROOT, MESON = sys.argv[1], sys.argv[2], sys.argv[3]
del sys.argv[1:4]
require("systemd-analyze")


def unit_settings(text):
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")) and "=" in line:
            k, v = line.split("=", 1)
            out.setdefault(k.strip(), []).append(v.strip())
    return out


class Unit(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="dockless-unit-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        with open(UNIT) as f:
            self.text = f.read()

    def verify(self, text):
        """Output of systemd-analyze verify on `text` as dockless.service. ExecStart
        must name an existing binary (a fatal check), so the built one stands in for
        the install path."""
        text = re.sub(r"^ExecStart=\S+/dockless ", "ExecStart=%s " % dockless_bin(), text, flags=re.M)
        path = os.path.join(self.dir, "dockless.service")
        with open(path, "w") as f:
            f.write(text)
        r = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                           timeout=30, cwd=self.dir)
        return r.returncode, (r.stdout + r.stderr).strip()

    def test_verify_prints_nothing(self):
        rc, out = self.verify(self.text)
        self.assertEqual(out, "", "systemd-analyze verify complained")
        self.assertEqual(rc, 0)

    def test_verify_would_catch_a_bad_key(self):
        # The check above can fail: an unknown key is only a warning (exit 0), but output.
        rc, out = self.verify(self.text.replace("KillMode=process", "KillMode=process\nKilMode=process"))
        self.assertIn("KilMode", out)

    def test_supervision_settings(self):
        s = unit_settings(self.text)
        self.assertEqual(s["Type"], ["notify"])
        self.assertEqual(s["NotifyAccess"], ["main"])
        self.assertEqual(s["Restart"], ["always"])
        self.assertEqual(s["KillMode"], ["process"])
        self.assertEqual(s["WorkingDirectory"], ["/etc/dockless"])
        self.assertTrue(s["ExecStart"][0].endswith("/bin/dockless serve"), s["ExecStart"])
        self.assertIn("WatchdogSec", s)
        self.assertGreater(int(s["FileDescriptorStoreMax"][0]), 0)
        # Settings that would break services run as other users / setuid programs.
        for bad in ("NoNewPrivileges", "RestrictSUIDSGID", "PrivateUsers", "ProtectProc",
                    "ProtectSystem", "DynamicUser", "User", "CapabilityBoundingSet"):
            self.assertNotIn(bad, s)


class Install(unittest.TestCase):
    def test_meson_install(self):
        if not MESON:
            self.skipTest("meson not found")
        dest = tempfile.mkdtemp(prefix="dockless-install-")
        self.addCleanup(shutil.rmtree, dest, True)

        def install():
            r = subprocess.run([MESON, "install", "-C", BUILD_ROOT, "--no-rebuild", "--destdir", dest],
                               capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            return r.stdout

        install()
        files = []
        for root, _, names in os.walk(dest):
            files += [os.path.relpath(os.path.join(root, n), dest) for n in names]
        binary = [f for f in files if f.endswith("bin/dockless")]
        unit = [f for f in files if f.endswith("lib/systemd/system/dockless.service")]
        self.assertEqual(len(binary), 1, files)
        self.assertEqual(len(unit), 1, files)
        self.assertTrue(os.access(os.path.join(dest, binary[0]), os.X_OK))
        with open(os.path.join(dest, unit[0])) as f:
            exec_start = unit_settings(f.read())["ExecStart"][0]
        self.assertEqual("/" + binary[0] + " serve", exec_start)
        config = os.path.join(dest, "etc", "dockless", "config.toml")
        self.assertTrue(os.path.exists(config), files)
        r = subprocess.run([dockless_bin(), "check-config", config], capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, "the example config does not validate: " + r.stdout + r.stderr)

        # A second install (an upgrade) keeps the operator's config.
        with open(config, "w") as f:
            f.write("listen_port = 4000\n")
        install()
        with open(config) as f:
            self.assertEqual(f.read(), "listen_port = 4000\n")


if __name__ == "__main__":
    main()
