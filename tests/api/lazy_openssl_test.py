#!/usr/bin/env python3
"""OpenSSL is mapped into the daemon only when something needs it (http/openssl.hpp):
plain HTTP with bearer keys never loads it, the first HMAC-signed request does and is
answered correctly, and a daemon serving HTTPS has it from the start. The same holds for
wolfSSL in a -Dtls=wolfssl build: "OpenSSL" below is whichever library the build chose."""
import os
import shutil
import subprocess
import tempfile
import time

from api_harness import TestCase, harness, main, require, service, sh
from auth_test import HMAC_SECRET, hmac_header, request

require("openssl")

WEB = service("web", sh("while true; do sleep 0.2; done"))


def openssl_mapped(pid):
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    return "libssl.so" in maps or "libcrypto.so" in maps or "libwolfssl.so" in maps


class LazyOpenssl(TestCase):
    def static_binary(self, d):
        with open("/proc/%d/maps" % d.proc.pid) as f:
            return "libc.so" not in f.read()  # -Dstatic=true links OpenSSL in

    def test_bearer_keys_never_load_it_and_the_first_signed_request_does(self):
        d = self.daemon(WEB, env={"DOCKLESS_HMAC_SECRET": HMAC_SECRET})
        if self.static_binary(d):
            self.skipTest("static build: OpenSSL is linked in")
        d.wait_for(lambda: d.service_state("web"), 5, what="web running")
        for _ in range(3):
            self.assertStatus(d.json("GET", "/v1/services"), 200)
        self.assertEqual(request(d, "GET", "/v1/services", {"Authorization": "Bearer wrong-key-0123456789abcdef"})[0],
                         401)
        time.sleep(1.5)  # past the start-up release (tools/daemon/serve.cpp): nothing loads it later either
        self.assertStatus(d.json("GET", "/v1/services"), 200)
        self.assertFalse(openssl_mapped(d.proc.pid), "bearer keys and plain HTTP must not map OpenSSL")

        now = int(time.time())
        path = "/v1/services/web/restart"
        status, _, body = request(d, "POST", path, {"Authorization": hmac_header(HMAC_SECRET, "POST", path, now)})
        self.assertIn(status, (200, 202), body)
        self.assertTrue(openssl_mapped(d.proc.pid), "a signed request loads OpenSSL")
        bad = hmac_header("not-the-secret-0123456789", "POST", path, now + 1)
        self.assertEqual(request(d, "POST", path, {"Authorization": bad})[0], 401)

    def test_https_loads_it_at_start(self):
        tmp = tempfile.mkdtemp(prefix="dockless-lazy-tls-")
        self.addCleanup(shutil.rmtree, tmp, True)
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
        d = self.daemon(WEB, start=False, env={"DOCKLESS_CERT": cert, "DOCKLESS_KEY": key})
        d.start(wait=False)
        d.wait_for(lambda: d.proc.poll() is not None or d.service_state("web"), 10, what="web running")
        self.assertIsNone(d.proc.poll(), d.describe())
        out = subprocess.run(["curl", "-sS", "--cacert", cert, "-H", harness.auth_header(d.api_key),
                              "https://127.0.0.1:%d/v1/services" % d.port], capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn(b"web", out.stdout)
        self.assertTrue(self.static_binary(d) or openssl_mapped(d.proc.pid))


if __name__ == "__main__":
    main()
