#!/usr/bin/env python3
"""Process trees: stopping a service takes everything it forked, a crashing leader takes
its helpers, and a stopped daemon leaves no process of its own behind."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import alive, proc_info, processes, service, sh  # noqa: E402


def group_of(leader):
    return sorted(p.pid for p in processes().values() if p.pgid == leader and p.state != "Z")


def members(leader, cmdline):
    out = []
    for pid in group_of(leader):
        p = proc_info(pid)
        if p is not None and p.cmdline == cmdline:
            out.append(pid)
    return out


class TreeTest(harness.TestCase):
    def assert_all_gone(self, d, pids, timeout=3.0):
        """Gone means gone: not running and not a zombie anyone still has to reap."""
        d.wait_for(lambda: all(proc_info(p) is None for p in pids), timeout,
                   what="pids %s to disappear (left: %s)" % (pids, [proc_info(p) for p in pids]))

    def test_stop_kills_the_whole_tree(self):
        d = self.daemon(service("tree", sh("sleep 1000 & sleep 1000 & exec sleep 1000")))
        leader = d.wait_running("tree")
        group = d.wait_for(lambda: len(group_of(leader)) == 3 and group_of(leader), 5,
                           what="3 processes in the service's group")
        self.assertIn(leader, group)
        for pid in group:
            self.assertEqual(proc_info(pid).cmdline, ["sleep", "1000"])
        d.stop()
        self.assert_all_gone(d, group)
        self.assertEqual(d.survivors(), [])
        kinds = [e["kind"] for e in d.events_of("tree")]
        self.assertEqual(kinds[-3:], ["stopping", "exited", "stopped"])
        exited = d.events_of("tree", "exited")[-1]
        self.assertEqual((exited["signaled"], exited["signal"]), (True, "SIGTERM"))

    def test_crashing_leader_takes_its_helpers(self):
        d = self.daemon(None, start=False)
        flag = os.path.join(d.dir, "crash-now")
        d.write_config(service("crashy", sh("sleep 1001 & sleep 1001 & "
                                            "while [ ! -e %s ]; do sleep 0.02; done; exit 3" % flag),
                               restart="no"))
        d.start()
        leader = d.wait_running("crashy")
        helpers = d.wait_for(lambda: len(members(leader, ["sleep", "1001"])) == 2
                             and members(leader, ["sleep", "1001"]), 5,
                             what="two helpers in the group")
        open(flag, "w").close()
        exited = d.wait_event("exited", "crashy")[0]
        self.assertEqual(exited["code"], 3)
        # The daemon is still running: the helpers went with their leader, not with the daemon.
        self.assertTrue(d.running())
        self.assert_all_gone(d, helpers + [leader])
        self.assertEqual(d.survivors(), [])
        d.stop()

    def test_sigterm_leaves_nothing_behind(self):
        d = self.daemon(
            service("tree", sh("sleep 1002 & (sleep 1002 & sleep 1002) & exec sleep 1002"))
            # Double fork: the grandchild is re-parented away from the service but stays
            # in its process group.
            + service("daemonized", sh("(sleep 1003 &) ; exec sleep 1003"))
            + service("py", ["python3", "-c",
                             "import subprocess, time\n"
                             "ps = [subprocess.Popen(['sleep', '1004']) for _ in range(3)]\n"
                             "time.sleep(1000)\n"]))
        for name in ("tree", "daemonized", "py"):
            d.wait_running(name)
        want = {"sleep 1002": 4, "sleep 1003": 2, "sleep 1004": 3}

        def census():
            c = {}
            for p in d.survivors():
                key = " ".join(p.cmdline[:2])
                c[key] = c.get(key, 0) + 1
            return c
        d.wait_for(lambda: all(census().get(k) == n for k, n in want.items()), 5,
                   what="every process of every service (%s)" % want)
        before = [p.pid for p in d.survivors()]
        self.assertGreaterEqual(len(before), 10)
        descendants = {p.pid for p in harness.descendants(d.pid)}
        d.stop()
        self.assert_all_gone(d, before)
        self.assertEqual(d.survivors(), [])
        self.assertFalse(any(alive(p) for p in descendants))


if __name__ == "__main__":
    harness.require("python3")
    harness.main()
