"""A throwaway podman for tests (e2e_docker, export_compose_run).

Everything the engine makes lives in a temp dir named by a test-owned CONTAINERS_CONF and
CONTAINERS_STORAGE_CONF: images, containers, and the network definitions (network_config_dir),
so closing the engine removes them all and the machine's own podman state is never touched.
The image is a busybox-static rootfs imported without a registry. The settings are the ones this
machine needs (/work/shared/RECIPES.md, "Containers"): root here cannot raise RLIMIT_NOFILE past
20000, and crun refuses this cgroup layout (runc is used)."""
import os
import shutil
import subprocess
import tempfile

PODMAN = shutil.which("podman")
BUSYBOX = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)
APPLETS = ("sh", "sleep", "echo", "cat", "httpd", "mkdir", "true", "env", "wget")


class Unavailable(Exception):
    """podman cannot run a container here (the caller skips, exit 77)."""


class NetNs:
    """A network namespace of the test's own, held by a sleeping process: a bridge network,
    its iptables chains and ip_forward (all per namespace) go with it instead of changing the
    machine's. Commands enter it with nsenter."""

    def __init__(self):
        self.holder = subprocess.Popen(["unshare", "--net", "sleep", "infinity"])
        self.prefix = ["nsenter", "--target", str(self.holder.pid), "--net", "--"]
        for _ in range(100):  # until unshare has exec'd sleep in the new namespace
            if os.readlink("/proc/%d/ns/net" % self.holder.pid) != os.readlink("/proc/self/ns/net"):
                break
            subprocess.run(["sleep", "0.02"])
        subprocess.run(self.prefix + ["ip", "link", "set", "lo", "up"], check=True)

    def close(self):
        self.holder.kill()
        self.holder.wait()


class Engine:
    def __init__(self, image, prefix="dockless-podman-", netns=None):
        if PODMAN is None:
            raise Unavailable("podman not found (tools/deps.sh --test installs it)")
        if BUSYBOX is None:
            raise Unavailable("busybox-static not found (tools/deps.sh --test installs it)")
        self.image = image
        self.netns = netns
        self.dir = d = tempfile.mkdtemp(prefix=prefix)
        with open(os.path.join(d, "containers.conf"), "w") as f:
            f.write('[containers]\ndefault_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]\n'
                    '[engine]\nruntime = "runc"\n[network]\nnetwork_backend = "netavark"\n'
                    'network_config_dir = "%s/networks"\n' % d)
        with open(os.path.join(d, "storage.conf"), "w") as f:
            f.write('[storage]\ndriver = "overlay"\ngraphroot = "%s/graph"\nrunroot = "%s/run"\n' % (d, d))
        os.mkdir(os.path.join(d, "networks"))
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(d, "containers.conf"),
                        CONTAINERS_STORAGE_CONF=os.path.join(d, "storage.conf"))
        rootfs = os.path.join(d, "rootfs")
        os.makedirs(os.path.join(rootfs, "bin"))
        os.makedirs(os.path.join(rootfs, "tmp"))
        shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for applet in APPLETS:
            os.symlink("busybox", os.path.join(rootfs, "bin", applet))
        tar = os.path.join(d, "rootfs.tar")
        subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True)
        try:
            self.podman("import", tar, image)
            r = self.podman("run", "--rm", "--network=host", image, "echo", "engine-ok", check=False)
        except (AssertionError, subprocess.TimeoutExpired) as e:
            self.close()
            raise Unavailable("podman cannot run a container here: %s" % e) from None
        if r.returncode != 0 or "engine-ok" not in r.stdout:
            self.close()
            raise Unavailable("podman cannot run a container here: %s" % r.stderr.strip())

    def run(self, argv, timeout=60, check=True):
        """Runs argv with the engine's configuration (inside its network namespace, if any)."""
        prefix = self.netns.prefix if self.netns else []
        r = subprocess.run(prefix + argv, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError("%s: %s" % (" ".join(argv), r.stderr.strip()))
        return r

    def podman(self, *args, timeout=60, check=True):
        return self.run([PODMAN] + list(args), timeout=timeout, check=check)

    def close(self):
        """Removes every container, network definition and image of the engine, then its dir."""
        self.podman("rm", "-af", "-t", "0", check=False)
        self.podman("network", "prune", "-f", check=False)
        self.podman("rmi", "-af", check=False)
        subprocess.run(["umount", "-R", os.path.join(self.dir, "graph")], capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)
