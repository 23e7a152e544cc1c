"""The CLI and API keys: --token / DOCKLESS_TOKEN over TCP, nothing over the unix socket,
and a clear message (exit 1) when the daemon answers 401."""
from cli_harness import TestCase, harness, main, service, sh


class CliAuth(TestCase):
    def setUp(self):
        self.d = self.daemon(service("web", sh("while true; do sleep 0.2; done")))
        self.pid = self.d.wait_running("web")

    def test_tcp_needs_a_token(self):
        for token, what in ((None, "no token"), ("wrong-token-0123456789abcdef", "wrong token")):
            rc, out, err = self.cli(self.d, "restart", "web", via="tcp", token=token)
            self.assertEqual(rc, 1, "%s: %s" % (what, err))
            self.assertIn("--token", err, what)
            self.assertIn("DOCKLESS_TOKEN", err, what)
            self.assertNotIn(harness.TEST_API_KEY, err + out)
        self.assertEqual(self.d.service_state("web")["pid"], self.pid, "a refused restart acted")
        # --token wins over the environment; DOCKLESS_TOKEN alone works too.
        self.cli_ok(self.d, "--token", harness.TEST_API_KEY, "ps", via="tcp", token="wrong-token-0123456789abcdef")
        self.cli_ok(self.d, "ps", via="tcp")

    def test_unix_socket_needs_no_token(self):
        self.assertIn("web", self.cli_ok(self.d, "ps", token=None))


if __name__ == "__main__":
    main()
