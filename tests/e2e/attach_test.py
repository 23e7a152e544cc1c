#!/usr/bin/env python3
"""Read-only attach (attach = { pid_file = ... }): a process the test starts, not the
daemon, is watched through a pidfd — state, pid, CPU/memory, a TCP health check, its exit
(status unknown: it is not the daemon's child) and its owner's restart with a new pid in
the pid file. Stop/restart/signal are refused (409) unless attach.control; a pid file whose
pid is another process now (a stale file, or a start time that differs from the one
state.json recorded) is never attached; `dockless attach NAME PID` points it at a pid; a
daemon restart (kill -9 included) and its SIGTERM exit leave the process running and find
it again. Every process the test starts is killed at cleanup."""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import harness  # noqa: E402
from harness import alive, service  # noqa: E402
import api_harness  # noqa: E402

# Listens on argv[2] (for the health check) and writes its own pid file, as a daemon does.
OWNED = r'''
import os, socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[2]))); s.listen(8)
tmp = sys.argv[1] + ".tmp"
open(tmp, "w").write("%d\n" % os.getpid()); os.rename(tmp, sys.argv[1])
while True:
    c, _ = s.accept(); c.close()
'''


def attached(name, pid_file, **settings):
    lines = ["[services.%s]" % name, "attach = " + harness.toml_value(dict({"pid_file": pid_file},
                                                                          **settings.pop("attach", {})))]
    lines += ["%s = %s" % (k, harness.toml_value(v)) for k, v in settings.items()]
    return "\n".join(lines) + "\n"


class AttachTest(api_harness.TestCase):
    def owned(self, pid_file, port):
        """A process of the test's own (its own session), writing pid_file once listening."""
        p = subprocess.Popen([sys.executable, "-c", OWNED, pid_file, str(port)], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(self.kill, p)
        harness.wait_for(lambda: self.read(pid_file) == str(p.pid), 10,
                         what="pid file of %d" % p.pid)
        return p

    @staticmethod
    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return None

    def kill(self, p):
        if p.poll() is None:
            p.kill()
        p.wait()

    def svc(self, d, name="app"):
        status, body = d.json("GET", "/v1/services/" + name)
        self.assertEqual(status, 200, body)
        return body

    def wait_attached(self, d, pid, name="app", timeout=10):
        d.wait_for(lambda: self.svc(d, name)["state"] == "running" and self.svc(d, name)["pid"] == pid, timeout,
                   what="%s attached to %d" % (name, pid))

    def config(self, d, port, **attach):
        pid_file = os.path.join(d.dir, "app.pid")
        return (attached("app", pid_file, attach=attach, port=port,
                         health={"tcp": "127.0.0.1:${PORT}", "interval": "200ms"})
                + service("user", ["sleep", "1000"], depends_on=[{"name": "app", "condition": "healthy"}]))

    def test_read_only_exit_and_reattach(self):
        d = self.daemon(None, start=False)
        port = harness.free_port()
        d.write_config(self.config(d, port))
        first = self.owned(os.path.join(d.dir, "app.pid"), port)
        d.start()
        self.wait_attached(d, first.pid)
        d.wait_for(lambda: self.svc(d)["health"] == "healthy", 10, what="healthy")
        s = self.svc(d)
        self.assertTrue(s.get("attached"), s)
        self.assertFalse(s["control"])
        self.assertEqual(s["executor"], "attach")
        self.assertEqual(s["spec"]["attach"], {"pid_file": os.path.join(d.dir, "app.pid"), "control": False})
        self.assertIsNotNone(s["rss_bytes"])
        self.assertIsNotNone(s["cpu_seconds"])
        ev = d.events_of("app", "attached")[-1]
        self.assertEqual(ev["pid"], first.pid)
        self.assertEqual(ev["exit_status"], "unknown")
        # A dependent waiting for it healthy starts.
        d.wait_running("user", timeout=10)
        for verb, body, words in (("stop", None, "attached read-only"), ("restart", None, "cannot launch"),
                                  ("signal", {"signal": "TERM"}, "attached read-only")):
            status, out = d.json("POST", "/v1/services/app/" + verb, body)
            self.assertEqual(status, 409, (verb, out))
            self.assertIn(words, json.dumps(out))
        time.sleep(0.3)
        self.assertTrue(alive(first.pid), "a refused stop left it running")
        self.assertEqual(self.svc(d)["pid"], first.pid)

        # Its owner stops it: an exit, status unknown; then the pid file names the next one.
        self.kill(first)
        d.wait_event("exited", "app", timeout=10)
        ex = d.events_of("app", "exited")[-1]
        self.assertEqual(ex["exit_status"], "unknown")
        self.assertIn("not its parent", ex["reason"])
        d.wait_for(lambda: self.svc(d)["pid"] is None, 5, what="no pid after the exit")
        second = self.owned(os.path.join(d.dir, "app.pid"), port)
        self.wait_attached(d, second.pid)
        self.assertEqual(d.events_of("app", "attached")[-1]["pid"], second.pid)

        # A stale pid file naming a process that started after it was written: never attached.
        stale_target = subprocess.Popen(["sleep", "1000"], start_new_session=True)
        self.addCleanup(self.kill, stale_target)
        old = time.time() - 120
        self.kill(second)
        d.wait_for(lambda: self.svc(d)["pid"] is None, 10, what="second's exit seen")
        with open(os.path.join(d.dir, "app.pid.tmp"), "w") as f:
            f.write("%d\n" % stale_target.pid)
        os.utime(os.path.join(d.dir, "app.pid.tmp"), (old, old))
        os.rename(os.path.join(d.dir, "app.pid.tmp"), os.path.join(d.dir, "app.pid"))
        d.wait_for(lambda: "recycled" in self.svc(d)["last_error"], 10, what="stale pid refused")
        time.sleep(1.5)  # a few polls: still refused, and said once
        self.assertIsNone(self.svc(d)["pid"])
        self.assertNotEqual(self.svc(d)["state"], "running")
        self.assertEqual(len([e for e in d.events_of("app", "spawn_failed") if "recycled" in e["error"]]), 1)

        # The operator names a pid: attached now.
        third = self.owned(os.path.join(d.dir, "other.pid"), harness.free_port())
        rc, out, err = self.cli(d, "attach", "app", str(third.pid))
        self.assertEqual(rc, 0, (out, err))
        self.wait_attached(d, third.pid)
        self.assertEqual(d.events_of("app", "attach_requested")[-1]["pid"], third.pid)
        status, out = d.json("POST", "/v1/services/user/attach", {"pid": third.pid})
        self.assertEqual(status, 409, out)
        status, out = d.json("POST", "/v1/services/app/attach", {"pid": 999999999})
        self.assertEqual(status, 409, out)
        self.assertIn("no such process", out["error"])
        status, out = d.json("POST", "/v1/services/app/attach", {"pid": "x"})
        self.assertEqual(status, 400, out)

        # The daemon's exit leaves it running.
        d.stop()
        self.assertTrue(alive(third.pid))
        self.assertEqual(d.events_of("app", "detached")[-1]["pid"], third.pid)

    def cli(self, d, *args):
        env = dict(os.environ, DOCKLESS_TOKEN=harness.TEST_API_KEY)
        for k in ("DOCKLESS_CONFIG", "DOCKLESS_SOCKET"):
            env.pop(k, None)
        r = subprocess.run([harness.dockless_bin(), "--host", d.base] + list(args), env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def test_control_stop(self):
        d = self.daemon(None, start=False)
        port = harness.free_port()
        d.write_config(self.config(d, port, control=True))
        p = self.owned(os.path.join(d.dir, "app.pid"), port)
        d.start()
        self.wait_attached(d, p.pid)
        self.assertTrue(self.svc(d)["control"])
        rc, out, err = self.cli(d, "ps")
        self.assertEqual(rc, 0, err)
        self.assertRegex(out, r"app\s+running \(attached\)\s+%d" % p.pid)
        status, out = d.json("POST", "/v1/services/app/restart")
        self.assertEqual(status, 409, out)
        status, out = d.json("POST", "/v1/services/app/stop?deps=false")
        self.assertEqual(status, 202, out)
        d.wait_for(lambda: p.poll() is not None, 10, what="the process stopped")
        d.wait_for(lambda: self.svc(d)["state"] == "stopped", 10, what="state stopped")
        self.assertEqual(p.returncode, -signal.SIGTERM)

    def restart_daemon(self, d):
        d.wait_for(lambda: harness.port_is_free(d.port), 10, what="API port free")
        d.start()

    def test_daemon_restart_reattaches_and_refuses_other_start_time(self):
        d = self.daemon(None, start=False)
        port = harness.free_port()
        d.write_config(self.config(d, port))
        p = self.owned(os.path.join(d.dir, "app.pid"), port)
        d.start()
        self.wait_attached(d, p.pid)
        # A clean exit leaves it running; the next daemon attaches it again.
        d.stop()
        self.assertTrue(alive(p.pid))
        self.restart_daemon(d)
        self.wait_attached(d, p.pid)
        # kill -9: the same, with state.json's pid and start time.
        recorded = lambda: ((d.state() or {}).get("services", {}).get("app") or {})
        d.wait_for(lambda: recorded().get("pid") == p.pid, 10, what="state.json names the pid")
        d.kill9()
        self.assertTrue(alive(p.pid))
        self.restart_daemon(d)
        self.wait_attached(d, p.pid)
        # state.json's start time for it changed: that pid is taken for another process.
        d.wait_for(lambda: recorded().get("pid") == p.pid, 10, what="state.json names the pid")
        d.kill9()
        state = d.state()
        self.assertEqual(state["services"]["app"]["pid_start_ticks"], harness.start_ticks(p.pid))
        state["services"]["app"]["pid_start_ticks"] += 1
        with open(d.path("state.json"), "w") as f:
            json.dump(state, f)
        self.restart_daemon(d)
        d.wait_for(lambda: "recycled" in self.svc(d)["last_error"], 10, what="start time mismatch refused")
        self.assertIsNone(self.svc(d)["pid"])
        self.assertTrue(alive(p.pid))

    def test_upgrade_and_reload(self):
        d = self.daemon(None, start=False)
        port = harness.free_port()
        d.write_config(self.config(d, port))
        p = self.owned(os.path.join(d.dir, "app.pid"), port)
        d.start()
        self.wait_attached(d, p.pid)
        # An upgrade in place: the process is left alone and the new image attaches it again.
        os.kill(d.pid, signal.SIGUSR2)
        d.wait_for(lambda: d.json("GET", "/v1/upgrade")[1]["image"] == 2, 30, what="image 2")
        self.wait_attached(d, p.pid)
        self.assertTrue(alive(p.pid))
        # A reload naming another pid file: the old process is let go (untouched), the one the
        # new file names is attached.
        other = self.owned(os.path.join(d.dir, "other.pid"), harness.free_port())
        d.write_config(self.config(d, port).replace("app.pid", "other.pid"))
        d.sighup()
        d.wait_event("reload_succeeded", timeout=10)
        self.wait_attached(d, other.pid)
        self.assertTrue(alive(p.pid))
        self.assertEqual(d.events_of("app", "detached")[-1]["pid"], p.pid)

    def test_config_errors(self):
        d = self.tempdir()
        cases = [
            ('[services.a]\ncommand = "x"\nattach = { pid_file = "/run/a.pid" }\n',
             'config.toml:2:11: services.a.command: attach and command are mutually exclusive'),
            ('[services.a]\nattach = { pid_file = "/run/a.pid" }\nrestart = "always"\n',
             'config.toml:3:11: services.a.restart: makes no sense for an attached service (attach): '
             'Dockless does not start it'),
            ('[services.a]\nattach = { pid_file = "/run/a.pid" }\nuser = "nobody"\n',
             'config.toml:3:8: services.a.user: makes no sense'),
            ('[services.a]\nattach = { control = true }\n',
             'config.toml:2:10: services.a.attach: missing required key "pid_file"'),
            ('[services.a]\nattach = { pid_file = "/run/a.pid", contrl = true }\n',
             'unknown key "contrl"'),
        ]
        for text, expected in cases:
            with self.subTest(expected=expected):
                with open(os.path.join(d, "config.toml"), "w") as f:
                    f.write(text)
                rc, out, err = self.run_cli(["check-config", "config.toml"], cwd=d)
                self.assertEqual(rc, 1, (out, err))
                self.assertIn(expected, out + err)


if __name__ == "__main__":
    harness.main()
