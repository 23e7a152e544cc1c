#!/usr/bin/env python3
"""Replay: a captured signed request or webhook delivery acts at most once (issue 15).
The real daemon, signatures by the openssl CLI (never the code under test): the API's
HMAC signatures are single-use and v2 signs the query; a webhook delivery is recognised by
its signature as well as by its (unsigned) id."""
import base64
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_harness  # noqa: E402
from api_harness import main, require, service, sh  # noqa: E402
from auth_test import HMAC_SECRET, KEY, hmac_header, request  # noqa: E402
from triggers_test import (GH_SECRET, JOB_SCRIPT, github_headers, openssl_hmac_hex,  # noqa: E402
                           openssl_sha256_hex, push, trigger_block)

require("openssl")

WEB = service("web", sh("while true; do sleep 0.2; done"))
HOOK_SECRET = "hmac-hook-s3cret"


def v2_header(secret, method, target, timestamp, body=b""):
    """HMAC-SHA256 v=2: METHOD\\nPATH\\nQUERY\\nTS\\nhex(sha256(body)), by the openssl CLI."""
    path, _, query = target.partition("?")
    canonical = "%s\n%s\n%s\n%d\n%s" % (method.upper(), path, query, timestamp, openssl_sha256_hex(body))
    sig = bytes.fromhex(openssl_hmac_hex(secret.encode(), canonical.encode()))
    return "HMAC-SHA256 v=2,timestamp=%d,signature=%s" % (timestamp, base64.b64encode(sig).decode())


class Replay(api_harness.TestCase):
    def test_a_signed_api_request_is_single_use_and_v2_signs_the_query(self):
        d = self.daemon(WEB, env={"DOCKLESS_HMAC_SECRET": HMAC_SECRET})
        pid = d.wait_running("web")
        path = "/v1/services/web/restart"
        for header in (hmac_header, v2_header):
            ts = int(time.time())
            h = {"Authorization": header(HMAC_SECRET, "POST", path, ts)}
            got = request(d, "POST", path, h)
            self.assertEqual(got[0], 202, got)
            new = d.wait_for(lambda: (lambda p: p if p and p != pid else None)((d.service_state("web") or {}).get("pid")), 10,
                             what="web restarted")
            d.wait_running("web")
            # The captured request, sent again: refused, and web is not restarted again.
            got = request(d, "POST", path, h)
            self.assertEqual((got[0], got[2]["detail"]["reason"]), (401, "replayed_signature"), got)
            self.assertIn("replayed signature", got[2]["error"])
            time.sleep(0.5)
            self.assertEqual(d.wait_running("web"), new, "the replay restarted web")
            pid = new
        # Reads too: a signature is single-use whatever the method.
        ts = int(time.time())
        h = {"Authorization": v2_header(HMAC_SECRET, "GET", "/v1/services?x=1", ts)}
        self.assertEqual(request(d, "GET", "/v1/services?x=1", h)[0], 200)
        self.assertEqual(request(d, "GET", "/v1/services?x=1", h)[2]["detail"]["reason"], "replayed_signature")
        # v2 signs the query: the same signature on another query does not verify.
        h = {"Authorization": v2_header(HMAC_SECRET, "GET", "/v1/events?limit=1", ts)}
        got = request(d, "GET", "/v1/events?limit=100000", h)
        self.assertEqual((got[0], got[2]["detail"]["reason"]), (401, "bad_signature"), got)
        self.assertEqual(request(d, "GET", "/v1/events?limit=1", h)[0], 200)
        # v1 (deprecated) covers no query: refused on any request that has one.
        h = {"Authorization": hmac_header(HMAC_SECRET, "GET", "/v1/events", ts)}
        got = request(d, "GET", "/v1/events?limit=100000", h)
        self.assertEqual((got[0], got[2]["detail"]["reason"]), (401, "query_unsigned"), got)
        self.assertIn("v=2", got[2]["error"])
        # Bearer keys are not single-use.
        for _ in range(3):
            self.assertEqual(request(d, "GET", "/v1/services", {"Authorization": "Bearer " + KEY})[0], 200)
        d.stop()

    def test_webhook_replays_under_a_new_id_run_nothing(self):
        cfg = (trigger_block("deploy-web", "github", '{ restart = "web" }', "${GH_SECRET}",
                             '{ events = ["push"], branch = "main" }', "/hooks/deploy-web")
               + trigger_block("h", "hmac", '{ run = ["sh", "-c", %s] }' % json.dumps(JOB_SCRIPT), HOOK_SECRET)
               + WEB)
        d = self.daemon(cfg, env={"GH_SECRET": GH_SECRET})
        pid = d.wait_running("web")

        def post(path, body, headers):
            return d.json("POST", path, body, ctype="application/json", headers=headers, auth=False)

        # GitHub always names its delivery: one without X-GitHub-Delivery is refused.
        body = push()
        headers = [h for h in github_headers(body) if not h.startswith("X-GitHub-Delivery")]
        st, js = post("/hooks/deploy-web", body, headers)
        self.assertEqual(st, 400, js)
        self.assertIn("X-GitHub-Delivery", js["error"])
        time.sleep(0.3)
        self.assertEqual(d.wait_running("web"), pid)

        # The id is not signed: the same signed body under a fresh id is the same delivery.
        st, js = post("/hooks/deploy-web", body, github_headers(body, delivery=str(uuid.uuid4())))
        self.assertEqual((st, js["status"]), (202, "accepted"), js)
        new = d.wait_for(lambda: (lambda p: p if p and p != pid else None)((d.service_state("web") or {}).get("pid")), 10,
                         what="web restarted")
        d.wait_running("web")
        st, js = post("/hooks/deploy-web", body, github_headers(body, delivery=str(uuid.uuid4())))
        self.assertEqual((st, js["status"]), (200, "duplicate"), js)
        time.sleep(0.5)
        self.assertEqual(d.wait_running("web"), new, "a replayed body restarted web again")
        self.assertEqual(len(d.events_of(kind="trigger_action")), 1)

        # hmac provider: the same signed request under another X-Delivery-Id runs nothing.
        path = "/triggers/h"
        body = b'{"event":"go"}'
        auth = "Authorization: " + v2_header(HOOK_SECRET, "POST", path, int(time.time()), body)
        st, js = post(path, body, [auth, "X-Delivery-Id: first"])
        self.assertEqual(st, 202, js)
        d.wait_event("trigger_job_finished")
        for other in (["X-Delivery-Id: second"], []):
            st, js = post(path, body, [auth] + other)
            self.assertEqual((st, js["status"]), (200, "duplicate"), js)
        # v2 signs the query: another query is a signature mismatch.
        auth = "Authorization: " + v2_header(HOOK_SECRET, "POST", path + "?env=prod", int(time.time()), body)
        st, js = post(path + "?env=dev", body, [auth])
        self.assertEqual(st, 401, js)
        time.sleep(0.5)
        self.assertEqual(len(d.events_of(kind="trigger_job_finished")), 1, "a replay ran the job again")
        d.stop()


if __name__ == "__main__":
    main()
