"""Disk writes of an idle daemon, extrapolated to an hour: the SD-card-wear rows of
supervisor_bench.py (`--only sdcard`). On a Raspberry Pi every byte written while nothing
happens wears the card, so the goal is none at all.

Three views of one idle window, because each misses something:
- `write_bytes` of /proc/PID/io (all threads, io_uring's io-wq workers included): bytes the
  daemon dirtied for the block layer, i.e. what reaches the card. Always 0 on tmpfs.
- `syscw`: write(2)-family calls. Writes submitted through io_uring are not counted here.
- the files under the daemon's directories whose size or mtime changed, or that appeared
  or vanished: says *what* was written, on any file system.
"""
import os
import time

IO_FIELDS = ("write_bytes", "syscw", "wchar", "cancelled_write_bytes")


def proc_io(pid):
    out = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in IO_FIELDS:
                out[key] = int(value)
    return out


def tree_state(root):
    """{path relative to root: (size, mtime_ns)} of every regular file under root."""
    state = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except FileNotFoundError:
                continue  # replaced (an atomic rename) between listing and stat
            state[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return state


def fs_type(path):
    """File system type of the mount holding path (the longest matching mount point)."""
    path, best, kind = os.path.realpath(path), "", "?"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mount_point = fields[4].replace("\\040", " ")
            fstype = fields[fields.index("-") + 1]
            inside = path == mount_point or path.startswith(mount_point.rstrip("/") + "/")
            if inside and len(mount_point) >= len(best):
                best, kind = mount_point, fstype
    return kind


def measure(pid, watch_dir, window, check_alive):
    """Idles for `window` seconds (checking every second that the daemon still runs) and
    returns the counters' growth per hour plus the files that changed in watch_dir."""
    io0, files0, t0 = proc_io(pid), tree_state(watch_dir), time.monotonic()
    deadline = t0 + window
    while (left := deadline - time.monotonic()) > 0:
        time.sleep(min(1.0, left))
        check_alive()
    io1, files1, elapsed = proc_io(pid), tree_state(watch_dir), time.monotonic() - t0
    per_hour = 3600.0 / elapsed
    changed = sorted(p for p in files0.keys() | files1.keys() if files0.get(p) != files1.get(p))
    return {"wbytes_h": (io1["write_bytes"] - io0["write_bytes"]) * per_hour,
            "syscw_h": (io1["syscw"] - io0["syscw"]) * per_hour,
            "files": len(changed), "changed": changed, "fstype": fs_type(watch_dir)}
