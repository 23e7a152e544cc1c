#!/usr/bin/env python3
"""Malformed configs through the real binary: `dockless serve` exits 2 and prints every
error as config.toml:LINE:COL: message (the same lines tests/config/errors_test.cpp
expects from the parser), creating and starting nothing; `dockless check-config` prints
the same lines and exits 1, and exits 0 on a valid file."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import free_port  # noqa: E402

# (name, config text, expected lines) — from tests/config/errors_test.cpp, except that
# the env file resolves against the config's own directory (".").
CASES = [
    ("unknown_key_with_suggestion",
     '[services.web]\ncommand = "web"\ncomand = "x"\n',
     ['config.toml:3:1: unknown key "comand" in [services.web]; did you mean "command"?']),
    ("wrong_type",
     '[services.web]\ncommand = "web"\nautostart = "yes"\n',
     ["config.toml:3:13: services.web.autostart: expected true or false, got string"]),
    ("bad_enum",
     '[services.web]\ncommand = "web"\nrestart = "sometimes"\n',
     ['config.toml:3:11: services.web.restart: expected one of "no", "on-failure", "always", got "sometimes"']),
    ("bad_name",
     '[services.Web_App]\ncommand = "web"\n',
     ['config.toml:1:11: invalid service name "Web_App": must match [a-z0-9][a-z0-9_.-]{0,62} (it becomes a file name)']),
    ("bad_duration",
     '[services.web]\ncommand = "web"\nstop_timeout = "10 seconds"\n',
     ['config.toml:3:16: services.web.stop_timeout: invalid duration "10 seconds": unknown unit " seconds" (use ms, s, m or h)']),
    ("missing_command",
     '[services.web]\nrestart = "no"\n',
     ['config.toml:1:1: [services.web]: missing required key "command"']),
    ("toml_syntax_error",
     '[services.web]\ncommand = "web\nrestart = "no"\n',
     ["config.toml:2:15: Error while parsing string: unescaped control characters other than TAB (U+0009) are explicitly prohibited"]),
    ("unknown_dependency",
     '[services.web]\ncommand = "web"\ndepends_on = ["dbb"]\n[services.db]\ncommand = "db"\n',
     ['config.toml:3:15: services.web.depends_on: unknown service "dbb"; did you mean "db"?']),
    ("cycle",
     '[services.a]\ncommand = "a"\ndepends_on = ["b"]\n[services.b]\ncommand = "b"\ndepends_on = ["c"]\n'
     '[services.c]\ncommand = "c"\ndepends_on = ["a"]\n',
     ["config.toml:1:1: dependency cycle: a -> b -> c -> a"]),
    ("duplicate_port",
     '[services.web]\ncommand = "web"\nport = 8080\n[services.api]\ncommand = "api"\nports = [9000, 8080]\n',
     ['config.toml:6:16: services.api: port 8080 is already claimed by service "web"']),
    ("invalid_health_url_scheme",
     '[services.web]\ncommand = "web"\nhealth = { http = "https://127.0.0.1:8443/" }\n',
     ['config.toml:3:19: services.web.health.http: only http:// URLs are supported, got "https://127.0.0.1:8443/"']),
    ("invalid_health_url_port",
     '[services.web]\ncommand = "web"\nhealth = { http = "http://127.0.0.1:99999/x" }\n',
     ['config.toml:3:19: services.web.health.http: invalid port "99999" in URL "http://127.0.0.1:99999/x"']),
    ("env_file_missing",
     '[services.web]\ncommand = "web"\nenv_file = "web.env"\n',
     ['config.toml:3:12: services.web.env_file: cannot read "./web.env": No such file or directory']),
    ("all_mistakes_in_file_order",
     '[services.web]\ncomand = "web"\nrestart = "sometimes"\nstop_timeout = 10\nport = 8080\n'
     'depends_on = ["ghost"]\n\n[services.api]\ncommand = "api"\nport = 8080\n',
     ['config.toml:1:1: [services.web]: missing required key "command"',
      'config.toml:2:1: unknown key "comand" in [services.web]; did you mean "command"?',
      'config.toml:3:11: services.web.restart: expected one of "no", "on-failure", "always", got "sometimes"',
      'config.toml:4:16: services.web.stop_timeout: expected a duration string, got integer 10; use a string such as "10s"',
      'config.toml:6:15: services.web.depends_on: unknown service "ghost"',
      'config.toml:10:8: services.api: port 8080 is already claimed by service "web"']),
]


def error_lines(stderr):
    """The config error lines of stderr, "error: " prefix (daemon log) removed."""
    out = []
    for line in stderr.splitlines():
        if line.startswith("error: "):
            line = line[len("error: "):]
        if re.match(r"config\.toml:\d+:\d+: ", line):
            out.append(line)
    return out


class ConfigErrorsTest(harness.TestCase):
    def write(self, text):
        d = self.tempdir()
        with open(os.path.join(d, "config.toml"), "w") as f:
            f.write(text)
        return d

    def test_serve_refuses_each_malformed_config(self):
        for name, text, want in CASES:
            with self.subTest(name):
                d = self.write(text)
                data = os.path.join(d, "data")
                rc, out, err = self.run_cli(["serve", "--config", "config.toml", "--data-dir", data,
                                             "--listen", "127.0.0.1:%d" % free_port()], cwd=d)
                self.assertEqual(rc, 2, err)
                self.assertEqual(error_lines(err), want, err)
                self.assertIn("not starting: the config is invalid", err)
                self.assertEqual(out, "")
                self.assertFalse(os.path.exists(data), "data dir created for a refused config")
                self.assertEqual(sorted(os.listdir(d)), ["config.toml"])

    def test_check_config_reports_the_same(self):
        for name, text, want in CASES:
            with self.subTest(name):
                d = self.write(text)
                rc, out, err = self.run_cli(["check-config", "config.toml"], cwd=d)
                self.assertEqual(rc, 1, err)
                self.assertEqual(error_lines(err), want, err)
                self.assertEqual(err.splitlines()[-1], "config.toml: %d error(s)" % len(want))
                self.assertEqual(out, "")
                self.assertEqual(sorted(os.listdir(d)), ["config.toml"])

    def test_check_config_accepts_a_valid_file(self):
        d = self.write('[services.web]\ncommand = "sleep 1"\nport = "auto"\n'
                       'health = { http = "http://127.0.0.1:${PORT}/" }\n'
                       '[services.worker]\ncommand = ["sh", "-c", "exit 0"]\n'
                       'depends_on = { web = "healthy" }\nrestart_delay = "50ms"\n')
        rc, out, err = self.run_cli(["check-config", "config.toml"], cwd=d)
        self.assertEqual((rc, out, err), (0, "config.toml: ok (2 service(s))\n", ""))

    def test_serve_with_a_missing_named_config_exits_2(self):
        d = self.tempdir()
        data = os.path.join(d, "data")
        rc, out, err = self.run_cli(["serve", "--config", "nope.toml", "--data-dir", data,
                                     "--listen", "127.0.0.1:%d" % free_port()], cwd=d)
        self.assertEqual(rc, 2, err)
        self.assertIn("nope.toml", err)
        self.assertFalse(os.path.exists(data))

    def test_serve_takes_the_config_from_the_environment(self):
        d = self.write('[services.web]\ncommand = "web"\nrestart = "sometimes"\n')
        rc, out, err = self.run_cli(["serve"], cwd=d, env={
            "DOCKLESS_CONFIG": "config.toml", "DOCKLESS_DATA_DIR": os.path.join(d, "data"),
            "DOCKLESS_LISTEN": "127.0.0.1:%d" % free_port()})
        self.assertEqual(rc, 2, err)
        self.assertEqual(error_lines(err), [CASES[2][2][0]])


class ConfigEnvironmentTest(harness.TestCase):
    def test_variables_env_file_and_daemon_settings(self):
        d = self.daemon(None, start=False, env={"E2E_SECONDS": "1061", "DOCKLESS_SECRET": "hidden"},
                        files={"app.env": "FROM_FILE=file\nBOTH=file\n"})
        d.write_config(harness.service("app", harness.sh("env | sort; exec sleep ${E2E_SECONDS}"),
                                       env_file="app.env", env={"BOTH": "table", "ARG": "${E2E_SECONDS}"}))
        d.start()
        pid = d.wait_running("app")
        # "running" is reported at exec of sh; under load `env | sort` may still be running,
        # so wait (bounded) for sh to exec the substituted command.
        d.wait_for(lambda: getattr(harness.proc_info(pid), "cmdline", None) == ["sleep", "1061"], 10,
                   what="sh to exec sleep 1061")
        d.wait_for(lambda: b"FROM_FILE=" in d.read_log("app"), 10, what="env output logged")
        env = dict(line.split("=", 1) for line in d.read_log("app").decode().splitlines() if "=" in line)
        self.assertEqual((env.get("FROM_FILE"), env.get("BOTH"), env.get("ARG")), ("file", "table", "1061"))
        self.assertNotIn("E2E_TAG", env)  # nothing of the daemon's environment (env_test.py)
        # The daemon's own DOCKLESS_* settings stay out; the two markers it sets on purpose
        # (docs/config.md "Process model": how a restarted daemon finds what a crash left) are in.
        markers = {"DOCKLESS_SERVICE", "DOCKLESS_SUPERVISOR"}
        self.assertFalse([k for k in env if k.startswith("DOCKLESS_") and k not in markers],
                         "daemon settings leaked")
        self.assertEqual(env.get("DOCKLESS_SERVICE"), "app")
        self.assertEqual(env.get("DOCKLESS_SUPERVISOR"), os.path.realpath(d.data_dir))
        d.stop()


if __name__ == "__main__":
    harness.main()
