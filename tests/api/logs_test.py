"""GET /v1/services/{name}/logs: tail/since/stream, follow across restarts and
rotations, 200 concurrent followers, a client leaving mid-stream, a service removed
(DELETE or a reload that drops it) while followed."""
import datetime
import selectors
import time

from api_harness import TICKER, Follower, TestCase, dechunk, main, raw_get, service, sh


def lines(body):
    return body.decode().splitlines()


class Logs(TestCase):
    def test_tail_since_stream(self):
        d = self.daemon(service("seq", sh('for i in $(seq 1 300); do echo "o$i"; echo "e$i" >&2; done; sleep 1000')))
        d.wait_for(lambda: b"o300\n" in d.read_log("seq") and b"e300\n" in d.read_log("seq", "stderr"), 10,
                   what="all output captured")
        out = lines(d.curl("GET", "/v1/services/seq/logs?stream=stdout")[1])
        self.assertEqual(out, ["o%d" % i for i in range(201, 301)])  # default: the last 100
        self.assertEqual(lines(d.curl("GET", "/v1/services/seq/logs?stream=stderr&tail=3")[1]), ["e298", "e299", "e300"])
        self.assertEqual(lines(d.curl("GET", "/v1/services/seq/logs?stream=stdout&tail=all")[1]),
                         ["o%d" % i for i in range(1, 301)])
        self.assertEqual(d.curl("GET", "/v1/services/seq/logs?tail=0")[1], b"")
        both = lines(d.curl("GET", "/v1/services/seq/logs?tail=2")[1])
        self.assertEqual(sorted(both), ["e299", "e300", "o299", "o300"])
        self.assertEqual(len(lines(d.curl("GET", "/v1/services/seq/logs?since=1h&stream=stdout")[1])), 300)
        future = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=5))
        self.assertEqual(d.curl("GET", "/v1/services/seq/logs?since=" + future.strftime("%Y-%m-%dT%H:%M:%SZ"))[1], b"")
        self.assertEqual(len(lines(d.curl("GET", "/v1/services/seq/logs?since=2000-01-01T00:00:00.5%2B02:00&stream=stderr")[1])), 300)
        status, headers = d.curl("GET", "/v1/services/seq/logs")[0], None
        self.assertEqual(status, 200)
        for bad in ("tail=x", "stream=both2", "since=yesterday"):
            self.assertStatus(d.json("GET", "/v1/services/seq/logs?" + bad), 400, bad)
        self.assertStatus(d.json("GET", "/v1/services/ghost/logs"), 404)

    def test_follow_across_restart_and_rotation(self):
        # log_max_size 4096 with bursts of 50 short lines every 50 ms: a rotation every
        # few hundred milliseconds.
        d = self.daemon(service("tick", sh('i=0; while true; do for j in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50; do i=$((i+1)); echo "line $i"; done; sleep 0.05; done'),
                                log_max_size=4096, log_keep=2))
        d.wait_running("tick")
        f = Follower(d.base + "/v1/services/tick/logs?follow=1&stream=stdout&tail=0")
        self.addCleanup(f.close)
        f.wait_for_text("line ")
        self.assertStatus(d.json("POST", "/v1/services/tick/restart"), 202)
        # After the restart the counter starts again at 1.
        d.wait_for(lambda: "line 1\n" in f.text(), 15, what="the restarted service's first line")
        rot = d.path("logs", "tick", "stdout.log.1")
        import os
        d.wait_for(lambda: os.path.exists(rot), 20, what="a rotation")
        t0 = len(f.text())
        d.wait_for(lambda: len(f.text()) > t0 + 8192, 20, what="more output after the rotation")
        # Every line is whole and, within one incarnation, consecutive.
        seen = [l for l in f.text().splitlines()[:-1]]
        self.assertTrue(all(l.startswith("line ") for l in seen), seen[:5])
        nums = [int(l.split()[1]) for l in seen]
        breaks = [i for i in range(1, len(nums)) if nums[i] != nums[i - 1] + 1]
        self.assertLessEqual(len(breaks), 1, "gaps at %r" % [(nums[i - 1], nums[i]) for i in breaks])

    def test_200_followers_get_every_byte_and_disconnect_frees(self):
        d = self.daemon(service("burst", ["cat"], stdin=True))
        d.wait_running("burst")
        base_conns = d.metric("dockless_http_connections_open")
        # Spread over 8 source addresses: one address may hold only 64 connections.
        socks = [raw_get(d.port, "/v1/services/burst/logs?follow=1&tail=0", source="127.0.0.%d" % (2 + i % 8))
                 for i in range(200)]
        self.addCleanup(lambda: [s.close() for s in socks])
        data = {s: b"" for s in socks}
        d.wait_for(lambda: d.metric("dockless_http_streams_open") >= 200, 10, what="200 open streams")
        expected = b"".join(b"payload line %05d %s\n" % (i, b"x" * 50) for i in range(2000))
        self.assertStatus(d.curl("POST", "/v1/services/burst/stdin", expected, "application/octet-stream"), 202)
        sel = selectors.DefaultSelector()
        for s in socks:
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        done = set()
        while len(done) < len(socks) and time.monotonic() < deadline:
            for key, _ in sel.select(0.5):
                chunk = key.fileobj.recv(1 << 16)
                data[key.fileobj] += chunk
                if dechunk(data[key.fileobj])[1] == expected:
                    done.add(key.fileobj)
                    sel.unregister(key.fileobj)
        bad = [len(dechunk(v)[1]) for s, v in data.items() if s not in done]
        self.assertEqual(len(done), 200, "followers short of %d bytes: %r" % (len(expected), bad[:10]))
        for s in socks:
            self.assertIn(b"200 OK", dechunk(data[s])[0])
        # Leaving mid-stream frees the connection and the stream.
        for s in socks:
            s.close()
        d.wait_for(lambda: d.metric("dockless_http_streams_open") == 0, 10, what="streams closed")
        d.wait_for(lambda: d.metric("dockless_http_connections_open") <= base_conns, 10, what="connections closed")

    def test_follow_ends_when_service_removed(self):
        d = self.daemon("")
        self.assertStatus(d.json("POST", "/v1/services", {"name": "gone", "command": TICKER}), 201)
        d.wait_running("gone")
        f = Follower(d.base + "/v1/services/gone/logs?follow=1")
        self.addCleanup(f.close)
        f.wait_for_text("out ")
        self.assertStatus(d.json("DELETE", "/v1/services/gone"), 200)
        f.proc.wait(10)  # the stream ended: curl exits by itself
        self.assertEqual(f.proc.returncode, 0)
        d.wait_for(lambda: d.metric("dockless_http_streams_open") == 0, 10, what="no stream left")
        # Registered again under the same name, it can be followed again.
        self.assertStatus(d.json("POST", "/v1/services", {"name": "gone", "command": TICKER}), 201)
        g = Follower(d.base + "/v1/services/gone/logs?follow=1&tail=0")
        self.addCleanup(g.close)
        g.wait_for_text("out ")

    def test_follow_ends_when_a_reload_drops_the_service(self):
        d = self.daemon(service("kept", TICKER) + service("dropped", TICKER))
        d.wait_running("dropped")
        f = Follower(d.base + "/v1/services/dropped/logs?follow=1")
        self.addCleanup(f.close)
        f.wait_for_text("out ")
        d.write_config(service("kept", TICKER))
        self.assertStatus(d.json("POST", "/v1/reload"), 200)
        f.proc.wait(10)  # the stream ended: curl exits by itself
        self.assertEqual(f.proc.returncode, 0)
        d.wait_for(lambda: d.metric("dockless_http_streams_open") == 0, 10, what="no stream left")
        self.assertStatus(d.json("GET", "/v1/services/dropped/logs"), 404)


if __name__ == "__main__":
    main()
