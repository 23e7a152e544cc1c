"""dockless export --format compose, run for real: podman-compose (tools/deps.sh --test) brings the
exported file up with a local busybox image, the containers run with the exported command, env,
port, restart policy and health check, and `podman-compose down` leaves nothing behind.

The engine is test-owned (tests/e2e/podman_engine.py) and everything runs in a network namespace
of the test's own: podman-compose puts every container on a bridge network, whose interface,
iptables chains and ip_forward then live and die with that namespace, never on the machine.

Fails when podman-compose is missing; skips (77) only when podman itself cannot run a container
here, as e2e_docker does."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import podman_engine  # noqa: E402

BIN = os.environ["DOCKLESS_BIN"]
IMAGE = "localhost/dockless-export:1"
PROJECT = "dlexport"
NETWORK = "dlexport-net"  # made by the test: the `network = NAME` path (an external network)
PORT = 18080  # in the test's own network namespace: no other test can hold it
CONFIG = """
[services.web]
image = "{image}"
network = "{network}"
docker_args = ["--init"]
command = ["sh", "-c", "mkdir -p /www && echo \\"hello $GREETING\\" > /www/index.html && exec httpd -f -p $PORT -h /www"]
port = {port}
env = {{ GREETING = "from export" }}
restart = "always"
stop_timeout = "2s"
health = {{ http = "http://127.0.0.1:${{PORT}}/", interval = "1s", timeout = "2s" }}
[services.once]
image = "{image}"
network = "{network}"
command = ["env"]
env = {{ MARK = "once ran" }}
restart = "no"
depends_on = ["web"]
""".format(image=IMAGE, network=NETWORK, port=PORT)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)
    return cond


def wait_for(what, fn, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.2)
    check(False, "timed out: " + what)
    return None


def inspect(engine, name):
    r = engine.podman("inspect", "--type", "container", name, check=False)
    return json.loads(r.stdout)[0] if r.returncode == 0 else None


def project_containers(engine):
    r = engine.podman("ps", "-a", "--filter", "label=io.podman.compose.project=" + PROJECT, "--format", "{{.Names}}")
    return set(r.stdout.split())


def networks(engine):
    return set(engine.podman("network", "ls", "--format", "{{.Name}}").stdout.split())


def host_state():
    """What a bridge network would change on the machine if it escaped the namespace."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
    ours = sorted(n for n in (line.split(":")[1].strip() for line in links) if n.startswith(("podman", "veth")))
    return open("/proc/sys/net/ipv4/ip_forward").read().strip(), ours


def compose(engine, tmp, *args):
    r = engine.run(["podman-compose", "-p", PROJECT, "-f", os.path.join(tmp, "compose.yaml")] + list(args),
                   timeout=120, check=False)
    print("$ podman-compose %s (exit %d)\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
    return r


def run(engine, tmp):
    cfg = os.path.join(tmp, "config.toml")
    open(cfg, "w").write(CONFIG)
    r = subprocess.run([BIN, "export", "--format", "compose", "--config", cfg, "--output", tmp],
                       capture_output=True, text=True, timeout=30)
    if not check(r.returncode == 0, "compose export: " + r.stderr):
        return
    print(open(os.path.join(tmp, "compose.yaml")).read())
    # No DNS: aardvark-dns keeps one config dir in /run for every podman, whatever its namespace.
    engine.podman("network", "create", "--disable-dns", NETWORK)
    before = networks(engine)

    r = compose(engine, tmp, "up", "-d")
    # podman-compose 1.0.3 exits 0 even when a container failed to start: the containers tell.
    check(r.returncode == 0, "podman-compose up exit %d" % r.returncode)
    web, once = PROJECT + "_web_1", PROJECT + "_once_1"
    check(project_containers(engine) == {web, once}, "containers after up: %s" % project_containers(engine))

    w = wait_for("web running", lambda: (inspect(engine, web) or {}).get("State", {}).get("Running") and inspect(engine, web))
    if w:
        cmd = w["Config"]["Cmd"]
        check(cmd[:2] == ["sh", "-c"] and "httpd -f -p %d" % PORT in cmd[2] and '"hello $GREETING"' in cmd[2],
              "web command (port written in, $$ back to $): %s" % cmd)
        env = dict(e.split("=", 1) for e in w["Config"]["Env"])
        check(env.get("GREETING") == "from export" and env.get("PORT") == str(PORT), "web env: %s" % env)
        check(w["HostConfig"].get("Init") is True, "web runs without --init (init: true)")
        check(w["HostConfig"]["RestartPolicy"]["Name"] == "always", "web restart: %s" % w["HostConfig"]["RestartPolicy"])
        check(NETWORK in w["NetworkSettings"]["Networks"], "web networks: %s" % list(w["NetworkSettings"]["Networks"]))
        check("wget" in " ".join(w["Config"].get("Healthcheck", {}).get("Test", [])),
              "web health check: %s" % w["Config"].get("Healthcheck"))
        # The published port, from the namespace's loopback: the page the command wrote with $GREETING.
        got = wait_for("web answers on 127.0.0.1:%d" % PORT, lambda: engine.run(
            ["curl", "-s", "-m", "2", "http://127.0.0.1:%d/" % PORT], check=False).stdout)
        check(got == "hello from export\n", "web page: %r" % got)
        # No systemd here to schedule health checks: run the exported one once by hand.
        h = engine.podman("healthcheck", "run", web, check=False)
        check(h.returncode == 0, "exported health check in the container: exit %d %s%s" % (h.returncode, h.stdout, h.stderr))

    o = wait_for("once exited", lambda: (inspect(engine, once) or {}).get("State", {}).get("Status") == "exited" and inspect(engine, once))
    if o:
        check(o["State"]["ExitCode"] == 0, "once exit code %s" % o["State"]["ExitCode"])
        check(o["HostConfig"]["RestartPolicy"]["Name"] in ("", "no"), "once restart: %s" % o["HostConfig"]["RestartPolicy"])
        logs = engine.podman("logs", once).stdout
        check("MARK=once ran\n" in logs and "PORT=" not in logs, "once's env output: %r" % logs)

    t0 = time.monotonic()
    r = compose(engine, tmp, "down")
    check(r.returncode == 0, "podman-compose down exit %d" % r.returncode)
    # With --init, SIGTERM stops httpd at once (podman-compose 1.0.3 waits 10 s before SIGKILL).
    check(time.monotonic() - t0 < 8, "down took %.1f s: SIGTERM did not stop web" % (time.monotonic() - t0))
    check(project_containers(engine) == set(), "containers after down: %s" % project_containers(engine))
    pods = engine.podman("pod", "ps", "--format", "{{.Name}}").stdout.split()
    check(pods == [], "pods after down: %s" % pods)
    made = networks(engine) - before
    # podman-compose before 1.3 leaves the project's default network (containers/podman-compose#490).
    if PROJECT + "_default" in made:
        print("note: podman-compose down left %s_default; removed by the test" % PROJECT)
        engine.podman("network", "rm", PROJECT + "_default")
        made.discard(PROJECT + "_default")
    check(made == set(), "networks left by the run: %s" % made)
    ns = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
    check(ns <= NETNS_BEFORE, "container network namespaces left: %s" % (ns - NETNS_BEFORE))


if shutil.which("podman-compose") is None:
    print("FAIL: podman-compose not installed (tools/deps.sh --test)")
    sys.exit(1)
HOST_BEFORE = host_state()
NETNS_BEFORE = set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()
tmp = tempfile.mkdtemp(prefix="dockless-export-run-")
netns = engine = None
try:
    netns = podman_engine.NetNs()
    engine = podman_engine.Engine(IMAGE, prefix="dockless-export-run-", netns=netns)
    run(engine, tmp)
except podman_engine.Unavailable as e:
    print("skipping: %s" % e, file=sys.stderr)
    sys.exit(77)
finally:
    if engine:
        engine.close()  # every container and network of the engine, even after a failure
    if netns:
        netns.close()
    shutil.rmtree(tmp, ignore_errors=True)
check(host_state() == HOST_BEFORE, "the machine's network changed: %s -> %s" % (HOST_BEFORE, host_state()))
sys.exit(1 if failures else 0)
