#!/usr/bin/env python3
"""fd exhaustion: the daemon runs under a low RLIMIT_NOFILE (prlimit) and clients open more
connections than it has fds. Accepting then fails with EMFILE: the daemon must back off rather
than spin on the ready backlog (its CPU time stays low), keep supervising (a killed service is
restarted), and serve again once the connections close."""
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib  # noqa: E402
from faultlib import count_marked, cpu_seconds, fd_count, harness, service  # noqa: E402

NOFILE = 96
STEADY = "faults-fd-steady-2091"
CONFIG = ("[http]\nmax_connections_per_client = 0\n\n"
          + service("steady", ["sh", "-c", "sleep 100000; :", STEADY], restart_delay="0s")
          + service("ticker", ["sh", "-c", "while :; do echo tick; sleep 0.2; done"]))


def hold_connections(port, n):
    """n connections that each made one keep-alive request; those the daemon never accepted
    sit in the listen backlog (the kernel completed their handshake). Returns the sockets."""
    socks = []
    req = ("GET /health HTTP/1.1\r\nHost: x\r\n\r\n").encode()
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(req)
        socks.append(s)
    return socks


def replaced(d, old, timeout):
    """The pid of a running instance other than `old`, per state.json and /proc."""
    def found():
        s = d.service_state("steady") or {}
        pid = s.get("pid")
        return pid if s.get("state") == "running" and pid and pid != old and harness.alive(pid) else None
    return d.wait_for(found, timeout, what="steady replaced")


class FdExhaustionTest(faultlib.TestCase):
    def test_emfile_backs_off_keeps_supervising_and_recovers(self):
        harness.require("prlimit")
        d = self.daemon(CONFIG, prefix=["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--"])
        c = self.client(d)
        steady = d.wait_running("steady")
        d.wait_running("ticker")
        with open("/proc/%d/limits" % d.pid) as f:
            self.assertIn("%d" % NOFILE, [l for l in f if "open files" in l][0])
        fds_idle = fd_count(d.pid)
        c.close()

        socks = hold_connections(d.port, NOFILE * 2)
        self.addCleanup(lambda: [s.close() for s in socks])
        # The daemon took as many as it could, short of a reserve for supervision
        # (RLIMIT_NOFILE / 8, at least 16), and then stops taking more.
        d.wait_for(lambda: fd_count(d.pid) >= NOFILE - 20, 10, what="the daemon's fd table full")
        cpu0, t0 = cpu_seconds(d.pid), time.monotonic()
        time.sleep(2.0)
        cpu = cpu_seconds(d.pid) - cpu0
        wall = time.monotonic() - t0
        # A loop retrying accept on EMFILE would burn a whole core; backing off costs ~nothing.
        self.assertLess(cpu, 0.25 * wall, "daemon busy while out of fds: %.2f s CPU in %.1f s" % (cpu, wall))

        # Supervision goes on while clients hold every fd they can get: a killed service
        # comes back at once (its spawn needs pipes, a pidfd, log files: the reserve). Before
        # the reserve, each respawn failed with EMFILE and the service was parked in `failed`.
        os.kill(steady, signal.SIGKILL)
        restarted_while_full = replaced(d, steady, 5)
        self.assertEqual(d.events_of("steady", "spawn_failed"), [])
        full_fds = fd_count(d.pid)
        self.assertLess(full_fds, NOFILE)

        for s in socks:
            s.close()
        # Recovery: connections released, a new client is served, the service is running.
        d.wait_for(lambda: fd_count(d.pid) <= fds_idle + 4, 15, what="connections released")
        status, body, _ = c.request("GET", "/v1/services")
        self.assertEqual(status, 200)
        new_steady = restarted_while_full or replaced(d, steady, 15)
        self.assertNotEqual(new_steady, steady)
        # Running is published at spawn; the argv carries the marker once the child has exec'd.
        d.wait_for(lambda: [p.pid for p in count_marked(STEADY)] == [new_steady], 5,
                   what="exactly one steady instance, the new one")
        self.assertEqual(c.services()["ticker"]["state"], "running")
        spawn_failures = d.events_of("steady", "spawn_failed")
        sys.stderr.write("\n  NOFILE %d: %d fds idle, %d full; %.2f s CPU in %.1f s while full; "
                         "killed service restarted %s; %d spawn failures meanwhile\n"
                         % (NOFILE, fds_idle, full_fds, cpu, wall,
                            "while full" if restarted_while_full else "after release",
                            len(spawn_failures)))
        d.stop()
        self.assertNothingLeft(d)


if __name__ == "__main__":
    faultlib.main()
