#!/usr/bin/env python3
"""The typed event stream under real use: a start and an exit sit in order among that
service's lines; several readers each get every line; a reader that leaves, or one that
stops reading, holds back no one (the stalled one is told what it lost to rotation with an
output_skipped event); a reload's new service appears in open streams; SIGTERM stops the
daemon promptly with streams open."""
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_harness  # noqa: E402
from api_harness import Follower, dechunk, harness  # noqa: E402
from harness import service, sh, wait_for  # noqa: E402

# Says hello when it starts and bye when it is stopped (SIGTERM), just before exiting.
GREETER = sh('trap \'echo "$N bye"; exit 0\' TERM; echo "$N hello"; while :; do sleep 0.05; done')
# 400 numbered lines in bursts of 50, then quiet.
COUNTER = sh('i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo "line $i"; '
             'if [ $((i % 50)) = 0 ]; then sleep 0.1; fi; done; exec sleep 1108')


def ndjson(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class Readers(api_harness.TestCase):
    def follow(self, d, query, extra=()):
        f = Follower(d.base + "/v1/events?" + query, extra)
        self.addCleanup(f.close)
        return f

    def test_start_and_exit_in_order_among_each_services_lines(self):
        d = self.daemon(service("a", GREETER, env={"N": "a"}) + service("b", GREETER, env={"N": "b"}))
        d.wait_running("a")
        d.wait_running("b")
        f = self.follow(d, "follow=1&output=1&service=a,b&kind=stdout,started,exited")
        time.sleep(0.3)
        for _ in range(3):
            for name in ("a", "b"):
                self.assertEqual(d.curl("POST", "/v1/services/%s/restart" % name)[0], 202)
        wait_for(lambda: f.text().count(' hello"') == 6, 15, what="six hellos",
                 context=lambda: f.text()[-3000:])
        evs = ndjson(f.text())
        for name in ("a", "b"):
            seen = [e.get("line") or e["kind"] for e in evs if e["service"] == name]
            seen = seen[seen.index(name + " bye"):]  # from the first restart on (history before)
            self.assertEqual(seen, [name + " bye", "exited", "started", name + " hello"] * 3, evs)

    def test_four_readers_each_get_every_line_and_one_leaving_disturbs_none(self):
        d = self.daemon(service("count", COUNTER, autostart=False) + service("idle", ["sleep", "1109"]))
        d.wait_running("idle")
        readers = [self.follow(d, "follow=1&output=1&service=count") for _ in range(3)]
        readers.append(self.follow(d, "follow=1&output=1&service=count", extra=("-H", "Accept: text/event-stream")))
        leaver = self.follow(d, "follow=1&output=1")
        time.sleep(0.3)
        self.assertEqual(d.curl("POST", "/v1/services/count/start")[0], 202)
        leaver.wait_for_text('"line":"line 1"')
        leaver.close()
        want = ["line %d" % i for i in range(1, 401)]
        for r in readers:
            r.wait_for_text('"line":"line 400"', timeout=15)
        for r in readers[:3]:
            self.assertEqual([e["line"] for e in ndjson(r.text()) if e["kind"] == "stdout"], want)
        sse = [json.loads(fr[len("data: "):]) for fr in readers[3].text().split("\n\n") if fr.startswith("data: ")]
        self.assertEqual([e["line"] for e in sse if e["kind"] == "stdout"], want)
        self.assertEqual(d.curl("GET", "/readyz")[0], 200)
        self.assertEqual(d.curl("GET", "/v1/services/idle")[0], 200)

    def test_a_stalled_reader_holds_back_no_one_and_learns_what_rotation_took(self):
        # 350 KB of output against 8 KiB log files (two kept): a reader that stops reading
        # for a while cannot find most of it on disk any more.
        flood = sh('seq 1 60000; exec sleep 1110')
        d = self.daemon(service("flood", flood, autostart=False, log_max_size="8KiB", log_keep=2))
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10)
        s.connect(("127.0.0.1", d.port))
        self.addCleanup(s.close)
        s.sendall(("GET /v1/events?follow=1&kind=stdout HTTP/1.1\r\nHost: x\r\n%s\r\n\r\n"
                   % harness.auth_header(d.api_key)).encode())
        fast = self.follow(d, "follow=1&kind=stdout")
        time.sleep(0.3)
        self.assertEqual(d.curl("POST", "/v1/services/flood/start")[0], 202)
        fast.wait_for_text('"line":"60000"', timeout=20)
        self.assertEqual(len([e for e in ndjson(fast.text())]), 60000)
        # Now the stalled one reads: the start of the flood, then a skip, then the end.
        raw = b""
        deadline = time.monotonic() + 20
        while b'"line":"60000"' not in raw and time.monotonic() < deadline:
            raw += s.recv(1 << 20)
        _, body = dechunk(raw)
        evs = ndjson(body.decode())
        skips = [e for e in evs if e["kind"] == "output_skipped"]
        self.assertTrue(skips, "no output_skipped in %d events" % len(evs))
        self.assertEqual(set(skips[0]), {"kind", "service", "time", "stream", "bytes"})
        self.assertEqual((skips[0]["service"], skips[0]["stream"]), ("flood", "stdout"))
        lines = [int(e["line"]) for e in evs if e["kind"] == "stdout" and not e.get("partial")]
        self.assertEqual(lines[-1], 60000)
        self.assertEqual(lines, sorted(lines))
        self.assertLess(len(lines), 60000, "the skip lost lines")

    def test_a_service_added_by_a_reload_appears_in_open_streams(self):
        base = service("idle", ["sleep", "1111"])
        d = self.daemon(base)
        d.wait_running("idle")
        everything = self.follow(d, "follow=1&output=1")
        named = self.follow(d, "follow=1&output=1&service=late&service=other")
        time.sleep(0.3)
        d.write_config(base + service("late", sh("echo late-hello; exec sleep 1112")))
        d.sighup()
        for f in (everything, named):
            f.wait_for_text('"line":"late-hello"')
        self.assertIn('"kind":"reload_succeeded"', everything.text())
        self.assertEqual([(e["kind"], e.get("line")) for e in ndjson(named.text()) if e["kind"] == "stdout"],
                         [("stdout", "late-hello")])

    def test_sigterm_with_streams_open_stops_promptly(self):
        d = self.daemon(service("count", api_harness.TICKER) + service("idle", ["sleep", "1113"]))
        d.wait_running("idle")
        followers = [self.follow(d, "follow=1&output=1"),
                     self.follow(d, "follow=1&output=1&service=count&kind=stdout"),
                     self.follow(d, "follow=1&output=1", extra=("-H", "Accept: text/event-stream"))]
        stalled = api_harness.raw_get(d.port, "/v1/events?follow=1&output=1")
        self.addCleanup(stalled.close)
        for f in followers:
            f.wait_for_text('"kind":"stdout"')
        took = d.stop(timeout=10)
        self.assertLess(took, 5, "SIGTERM took %.1fs with streams open" % took)
        for f in followers:
            f.proc.wait(5)  # their streams ended with the daemon


if __name__ == "__main__":
    harness.main()
