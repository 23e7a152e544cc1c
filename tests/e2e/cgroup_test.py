#!/usr/bin/env python3
"""cgroup v2 containment with the real daemon: each native instance runs in
BASE/svc.NAME, GET /v1/services names it, and a stop leaves nothing of the service
running, whatever it did with setsid and double forks — by the stop signal when its
processes heed it, by cgroup.kill after stop_timeout when they do not. An instance
adopted after a kill -9 of the daemon is found in its cgroup again, and an upgrade's exec
finds the daemon's subtree and every instance's cgroup as they were. Without any
cgroup2 (the daemon in a mount namespace where it is unmounted) supervision works with
process groups and says so ("cgroup": null). Needs root and a writable cgroup2 (the
development machines' /sys/fs/cgroup/unified); skipped otherwise."""
import os
import signal
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
import cgroups  # noqa: E402
import harness  # noqa: E402
from harness import service, sh  # noqa: E402
import api_harness  # noqa: E402

# Four sleeps, each marked by its argv (sleep 10xx): one the leader execs into, one in
# a setsid'ed session, two double-forked (their parent shell exits at once) and one of
# those in a session of its own too. The process-group stop reaches only the leader.
ESCAPER = ("setsid sh -c 'sleep 1041 & wait' & "
           "(sleep 1042 &) ; (setsid sleep 1043 &) ; exec sleep 1044")
MARKS = ["1041", "1042", "1043", "1044"]
# For adoption after a crash: recovery stops every process that still carries the
# daemon's marker but is not in the adopted instance's process group, so the escapee
# here also drops its environment (env -i), as a service may; only its cgroup still
# says whose it is.
ADOPTEE = "(env -i setsid sleep 1043 &) ; (sleep 1042 &) ; exec sleep 1044"
# The same, but every process ignores SIGTERM (an ignored disposition survives exec):
# only the kill after stop_timeout ends it.
STUBBORN = "trap '' TERM; " + ESCAPER


def cgroup2_writable():
    if os.geteuid() != 0:
        return False
    own = cgroups.fs_path(cgroups.of())
    if not own:
        return False
    probe = os.path.join(own, "cgtest-probe.%d" % os.getpid())
    try:
        os.mkdir(probe)
        os.rmdir(probe)
        return True
    except OSError:
        return False


def sleepers():
    """Live processes running one of our marked sleeps: {mark: pid}."""
    out = {}
    for pid, p in harness.processes().items():
        if p.state != "Z" and len(p.cmdline) == 2 and p.cmdline[0].endswith("sleep") and p.cmdline[1] in MARKS:
            out[p.cmdline[1]] = pid
    return out


class CgroupTest(api_harness.TestCase):
    def setUp(self):
        if not cgroup2_writable():
            self.skipTest("needs root and a writable cgroup2")
        left = sleepers()
        self.assertEqual(left, {}, "marked sleeps from elsewhere would confuse this test")

    def svc(self, d, name):
        status, body = d.json("GET", "/v1/services/" + name)
        self.assertEqual(status, 200, body)
        return body

    def listed(self, d, name):
        status, body = d.json("GET", "/v1/services")
        self.assertEqual(status, 200, body)
        items = body["services"] if isinstance(body, dict) else body
        return next(s for s in items if s["name"] == name)

    def wait_all_sleeping(self, d, count=4):
        return d.wait_for(lambda: (lambda s: s if len(s) == count else None)(sleepers()), 10,
                          what="the %d marked sleeps" % count)

    def check_placed(self, d, name, pids):
        base = cgroups.of().rstrip("/") + "/" + cgroups.base_name(d.data_dir)
        want = base + "/svc." + name
        self.assertEqual(self.svc(d, name)["cgroup"], want)
        self.assertEqual(self.listed(d, name)["cgroup"], want)
        for mark, pid in pids.items():
            self.assertEqual(cgroups.of(pid), want, "sleep %s" % mark)
        self.assertEqual(cgroups.of(d.pid), base + "/supervisor")
        return cgroups.fs_path(want)

    def stop_and_check_nothing_survives(self, d, name, fs_dir):
        status, body = d.json("POST", "/v1/services/%s/stop" % name)
        self.assertIn(status, (200, 202), body)
        d.wait_for(lambda: self.svc(d, name)["state"] == "stopped", 30, what="%s stopped" % name)
        # Stopped means empty: nothing to wait for any more.
        self.assertEqual(sleepers(), {})
        self.assertEqual([p for p in d.survivors() if p.pid != d.pid], [])
        self.assertIsNone(self.svc(d, name)["cgroup"])
        d.wait_for(lambda: not os.path.exists(fs_dir), 10, what="%s removed" % fs_dir)

    def test_stop_takes_setsid_and_double_forked_processes(self):
        d = self.daemon(service("escaper", sh(ESCAPER), stop_timeout="30s"))
        d.wait_running("escaper")
        fs_dir = self.check_placed(d, "escaper", self.wait_all_sleeping(d))
        self.stop_and_check_nothing_survives(d, "escaper", fs_dir)
        # No kill was needed: every process had the stop signal.
        self.assertEqual(d.events_of("escaper", "killed"), [])
        # Started again, in a fresh cgroup of the same name.
        status, body = d.json("POST", "/v1/services/escaper/start")
        self.assertIn(status, (200, 202), body)
        d.wait_running("escaper")
        self.check_placed(d, "escaper", self.wait_all_sleeping(d))
        base = os.path.dirname(fs_dir)
        d.stop()
        self.assertEqual(sleepers(), {})
        self.assertFalse(os.path.exists(base), "a clean exit removes the daemon's subtree")

    def test_kill_after_stop_timeout_takes_what_ignores_the_signal(self):
        d = self.daemon(service("stubborn", sh(STUBBORN), stop_timeout="500ms"))
        d.wait_running("stubborn")
        fs_dir = self.check_placed(d, "stubborn", self.wait_all_sleeping(d))
        self.stop_and_check_nothing_survives(d, "stubborn", fs_dir)
        self.assertEqual(len(d.events_of("stubborn", "killed")), 1)
        d.stop()

    def test_adopted_instance_keeps_its_cgroup(self):
        d = self.daemon(service("escaper", sh(ADOPTEE), stop_timeout="30s"))
        d.wait_running("escaper")
        pids = self.wait_all_sleeping(d, 3)
        fs_dir = self.check_placed(d, "escaper", pids)
        d.kill9()
        d.wait_for(lambda: harness.port_is_free(d.port), 10, what="port %d free again" % d.port)
        d.start()
        d.wait_event("attached", "escaper", timeout=10)
        self.assertEqual(sleepers(), pids, "adopted, not restarted")
        self.check_placed(d, "escaper", pids)
        self.stop_and_check_nothing_survives(d, "escaper", fs_dir)
        d.stop()


    def test_upgrade_keeps_the_subtree_and_the_instances_cgroups(self):
        d = self.daemon(service("escaper", sh(ESCAPER), stop_timeout="30s"))
        d.wait_running("escaper")
        pids = self.wait_all_sleeping(d)
        fs_dir = self.check_placed(d, "escaper", pids)
        # SIGUSR2: the same binary re-executes in the same pid, already in BASE/supervisor.
        os.kill(d.pid, signal.SIGUSR2)
        d.wait_for(lambda: d.json("GET", "/v1/upgrade")[1]["image"] == 2, 30, what="image 2")
        self.assertEqual(sleepers(), pids, "handed over, not restarted")
        self.check_placed(d, "escaper", pids)
        self.stop_and_check_nothing_survives(d, "escaper", fs_dir)
        base = os.path.dirname(fs_dir)
        d.stop()
        self.assertFalse(os.path.exists(base), "a clean exit after an upgrade removes the subtree too")


class NoCgroup2Daemon(api_harness.ApiDaemon):
    """The daemon in a mount namespace of its own where every cgroup2 is unmounted
    (unshare execs; so does the shell: the daemon keeps the pid Popen returned)."""

    def argv(self):
        script = ('grep " - cgroup2 " /proc/self/mountinfo | cut -d" " -f5 | '
                  'while read m; do umount "$m" || exit 1; done; exec "$@"')
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"] + super().argv()


class FallbackTest(api_harness.TestCase):
    def test_without_cgroup2_process_groups_still_supervise(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (unshare --mount)")
        harness.require("unshare")
        d = NoCgroup2Daemon(service("plain", sh("exec sleep 1045"), stop_timeout="5s"))
        self.addCleanup(self._cleanup_daemon, d)
        d.start()
        said = [l for l in d.stderr_text().splitlines() if "no cgroup v2 containment" in l]
        self.assertEqual(len(said), 1, d.stderr_text())
        self.assertIn("Delegate=yes", said[0])
        pid = d.wait_running("plain")
        body = self.svc(d, "plain")
        self.assertIsNone(body["cgroup"])
        self.assertEqual(body["pid"], pid)
        status, body = d.json("POST", "/v1/services/plain/stop")
        self.assertIn(status, (200, 202), body)
        d.wait_for(lambda: self.svc(d, "plain")["state"] == "stopped", 30, what="plain stopped")
        self.assertFalse(harness.alive(pid))
        # Nothing was made in the hierarchy the daemon could not see.
        self.assertFalse(os.path.exists(cgroups.daemon_dir(d.data_dir) or "/nonexistent"))
        d.stop()

    def svc(self, d, name):
        status, body = d.json("GET", "/v1/services/" + name)
        self.assertEqual(status, 200, body)
        return body


if __name__ == "__main__":
    harness.main()
