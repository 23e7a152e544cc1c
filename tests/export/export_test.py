"""dockless export: systemd units pass `systemd-analyze verify`, the Compose YAML is read by
`docker-compose config` (installed by tools/deps.sh --test), the Nomad JSON uses only fields of the
Nomad job specification (listed below; Nomad itself is not packaged in Debian), and every
lossy translation is named on stderr."""
import json, os, shutil, subprocess, sys, tempfile

BIN = os.environ["DOCKLESS_BIN"]
CONFIG = """
[services.web]
command = "python3 -m http.server $PORT"
port = 8080
health = { http = "http://127.0.0.1:${PORT}/" }
restart = "always"
depends_on = ["db"]
memory_max = "256M"
cpu_max = "50%"
pids_max = 64
io_weight = 200
env = { GREETING = "hello 'world' $x %h" }
sockets = [{ listen = "127.0.0.1:18080" }]
[services.db]
image = "docker.io/library/redis:7"
command = ["redis-server", "--save", ""]
"""
# Nomad job specification (API JSON), the fields this exporter may write.
NOMAD = {
    "Job": {"ID", "Name", "Type", "Datacenters", "TaskGroups"},
    "TaskGroup": {"Name", "Count", "Networks", "Services", "RestartPolicy", "Tasks"},
    "Task": {"Name", "Driver", "Config", "Env", "User", "KillTimeout", "KillSignal", "Resources"},
    "Network": {"ReservedPorts", "DynamicPorts"},
    "Port": {"Label", "Value", "To"},
    "Service": {"Name", "Provider", "Checks", "PortLabel"},
    "Check": {"Name", "Type", "Interval", "Timeout", "Path", "PortLabel", "Command", "Args", "TaskName", "CheckRestart"},
    "RestartPolicy": {"Attempts", "Interval", "Delay", "Mode"},
    "Resources": {"CPU", "MemoryMB"},
}
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def export(fmt, out=None):
    args = [BIN, "export", "--format", fmt, "--config", cfg]
    if out:
        args += ["--output", out]
    return subprocess.run(args, capture_output=True, text=True, timeout=30)


def fields(obj, kind):
    check(set(obj) <= NOMAD[kind], f"nomad {kind}: unknown fields {set(obj) - NOMAD[kind]}")


tmp = tempfile.mkdtemp()
cfg = os.path.join(tmp, "config.toml")
open(cfg, "w").write(CONFIG)

# systemd
out = os.path.join(tmp, "units")
os.mkdir(out)
r = export("systemd", out)
check(r.returncode == 0, f"systemd export: {r.stderr}")
names = sorted(os.listdir(out))
check(names == ["db.service", "web.service", "web.socket"], f"unit files: {names}")
web = open(os.path.join(out, "web.service")).read()
for line in ["MemoryMax=268435456", "CPUQuota=50%", "TasksMax=64", "IOWeight=200", "Restart=always",
             "After=db.service", "Requires=db.service", "Environment=PORT=8080", "Requires=web.socket"]:
    check(line in web, f"web.service lacks {line}")
check("not exported: web: health check" in r.stderr, "dropped health check not reported")
if shutil.which("systemd-analyze"):
    v = subprocess.run(["systemd-analyze", "verify"] + [os.path.join(out, n) for n in names],
                       capture_output=True, text=True, env=dict(os.environ, SYSTEMD_LOG_LEVEL="warning"))
    check(v.returncode == 0, f"systemd-analyze verify: {v.stdout}{v.stderr}")
else:
    print("SKIP systemd-analyze verify: not installed")

# compose
r = export("compose")
check(r.returncode == 0, f"compose export: {r.stderr}")
check("placeholder image" in r.stderr, "native service's placeholder image not reported")
compose = os.path.join(tmp, "compose.yaml")
open(compose, "w").write(r.stdout)
# docker-compose is installed by tools/deps.sh --test: without it this check fails, never skips.
check(shutil.which("docker-compose") is not None, "docker-compose not installed (tools/deps.sh --test)")
if shutil.which("docker-compose"):
    v = subprocess.run(["docker-compose", "-f", compose, "config"], capture_output=True, text=True, timeout=60)
    check(v.returncode == 0, f"docker-compose config: {v.stderr}")
    # The normalised form docker-compose prints: both services, $PORT already the fixed port
    # (a Compose command has no shell to expand it), the port published.
    for want in ["  db:\n", "  web:\n", "- http.server\n    - '8080'\n", "published: 8080", "image: docker.io/library/redis:7"]:
        check(want in v.stdout, f"docker-compose config output lacks {want!r}:\n{v.stdout}")

# compose: networks and docker_args as the docker executor uses them
open(cfg, "w").write("""
[services.hostnet]
image = "x/y:1"
network = "host"
port = 8081
docker_args = ["--init"]
[services.named]
image = "x/y:1"
network = "backend"
ports = [8082, 8083]
docker_args = ["--init", "--cap-add", "NET_ADMIN"]
""")
r = export("compose")
check(r.returncode == 0, f"compose export (networks): {r.stderr}")
check("docker_args are not translated to Compose keys: --cap-add NET_ADMIN" in r.stderr,
      f"untranslated docker_args not named: {r.stderr}")
open(compose, "w").write(r.stdout)
if shutil.which("docker-compose"):
    v = subprocess.run(["docker-compose", "-f", compose, "config"], capture_output=True, text=True, timeout=60)
    check(v.returncode == 0, f"docker-compose config (networks): {v.stderr}")
    out = v.stdout
    # The host network publishes nothing (the engine would discard it); a named network is an
    # existing one; every port of `ports` is published; --init is Compose's init.
    check("published: 8081" not in out and "network_mode: host" in out, f"host network service:\n{out}")
    for want in ["published: 8082", "published: 8083", "    networks:\n      backend: null",
                 "  backend:\n    external: true", "init: true"]:
        check(want in out, f"docker-compose config output lacks {want!r}:\n{out}")
open(cfg, "w").write(CONFIG)

# nomad
r = export("nomad")
check(r.returncode == 0, f"nomad export: {r.stderr}")
job = json.loads(r.stdout)["Job"]
fields(job, "Job")
for g in job["TaskGroups"]:
    fields(g, "TaskGroup")
    fields(g["RestartPolicy"], "RestartPolicy")
    for n in g.get("Networks", []):
        fields(n, "Network")
        for p in n.get("ReservedPorts", []) + n.get("DynamicPorts", []):
            fields(p, "Port")
    for s in g.get("Services", []):
        fields(s, "Service")
        for c in s["Checks"]:
            fields(c, "Check")
    for t in g["Tasks"]:
        fields(t, "Task")
        if "Resources" in t:
            fields(t["Resources"], "Resources")
drivers = {g["Name"]: g["Tasks"][0]["Driver"] for g in job["TaskGroups"]}
web_task = next(g["Tasks"][0] for g in job["TaskGroups"] if g["Name"] == "web")
# Nomad runs args without a shell: $PORT is written in, and PORT is in the task's env.
check(web_task["Config"]["args"] == ["-m", "http.server", "8080"], f"nomad web args: {web_task['Config']}")
check(web_task["Env"].get("PORT") == "8080", f"nomad web env: {web_task.get('Env')}")
check(drivers == {"db": "docker", "web": "raw_exec"}, f"drivers: {drivers}")

# names and errors
r = subprocess.run([BIN, "export", "--format", "nomad", "--config", cfg, "nosuch"], capture_output=True, text=True)
check(r.returncode == 1 and "nosuch" in r.stderr, "unknown service name not an error")
r = subprocess.run([BIN, "export", "--format", "xml", "--config", cfg], capture_output=True, text=True)
check(r.returncode == 2, "bad --format not a usage error")
shutil.rmtree(tmp)
sys.exit(1 if failures else 0)
