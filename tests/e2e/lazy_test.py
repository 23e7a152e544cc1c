#!/usr/bin/env python3
"""Lazy start (`start_on = "connection"`): the daemon binds the service's sockets at boot and
starts nothing; the first connection (or datagram) starts the service, which answers it
from the backlog; a service that exits by itself when idle is watched for again; an
operator's stop ends the watch and a start arms it again; a dependent of a waiting lazy
service does not wait for it."""
import os
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "cli"))
import cli_harness as h  # noqa: E402
from harness import free_port, service, sh  # noqa: E402
from socket_client import ask, udp_port  # noqa: E402

SERVER = ["python3", os.path.join(HERE, "sd_server.py")]


class Lazy(h.TestCase):
    def lazy(self, d, name):
        s = d.service(name)
        return s is not None and s.get("waiting_for_connection") is True and s.get("pid") is None

    def test_first_connection_starts_it_and_idle_exit_rearms(self):
        port = free_port()
        d = self.daemon(service("web", SERVER, start_on="connection", env={"IDLE_EXIT": "1"},
                                sockets=[{"listen": "127.0.0.1:%d" % port, "name": "http"}]))
        listening = d.wait_event("listening", "web")[0]
        self.assertEqual(listening["sockets"], [{"name": "http", "listen": "tcp 127.0.0.1:%d" % port}])
        d.wait_for(lambda: self.lazy(d, "web"), 5, what="web waiting for a connection")
        self.assertIn("listening", self.cli_ok(d, "ps"))
        time.sleep(0.5)
        self.assertEqual(d.events_of("web", "started"), [], "a lazy service started with no connection")

        # The connection that starts it is the one it answers (it waited in the backlog).
        answer = ask(port)
        first = d.wait_event("started", "web")[0]["pid"]
        self.assertEqual(answer, "py http %d\n" % first)
        self.assertEqual(d.wait_event("activated", "web")[0]["socket"], "http")

        # Idle for a second: it exits 0 and the daemon watches the socket again.
        d.wait_event("exited", "web", timeout=10)
        d.wait_event("listening", "web", count=2, timeout=5)
        d.wait_for(lambda: self.lazy(d, "web"), 5, what="web waiting again after its idle exit")
        answer = ask(port)
        second = d.wait_event("started", "web", count=2)[1]["pid"]
        self.assertNotEqual(first, second)
        self.assertEqual(answer, "py http %d\n" % second)

    def test_datagram_starts_it(self):
        port = udp_port()
        d = self.daemon(service("echo", SERVER, start_on="connection",
                                sockets=[{"listen": "127.0.0.1:%d" % port, "type": "datagram", "name": "u"}]))
        d.wait_for(lambda: self.lazy(d, "echo"), 5, what="echo waiting for a datagram")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.settimeout(10)
            u.sendto(b"ping", ("127.0.0.1", port))
            self.assertEqual(u.recv(100), b"py u ping")
        self.assertEqual(d.wait_event("activated", "echo")[0]["socket"], "u")
        d.wait_state("echo", "running")

    def test_operator_stop_ends_the_watch_and_start_arms_it(self):
        port = free_port()
        d = self.daemon(service("web", SERVER, start_on="connection", stop_timeout="5s",
                                sockets=[{"listen": "127.0.0.1:%d" % port, "name": "http"}]))
        d.wait_for(lambda: self.lazy(d, "web"), 5, what="web waiting for a connection")
        ask(port)
        pid = d.wait_state("web", "running")["pid"]
        self.cli_ok(d, "stop", "web")
        d.wait_event("stopped", "web", timeout=10)
        s = d.wait_state("web", "stopped")
        self.assertFalse(s["waiting_for_connection"], "stopped by the operator, yet still watched")
        # The socket stays bound (clients queue) but nothing starts the service.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            time.sleep(1.0)
            self.assertEqual(len(d.events_of("web", "started")), 1, "a connection started a stopped service")
            self.cli_ok(d, "start", "web")
            # The start arms the watch, and the connection already waiting starts it.
            c.settimeout(10)
            line = c.makefile().readline()
        second = d.wait_event("started", "web", count=2)[1]["pid"]
        self.assertNotEqual(pid, second)
        self.assertEqual(line, "py http %d\n" % second)

    def test_dependent_does_not_wait_for_a_lazy_dependency(self):
        port = free_port()
        d = self.daemon(service("db", SERVER, start_on="connection",
                                sockets=[{"listen": "127.0.0.1:%d" % port, "name": "db"}])
                        + service("app", sh("echo app up; exec sleep 60"),
                                  depends_on=["db"]))
        d.wait_state("app", "running")
        self.assertTrue(self.lazy(d, "db"), "the dependency should still be waiting, not started")
        self.assertEqual(d.events_of("db", "started"), [])


if __name__ == "__main__":
    h.main()
