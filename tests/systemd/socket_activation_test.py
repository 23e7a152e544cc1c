"""Socket activation: the test binds the listeners itself (as systemd would), execs the
daemon with them as fds 3 and 4 (LISTEN_FDS, LISTEN_PID = the daemon's pid,
LISTEN_FDNAMES), then talks to them with curl. The daemon must not bind its own port
or socket, must keep the fds close-on-exec, and no service may inherit them or the
variables."""
import os
import socket
import subprocess

from sd_harness import ApiDaemon, TestCase, environ_of, main, open_fds, service, sh, wait_for

# Puts the listeners at fds 3 and 4 and sets LISTEN_PID to its own pid (which the
# daemon keeps: exec), as systemd does between fork and exec.
EXEC_WRAPPER = r"""
import os, sys
os.dup2(int(os.environ.pop("TEST_TCP_FD")), 3)
os.dup2(int(os.environ.pop("TEST_UNIX_FD")), 4)
os.environ["LISTEN_PID"] = os.environ.pop("TEST_LISTEN_PID", str(os.getpid()))
os.execv(sys.argv[1], sys.argv[1:])
"""


class ActivatedDaemon(ApiDaemon):
    """ApiDaemon whose HTTP port and unix socket come from the test, not from a bind."""

    def __init__(self, config_text, listen_pid=None, **kw):
        super().__init__(config_text, **kw)
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(64)
        self.activated_port = self.tcp.getsockname()[1]
        self.activated_sock = os.path.join(self.dir, "activated.sock")
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(self.activated_sock)
        self.unix.listen(64)
        self.listen_pid = listen_pid
        self.extra_env.update({"LISTEN_FDS": "2", "LISTEN_FDNAMES": "http:cli",
                               "TEST_TCP_FD": str(self.tcp.fileno()),
                               "TEST_UNIX_FD": str(self.unix.fileno())})
        if listen_pid is not None:
            self.extra_env["TEST_LISTEN_PID"] = str(listen_pid)

    def argv(self):
        return ["python3", "-c", EXEC_WRAPPER] + super().argv()

    def start(self, wait=True, timeout=10.0):
        for s in (self.tcp, self.unix):
            os.set_inheritable(s.fileno(), True)
        # Popen passes only fds 0-2 unless told: hand over the two listeners.
        orig = subprocess.Popen

        def popen(*a, **kw):
            kw["pass_fds"] = (self.tcp.fileno(), self.unix.fileno())
            return orig(*a, **kw)
        subprocess.Popen = popen
        try:
            super().start(wait=False)
        finally:
            subprocess.Popen = orig
        # The daemon has its own copies now.
        self.tcp.close()
        self.unix.close()
        return self


def curl_tcp(port, path):
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                        "http://127.0.0.1:%d%s" % (port, path)], capture_output=True, timeout=15)
    return int(p.stdout or 0)


def curl_unix(sock, path):
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5",
                        "--unix-socket", sock, "http://localhost" + path], capture_output=True, timeout=15)
    return int(p.stdout or 0)


def fd_flags(pid, fd):
    with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    return 0


O_CLOEXEC = 0o2000000


class SocketActivation(TestCase):
    def make(self, config, **kw):
        d = ActivatedDaemon(config, **kw)
        self.addCleanup(self._cleanup_daemon, d)
        return d.start()

    def test_serves_the_handed_over_listeners(self):
        d = self.make(service("svc", sh("env; ls -1 /proc/self/fd; exec sleep 1000")))
        wait_for(lambda: curl_tcp(d.activated_port, "/readyz") == 200, 15, what="200 on the activated port",
                 context=d.describe)
        self.assertEqual(curl_unix(d.activated_sock, "/v1/services"), 200)
        # Nothing bound where it would have bound without activation.
        self.assertEqual(curl_tcp(d.port, "/readyz"), 0, "the daemon bound --listen's port too")
        self.assertFalse(os.path.exists(d.sock), "the daemon bound --socket too")
        # The listeners stay close-on-exec in the daemon, and reach no service.
        for fd in (3, 4):
            self.assertTrue(fd_flags(d.pid, fd) & O_CLOEXEC, "fd %d lost close-on-exec" % fd)
        # (/proc/PID/environ of the daemon shows its environment as exec'd, not after
        # unsetenv: what matters is what its children get.)
        pid = d.wait_running("svc")
        env = environ_of(pid)
        for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES"):
            self.assertNotIn(k, env)
        self.assertEqual(open_fds(pid), [0, 1, 2])
        d.stop()
        self.assertTrue(os.path.exists(d.activated_sock), "an adopted socket's file is not ours to remove")

    def test_listen_pid_of_another_process_is_ignored(self):
        # LISTEN_PID names someone else: the fds are not for us, bind as configured.
        d = self.make(service("svc", ["sleep", "1000"]), listen_pid=1)
        wait_for(lambda: curl_tcp(d.port, "/readyz") == 200, 15, what="200 on --listen's port",
                 context=d.describe)
        self.assertEqual(curl_tcp(d.activated_port, "/readyz"), 0)
        d.stop()


if __name__ == "__main__":
    main()
