"""systemd's file-descriptor store: the daemon hands each service's pipe ends to the
notify socket (FDSTORE=1, FDNAME=svc.NAME.stdout/stderr, SCM_RIGHTS), removes them when
the instance is gone (FDSTOREREMOVE=1), and after a kill -9 takes them back from
LISTEN_FDS/LISTEN_FDNAMES: the writer never met a pipe without a reader, so nothing it
wrote meanwhile is lost. Also: an upgrade carries NOTIFY_SOCKET over to the new image.
The test's socket plays systemd and keeps the fds it receives."""
import os
import re
import socket
import subprocess
import threading
import time

from sd_harness import ApiDaemon, NotifySink, TestCase, main, service, wait_for
import harness

WRITER = r'''
import itertools, sys, time
for i in itertools.count(1):
    sys.stdout.write("out %d\n" % i); sys.stdout.flush()
    time.sleep(0.001)
'''

# As systemd does between fork and exec: the stored fds at 3, 4, ... and LISTEN_PID.
EXEC_WRAPPER = r"""
import os, sys
fds = [int(f) for f in os.environ.pop("TEST_FDS").split(",")]
tmp = [os.dup(f) for f in fds]
for i, f in enumerate(tmp):
    if f != 3 + i:
        os.dup2(f, 3 + i)
    os.set_inheritable(3 + i, True)  # os.dup's copies are not, and dup2(f, f) changes nothing
os.environ["LISTEN_PID"] = str(os.getpid())
os.execv(sys.argv[1], sys.argv[1:])
"""


class FdStore(NotifySink):
    """The notify socket, keeping the fds of FDSTORE=1 by FDNAME as systemd does."""

    def __init__(self, address):
        self.store = {}  # FDNAME -> [fd]
        super().__init__(address)

    def _pump(self):
        while not self.done:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 65536, 16)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            fields = dict(l.split("=", 1) for l in text.split("\n") if "=" in l)
            with self.lock:
                name = fields.get("FDNAME", "stored")
                if fields.get("FDSTOREREMOVE") == "1":
                    for fd in self.store.pop(name, []):
                        os.close(fd)
                if fields.get("FDSTORE") == "1":
                    self.store.setdefault(name, []).extend(fds)
                else:
                    for fd in fds:
                        os.close(fd)
                self.received.append((time.monotonic(), text))

    def stored(self):
        with self.lock:
            return {k: list(v) for k, v in self.store.items() if v}

    def close(self):
        super().close()
        for fds in self.store.values():
            for fd in fds:
                os.close(fd)


class StoreDaemon(ApiDaemon):
    """ApiDaemon that can be started with the store's fds as LISTEN_FDS."""
    handed = None  # [(name, fd)]

    def argv(self):
        base = super().argv()
        return ["python3", "-c", EXEC_WRAPPER] + base if self.handed else base

    def start(self, wait=True, timeout=10.0):
        if not self.handed:
            return super().start(wait, timeout)
        self.extra_env.update({"LISTEN_FDS": str(len(self.handed)),
                               "LISTEN_FDNAMES": ":".join(n for n, _ in self.handed),
                               "TEST_FDS": ",".join(str(fd) for _, fd in self.handed)})
        orig = subprocess.Popen

        def popen(*a, **kw):
            kw["pass_fds"] = tuple(fd for _, fd in self.handed)
            return orig(*a, **kw)
        subprocess.Popen = popen
        try:
            return super().start(wait, timeout)
        finally:
            subprocess.Popen = orig


def numbers(data):
    return [int(m.group(1)) for m in re.finditer(rb"^out (\d+)$", data, re.M)]


class StoreTestCase(TestCase):
    """Tests whose daemons hand their fds to a StoreDaemon's fd store (also sockets_store_test)."""

    def daemon(self, config_text, start=True, **kw):
        d = StoreDaemon(config_text, **kw)
        self.addCleanup(self._cleanup_daemon, d)
        if start:
            d.start()
        return d


class FdStoreTest(StoreTestCase):

    def test_pipes_survive_a_crash_in_the_store(self):
        d = self.daemon(None, start=False)
        sink = FdStore(os.path.join(d.dir, "notify.sock"))
        self.addCleanup(sink.close)
        d.extra_env["NOTIFY_SOCKET"] = sink.address
        d.write_config(service("writer", ["python3", "-c", WRITER]))
        d.start()
        sink.wait_text("READY=1")
        sink.wait(lambda m: {"svc.writer.stdout", "svc.writer.stderr"} <= set(sink.stored()), 10,
                  what="the writer's pipes stored")
        pid = d.wait_running("writer")

        # An upgrade keeps NOTIFY_SOCKET (serve() strips it from the environment at
        # start; the blob carries it): the new image says READY=1 to the same socket.
        n = len(sink.texts())
        rc, out, err = self.run_cli(["--socket", d.sock, "upgrade"], cwd=d.dir, timeout=60)
        self.assertEqual(rc, 0, out + err)
        sink.wait_text("READY=1", after=n)
        self.assertEqual(d.wait_running("writer"), pid)

        time.sleep(0.3)
        old_max = d.events()[-1]["seq"]
        d.kill9()
        # No daemon for a while: the writer goes on writing into pipes the store keeps open.
        time.sleep(0.5)
        self.assertTrue(harness.alive(pid), "the writer died without a daemon (EPIPE/SIGPIPE?)")
        d.wait_for(lambda: harness.port_is_free(d.port), 10, what="port free again")
        stored = sink.stored()
        d.handed = [(name, fds[-1]) for name, fds in sorted(stored.items())]
        d.start()
        att = d.wait_event("attached", "writer", where=lambda e: e["seq"] > old_max, timeout=10)[0]
        self.assertEqual((att["pid"], att["from"]), (pid, "crash"))
        self.assertIn("fd store", att["output"])
        self.assertEqual(d.events_of("writer", "started"), d.events_of("writer", "started")[:1])
        # Every line once, none missing: what was written with no daemon waited in the pipe.
        d.wait_for(lambda: len(numbers(d.read_log("writer"))) > 2500, 15, what="output after the crash")
        nums = numbers(d.read_log("writer"))
        self.assertEqual(nums, list(range(1, len(nums) + 1)))

        # The instance gone: its pipes leave the store.
        n = len(sink.texts())
        self.assertEqual(d.json("POST", "/v1/services/writer/stop")[0], 202)
        sink.wait(lambda m: any(t == "FDSTOREREMOVE=1\nFDNAME=svc.writer.stdout" for _, t in m[n:]), 10,
                  what="FDSTOREREMOVE of the stdout pipe")
        d.wait_for(lambda: "svc.writer.stdout" not in sink.stored(), 5, what="store emptied")
        d.stop()
        self.assertEqual(d.survivors(), [])


if __name__ == "__main__":
    main()
