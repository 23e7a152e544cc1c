#!/usr/bin/env python3
"""Webhook triggers end to end: the real daemon, real curl, signatures made with the openssl
CLI (never with the code under test). Every refusal is checked for its status, its event,
and that nothing changed on the node (service pid unchanged, no job ran)."""
import base64
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import api_harness  # noqa: E402
from api_harness import main, require, service, sh  # noqa: E402
from harness import alive, tagged  # noqa: E402

require("openssl")

GH_SECRET = "gh-s3cret"
SW_KEY = b"standard-webhooks-key-bytes-0123"
SW_SECRET = "whsec_" + base64.b64encode(SW_KEY).decode()
HMAC_SECRET = "hmac-s3cret"


def openssl_hmac_hex(key_bytes, data):
    """hex HMAC-SHA256 by `openssl dgst` (binary key through -macopt hexkey)."""
    p = subprocess.run(["openssl", "dgst", "-sha256", "-mac", "HMAC", "-macopt", "hexkey:" + key_bytes.hex()],
                       input=data, capture_output=True, check=True)
    return p.stdout.decode().strip().split()[-1]


def openssl_sha256_hex(data):
    p = subprocess.run(["openssl", "dgst", "-sha256"], input=data, capture_output=True, check=True)
    return p.stdout.decode().strip().split()[-1]


def github_headers(body, event="push", delivery=None, secret=GH_SECRET):
    sig = openssl_hmac_hex(secret.encode(), body)
    return ["X-GitHub-Event: " + event, "X-GitHub-Delivery: " + (delivery or str(uuid.uuid4())),
            "X-Hub-Signature-256: sha256=" + sig]


def sw_headers(body, msg_id=None, ts=None, key=SW_KEY):
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    ts = str(int(time.time()) if ts is None else ts)
    sig = base64.b64encode(bytes.fromhex(openssl_hmac_hex(key, ("%s.%s." % (msg_id, ts)).encode() + body))).decode()
    return ["webhook-id: " + msg_id, "webhook-timestamp: " + ts, "webhook-signature: v1,AAAA v1," + sig]


def hmac_headers(path, body, ts=None, secret=HMAC_SECRET, delivery=None):
    ts = str(int(time.time()) if ts is None else ts)
    canonical = ("POST\n%s\n%s\n%s" % (path, ts, openssl_sha256_hex(body))).encode()
    sig = base64.b64encode(bytes.fromhex(openssl_hmac_hex(secret.encode(), canonical))).decode()
    h = ["Authorization: HMAC-SHA256 timestamp=%s,signature=%s" % (ts, sig)]
    if delivery:
        h.append("X-Delivery-Id: " + delivery)
    return h


def push(branch="main"):
    return json.dumps({"ref": "refs/heads/" + branch, "after": "abc123"}).encode()


def trigger_block(tid, provider, action, secret_ref, match=None, path=None):
    lines = ['[[triggers]]', 'id = "%s"' % tid, 'kind = "webhook"', 'provider = "%s"' % provider,
             'secret = "%s"' % secret_ref, 'action = %s' % action]
    if match:
        lines.append("match = %s" % match)
    if path:
        lines.append('path = "%s"' % path)
    return "\n".join(lines) + "\n"


GITHUB = (trigger_block("deploy-web", "github", '{ restart = "web" }', "${GH_SECRET}",
                        '{ events = ["push"], branch = "main" }', "/hooks/deploy-web")
          + service("web", ["sleep", "3001"]))
JOB_SCRIPT = 'echo "job out $DOCKLESS_DELIVERY"; echo "job err" >&2; sleep "${JOB_SLEEP:-0}"'


class TriggersTest(api_harness.TestCase):
    def post(self, d, path, body, headers):
        # Trigger paths are public: a delivery carries its own signature, never the API key
        # (which would also take the Authorization header the hmac provider reads).
        return d.json("POST", path, body, ctype="application/json", headers=headers, auth=False)

    def deliveries(self, d, trigger, outcome=None):
        return [e for e in d.events_of(kind="trigger_delivery")
                if e.get("trigger") == trigger and (outcome is None or e.get("outcome") == outcome)]

    def assertRefused(self, d, path, body, headers, status, reason_part, trigger, outcome="rejected"):
        before = len(self.deliveries(d, trigger))
        st, js = self.post(d, path, body, headers)
        self.assertEqual(st, status, js)
        d.wait_for(lambda: len(self.deliveries(d, trigger)) > before, 3, what="delivery event")
        ev = self.deliveries(d, trigger)[-1]
        self.assertEqual((ev["outcome"], ev["status"]), (outcome, status), ev)
        self.assertIn(reason_part, ev.get("reason", ""), ev)
        return js

    def test_github_push_restarts_web_and_every_refusal_changes_nothing(self):
        d = self.daemon(GITHUB, env={"GH_SECRET": GH_SECRET})
        pid = d.wait_running("web")
        path = "/hooks/deploy-web"
        body = push()
        # Refusals: each with its status and its event, web untouched.
        self.assertRefused(d, path, body, ["X-GitHub-Event: push"], 401, "missing X-Hub-Signature-256", "deploy-web")
        self.assertRefused(d, path, body, github_headers(body, secret="wrong"), 401, "signature mismatch",
                           "deploy-web")
        self.assertRefused(d, path, body + b" ", github_headers(body), 401, "signature mismatch", "deploy-web")
        js = self.assertRefused(d, path, push("dev"), github_headers(push("dev")), 200, 'branch "dev"',
                                "deploy-web", "ignored")
        self.assertEqual(js["status"], "ignored")
        self.assertRefused(d, path, body, github_headers(body, event="issues"), 200, "match.events",
                           "deploy-web", "ignored")
        self.assertRefused(d, path, b"not json", github_headers(b"not json"), 400, "not a JSON object",
                           "deploy-web")
        # Signed, but nested too deep to walk safely (copying it would overflow the stack).
        deep = b'{"ref":' + b"[" * 60000 + b"]" * 60000 + b"}"
        self.assertRefused(d, path, deep, github_headers(deep), 400, "not a JSON object", "deploy-web")
        st, js = self.post(d, path, b"{}", github_headers(b"{}", event="ping"))
        self.assertEqual((st, js["status"]), (200, "ping"))
        st, _ = d.json("GET", path)
        self.assertEqual(st, 405)
        # A path no trigger claims is not public: without the API key the gate answers 401
        # (it reveals no routes); with it, 404.
        st, _ = self.post(d, "/hooks/nope", body, github_headers(body))
        self.assertEqual(st, 401)
        st, _ = d.json("POST", "/hooks/nope", body, ctype="application/json", headers=github_headers(body))
        self.assertEqual(st, 404)
        time.sleep(0.3)
        self.assertEqual(d.wait_running("web"), pid, "a refused delivery touched web")
        self.assertEqual(d.events_of(kind="trigger_action"), [])

        # The real thing: new pid, delivery and outcome in the event log.
        delivery = str(uuid.uuid4())
        st, js = self.post(d, path, body, github_headers(body, delivery=delivery))
        self.assertEqual((st, js["status"], js["delivery"]), (202, "accepted", delivery))
        new = d.wait_for(lambda: (lambda p: p if p != pid else None)(d.wait_running("web")), 5, what="new pid")
        self.assertFalse(alive(pid))
        act = d.wait_event("trigger_action")[0]
        self.assertEqual((act["trigger"], act["delivery"], act["action"], act["target"], act["ok"]),
                         ("deploy-web", delivery, "restart", "web", True))
        self.assertEqual(self.deliveries(d, "deploy-web", "accepted")[-1]["delivery"], delivery)

        # A redelivery is acknowledged, not run twice.
        st, js = self.post(d, path, body, github_headers(body, delivery=delivery))
        self.assertEqual((st, js["status"]), (200, "duplicate"))
        time.sleep(0.3)
        self.assertEqual(d.wait_running("web"), new)
        self.assertEqual(len(d.events_of(kind="trigger_action")), 1)

        # Listing: last delivery, never the secret.
        st, js = d.json("GET", "/v1/triggers")
        self.assertEqual(st, 200)
        (t,) = js["triggers"]
        self.assertEqual((t["id"], t["path"], t["provider"]), ("deploy-web", path, "github"))
        self.assertEqual(t["last_delivery"]["outcome"], "duplicate")
        self.assertNotIn(GH_SECRET, json.dumps(js))

        # Remembered across a daemon restart (data_dir/triggers/<id>/deliveries).
        d.stop()
        d.start()
        newer = d.wait_running("web")
        st, js = self.post(d, path, body, github_headers(body, delivery=delivery))
        self.assertEqual((st, js["status"]), (200, "duplicate"))
        time.sleep(0.3)
        self.assertEqual(d.wait_running("web"), newer)
        d.stop()

    def test_standard_webhooks_window_signature_and_replay(self):
        cfg = (trigger_block("sw", "standard-webhooks", '{ run = ["sh", "-c", %s] }' % json.dumps(JOB_SCRIPT),
                             SW_SECRET, '{ events = ["deploy"] }'))
        d = self.daemon(cfg)
        path = "/triggers/sw"
        body = json.dumps({"type": "deploy"}).encode()
        now = int(time.time())
        self.assertRefused(d, path, body, sw_headers(body, ts=now - 400), 401, "too old", "sw")
        self.assertRefused(d, path, body, sw_headers(body, ts=now + 400), 401, "future", "sw")
        self.assertRefused(d, path, body, sw_headers(body, key=b"other key"), 401, "signature mismatch", "sw")
        self.assertRefused(d, path, body, [], 401, "missing webhook-id", "sw")
        other = json.dumps({"type": "other"}).encode()
        self.assertRefused(d, path, other, sw_headers(other), 200, "match.events", "sw", "ignored")
        self.assertEqual(d.events_of(kind="trigger_job_finished"), [], "a refused delivery ran the job")

        headers = sw_headers(body, msg_id="msg_1")
        st, js = self.post(d, path, body, headers)
        self.assertEqual((st, js["status"]), (202, "accepted"))
        fin = d.wait_event("trigger_job_finished")[0]
        self.assertEqual((fin["trigger"], fin["delivery"], fin["outcome"], fin["exit_code"]),
                         ("sw", "msg_1", "succeeded", 0))
        st, js = self.post(d, path, body, headers)
        self.assertEqual((st, js["status"]), (200, "duplicate"))
        time.sleep(0.3)
        self.assertEqual(len(d.events_of(kind="trigger_job_finished")), 1, "replay ran the job twice")
        d.stop()

    def test_hmac_window_signature_and_replay(self):
        cfg = trigger_block("h", "hmac", '{ run = ["sh", "-c", %s] }' % json.dumps(JOB_SCRIPT), HMAC_SECRET)
        d = self.daemon(cfg)
        path = "/triggers/h"
        body = b'{"event":"go"}'
        now = int(time.time())
        self.assertRefused(d, path, body, hmac_headers(path, body, ts=now - 400), 401, "too old", "h")
        self.assertRefused(d, path, body, hmac_headers(path, body, ts=now + 400), 401, "future", "h")
        self.assertRefused(d, path, body, hmac_headers(path, body, secret="nope"), 401, "signature mismatch", "h")
        self.assertRefused(d, path, body, [], 401, "missing Authorization", "h")
        self.assertEqual(d.events_of(kind="trigger_job_finished"), [])
        headers = hmac_headers(path, body, delivery="d-1")
        self.assertEqual(self.post(d, path, body, headers)[0], 202)
        d.wait_event("trigger_job_finished")
        st, js = self.post(d, path, body, headers)
        self.assertEqual((st, js["status"]), (200, "duplicate"))
        time.sleep(0.3)
        self.assertEqual(len(d.events_of(kind="trigger_job_finished")), 1)
        d.stop()

    def test_run_job_output_readable_and_timeout_kills_its_group(self):
        script = 'echo "job out $DOCKLESS_DELIVERY"; echo "job err" >&2; sleep 3017 & sleep 3018'
        cfg = trigger_block("slow", "hmac", '{ run = ["sh", "-c", %s], timeout = "1s" }' % json.dumps(script),
                            HMAC_SECRET) + "max_attempts = 1\n"
        d = self.daemon(cfg)
        path = "/triggers/slow"
        body = b"{}"
        t0 = time.monotonic()
        st, js = self.post(d, path, body, hmac_headers(path, body, delivery="j1"))
        self.assertEqual(st, 202, js)
        # One job at a time: a second delivery meanwhile is queued behind it.
        body2 = b'{"n":2}'
        st, js2 = self.post(d, path, body2, hmac_headers(path, body2, delivery="j2"))
        self.assertEqual((st, js2["status"]), (202, "accepted"), js2)
        fin = d.wait_event("trigger_job_finished", timeout=10)[0]
        self.assertEqual((fin["delivery"], fin["outcome"], fin["signal"]), ("j1", "timed_out", "SIGKILL"))
        self.assertLess(time.monotonic() - t0, 6)
        self.assertGreaterEqual(fin["duration_ms"], 900)
        # j2 runs after j1 (and times out the same way); j1, with max_attempts = 1, is dead-lettered.
        fins = d.wait_event("trigger_job_finished", count=2, timeout=10)
        self.assertEqual([f["delivery"] for f in fins], ["j1", "j2"])
        d.wait_for(lambda: not [p for p in tagged(d.tag) if p.cmdline[:2] in (["sleep", "3017"], ["sleep", "3018"])
                                and p.state != "Z"], 3, what="job's group killed")
        st, out = d.curl("GET", "/v1/triggers/slow/logs")
        self.assertEqual(st, 200)
        self.assertIn(b"job out j1", out)
        self.assertIn(b"job out j2", out)
        st, out = d.curl("GET", "/v1/triggers/slow/logs?stream=stderr")
        self.assertIn(b"job err", out)
        self.assertEqual(d.curl("GET", "/v1/triggers/nope/logs")[0], 404)
        dead = d.wait_event("trigger_dead_lettered", count=2, timeout=10)
        self.assertEqual(sorted(e["event_id"] for e in dead), sorted([js["queued"], js2["queued"]]))
        self.assertEqual(dead[0]["error"], "the job timed out after 1000 ms")
        d.stop()

    def test_reload_swaps_the_secret_without_rebinding_and_in_flight_keeps_the_old(self):
        def cfg(secret):
            return (trigger_block("deploy-web", "github", '{ restart = "web" }', secret,
                                  '{ events = ["push"] }') + service("web", ["sleep", "3002"]))
        d = self.daemon(cfg("old-secret"))
        path = "/triggers/deploy-web"
        body = push()
        # A slow upload: head and half the body now, signed with the old secret.
        head = "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n\r\n" % (
            path, len(body), "\r\n".join(github_headers(body, secret="old-secret")))
        s = socket.create_connection(("127.0.0.1", d.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(head.encode() + body[:5])
        time.sleep(0.2)
        before = d.events()[-1]["seq"]
        d.write_config(cfg("new-secret"))
        d.sighup()
        d.wait_event("reload_succeeded", where=lambda e: e["seq"] > before, timeout=10)
        s.sendall(body[5:])
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        self.assertTrue(reply.startswith(b"HTTP/1.1 202"), reply[:200])
        # New requests: the old secret is refused, the new one accepted; same listener.
        st, _ = self.post(d, path, body, github_headers(body, secret="old-secret"))
        self.assertEqual(st, 401)
        st, _ = self.post(d, path, body, github_headers(body, secret="new-secret"))
        self.assertEqual(st, 202)
        self.assertTrue(d.running())
        self.assertEqual(len(d.events_of(kind="daemon_started")), 1)
        d.stop()

    def test_a_job_runs_as_its_user_with_no_secret_of_the_daemons(self):
        """By default a job runs as nobody (the daemon is root), as `user` when set, and its
        environment is the fixed base and the DOCKLESS_* markers, never the daemon's."""
        if os.geteuid() != 0:
            self.skipTest("needs a root daemon")
        script = 'env; echo "uid=$(id -u)"'
        cfg = (trigger_block("job", "hmac", '{ run = ["sh", "-c", %s] }' % json.dumps(script), "${HOOK_SECRET}")
               + trigger_block("as-root", "hmac", '{ run = ["sh", "-c", %s] }' % json.dumps(script),
                               "${HOOK_SECRET}") + 'user = "root"\n')
        secrets = {"HOOK_SECRET": HMAC_SECRET, "DOCKLESS_TEST_SECRET": "daemon-only-s3cret",
                   "DOCKLESS_HMAC_SECRET": "hmac-s3cret-of-the-daemon"}
        d = self.daemon(cfg, env=secrets)
        st, listed = d.curl("GET", "/v1/triggers")
        self.assertEqual(st, 200)
        self.assertEqual({t["id"]: t["action"]["user"] for t in json.loads(listed)["triggers"]},
                         {"job": "nobody", "as-root": "root"})
        outputs = {}
        for tid in ("job", "as-root"):
            path = "/triggers/" + tid
            self.assertEqual(self.post(d, path, b"{}", hmac_headers(path, b"{}", delivery="d-" + tid))[0], 202)
            fin = d.wait_event("trigger_job_finished", where=lambda e, tid=tid: e["trigger"] == tid, timeout=10)[0]
            self.assertEqual((fin["outcome"], fin["user"]), ("succeeded", "nobody" if tid == "job" else "root"), fin)
            st, out = d.curl("GET", "/v1/triggers/%s/logs" % tid)
            self.assertEqual(st, 200)
            outputs[tid] = out.decode()
        import pwd
        nobody = pwd.getpwnam("nobody")
        self.assertIn("uid=%d" % nobody.pw_uid, outputs["job"])
        self.assertIn("uid=0", outputs["as-root"])
        env = dict(line.split("=", 1) for line in outputs["job"].splitlines()
                   if "=" in line and not line.startswith("uid="))
        env.pop("PWD", None)  # set by sh itself
        leaked = sorted(k for k, v in env.items() if k in secrets or v in secrets.values()
                        or k in ("E2E_TAG", "DOCKLESS_API_KEYS") or v == api_harness.harness.TEST_API_KEY)
        self.assertEqual(leaked, [], "a job got the daemon's variables")
        base = {"PATH", "HOME", "USER", "LOGNAME"} | ({"SHELL"} if nobody.pw_shell else set())
        base |= {k for k in ("LANG", "LC_ALL", "TZ") if k in os.environ}
        self.assertEqual(set(env), base | {"DOCKLESS_TRIGGER", "DOCKLESS_DELIVERY", "DOCKLESS_EVENT",
                                           "DOCKLESS_EVENT_ID", "DOCKLESS_ATTEMPT", "DOCKLESS_SUPERVISOR"})
        self.assertEqual((env["USER"], env["HOME"], env["DOCKLESS_TRIGGER"], env["DOCKLESS_DELIVERY"]),
                         ("nobody", nobody.pw_dir, "job", "d-job"))
        d.stop()

    def test_bad_triggers_are_config_errors_with_positions(self):
        bad = (service("web", ["sleep", "1"])
               + '[[triggers]]\nid = "a"\nkind = "webhook"\nprovider = "gitlab"\nsecret = "${NOPE_UNSET_VAR}"\n'
               'action = { restart = "wbe" }\nbogus = 1\n'
               '[[triggers]]\nid = "b"\nkind = "webhook"\nprovider = "hmac"\nsecret = "x"\npath = "/v1/services"\n'
               'action = { run = ["/bin/true"], timeout = "soon" }\n'
               '[[triggers]]\nid = "c"\nkind = "webhook"\nprovider = "hmac"\nsecret = "x"\npath = "/triggers/a"\n'
               'action = { stop = "web" }\n'
               '[[triggers]]\nid = "d"\nkind = "webhook"\nprovider = "hmac"\naction = { stop = "web" }\n')
        d = self.daemon(None, start=False)
        d.write_config(bad)
        p = subprocess.run([d.bin, "check-config", "config.toml"], cwd=d.dir, capture_output=True, text=True,
                           timeout=10)
        self.assertEqual(p.returncode, 1, p.stderr)
        errs = p.stderr
        for want in ('config.toml:6:12: triggers.a.provider: expected one of "github", "standard-webhooks", '
                     '"hmac", got "gitlab"',
                     "config.toml:7:10: triggers.a.secret: undefined variable ${NOPE_UNSET_VAR}",
                     'config.toml:8:22: triggers.a.action.restart: unknown service "wbe"; did you mean "web"?',
                     'config.toml:9:1: unknown key "bogus" in [triggers.a]',
                     'config.toml:15:8: triggers.b.path: "/v1/services" collides',
                     "config.toml:16:43: triggers.b.action.timeout:",
                     'config.toml:22:8: triggers.c.path: "/triggers/a" is already the path of trigger "a"',
                     "config.toml:24:1: triggers.d.secret: missing"):
            self.assertIn(want, errs)

        # The same file on reload: refused as a whole, the running config stays.
        good = GITHUB
        d.extra_env = {"GH_SECRET": GH_SECRET}
        d.write_config(good)
        d.start()
        before = d.events()[-1]["seq"]
        d.write_config(bad)
        d.sighup()
        ev = d.wait_event("reload_failed", where=lambda e: e["seq"] > before, timeout=10)[0]
        self.assertIn("triggers.a.provider", json.dumps(ev))
        body = push()
        st, _ = self.post(d, "/hooks/deploy-web", body, github_headers(body))
        self.assertEqual(st, 202, "the running trigger set was dropped by a failed reload")
        d.stop()


if __name__ == "__main__":
    main()
