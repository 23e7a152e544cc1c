"""cgroup v2 helpers for the tests: where the hierarchy is, where a process sits, where a
daemon started from here makes its subtree (runtime/cgroup.hpp), and removing what a
killed daemon left there."""
import os
import time


def _unescape(s):
    return s.encode().decode("unicode_escape")  # mountinfo's \040 and friends


def mount():
    """(mount point, root) of the first cgroup2 mount, or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            if tail.split()[:1] == ["cgroup2"]:
                fields = head.split()
                return _unescape(fields[4]), _unescape(fields[3])
    return None


def of(pid="self"):
    """The cgroup2 path ("0::/path") of a process, or None."""
    try:
        with open("/proc/%s/cgroup" % pid) as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].rstrip("\n")
    except OSError:
        pass
    return None


def fs_path(path):
    """The directory of a cgroup2 path, or None when no cgroup2 shows it."""
    m = mount()
    if m is None or path is None:
        return None
    point, root = m
    if root == "/":
        return point + (path if path != "/" else "")
    if path == root:
        return point
    return point + path[len(root):] if path.startswith(root + "/") else None


def base_name(data_dir):
    """runtime::CgroupTree::base_name of a data dir: "dockless." + FNV-1a, 12 hex digits."""
    h = 1469598103934665603
    for b in os.path.realpath(data_dir).encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "dockless." + ("%016x" % h)[:12]


def daemon_dir(data_dir):
    """Where a daemon started by this process on `data_dir` makes its cgroup subtree."""
    own = of()
    if own is None:
        return None
    return fs_path((own.rstrip("/") or "") + "/" + base_name(data_dir))


def remove_tree(fs_dir, timeout=10.0):
    """Kills whatever is left in a cgroup subtree and removes it, deepest first. A clean
    daemon exit removes its own; a killed daemon leaves it to this."""
    if not fs_dir or not os.path.isdir(fs_dir):
        return
    for root, _, _ in os.walk(fs_dir, topdown=False):
        try:
            with open(os.path.join(root, "cgroup.kill"), "w") as f:
                f.write("1")
        except OSError:
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(os.path.join(root, "cgroup.events")) as f:
                    if "populated 0" in f.read():
                        break
            except OSError:
                break
            time.sleep(0.02)
        try:
            os.rmdir(root)
        except OSError:
            pass
