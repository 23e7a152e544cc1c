#!/usr/bin/env python3
"""How the CLI reaches the daemon: the unix socket (flag, DOCKLESS_SOCKET), TCP (--host,
DOCKLESS_HOST) giving the same answers, global flags before or after the command, exit 3 with
a message naming where it tried; and, against a scripted server, the token header and
response framing (chunked split anywhere, Content-Length, until-close, garbage)."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cli_harness as h  # noqa: E402
from cli_harness import service  # noqa: E402


class Scripted:
    """A one-connection-at-a-time HTTP server on a unix socket that records each request
    and answers with the given raw byte pieces (sent with a pause between them)."""

    def __init__(self, path, pieces, pause=0.02):
        self.path, self.pieces, self.pause = path, pieces, pause
        self.requests = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                try:
                    for p in self.pieces:
                        conn.sendall(p)
                        time.sleep(self.pause)
                except OSError:
                    pass

    def close(self):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def chunked(body, sizes):
    """body as chunked encoding with the given chunk sizes (the rest in one last chunk)."""
    out, i = b"", 0
    for n in sizes + [len(body)]:
        part = body[i:i + n]
        if not part:
            continue
        out += b"%x\r\n" % len(part) + part + b"\r\n"
        i += len(part)
    return out + b"0\r\n\r\n"


SERVICES = json.dumps([{"name": "fake", "state": "running", "pid": 42, "restarts": 1,
                        "uptime_seconds": 7384, "health": "unhealthy", "cpu_seconds": 75.5,
                        "rss_bytes": 5 << 20, "ports": [80]}]).encode()


class AgainstDaemon(h.TestCase):
    def setUp(self):
        self.d = self.daemon(service("web", ["sleep", "300"]))
        self.d.wait_state("web", "running")

    def test_tcp_answers_like_the_socket(self):
        via_sock = json.loads(self.cli_ok(self.d, "ps", "--json"))
        via_tcp = json.loads(self.cli_ok(self.d, "ps", "--json", via="tcp"))
        self.assertEqual([(s["name"], s["pid"]) for s in via_sock],
                         [(s["name"], s["pid"]) for s in via_tcp])
        self.assertEqual(self.cli_ok(self.d, "inspect", "--json", "web", via="tcp").count('"spec"'), 1)
        rc, out, err = self.cli(self.d, "stop", "nosuch", via="tcp")
        self.assertEqual(rc, 4, err)
        self.cli_ok(self.d, "stop", "web", via="tcp")
        self.d.wait_state("web", "stopped")

    def test_environment_and_flag_positions(self):
        out = self.cli_ok(None, "ps", env={"DOCKLESS_SOCKET": self.d.socket_path})
        self.assertIn("web", out)
        out = self.cli_ok(None, "ps", env={"DOCKLESS_HOST": self.d.url})
        self.assertIn("web", out)
        out = self.cli_ok(None, "ps", "--socket", self.d.socket_path)   # after the command
        self.assertIn("web", out)
        out = self.cli_ok(None, "ps", "--host=" + self.d.url)
        self.assertIn("web", out)
        # A flag wins over the environment.
        out = self.cli_ok(None, "--socket", self.d.socket_path, "ps",
                          env={"DOCKLESS_SOCKET": "/nonexistent.sock"})
        self.assertIn("web", out)

    def test_version_reports_the_daemon(self):
        out = self.cli_ok(self.d, "version")
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^dockless \d+\.\d+\.\d+ \(client\)$")
        self.assertTrue(lines[1].startswith("daemon: "), out)
        self.assertIn(self.d.socket_path, lines[1])


class Unreachable(h.TestCase):
    def test_missing_socket_is_3_with_message(self):
        path = os.path.join(self.tempdir(), "nothing.sock")
        rc, out, err = self.cli(None, "--socket", path, "ps")
        self.assertEqual(rc, 3, err)
        self.assertEqual(err, "dockless: cannot connect to %s: No such file or directory "
                              "\u2014 is the daemon running? (dockless serve)\n" % path)
        rc, out, err = self.cli(None, "logs", "-f", "x", "--socket", path)
        self.assertEqual(rc, 3, err)

    def test_default_socket_named(self):
        if os.path.exists("/run/dockless/dockless.sock"):
            self.skipTest("a daemon owns the default socket here")
        rc, out, err = self.cli(None, "ps")
        self.assertEqual(rc, 3, err)
        self.assertIn("cannot connect to /run/dockless/dockless.sock: ", err)

    def test_refused_tcp_is_3(self):
        port = h.harness.free_port()
        rc, out, err = self.cli(None, "--host", "http://127.0.0.1:%d" % port, "ps")
        self.assertEqual(rc, 3, err)
        self.assertIn("cannot connect to http://127.0.0.1:%d: Connection refused" % port, err)

    def test_bad_host_is_usage(self):
        rc, out, err = self.cli(None, "--host", "ftp://x", "ps")
        self.assertEqual(rc, 2, err)

    def test_help(self):
        out = self.cli_ok(None, "help")
        for code in ("0  ok", "1  the daemon said no", "2  usage error", "3  cannot reach", "4  not found"):
            self.assertIn(code, out)
        for cmd in ("ps", "inspect", "logs", "events", "add", "rm", "reload", "signal", "check-config"):
            self.assertRegex(out, r"(?m)^  %s\b" % cmd)
        out = self.cli_ok(None, "logs", "--help")
        self.assertIn("usage: dockless logs", out)
        self.assertEqual(self.cli_ok(None, "help", "logs"), out)
        rc, out, err = self.cli(None)
        self.assertEqual(rc, 2)
        self.assertIn("usage:", err)


class AgainstScripted(h.TestCase):
    def server(self, pieces, pause=0.02):
        path = os.path.join(self.tempdir(), "s.sock")
        s = Scripted(path, pieces, pause)
        self.addCleanup(s.close)
        return s

    def test_chunked_split_anywhere_and_token(self):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        wire = head + chunked(SERVICES, [1, 7, 30])
        # Deliver the bytes in odd pieces that cut through sizes, CRLFs and headers.
        pieces = [wire[i:i + 13] for i in range(0, len(wire), 13)]
        s = self.server(pieces, pause=0.001)
        out = self.cli_ok(None, "--socket", s.path, "--token", "s3cret", "ps")
        self.assertEqual(out.splitlines()[1].split(),
                         ["fake", "running", "42", "2h3m", "1", "unhealthy", "1m15s", "5.0M", "80"])
        req = s.requests[-1].decode()
        self.assertTrue(req.startswith("GET /v1/services HTTP/1.1\r\n"), req)
        self.assertIn("\r\nAuthorization: Bearer s3cret\r\n", req)
        self.cli_ok(None, "ps", env={"DOCKLESS_SOCKET": s.path, "DOCKLESS_TOKEN": "envtok"})
        self.assertIn("\r\nAuthorization: Bearer envtok\r\n", s.requests[-1].decode())
        self.cli_ok(None, "ps", env={"DOCKLESS_SOCKET": s.path}, token=None)
        self.assertNotIn("Authorization", s.requests[-1].decode())

    def test_content_length_and_until_close(self):
        s = self.server([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(SERVICES), SERVICES,
                         b"trailing junk that is not read"])
        self.assertEqual(json.loads(self.cli_ok(None, "--socket", s.path, "ps", "--json"))[0]["name"], "fake")
        s2 = self.server([b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", SERVICES[:10], SERVICES[10:]])
        self.assertEqual(json.loads(self.cli_ok(None, "--socket", s2.path, "ps", "--json"))[0]["pid"], 42)

    def test_error_status_and_detail(self):
        body = json.dumps({"error": "invalid service spec", "detail": [
            {"field": "restart", "message": "bad", "text": "<request>:3:11: restart: bad value"}]}).encode()
        s = self.server([b"HTTP/1.1 422 Unprocessable Entity\r\nContent-Length: %d\r\n\r\n" % len(body), body])
        path = os.path.join(self.tempdir(), "svc.toml")
        with open(path, "w") as f:
            f.write("[services.x]\n")
        rc, out, err = self.cli(None, "--socket", s.path, "add", path)
        self.assertEqual(rc, 1, err)
        self.assertIn("%s:3:11: restart: bad value\n" % path, err)
        req = s.requests[-1].decode()
        self.assertIn("\r\nContent-Type: application/toml\r\n", req)
        body = json.dumps({"error": "boom", "detail": "disk on fire"}).encode()
        s = self.server([b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: %d\r\n\r\n" % len(body), body])
        rc, out, err = self.cli(None, "--socket", s.path, "ps")
        self.assertEqual(rc, 1, err)
        self.assertEqual(err, "dockless: boom\n  disk on fire\n")

    def test_garbage_and_truncation_are_3(self):
        s = self.server([b"SMTP ready\r\n\r\n"])
        rc, out, err = self.cli(None, "--socket", s.path, "ps")
        self.assertEqual(rc, 3, err)
        self.assertIn("bad response from", err)
        s = self.server([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n[1,2"])
        rc, out, err = self.cli(None, "--socket", s.path, "ps")
        self.assertEqual(rc, 3, err)
        self.assertIn("closed the connection before the response was complete", err)


if __name__ == "__main__":
    h.main()
