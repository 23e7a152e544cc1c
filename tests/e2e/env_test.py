#!/usr/bin/env python3
"""What a service's processes are started with: a fixed base, their own env, their ports and
the DOCKLESS_* markers, and nothing of the daemon's environment (its API keys, its HMAC secret,
the variables its config referenced). docs/config.md, "Environment"."""
import os
import pwd
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import main, service, sh  # noqa: E402

SECRETS = {"DOCKLESS_TEST_SECRET": "daemon-only-s3cret", "HOOK_SECRET": "referenced-by-config-s3cret",
           "DOCKLESS_HMAC_SECRET": "hmac-s3cret-of-the-daemon"}
FORWARDED = {"LANG": "C.UTF-8", "TZ": "Europe/Paris"}
# A trigger makes the config reference ${HOOK_SECRET}: a variable only the daemon needs.
TRIGGER = ('[[triggers]]\nid = "hook"\nkind = "webhook"\nprovider = "hmac"\n'
           'secret = "${HOOK_SECRET}"\naction = { restart = "checked" }\n')


def parse_env(text):
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def base_names(user):
    names = {"PATH", "HOME", "USER", "LOGNAME"} | set(FORWARDED)
    if pwd.getpwnam(user).pw_shell:
        names.add("SHELL")
    if "LC_ALL" in os.environ:
        names.add("LC_ALL")
    return names


class EnvironmentTest(harness.TestCase):
    def daemon_with(self, config):
        d = self.daemon(None, start=False, env=dict(SECRETS, **FORWARDED),
                        files={"app.env": "FROM_FILE=file\nBOTH=file\n"})
        d.write_config(config)
        d.start()
        return d

    def assertNoSecret(self, env, what):
        leaked = sorted(k for k, v in env.items() if k in SECRETS or v in SECRETS.values()
                        or k in ("E2E_TAG", "DOCKLESS_API_KEYS") or v == harness.TEST_API_KEY)
        self.assertEqual(leaked, [], "%s got the daemon's variables" % what)

    def test_a_service_gets_the_base_its_env_its_port_and_the_markers_only(self):
        d = self.daemon_with(TRIGGER + service(
            "dump", ["env"], restart="no", port="auto", env_file="app.env",
            env={"BOTH": "table", "OWN": "own", "PATH": "/opt/custom/bin:/usr/bin:/bin"}) + service(
            "checked", ["sleep", "1074"]))
        d.wait_for(lambda: b"DOCKLESS_SERVICE=" in d.read_log("dump"), 10, what="env output logged")
        env = parse_env(d.read_log("dump").decode())
        self.assertNoSecret(env, "a service")
        self.assertEqual(set(env), base_names("root") | {"FROM_FILE", "BOTH", "OWN", "PORT", "DOCKLESS_SUPERVISOR",
                                                         "DOCKLESS_SERVICE"})
        self.assertEqual((env["BOTH"], env["OWN"], env["FROM_FILE"]), ("table", "own", "file"))
        self.assertEqual(env["PATH"], "/opt/custom/bin:/usr/bin:/bin")  # its own env overrides the base
        self.assertEqual((env["LANG"], env["TZ"]), (FORWARDED["LANG"], FORWARDED["TZ"]))
        root = pwd.getpwuid(os.getuid())
        self.assertEqual((env["HOME"], env["USER"], env["LOGNAME"]), (root.pw_dir, root.pw_name, root.pw_name))
        self.assertTrue(env["PORT"].isdigit())
        self.assertEqual((env["DOCKLESS_SERVICE"], env["DOCKLESS_SUPERVISOR"]),
                         ("dump", os.path.realpath(d.data_dir)))
        d.stop()

    def test_a_service_of_another_user_gets_that_users_home_and_names(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run a service as nobody")
        d = self.daemon_with(TRIGGER + service("dump", ["env"], restart="no", user="nobody") +
                             service("checked", ["sleep", "1075"]))
        d.wait_for(lambda: b"DOCKLESS_SERVICE=" in d.read_log("dump"), 10, what="env output logged")
        env = parse_env(d.read_log("dump").decode())
        self.assertNoSecret(env, "a service running as nobody")
        nobody = pwd.getpwnam("nobody")
        self.assertEqual(set(env), base_names("nobody") | {"DOCKLESS_SUPERVISOR", "DOCKLESS_SERVICE"})
        self.assertEqual((env["HOME"], env["USER"], env.get("SHELL")),
                         (nobody.pw_dir, "nobody", nobody.pw_shell or None))
        self.assertEqual(env["PATH"], "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        d.stop()

    def test_an_exec_health_check_gets_the_services_env_not_the_daemons(self):
        out = os.path.join(harness.tempfile.gettempdir(), "dockless-health-env-%d" % os.getpid())
        self.addCleanup(lambda: os.path.exists(out) and os.unlink(out))
        d = self.daemon_with(TRIGGER + service(
            "checked", ["sleep", "1076"], env={"CHECK_OWN": "yes"},
            health={"exec": sh("env > %s.tmp && mv %s.tmp %s" % (out, out, out)), "interval": "100ms"}))
        d.wait_for(lambda: os.path.exists(out), 10, what="the check's env written")
        with open(out) as f:
            env = parse_env(f.read())
        env.pop("PWD", None)  # set by sh itself
        self.assertNoSecret(env, "a health check")
        self.assertEqual(set(env), base_names("root") | {"CHECK_OWN", "DOCKLESS_SUPERVISOR"})
        d.stop()

    def test_an_exec_health_check_runs_as_its_service(self):
        """A check of a service running as nobody runs as nobody, in the service's working
        directory, with nobody's HOME: never as the daemon (root)."""
        if os.geteuid() != 0:
            self.skipTest("needs root to run a service as nobody")
        box = harness.tempfile.mkdtemp(prefix="dockless-health-id-")
        self.addCleanup(lambda: harness.shutil.rmtree(box, ignore_errors=True))
        os.chmod(box, 0o777)  # nobody writes its report here
        out = os.path.join(box, "report")
        d = self.daemon_with(TRIGGER + service(
            "checked", ["sleep", "1077"], user="nobody", working_dir=box,
            health={"exec": sh("echo \"$(id -u) $(pwd) $HOME\" > %s.tmp && mv %s.tmp %s" % (out, out, out)),
                    "interval": "100ms"}))
        d.wait_for(lambda: os.path.exists(out), 10, what="the check's report written")
        with open(out) as f:
            uid, cwd, home = f.read().split()
        nobody = pwd.getpwnam("nobody")
        self.assertEqual((int(uid), cwd, home), (nobody.pw_uid, os.path.realpath(box), nobody.pw_dir))
        self.assertEqual(os.stat(out).st_uid, nobody.pw_uid)
        d.stop()


if __name__ == "__main__":
    main()
