#!/usr/bin/env python3
"""Container services end to end, against podman behind a docker-compatible CLI.

Podman runs with a test-owned configuration and storage (podman_engine.py), so every
image and container the test makes lives in that storage and is removed with it. The
image is a busybox-static rootfs imported as localhost/dockless-e2e:1; containers use
the host network and --init.
The docker CLI is a two-line shim that execs podman (Debian's podman-docker shim
prints a banner on stderr, which would end up in every stderr log).

Skips (77) when podman is missing or cannot run a container here."""
import json
import os
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import podman_engine  # noqa: E402
from harness import free_port, service  # noqa: E402
from podman_engine import PODMAN  # noqa: E402

IMAGE = "localhost/dockless-e2e:1"
ENGINE = {}  # filled by setUpModule: engine, dir, env, cli


def podman(*args, timeout=60, check=True):
    return ENGINE["engine"].podman(*args, timeout=timeout, check=check)


def setUpModule():
    try:
        engine = podman_engine.Engine(IMAGE, prefix="dockless-docker-e2e-")
    except podman_engine.Unavailable as e:
        print("skipping: %s" % e, file=sys.stderr)
        sys.exit(harness.SKIP)
    d = engine.dir
    ENGINE.update(engine=engine, dir=d, env=engine.env)
    cli = os.path.join(d, "docker")
    with open(cli, "w") as f:
        f.write("#!/bin/sh\nexec %s \"$@\"\n" % PODMAN)
    os.chmod(cli, 0o755)
    ENGINE["cli"] = cli


def tearDownModule():
    if "engine" in ENGINE:
        ENGINE["engine"].close()


def container(name, command, **settings):
    settings.setdefault("docker_cli", ENGINE["cli"])
    settings.setdefault("network", "host")
    settings.setdefault("docker_args", ["--init"])
    lines = ["[services.%s]" % name, "image = %s" % harness.toml_str(IMAGE)]
    if command is not None:
        lines.append("command = " + harness.toml_value(command))
    lines += ["%s = %s" % (k, harness.toml_value(v)) for k, v in settings.items()]
    return "\n".join(lines) + "\n"


def inspect(name, fmt):
    r = podman("inspect", "--type", "container", "--format", fmt, "dockless-" + name, check=False)
    return r.stdout.strip() if r.returncode == 0 else None


def container_names():
    r = podman("ps", "-a", "--format", "{{.Names}}")
    return set(r.stdout.split())


def api(d, method, path, timeout=10):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (d.port, path), method=method,
                                 data=b"" if method == "POST" else None,
                                 headers={"Authorization": "Bearer " + d.api_key})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        body = r.read()
        return json.loads(body) if r.headers.get("Content-Type", "").startswith("application/json") else body


def svc(d, name):
    return api(d, "GET", "/v1/services/" + name)


class DockerTest(harness.TestCase):
    def daemon(self, config_text, start=True, **kw):
        kw.setdefault("env", {k: ENGINE["env"][k] for k in ("CONTAINERS_CONF", "CONTAINERS_STORAGE_CONF")})
        return super().daemon(config_text, start, **kw)

    def tearDown(self):
        # Containers of this test go even when it failed (the storage goes at the end).
        podman("rm", "-af", "-t", "0", check=False)

    def test_logs_crash_backoff_and_exit_codes(self):
        d = self.daemon(container("crashy", ["sh", "-c", "echo out-line; echo err-line >&2; sleep 0.5; exit 3"],
                                  restart="on-failure", restart_delay="300ms", restart_limit=0))
        started = d.wait_event("started", "crashy", timeout=20)[0]
        self.assertEqual(started["container"], "dockless-crashy")
        self.assertEqual(started["image"], IMAGE)
        exited = d.wait_event("exited", "crashy", count=2, timeout=30)
        self.assertEqual([e["code"] for e in exited[:2]], [3, 3])
        backoff = d.wait_event("backoff", "crashy", count=2, timeout=10)
        self.assertGreater(backoff[1]["delay_ms"], backoff[0]["delay_ms"])  # doubling
        d.wait_event("started", "crashy", count=3, timeout=20)
        # The same LogActor path as native services: files, and the API's logs endpoint.
        out = api(d, "GET", "/v1/services/crashy/logs?stream=stdout&tail=100").decode()
        err = api(d, "GET", "/v1/services/crashy/logs?stream=stderr&tail=100").decode()
        self.assertGreaterEqual(out.count("out-line"), 2, out)
        self.assertGreaterEqual(err.count("err-line"), 2, err)
        self.assertNotIn("err-line", out)
        s = svc(d, "crashy")
        self.assertEqual(s["executor"], "docker")
        self.assertGreaterEqual(s["restarts"], 2)
        api(d, "POST", "/v1/services/crashy/stop")
        d.wait_for(lambda: svc(d, "crashy")["state"] == "stopped", 20, what="stopped")
        d.wait_for(lambda: "dockless-crashy" not in container_names(), 10, what="container removed")
        d.stop()

    def test_stop_within_timeout(self):
        d = self.daemon(container("polite", ["sleep", "1000"], stop_timeout="5s")
                        + container("stubborn", ["sh", "-c", "trap '' TERM; while true; do sleep 0.1; done"],
                                    stop_timeout="1s", docker_args=[]))
        for name in ("polite", "stubborn"):
            d.wait_event("started", name, timeout=20)
            d.wait_for(lambda: svc(d, name)["state"] == "running", 10, what=name + " running")
        pid = svc(d, "polite")["pid"]
        self.assertEqual(str(pid), inspect("polite", "{{.State.Pid}}"))
        for name, code, limit in (("polite", 143, 4.0), ("stubborn", 137, 6.0)):
            t0 = time.monotonic()
            api(d, "POST", "/v1/services/%s/stop" % name)
            d.wait_for(lambda: svc(d, name)["state"] == "stopped", 15, what=name + " stopped")
            took = time.monotonic() - t0
            self.assertLess(took, limit, name)
            # events.log is group-committed: the event may reach the file just after the state.
            exited = d.wait_for(lambda: d.events_of(name, "exited"), 5, what=name + " exited event")
            self.assertEqual(exited[-1]["code"], code)
            self.assertEqual(svc(d, name)["exit_code"], code)
            if name == "stubborn":
                self.assertGreaterEqual(took, 0.9)  # it really waited for stop_timeout
            d.wait_for(lambda: "dockless-" + name not in container_names(), 10, what=name + " removed")
        d.stop()

    def test_native_depends_on_healthy_container(self):
        port = free_port()
        web = container("web", ["sh", "-c", "mkdir -p /www && echo ok > /www/index.html && "
                                            "exec httpd -f -p 127.0.0.1:$PORT -h /www"],
                        port=port,
                        # An exec check of a container runs inside it: /www exists only there.
                        health={"exec": ["cat", "/www/index.html"], "interval": "300ms", "timeout": "10s",
                                "retries": 1})
        client = service("client", ["sh", "-c", "echo got $(curl -s http://127.0.0.1:%d/); sleep 1000" % port],
                         depends_on={"web": "healthy"})
        d = self.daemon(web + client)
        healthy = d.wait_event("health", "web", timeout=30, where=lambda e: e["health"] == "healthy")[0]
        started = d.wait_event("started", "client", timeout=10)[0]
        self.assertGreaterEqual(started["seq"], healthy["seq"])
        d.wait_for(lambda: b"got ok" in d.read_log("client"), 10, what="client reached the container")
        t0 = time.monotonic()
        d.stop(timeout=30)
        self.assertLess(time.monotonic() - t0, 15)

    def test_daemon_crash_reattaches_and_stop_stops(self):
        text = container("ticker", ["sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"])
        d = self.daemon(text)
        d.wait_event("started", "ticker", timeout=20)
        d.wait_for(lambda: b"tick 3" in d.read_log("ticker"), 10, what="ticks")
        cid = inspect("ticker", "{{.Id}}")
        pid = inspect("ticker", "{{.State.Pid}}")
        self.assertTrue(cid)
        d.kill9()
        # The container outlived the crashed daemon.
        self.assertEqual(inspect("ticker", "{{.State.Status}}"), "running")
        before = d.read_log("ticker")
        attached_before = len(d.events_of("ticker", "attached"))
        d.start()
        d.wait_event("attached", "ticker", count=attached_before + 1, timeout=20)
        self.assertEqual(inspect("ticker", "{{.Id}}"), cid, "re-attached, not recreated")
        self.assertEqual(inspect("ticker", "{{.State.Pid}}"), pid)
        d.wait_for(lambda: svc(d, "ticker")["state"] == "running", 10, what="running after the crash")
        self.assertEqual(svc(d, "ticker")["pid"], int(pid))
        # Logs flow again into the same files.
        d.wait_for(lambda: len(d.read_log("ticker")) > len(before) + 20, 10, what="new ticks after the crash")
        self.assertEqual(len(d.events_of("ticker", "started")), 1)
        # systemctl stop (SIGTERM) stops a container like a process: nothing is left running.
        d.stop(timeout=30)
        self.assertEqual(d.events_of("ticker", "detached"), [])
        d.wait_event("stopped", "ticker")
        d.wait_for(lambda: "dockless-ticker" not in container_names(), 10, what="container removed at stop")
        # A container a crash left behind whose service left the config: the next boot
        # stops and removes it.
        d.start()
        d.wait_event("started", "ticker", count=2, timeout=20)
        d.kill9()
        d.write_config(service("other", ["sleep", "1000"]))
        d.start()
        d.wait_event("orphan_stopped", "ticker", timeout=30)
        d.wait_for(lambda: "dockless-ticker" not in container_names(), 10, what="orphan removed")
        d.stop()

    def test_missing_cli_fails_that_service_only(self):
        d = self.daemon(container("ghost", ["true"], docker_cli="/nonexistent/docker", restart_limit=1,
                                  restart_delay="100ms")
                        + service("native", ["sleep", "1000"]))
        d.wait_running("native", timeout=10)
        ev = d.wait_event("spawn_failed", "ghost", timeout=10)[0]
        self.assertIn("/nonexistent/docker", ev["error"])
        d.wait_for(lambda: svc(d, "ghost")["state"] in ("backoff", "failed"), 10, what="ghost backoff")
        s = svc(d, "ghost")
        self.assertIn("/nonexistent/docker", s["last_error"])
        self.assertIsNone(s["pid"])
        self.assertEqual(svc(d, "native")["state"], "running")
        self.assertTrue(d.running())
        d.stop()

    def test_unreachable_engine_fails_that_service_only(self):
        # A real CLI whose engine is not there: podman in remote mode against a socket
        # nobody listens on (what `docker` prints when dockerd is down, in podman's words).
        cli = os.path.join(ENGINE["dir"], "docker-no-engine")
        with open(cli, "w") as f:
            f.write("#!/bin/sh\nexec %s --remote --url unix://%s/no-engine.sock \"$@\"\n" % (PODMAN, ENGINE["dir"]))
        os.chmod(cli, 0o755)
        d = self.daemon(container("noengine", ["true"], docker_cli=cli, restart_limit=1, restart_delay="100ms")
                        + service("native", ["sleep", "1000"]))
        d.wait_running("native", timeout=10)
        ev = d.wait_event("spawn_failed", "noengine", timeout=20)[0]
        self.assertIn("no-engine.sock", ev["error"])  # the CLI's own words reach the operator
        d.wait_for(lambda: svc(d, "noengine")["state"] in ("backoff", "failed"), 20, what="noengine backoff")
        self.assertIsNone(svc(d, "noengine")["pid"])
        self.assertEqual(svc(d, "native")["state"], "running")
        self.assertTrue(d.running())
        d.stop()


if __name__ == "__main__":
    harness.main()
