"""The daemon's side of systemd's notify protocol, checked against a notify socket the
test owns: every datagram is received and checked (READY=1 after the services are up,
STATUS= updates, WATCHDOG=1 every WATCHDOG_USEC/2, RELOADING=1 + MONOTONIC_USEC= /
READY=1 around SIGHUP and POST /v1/reload, STOPPING=1 on SIGTERM), and the variables
never reach the services."""
import os
import re
import signal
import time
import uuid

from sd_harness import ApiDaemon, NotifySink, TestCase, environ_of, main, service, sh

# The only datagrams the daemon may send; anything else fails the test.
# FDSTORE: a service's pipe ends (fdstore_test.py has the details).
ALLOWED = re.compile(r"^(READY=1|STOPPING=1|WATCHDOG=1|STATUS=[^\n]*|RELOADING=1\nMONOTONIC_USEC=\d+"
                     r"|FDSTORE(REMOVE)?=1\nFDNAME=svc\.[\w.-]+\.(stdout|stderr|stdin))$")

# A service that speaks the protocol itself: READY=1 after a delay.
NOTIFY_SERVICE = r"""
import os, socket, time
time.sleep(0.5)
addr = os.environ["NOTIFY_SOCKET"]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b"READY=1", "\0" + addr[1:] if addr.startswith("@") else addr)
time.sleep(1000)
"""


class Notify(TestCase):
    def start_daemon(self, config, notify_address, watchdog_usec=None, watchdog_pid=None):
        sink = NotifySink(notify_address)
        self.addCleanup(sink.close)
        env = {"NOTIFY_SOCKET": notify_address}
        if watchdog_usec:
            env["WATCHDOG_USEC"] = str(watchdog_usec)
        if watchdog_pid:
            env["WATCHDOG_PID"] = str(watchdog_pid)
        d = ApiDaemon(config, env=env)
        self.addCleanup(self._cleanup_daemon, d)
        d.start(wait=False)
        return d, sink

    def assert_all_allowed(self, sink):
        for text in sink.texts():
            self.assertRegex(text, ALLOWED)

    def test_lifecycle(self):
        config = (service("plain", sh("env; exec sleep 1000")) +
                  service("slow", ["python3", "-c", NOTIFY_SERVICE], ready="notify", ready_timeout="20s"))
        path = os.path.join("/tmp", "dockless-notify-%s.sock" % uuid.uuid4().hex[:12])
        d, sink = self.start_daemon(config, path, watchdog_usec=1_000_000)

        # READY=1 comes only after boot restore settled: both services running, the
        # notify service only after its own READY=1.
        i_ready = sink.wait_text("READY=1", timeout=30)
        t_ready = sink.messages()[i_ready][0]
        ready_events = d.events_of("slow", "ready")
        self.assertEqual(len(ready_events), 1, "READY=1 before the service was ready\n" + d.describe())
        self.assertEqual(d.events_of("plain", "started")[0]["service"], "plain")
        self.assertTrue(d.ready())

        sink.wait(lambda m: any(t == "STATUS=2 services, 2 running" for _, t in m), what="STATUS 2 running")

        # Watchdog: about every 0.5 s, from the loop. Collect ~3 s of pings.
        time.sleep(3.0)
        pings = [t for t, text in sink.messages() if text == "WATCHDOG=1" and t >= t_ready]
        self.assertGreaterEqual(len(pings), 4, sink.texts())
        gaps = sorted(b - a for a, b in zip(pings, pings[1:]))
        self.assertGreaterEqual(gaps[0], 0.4, "a ping came early: %r" % gaps)
        median = gaps[len(gaps) // 2]
        self.assertTrue(0.45 <= median <= 0.8, "median ping gap %.3f s, expected ~0.5 s: %r" % (median, gaps))

        # SIGHUP: RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC, like ours), then READY=1.
        for how in ("sighup", "post"):
            mark = len(sink.messages())
            before = time.clock_gettime(time.CLOCK_MONOTONIC)
            if how == "sighup":
                d.sighup()
            else:
                status, body = d.json("POST", "/v1/reload")
                self.assertEqual(status, 200, body)
            i_rel = sink.wait(lambda m: next((i + 1 for i in range(mark, len(m))
                                              if m[i][1].startswith("RELOADING=1\n")), None),
                              what="RELOADING=1 (%s)" % how) - 1
            usec = int(sink.texts()[i_rel].split("MONOTONIC_USEC=")[1])
            self.assertTrue(before - 1 <= usec / 1e6 <= time.clock_gettime(time.CLOCK_MONOTONIC) + 1,
                            "MONOTONIC_USEC %d is not CLOCK_MONOTONIC now (%s)" % (usec, how))
            sink.wait_text("READY=1", after=i_rel + 1)

        # The daemon's variables never reach a service (the notify service has its own).
        plain_pid = d.wait_running("plain")
        env = environ_of(plain_pid)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"):
            self.assertNotIn(k, env)
        slow_env = environ_of(d.wait_running("slow"))
        self.assertTrue(slow_env.get("NOTIFY_SOCKET", "").startswith("@dockless/"), slow_env.get("NOTIFY_SOCKET"))
        self.assertNotEqual(slow_env.get("NOTIFY_SOCKET"), path)

        mark = len(sink.messages())
        d.stop()
        i_stop = sink.wait_text("STOPPING=1", after=mark)
        texts = sink.texts()
        self.assertNotIn("READY=1", texts[i_stop:], "READY=1 after STOPPING=1")
        self.assertIn("STATUS=2 services, 0 running", texts[i_stop:])
        self.assert_all_allowed(sink)
        self.assertEqual(texts.count("STOPPING=1"), 1)

    def test_abstract_socket_and_watchdog_for_another_pid(self):
        # WATCHDOG_PID names another process: the watchdog is not ours, no pings.
        name = "@dockless-test-%s" % uuid.uuid4().hex
        d, sink = self.start_daemon(service("a", ["sleep", "1000"]), name,
                                    watchdog_usec=200_000, watchdog_pid=1)
        sink.wait_text("READY=1", timeout=30)
        sink.wait(lambda m: any(t == "STATUS=1 service, 1 running" for _, t in m), what="STATUS")
        time.sleep(1.0)
        self.assertNotIn("WATCHDOG=1", sink.texts())
        d.stop()
        sink.wait_text("STOPPING=1")
        self.assert_all_allowed(sink)

    def test_status_is_rate_limited(self):
        # A crash loop changes the counts many times a second; STATUS= follows at most
        # once a second.
        d, sink = self.start_daemon(
            service("ok", ["sleep", "1000"]) +
            service("flaky", sh("sleep 0.05; exit 1"), restart="always", restart_delay="10ms",
                    restart_delay_max="20ms", restart_limit=0),
            "@dockless-test-%s" % uuid.uuid4().hex)
        sink.wait_text("READY=1", timeout=30)
        time.sleep(3.5)
        statuses = [t for t, text in sink.messages() if text.startswith("STATUS=")]
        self.assertGreaterEqual(len(d.events_of("flaky", "started")), 8, "not a crash loop")
        gaps = [b - a for a, b in zip(statuses, statuses[1:])]
        self.assertTrue(all(g >= 0.9 for g in gaps), "STATUS more often than once a second: %r" % gaps)
        self.assertGreaterEqual(len(statuses), 2)
        d.stop()
        self.assert_all_allowed(sink)


if __name__ == "__main__":
    main()
