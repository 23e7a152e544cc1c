#!/usr/bin/env python3
"""Caps on what clients can make the daemon keep: events.log rotation under churn, refusal
events bounded per source (count and size), registered services, follow streams per key."""
import json
import os
import socket
import stat
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_harness  # noqa: E402
from api_harness import main, raw_get, service  # noqa: E402

GH_SECRET = "gh-s3cret"
HOOK = ('[[triggers]]\nid = "deploy"\nkind = "webhook"\nprovider = "github"\nsecret = "%s"\n'
        'action = { restart = "web" }\npath = "/hooks/deploy"\n' % GH_SECRET) + service("web", ["sleep", "3001"])


def status_of(sock, timeout=5.0):
    """The status code of the answer arriving on `sock`."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n" not in data:
        b = sock.recv(4096)
        if not b:
            break
        data += b
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0, data


def bad_signature_post(sock, delivery, body=b'{"ref":"refs/heads/main"}'):
    req = ("POST /hooks/deploy HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           "X-GitHub-Event: push\r\nX-GitHub-Delivery: %s\r\nX-Hub-Signature-256: sha256=%s\r\n"
           "Content-Length: %d\r\n\r\n" % (delivery, "0" * 64, len(body))).encode() + body
    sock.sendall(req)


def read_response(f, body_out=None):
    """One whole response (Content-Length framed) from a socket file; its status (the body
    appended to `body_out` when given)."""
    line = f.readline()
    length = 0
    while True:
        h = f.readline()
        if h in (b"\r\n", b""):
            break
        name, _, value = h.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    body = f.read(length)
    if body_out is not None:
        body_out.append(body)
    return int(line.split(b" ", 2)[1])


class CapsTest(api_harness.TestCase):
    def test_events_log_rotates_under_churn_and_keeps_keep_files(self):
        cfg = ('[events]\nmax_size = "8KiB"\nkeep = 2\n\n' +
               service("churn", ["true"], restart="always", restart_delay="10ms", restart_delay_max="20ms",
                       restart_limit=0))
        d = self.daemon(cfg)
        log = d.path("events.log")
        d.wait_for(lambda: os.path.exists(log + ".1") and os.path.getsize(log) > 4096, 20,
                   what="events.log rotated at least once and refilled")
        # Rotations go on, and never more than `keep` files are there.
        first = os.stat(log + ".1").st_ino
        d.wait_for(lambda: os.stat(log + ".1").st_ino != first, 20, what="a second rotation")
        self.assertFalse(os.path.exists(log + ".2"), "more files than keep = 2")
        for p in (log, log + ".1"):
            st = os.stat(p)
            self.assertLessEqual(st.st_size, 8192 + 4096, p)
            self.assertEqual(stat.S_IMODE(st.st_mode) & 0o027, 0, "%s: %o" % (p, st.st_mode))
        # /v1/events still serves: since=0 starts at the oldest kept event, seqs consecutive.
        st, body = d.curl("GET", "/v1/events?since=0")
        self.assertEqual(st, 200)
        seqs = [json.loads(line)["seq"] for line in body.decode().splitlines()]
        # (The first ones may still come from memory: the last 1000 events are kept there.)
        with open(log + ".1") as f:
            self.assertGreater(json.loads(f.readline())["seq"], 1, "the oldest file was deleted")
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
        # A cursor inside the rotated file continues exactly after it.
        mid = seqs[len(seqs) // 3]
        st, body = d.curl("GET", "/v1/events?since=%d" % mid)
        self.assertEqual(json.loads(body.decode().splitlines()[0])["seq"], mid + 1)
        d.stop()

    def test_bad_signature_flood_writes_a_bounded_number_of_events(self):
        d = self.daemon(HOOK)
        d.wait_running("web")
        time.sleep(0.3)
        size_before = os.path.getsize(d.path("events.log"))
        sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        f = sock.makefile("rb")
        statuses = set()
        for i in range(300):
            bad_signature_post(sock, "flood-%d" % i)
            statuses.add(read_response(f))
        sock.close()
        self.assertEqual(statuses, {401})
        time.sleep(0.5)
        refusals = [e for e in d.events_of(kind="trigger_delivery") if e.get("outcome") == "rejected"]
        self.assertLessEqual(len(refusals), 20, "refusal events are limited per source")
        self.assertGreaterEqual(len(refusals), 1)
        self.assertEqual(refusals[0].get("source"), "127.0.0.1")
        self.assertLess(os.path.getsize(d.path("events.log")) - size_before, 20 * 600)
        d.stop()

    def test_huge_delivery_id_of_a_refused_request_is_cut(self):
        d = self.daemon(HOOK)
        d.wait_running("web")
        sock = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        bad_signature_post(sock, "A" * 12000)
        self.assertEqual(read_response(sock.makefile("rb")), 401)
        sock.close()
        ev = d.wait_event("trigger_delivery", where=lambda e: e.get("outcome") == "rejected")[-1]
        self.assertLessEqual(len(ev["delivery"].encode()), 131, ev["delivery"][:200])
        self.assertTrue(ev["delivery"].startswith("AAAA"))
        self.assertLess(len(json.dumps(ev)), 1024)
        d.stop()

    def test_registered_services_are_capped_and_nothing_is_written_past_the_cap(self):
        d = self.daemon('[http]\nmax_registered_services = 2\n')
        for name in ("one", "two"):
            st, js = d.json("POST", "/v1/services", {"name": name, "command": ["sleep", "300"]})
            self.assertEqual(st, 201, js)
        st, js = d.json("POST", "/v1/services", {"name": "three", "command": ["sleep", "300"]})
        self.assertEqual(st, 409, js)
        self.assertIn("max_registered_services", js["error"])
        self.assertEqual(js["detail"]["limit"], 2)
        self.assertFalse(os.path.exists(d.path("services", "three.toml")))
        self.assertEqual([e for e in d.events_of(kind="service_registered") if e.get("service") == "three"], [])
        # Replacing one is not a new registration; removing one frees a place.
        st, js = d.json("PUT", "/v1/services/two", {"command": ["sleep", "301"]})
        self.assertEqual(st, 200, js)
        self.assertEqual(d.json("DELETE", "/v1/services/one")[0], 200)
        st, js = d.json("POST", "/v1/services", {"name": "three", "command": ["sleep", "300"]})
        self.assertEqual(st, 201, js)
        d.stop()

    def test_follow_streams_are_capped_per_key_and_a_closed_one_frees_its_slot(self):
        d = self.daemon('[http]\nmax_follow_streams = 2\n\n' + service("web", ["sleep", "3001"]))
        d.wait_running("web")
        held = [raw_get(d.port, "/v1/events?follow=1"), raw_get(d.port, "/v1/services/web/logs?follow=1")]
        for s in held:
            self.assertEqual(status_of(s)[0], 200)
        # Both kinds of follow count against the same key.
        for path in ("/v1/events?follow=1", "/v1/services/web/logs?follow=1"):
            s = raw_get(d.port, path)
            f = s.makefile("rb")
            self.assertEqual(read_response(f, keep := []), 429)
            self.assertIn(b"max_follow_streams", keep[0])
            s.close()
        # Without follow, reads are not counted.
        self.assertEqual(d.curl("GET", "/v1/events")[0], 200)
        # A closed stream frees its slot.
        held.pop(0).close()

        def slot_free():
            s = raw_get(d.port, "/v1/events?follow=1")
            code = status_of(s)[0]
            if code == 200:
                held.append(s)
                return True
            s.close()
            return False
        d.wait_for(slot_free, 5, what="a follow slot freed by the closed stream", interval=0.1)
        # The unix socket is trusted: not counted.
        self.assertEqual(d.curl("GET", "/v1/events", unix=True)[0], 200)
        for s in held:
            s.close()
        d.stop()

    def test_public_readers_follow_streams_are_capped_per_address(self):
        d = self.daemon('[http]\npublic_read = true\nmax_public_follow_streams = 1\n')
        first = raw_get(d.port, "/v1/events?follow=1", key=None)
        self.assertEqual(status_of(first)[0], 200)
        second = raw_get(d.port, "/v1/events?follow=1", key=None)
        self.assertEqual(read_response(second.makefile("rb")), 429)
        second.close()
        # Another address has its own place; a key holder is counted against the key.
        other = raw_get(d.port, "/v1/events?follow=1", source="127.0.0.2", key=None)
        self.assertEqual(status_of(other)[0], 200)
        keyed = raw_get(d.port, "/v1/events?follow=1")
        self.assertEqual(status_of(keyed)[0], 200)
        for s in (first, other, keyed):
            s.close()
        d.stop()


if __name__ == "__main__":
    main()
