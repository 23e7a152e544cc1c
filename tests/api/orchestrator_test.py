#!/usr/bin/env python3
"""Webhook triggers in the orchestrator design's form, end to end: the real daemon, real curl,
signatures made by the providers' own npm libraries (@octokit/webhooks-methods,
standardwebhooks; tests/api/signers, installed on first use) where npm has them."""
import json
import os
import shutil
import subprocess
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_harness  # noqa: E402
from api_harness import main, require, service  # noqa: E402
from harness import SKIP  # noqa: E402

require("node")
SIGNERS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "signers")
GH_SECRET = "gh-webhook-s3cret"
SW_SECRET = "whsec_c3RhbmRhcmQtd2ViaG9va3Mta2V5LWJ5dGVz"


def install_signers():
    if os.path.isdir(os.path.join(SIGNERS, "node_modules", "standardwebhooks")):
        return
    if shutil.which("npm") is None:
        print("skipping: npm not found (the signing libraries come from npm)", file=sys.stderr)
        sys.exit(SKIP)
    r = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SIGNERS, capture_output=True, timeout=300)
    if r.returncode != 0:
        print("skipping: npm ci failed: %s" % r.stderr.decode()[-500:], file=sys.stderr)
        sys.exit(SKIP)


def signed(provider, secret, body, **extra):
    """Header lines for `body`, signed by the provider's library (signers/sign.mjs)."""
    req = {"provider": provider, "secret": secret, "body": body.decode()}
    req.update(extra)
    p = subprocess.run(["node", os.path.join(SIGNERS, "sign.mjs")], input=json.dumps(req).encode(),
                       capture_output=True, check=True, timeout=30)
    return ["%s: %s" % kv for kv in json.loads(p.stdout).items()]


def github(body, event, secret=GH_SECRET):
    return signed("github", secret, body) + ["X-GitHub-Event: " + event,
                                             "X-GitHub-Delivery: " + str(uuid.uuid4())]


def issue(action):
    return json.dumps({"action": action, "issue": {"number": 7, "title": "hello"}}).encode()


class OrchestratorTest(api_harness.TestCase):
    def post(self, d, path, body, headers):
        return d.json("POST", path, body, ctype="application/json", headers=headers, auth=False)

    def restarted(self, d, pid):
        return d.wait_for(lambda: (lambda p: p if p != pid else None)(d.wait_running("web")), 10, what="new pid")

    def test_github_event_dot_action_and_webhook_provider_alias(self):
        cfg = ('[[triggers]]\nid = "opened"\nkind = "webhook"\nprovider = "github"\n'
               'match = { events = ["issues.opened"] }\nsecret = "%s"\naction = { restart = "web" }\n'
               '[[triggers]]\nid = "any-issue"\nkind = "webhook"\nprovider = "github"\n'
               'match = { events = ["issues"] }\nsecret = "%s"\naction = { restart = "web" }\n'
               '[[triggers]]\nid = "sw"\nkind = "webhook"\nprovider = "webhook"\n'
               'secret = "%s"\naction = { restart = "web" }\n' % (GH_SECRET, GH_SECRET, SW_SECRET)
               + service("web", ["sleep", "3001"]))
        d = self.daemon(cfg)
        pid = d.wait_running("web")
        st, js = self.post(d, "/triggers/opened", issue("closed"), github(issue("closed"), "issues"))
        self.assertEqual((st, js["status"]), (200, "ignored"), js)
        self.assertIn('"issues.closed"', js["reason"])
        self.assertEqual(d.service_state("web")["pid"], pid)
        st, js = self.post(d, "/triggers/opened", issue("opened"), github(issue("opened"), "push"))
        self.assertEqual((st, js["status"]), (200, "ignored"), js)
        st, js = self.post(d, "/triggers/opened", issue("opened"), github(issue("opened"), "issues"))
        self.assertEqual((st, js["status"]), (202, "accepted"), js)
        pid = self.restarted(d, pid)
        # The bare event name still matches any action.
        st, js = self.post(d, "/triggers/any-issue", issue("closed"), github(issue("closed"), "issues"))
        self.assertEqual((st, js["status"]), (202, "accepted"), js)
        self.restarted(d, pid)
        # provider = "webhook" verifies Standard Webhooks signatures (the library's own).
        body = json.dumps({"type": "deploy"}).encode()
        st, js = self.post(d, "/triggers/sw", body, signed("standard-webhooks", SW_SECRET, body))
        self.assertEqual((st, js["status"]), (202, "accepted"), js)
        bad = signed("standard-webhooks", "whsec_" + "b3RoZXIta2V5LWJ5dGVzLW90aGVyLWtleQ==", body)
        st, js = self.post(d, "/triggers/sw", body, bad)
        self.assertEqual(st, 401, js)


if __name__ == "__main__":
    install_signers()
    main()
