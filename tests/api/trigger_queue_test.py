#!/usr/bin/env python3
"""The durable trigger queue end to end: the real daemon, deliveries signed with the openssl CLI,
a kill -9 between the acknowledgement and the dispatch, a handler that fails until it is
dead-lettered and is then replayed with the CLI, an HTTP handler posting to a service by name,
and the binding versions state.json keeps."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_harness  # noqa: E402
from api_harness import main, require, service, sh  # noqa: E402
from harness import free_port  # noqa: E402
from triggers_test import HMAC_SECRET, hmac_headers  # noqa: E402

require("openssl")

# A test server for the HTTP handler: 500 while FAIL exists, else 200 and the body appended to GOT.
SINK = r'''
import http.server, os, sys
port, fail, got = int(sys.argv[1]), sys.argv[2], sys.argv[3]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if os.path.exists(fail):
            self.send_response(500); self.end_headers(); return
        with open(got, "ab") as f:
            f.write(self.path.encode() + b" " + self.headers["X-Dockless-Event-Id"].encode() + b" " + body + b"\n")
        self.send_response(204); self.end_headers()
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
'''


def hmac_trigger(tid, handler, extra=""):
    return ('[[triggers]]\nid = "%s"\nkind = "webhook"\nprovider = "hmac"\nsecret = "%s"\nhandler = %s\n%s'
            % (tid, HMAC_SECRET, json.dumps(handler), extra))


class TriggerQueueTest(api_harness.TestCase):
    def deliver(self, d, tid, delivery, body=None):
        path = "/triggers/" + tid
        body = body or json.dumps({"delivery": delivery}).encode()
        return d.json("POST", path, body, ctype="application/json", headers=hmac_headers(path, body, delivery=delivery),
                      auth=False)

    def cli(self, d, *args):
        # Not cwd=d.dir: run_cli counts what a daemon on a data dir under its cwd starts as the
        # command's own, and a replayed job the daemon starts may still run when it returns.
        return self.run_cli(["--socket", d.sock] + list(args), cwd=None)

    def event_state(self, d, event_id):
        st, js = d.json("GET", "/v1/trigger-events/" + event_id)
        return js.get("state") if st == 200 else None

    def test_a_crash_between_acknowledgement_and_dispatch_loses_nothing_and_runs_nothing_twice(self):
        d = self.daemon(None, start=False)
        log, hold = os.path.join(d.dir, "ran.log"), os.path.join(d.dir, "HOLD")
        open(hold, "w").close()
        script = 'echo "$DOCKLESS_DELIVERY $DOCKLESS_ATTEMPT" >> %s; if [ -e %s ]; then sleep 300; fi' % (log, hold)
        d.write_config(hmac_trigger("q", "run:sh -c '%s'" % script, 'user = "root"\n'))
        d.start()

        def ran():
            if not os.path.exists(log):
                return []
            with open(log) as f:
                return f.read().split("\n")[:-1]
        st, first = self.deliver(d, "q", "d1")
        self.assertEqual((st, first["status"]), (202, "accepted"), first)
        d.wait_for(lambda: ran() == ["d1 1"], 10, what="d1's job running")
        # Acknowledged while d1's job holds the trigger: on disk, not yet dispatched.
        st, second = self.deliver(d, "q", "d2")
        self.assertEqual(st, 202, second)
        self.assertEqual(self.event_state(d, second["queued"]), "pending")
        d.kill9()
        os.unlink(hold)
        d.start()
        d.wait_for(lambda: self.event_state(d, second["queued"]) == "done", 10, what="d2 dispatched after the crash")
        # d1's handler was cut off mid-run: its outcome is unknown, so it is dead-lettered, not run again.
        st, js = d.json("GET", "/v1/trigger-events/" + first["queued"])
        self.assertEqual((st, js["state"]), (200, "dead"), js)
        self.assertIn("interrupted", js["last_error"])
        self.assertEqual(json.loads(js["body"]), {"delivery": "d1"})
        time.sleep(0.5)
        self.assertEqual(ran(), ["d1 1", "d2 1"])
        # The redelivery of an acknowledged id is a duplicate after the crash too.
        st, js = self.deliver(d, "q", "d2", body=b'{"again":1}')
        self.assertEqual((st, js["status"]), (200, "duplicate"), js)

        code, out, err = self.cli(d, "dlq")
        self.assertEqual(code, 0, err)
        self.assertIn(first["queued"], out)
        self.assertIn("interrupted", out)
        code, out, err = self.cli(d, "replay", first["queued"])
        self.assertEqual((code, out.strip()), (0, first["queued"] + ": queued again (was dead)"), err)
        d.wait_for(lambda: self.event_state(d, first["queued"]) == "done", 10, what="d1 replayed")
        self.assertEqual(ran(), ["d1 1", "d2 1", "d1 1"])
        code, out, err = self.cli(d, "replay", first["queued"])
        self.assertEqual(code, 0, err)  # done events can be replayed too
        d.wait_for(lambda: len(ran()) == 4, 10, what="d1 replayed again")
        code, out, err = self.cli(d, "replay", "ev-0123456789abcdef")
        self.assertEqual(code, 4, (out, err))
        self.assertEqual(d.events_of(kind="trigger_dead_lettered")[0]["event_id"], first["queued"])
        d.stop()

    def test_an_http_handler_that_fails_is_retried_dead_lettered_and_replayed(self):
        port = free_port()
        d = self.daemon(None, start=False)
        fail, got = os.path.join(d.dir, "FAIL"), os.path.join(d.dir, "got")
        open(fail, "w").close()
        cfg = (service("sink", ["python3", "-c", SINK, str(port), fail, got], port=port)
               + hmac_trigger("hook", "service://sink/in?x=1", 'max_attempts = 3\nbackoff = "100ms"\n'))
        d.write_config(cfg)
        d.start()
        d.wait_running("sink")
        d.wait_for(lambda: api_harness.harness.port_is_free(port) is False, 10, what="sink listening")
        st, js = self.deliver(d, "hook", "h1")
        self.assertEqual(st, 202, js)
        ev_id = js["queued"]
        dead = d.wait_event("trigger_dead_lettered", timeout=15)[0]
        self.assertEqual(dead["event_id"], ev_id)
        self.assertEqual(dead["error"], "HTTP 500 from 127.0.0.1:%d/in?x=1" % port)
        retries = d.events_of(kind="trigger_retry")
        self.assertEqual([r["attempt"] for r in retries], [1, 2])
        self.assertEqual([r["retry_in_ms"] for r in retries], [100, 200])
        self.assertFalse(os.path.exists(got))

        code, out, err = self.cli(d, "triggers")
        self.assertEqual(code, 0, err)
        row = [line for line in out.splitlines() if line.startswith("hook")][0].split()
        self.assertEqual(row[:4], ["hook", "/triggers/hook", "hmac", "service://sink/in?x=1"])
        self.assertEqual(row[4:7], ["1", "0", "1"])  # binding version, pending, dead
        code, out, err = self.cli(d, "inspect", ev_id)
        self.assertEqual(code, 0, err)
        shown = json.loads(out)
        self.assertEqual((shown["state"], shown["attempts"], shown["delivery"]), ("dead", 3, "h1"))
        self.assertEqual(json.loads(shown["body"]), {"delivery": "h1"})
        self.assertEqual(self.cli(d, "queue")[1].strip(), "no pending events")

        os.unlink(fail)
        code, out, err = self.cli(d, "replay", ev_id)
        self.assertEqual(code, 0, err)
        d.wait_for(lambda: os.path.exists(got), 10, what="the sink got the event")
        with open(got) as f:
            path, got_id, body = f.read().strip().split(" ", 2)
        self.assertEqual((path, got_id), ("/in?x=1", ev_id))
        doc = json.loads(body)
        self.assertEqual((doc["id"], doc["delivery"], doc["trigger"], doc["attempt"]), (ev_id, "h1", "hook", 1))
        self.assertEqual(doc["body"], {"delivery": "h1"})
        self.assertNotIn("Authorization", doc["headers"])
        d.wait_for(lambda: self.event_state(d, ev_id) == "done", 5, what="done")
        # Public readers never see the queue.
        self.assertEqual(d.curl("GET", "/v1/trigger-events", auth=False)[0], 401)
        d.stop()

    def test_binding_versions_grow_with_each_change_and_survive_restarts(self):
        d = self.daemon(None, start=False)
        def cfg(handler):
            return (service("web", sh("sleep 3050")) + hmac_trigger("a", handler)
                    + hmac_trigger("b", "restart:web"))
        d.write_config(cfg("restart:web"))
        d.start()
        versions = lambda: {t["id"]: t["binding_version"] for t in d.json("GET", "/v1/triggers")[1]["triggers"]}
        stored = lambda: {t["id"]: t["version"] for t in (d.state() or {}).get("triggers", [])}
        self.assertEqual(versions(), {"a": 1, "b": 1})
        d.wait_for(lambda: stored() == {"a": 1, "b": 1}, 5, what="state.json bindings")
        d.write_config(cfg("stop:web"))
        st, js = d.json("POST", "/v1/reload")
        self.assertEqual(st, 200, js)
        self.assertEqual(versions(), {"a": 2, "b": 1})
        d.wait_for(lambda: stored() == {"a": 2, "b": 1}, 5, what="state.json after the reload")
        binding = [t for t in d.state()["triggers"] if t["id"] == "a"][0]
        self.assertEqual((binding["path"], binding["handler"]), ("/triggers/a", "stop:web"))
        d.stop()
        d.start()
        self.assertEqual(versions(), {"a": 2, "b": 1})
        d.write_config(cfg("restart:web"))
        d.stop()
        d.start()
        self.assertEqual(versions(), {"a": 3, "b": 1})
        d.stop()


if __name__ == "__main__":
    main()
