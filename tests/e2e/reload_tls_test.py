#!/usr/bin/env python3
"""A reload is all or nothing: a new config that changes a trigger and the services, read
while the TLS certificate is broken, is refused as a whole. Before reloads had two phases
(actors/reload.hpp), the new trigger set was installed before the certificate was tried.
The real daemon over HTTPS, the real curl, signatures made by the openssl CLI."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tls"))
sys.path.insert(0, os.path.join(HERE, "..", "api"))
import tls_test  # noqa: E402  (tests/tls/tls_test.py, used read-only: TlsDaemon, make_cert)
import triggers_test  # noqa: E402  (tests/api/triggers_test.py, used read-only: signatures)
from api_harness import main, service  # noqa: E402
from harness import alive, proc_info  # noqa: E402
from triggers_test import hmac_headers, trigger_block  # noqa: E402

SECRET = "reload-s3cret"


def config(trigger_id, services):
    return trigger_block(trigger_id, "hmac", '{ run = ["/bin/true"] }', SECRET) + "".join(
        service(name, ["sleep", str(arg)]) for name, arg in services)


V1 = config("deploy", [("web", 3101), ("db", 3102)])
# Changes the trigger (deploy gone, release new), one service (web), removes db, adds cache.
V2 = config("release", [("web", 3103), ("cache", 3104)])


class ReloadAllOrNothing(tls_test.TestCase):
    def deliver(self, d, trigger_id, count):
        """POSTs a signed delivery to /triggers/ID: its status (a job finishing before the next)."""
        path = "/triggers/" + trigger_id
        # Distinct bodies: the same signed content within one second would be the same delivery.
        body = b'{"n": %d}' % count
        st, _ = d.json("POST", path, body, ctype="application/json", headers=hmac_headers(path, body, secret=SECRET),
                       auth=False)
        if st == 202:
            d.wait_event("trigger_job_finished", count=count, timeout=10)
        return st

    def route_exists(self, d, trigger_id):
        """With the API key a trigger path answers 401 (its own signature is missing), any
        other path 404."""
        st, _ = d.curl("POST", "/triggers/" + trigger_id, b"{}", "application/json")
        self.assertIn(st, (401, 404))
        return st == 401

    def test_a_bad_certificate_refuses_the_new_triggers_and_services_too(self):
        live_cert, live_key = os.path.join(self.certs, "live.crt"), os.path.join(self.certs, "live.key")
        tls_test.copy(self.cert, live_cert)
        tls_test.copy(self.key, live_key)
        d = self.tls_daemon(V1, cert=live_cert, key=live_key)
        pids = {name: d.wait_running(name) for name in ("web", "db")}
        self.assertEqual(self.deliver(d, "deploy", 1), 202)
        version = d.json("GET", "/v1/triggers")[1]["version"]

        d.write_config(V2)
        with open(live_cert, "w") as fh:
            fh.write("not a certificate\n")
        status, out = d.json("POST", "/v1/reload", {}, unix=True)
        self.assertEqual(status, 422, out)
        self.assertIn("invalid certificate", json.dumps(out["detail"]))
        self.assertEqual(len(d.events_of(kind="reload_failed")), 1)
        self.assertEqual(d.events_of(kind="reload_succeeded"), [])
        self.assertEqual(d.events_of(kind="tls_reloaded"), [])

        # The old trigger answers as before; the new one does not exist.
        self.assertEqual(self.deliver(d, "deploy", 2), 202)
        self.assertFalse(self.route_exists(d, "release"))
        status, listing = d.json("GET", "/v1/triggers")
        self.assertEqual(status, 200, listing)
        self.assertEqual([t["id"] for t in listing["triggers"]], ["deploy"])
        self.assertEqual(listing["version"], version, "a trigger set was installed")
        # The services are the old set, untouched.
        self.assertEqual({name: d.wait_running(name) for name in ("web", "db")}, pids)
        self.assertEqual(proc_info(pids["web"]).cmdline, ["sleep", "3101"])
        self.assertIsNone(d.service_state("cache"))
        self.assertEqual(sorted(" ".join(p.cmdline) for p in d.survivors()), ["sleep 3101", "sleep 3102"])

        # A good certificate again: the same config applies whole.
        tls_test.copy(self.cert, live_cert)
        status, out = d.json("POST", "/v1/reload", {}, unix=True)
        self.assertEqual(status, 200, out)
        self.assertEqual((out["added"], out["removed"], out["changed"]), (["cache"], ["db"], ["web"]))
        self.assertIn("tls", out)
        self.assertEqual(self.deliver(d, "release", 3), 202)
        self.assertFalse(self.route_exists(d, "deploy"))
        d.wait_running("cache")
        d.wait_for(lambda: not alive(pids["db"]), 5, what="db stopped")
        d.stop()


if __name__ == "__main__":
    main()
