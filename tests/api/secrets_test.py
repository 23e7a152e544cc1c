"""public_read shows state, never configuration secrets (issue #15): a daemon with
public_read, a service whose env (and env_file) hold secrets and whose command line, health
check and trigger job carry tokens. No public GET shows any of them; trigger job output is
401 for public readers; `?secrets=1` is refused to them, shown to key holders and audited
(`secrets_read`, with the key's name). And no refusal echoes an Authorization value, a
webhook signature or a bogus token: not in the answer, not in the events, not in the
daemon's log. HMAC signatures are made with the openssl CLI, never with the code under test."""
import base64
import json
import subprocess
import time

import api_harness
from api_harness import Follower, harness, main, require, service, sh

require("openssl")

CMD_TOKEN = "cmd-token-7f3a9c"
ENV_SECRET = "env-secret-91bc4e"
FILE_SECRET = "file-secret-3e3e5d"
PROBE_TOKEN = "probe-token-55aa01"
RUN_TOKEN = "run-token-aa1177"
JOB_OUTPUT = "job-output-c0ffee"
DELIVERY = "delivery-id-d311f0"
CLIENT_TEXT = "client-text-b0d7e5"
TRIGGER_SECRET = "trigger-hmac-secret-0123"
GH_SECRET = "gh-trigger-secret-4567"
SECRETS = (CMD_TOKEN, ENV_SECRET, FILE_SECRET, PROBE_TOKEN, RUN_TOKEN, JOB_OUTPUT, DELIVERY, CLIENT_TEXT,
           TRIGGER_SECRET, GH_SECRET, harness.TEST_API_KEY)
KEY_NAME = "DOCKLESS_API_KEYS[1]"


def trigger(tid, provider, action, secret):
    return "[[triggers]]\nid = %s\nkind = \"webhook\"\nprovider = %s\nsecret = %s\naction = %s\n" % (
        json.dumps(tid), json.dumps(provider), json.dumps(secret), action)


CONFIG = (service("web", sh("while true; do sleep 0.2; done # " + CMD_TOKEN), env={"API_TOKEN": ENV_SECRET},
                  env_file="web.env", health={"exec": sh("true # " + PROBE_TOKEN), "interval": "1s"})
          + trigger("job", "hmac", "{ run = %s }" % json.dumps(sh("echo %s # %s" % (JOB_OUTPUT, RUN_TOKEN))),
                    TRIGGER_SECRET)
          + trigger("gh", "github", '{ restart = "web" }', GH_SECRET)
          + "[http]\npublic_read = true\n")
FILES = {"web.env": "FILE_TOKEN=%s\n" % FILE_SECRET}


def openssl(args, data):
    return subprocess.run(["openssl"] + args, input=data, capture_output=True, check=True).stdout


def hmac_authorization(secret, path, body, ts):
    digest = openssl(["dgst", "-sha256", "-r"], body).split()[0].decode()
    canonical = ("POST\n%s\n%d\n%s" % (path, ts, digest)).encode()
    mac = openssl(["dgst", "-sha256", "-hmac", secret, "-binary"], canonical)
    return "Authorization: HMAC-SHA256 timestamp=%d,signature=%s" % (ts, base64.b64encode(mac).decode())


class Secrets(api_harness.TestCase):
    def assertNoSecret(self, what, data, secrets=SECRETS):
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else json.dumps(data)
        for s in secrets:
            self.assertNotIn(s, text, "%s shows %r:\n%s" % (what, s, text[:3000]))

    def deliver(self, d):
        body = json.dumps({"event": "deploy", "note": CLIENT_TEXT}).encode()
        headers = [hmac_authorization(TRIGGER_SECRET, "/triggers/job", body, int(time.time())),
                   "X-Delivery-Id: " + DELIVERY]
        st, js = d.json("POST", "/triggers/job", body, headers=headers, auth=False)
        self.assertEqual(st, 202, js)
        d.wait_event("trigger_job_finished", timeout=10)

    def test_public_readers_see_state_never_secrets(self):
        d = self.daemon(CONFIG, files=FILES)
        d.wait_running("web")
        follower = Follower(d.base + "/v1/events?follow=1", key=None)
        self.addCleanup(follower.close)
        sse = Follower(d.base + "/v1/events", extra=("-H", "Accept: text/event-stream"), key=None)
        self.addCleanup(sse.close)
        self.deliver(d)
        st, out = d.curl("GET", "/v1/triggers/job/logs")
        self.assertEqual(st, 200)
        self.assertIn(JOB_OUTPUT.encode(), out)  # the control: a key holder reads the job's output
        d.wait_event("health", "web", timeout=10)
        follower.wait_for_text('"kind":"health"')
        sse.wait_for_text('"kind":"health"')

        # Every public read: state, and none of the secrets.
        for path in ("/v1/services", "/v1/services/web", "/v1/events", "/v1/events?service=web",
                     "/v1/events?since=0", "/v1/triggers", "/metrics", "/v1/upgrade",
                     "/v1/services/web/logs?tail=all"):
            st, out = d.curl("GET", path, auth=False)
            self.assertEqual(st, 200, path)
            self.assertNoSecret(path, out)
        self.assertNoSecret("the public event stream", follower.text())
        self.assertNoSecret("the public SSE stream", sse.text())
        self.assertIn("id: ", sse.text())
        web = json.loads(d.curl("GET", "/v1/services/web", auth=False)[1])
        self.assertEqual(web["state"], "running")
        self.assertIsNone(web["command"])
        self.assertIsNone(web["spec"]["command"])
        self.assertIsNone(web["spec"]["health"]["exec"])
        self.assertEqual(web["spec"]["env"], {"API_TOKEN": None, "FILE_TOKEN": None})  # names, never values
        self.assertTrue(web["spec"]["env_redacted"])
        events = [json.loads(line) for line in d.curl("GET", "/v1/events?since=0", auth=False)[1].splitlines()]
        kinds = {e["kind"] for e in events}
        self.assertIn("started", kinds)
        self.assertFalse(kinds & {"trigger_delivery", "trigger_action", "trigger_job_finished"}, kinds)
        self.assertFalse([e for e in events if "command" in e])
        job = [t for t in json.loads(d.curl("GET", "/v1/triggers", auth=False)[1])["triggers"] if t["id"] == "job"][0]
        self.assertIsNone(job["action"]["run"])
        self.assertIsNone(job["last_delivery"])

        # What needs a key even with public_read.
        for path in ("/v1/triggers/job/logs", "/v1/triggers/job/logs?stream=stderr", "/v1/services/web?secrets=1"):
            st, out = d.curl("GET", path, auth=False)
            self.assertEqual(st, 401, path)
            self.assertEqual(json.loads(out)["detail"]["reason"], "missing_key", path)
            self.assertNoSecret(path, out)
        self.assertEqual(d.events_of(kind="secrets_read"), [])
        # A public read carrying a wrong key is refused, not served as a public one.
        st, _ = d.curl("GET", "/v1/services", auth=False, headers=["Authorization: Bearer wrong-key-0123456789ab"])
        self.assertEqual(st, 401)

        # Key holders: command lines, env names; values only with ?secrets=1, each read audited.
        web = json.loads(d.curl("GET", "/v1/services/web")[1])
        self.assertIn(CMD_TOKEN, json.dumps(web["spec"]["command"]))
        self.assertNoSecret("a key holder's inspect", web, (ENV_SECRET, FILE_SECRET))
        web = json.loads(d.curl("GET", "/v1/services/web?secrets=1")[1])
        self.assertEqual(web["spec"]["env"], {"API_TOKEN": ENV_SECRET, "FILE_TOKEN": FILE_SECRET})
        self.assertFalse(web["spec"]["env_redacted"])
        audit = d.wait_event("secrets_read", "web")[0]
        self.assertEqual(audit["key"], KEY_NAME)
        self.assertNoSecret("the audit event", audit)
        # The unix socket (the local CLI) too, audited without a key name.
        rc = subprocess.run([harness.dockless_bin(), "--socket", d.sock, "inspect", "--secrets", "web"],
                            capture_output=True, text=True, timeout=20)
        self.assertEqual(rc.returncode, 0, rc.stderr)
        self.assertEqual(json.loads(rc.stdout)["spec"]["env"]["API_TOKEN"], ENV_SECRET)
        audit = d.wait_event("secrets_read", "web", count=2)[1]
        self.assertEqual((audit["key"], audit["peer"]), (None, "unix"))
        rc = subprocess.run([harness.dockless_bin(), "--socket", d.sock, "inspect", "web"],
                            capture_output=True, text=True, timeout=20)
        self.assertNoSecret("dockless inspect", rc.stdout, (ENV_SECRET, FILE_SECRET))
        # The audit is not public either.
        self.assertNoSecret("/v1/events after the audit", d.curl("GET", "/v1/events", auth=False)[1],
                            (KEY_NAME,))

    def test_refusals_never_echo_credentials(self):
        d = self.daemon(CONFIG, files=FILES)
        d.wait_running("web")
        bogus = ["bogus-bearer-5150", "bogus-hmac-6160", "bogus-ts-7170", "bogus-param-8180", "bogus-sig-9190",
                 "bogus-trig-a1a1", "bogus-trigts-b2b2", "bogus-gh-c3c3", "bogus-scheme-d4d4"]
        api_cases = ["Bearer bogus-bearer-5150", "HMAC-SHA256 bogus-hmac-6160",
                     "HMAC-SHA256 timestamp=bogus-ts-7170,signature=AAAA", "HMAC-SHA256 bogus-param-8180=1",
                     "HMAC-SHA256 timestamp=1700000000,signature=bogus-sig-9190", "Token bogus-scheme-d4d4"]
        for value in api_cases:
            for method, path in (("POST", "/v1/reload"), ("GET", "/v1/services")):
                st, out = d.curl(method, path, auth=False, headers=["Authorization: " + value])
                self.assertEqual(st, 401, value)
                self.assertNoSecret("the answer to " + value, out, bogus)
        # Webhook refusals are journaled with their reason: the hmac provider's header, and
        # GitHub's signature header.
        for value in ("HMAC-SHA256 bogus-trig-a1a1", "HMAC-SHA256 timestamp=bogus-trigts-b2b2,signature=AAAA"):
            st, out = d.curl("POST", "/triggers/job", b"{}", "application/json", auth=False,
                             headers=["Authorization: " + value])
            self.assertEqual(st, 401, out)
            self.assertNoSecret("the webhook's answer to " + value, out, bogus)
        st, out = d.curl("POST", "/triggers/gh", b"{}", "application/json", auth=False,
                         headers=["X-Hub-Signature-256: sha256=bogus-gh-c3c3", "X-GitHub-Event: push",
                                  "X-GitHub-Delivery: 1"])
        self.assertEqual(st, 401, out)
        self.assertNoSecret("the GitHub refusal", out, bogus)
        d.wait_for(lambda: len(d.events_of(kind="trigger_delivery")) >= 3, 5, what="the refusals recorded")
        self.assertNoSecret("/v1/events", d.curl("GET", "/v1/events?since=0")[1], bogus)
        with open(d.path("events.log"), "rb") as f:
            self.assertNoSecret("events.log", f.read(), bogus)
        d.stop()
        self.assertNoSecret("the daemon's log", d.stderr_text(), bogus + [harness.TEST_API_KEY])


if __name__ == "__main__":
    main()
