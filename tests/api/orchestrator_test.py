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
import harness  # noqa: E402
from harness import SKIP  # noqa: E402
from triggers_test import hmac_headers  # noqa: E402  (the canonical HMAC, signed by the openssl CLI)

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

    def restarted(self, d, pid, name="web"):
        return d.wait_for(lambda: (lambda p: p if p != pid else None)(d.wait_running(name)), 10, what="new pid")

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


    def test_the_designs_example_manifest_loads_and_works(self):
        d = self.daemon(design_manifest(), env={"DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET": GH_SECRET})
        pid = d.wait_running("reviewer")
        err = d.stderr_text()
        self.assertRegex(err, r"API on http://[0-9.]+:%d" % d.port)
        self.assertIn("secrets by reference, looked up in order: systemd credentials", err)
        self.assertIn("trigger github-new-issue: webhook/github POST /triggers/github-new-issue events issues.opened"
                      " -> exec:/bin/cat; secret from environment DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET", err)
        self.assertIn("trigger incoming-review-task: a2a-push/a2a-push POST /a2a/review events a2a.task.received"
                      " -> restart:reviewer; authenticated by the API keys", err)
        self.assertNotIn(GH_SECRET, err)

        # GitHub: issues + action opened runs the handler with the event JSON on stdin; closed does not.
        path = "/triggers/github-new-issue"
        st, js = self.post(d, path, issue("closed"), github(issue("closed"), "issues"))
        self.assertEqual((st, js["status"]), (200, "ignored"), js)
        headers = github(issue("opened"), "issues")
        st, js = self.post(d, path, issue("opened"), headers)
        self.assertEqual((st, js["status"]), (202, "accepted"), js)
        d.wait_event("trigger_job_finished", timeout=10)
        st, out = d.curl("GET", "/v1/triggers/github-new-issue/logs")
        self.assertEqual(st, 200, out)
        event = json.loads(out)
        self.assertEqual((event["trigger"], event["provider"], event["event"], event["id"], event["delivery"]),
                         ("github-new-issue", "github", "issues", js["queued"], js["delivery"]))
        self.assertEqual(event["body"], json.loads(issue("opened")))
        self.assertEqual(event["headers"]["X-GitHub-Event"], "issues")
        self.assertNotIn("X-Hub-Signature-256", event["headers"])
        self.assertEqual(len(d.events_of(kind="trigger_job_finished")), 1)

        # a2a-push: the API's Bearer key or its HMAC signature, nothing else.
        task = json.dumps({"id": "task-1", "status": {"state": "submitted"}}).encode()
        for headers in ([], ["Authorization: Bearer wrong-key-0123456789abcdef"],
                        github(task, "issues"), signed("standard-webhooks", SW_SECRET, task),
                        hmac_headers("/a2a/review", task, secret="not-the-key-0123456789")):
            st, js = self.post(d, "/a2a/review", task, headers)
            self.assertEqual(st, 401, (headers, js))
        self.assertEqual(d.wait_running("reviewer"), pid)
        st, js = self.post(d, "/a2a/review", task, [harness.auth_header(), "X-Delivery-Id: a2a-1"])
        self.assertEqual((st, js["status"], js["delivery"]), (202, "accepted", "a2a-1"), js)
        pid = self.restarted(d, pid, "reviewer")
        act = d.wait_event("trigger_action")[0]
        self.assertEqual((act["trigger"], act["action"], act["target"]), ("incoming-review-task", "restart", "reviewer"))
        ev = [e for e in d.events_of(kind="trigger_delivery") if e.get("trigger") == "incoming-review-task"][-1]
        self.assertEqual(ev["event"], "a2a.task.received")
        st, js = self.post(d, "/a2a/review", task, hmac_headers("/a2a/review", task, secret=harness.TEST_API_KEY))
        self.assertEqual((st, js["status"]), (202, "accepted"), js)
        self.restarted(d, pid, "reviewer")

        # [orchestrator] allowed_origins: a listed origin passes, any other is 403, GET included.
        self.assertEqual(d.curl("GET", "/v1/services", headers=["Origin: https://app.example.com"])[0], 200)
        self.assertEqual(d.curl("GET", "/v1/services", headers=["Origin: https://evil.example"])[0], 403)

    def test_secrets_dir_is_mode_checked_and_a_missing_secret_names_the_chain(self):
        d = self.daemon(None, start=False)
        secrets = os.path.join(d.dir, "secrets")
        os.makedirs(os.path.join(secrets, "github"))
        secret_file = os.path.join(secrets, "github", "webhook-secret")
        with open(secret_file, "w") as f:
            f.write(GH_SECRET + "\n")
        os.chmod(secret_file, 0o644)
        cfg = 'secrets_dir = "%s"\n' % secrets + design_manifest()
        d.write_config(cfg)
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKLESS_SECRET_")}
        env.pop("CREDENTIALS_DIRECTORY", None)
        check = lambda: subprocess.run([d.bin, "check-config", "config.toml"], cwd=d.dir, capture_output=True,
                                       text=True, timeout=10, env=env)
        p = check()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("triggers.github-new-issue.secrets.signing_secret: secret \"github/webhook-secret\": file (%s"
                      % secret_file, p.stderr)
        self.assertIn("has mode 0644", p.stderr)
        os.chmod(secret_file, 0o600)
        p = check()
        self.assertEqual(p.returncode, 0, p.stderr)
        os.unlink(secret_file)
        p = check()
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("secret \"github/webhook-secret\" not found; tried systemd credentials ($CREDENTIALS_DIRECTORY "
                      "not set), file (%s: No such file or directory), environment "
                      "(DOCKLESS_SECRET_GITHUB_WEBHOOK_SECRET not set)" % secret_file, p.stderr)
        # systemd credentials come first.
        creds = os.path.join(d.dir, "creds")
        os.makedirs(os.path.join(creds, "github"))
        with open(os.path.join(creds, "github", "webhook-secret"), "w") as f:
            f.write(GH_SECRET)
        os.chmod(os.path.join(creds, "github", "webhook-secret"), 0o400)
        d.extra_env = {"CREDENTIALS_DIRECTORY": creds}
        d.start()
        self.assertIn("secret from systemd credential %s/github/webhook-secret" % creds, d.stderr_text())
        st, js = self.post(d, "/triggers/github-new-issue", issue("opened"), github(issue("opened"), "issues"))
        self.assertEqual((st, js["status"]), (202, "accepted"), js)

    def test_http_and_orchestrator_together_refuse_to_start(self):
        d = self.daemon(None, start=False)
        d.write_config('[http]\nmax_body_bytes = 1000\n[orchestrator]\nmax_body_bytes = 2000\n')
        p = subprocess.run([d.bin, "check-config", "config.toml"], cwd=d.dir, capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("config.toml:3:1: [http] (config.toml:1:1) and [orchestrator] (config.toml:3:1) both set the "
                      "listener; keep one of the two", p.stderr)


    def test_drain_timeout_bounds_the_sigterm_wait_for_in_flight_requests(self):
        import socket
        import time
        for drain, low, high in (("1s", 0.8, 4.0), ("6s", 5.5, 12.0)):
            d = self.daemon('[orchestrator]\ndrain_timeout = "%s"\n' % drain)
            # A request whose body is still arriving: in flight when SIGTERM comes.
            s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
            self.addCleanup(s.close)
            s.sendall(("POST /v1/reload HTTP/1.1\r\nHost: x\r\n%s\r\nContent-Length: 100\r\n\r\n{"
                       % harness.auth_header()).encode())
            time.sleep(0.3)
            took = d.stop(timeout=30)
            self.assertTrue(low <= took <= high, "drain_timeout %s: stop took %.2fs" % (drain, took))


def design_manifest():
    """The issue's example, with real handler values."""
    return ('[orchestrator]\nallowed_origins = ["https://app.example.com"]\nmax_body_bytes = 10485760\n'
            'drain_timeout = "2s"\n\n'
            '[[triggers]]\nid = "github-new-issue"\nkind = "webhook"\nprovider = "github"\n'
            'path = "/triggers/github-new-issue"\nmatch = { events = ["issues.opened"] }\n'
            'handler = "exec:/bin/cat"\nsecrets = { signing_secret = "github/webhook-secret" }\n\n'
            '[[triggers]]\nid = "incoming-review-task"\nkind = "a2a-push"\nprovider = "a2a-push"\n'
            'path = "/a2a/review"\nmatch = { events = ["a2a.task.received"] }\nhandler = "restart:reviewer"\n\n'
            + service("reviewer", ["sleep", "3001"]))


if __name__ == "__main__":
    install_signers()
    main()
