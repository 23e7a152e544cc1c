#!/usr/bin/env python3
"""A service's sockets (`sockets = [...]`) in systemd's fd store: the daemon stores each
one (FDSTORE=1, FDNAME=sock.NAME.N) once bound, and after a kill -9 of the daemon takes
them back from LISTEN_FDS/LISTEN_FDNAMES. Clients connecting in a loop through the crash and
a restart of the service are never refused, and the restarted instance gets the very socket
objects the first daemon bound. A clean stop takes them out of the store. The test's socket
plays systemd (fdstore_test.FdStore)."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
from fdstore_test import FdStore, StoreTestCase  # noqa: E402
from sd_harness import main, service  # noqa: E402
import harness  # noqa: E402
from socket_client import LoopingClient  # noqa: E402

SERVER = ["python3", os.path.join(HERE, "..", "e2e", "sd_server.py")]


class SocketStore(StoreTestCase):
    def test_sockets_survive_a_daemon_crash_in_the_store(self):
        d = self.daemon(None, start=False)
        sink = FdStore(os.path.join(d.dir, "notify.sock"))
        self.addCleanup(sink.close)
        d.extra_env["NOTIFY_SOCKET"] = sink.address
        port = harness.free_port()
        path = os.path.join(d.dir, "web.sock")
        d.write_config(service("web", SERVER, restart_delay="200ms",
                               sockets=[{"listen": "127.0.0.1:%d" % port, "name": "http"}, {"listen": path}]))
        d.start()
        sink.wait_text("READY=1")
        sink.wait(lambda m: {"sock.web.0", "sock.web.1"} <= set(sink.stored()), 10, what="the sockets stored")
        first = d.wait_running("web")
        held = [os.readlink("/proc/%d/fd/%d" % (first, fd)) for fd in (3, 4)]

        with LoopingClient(port) as c:
            old_max = d.events()[-1]["seq"]
            d.kill9()
            time.sleep(0.3)
            d.wait_for(lambda: harness.port_is_free(d.port), 10, what="API port free again")
            d.handed = [(name, fds[-1]) for name, fds in sorted(sink.stored().items())]
            d.start()
            d.wait_event("attached", "web", where=lambda e: e["seq"] > old_max, timeout=10)
            self.assertEqual(d.json("POST", "/v1/services/web/restart")[0], 202)
            def restarted():
                status, body = d.json("GET", "/v1/services/web")
                ok = status == 200 and body.get("state") == "running" and body.get("pid") not in (None, first)
                return body["pid"] if ok else None
            second = d.wait_for(restarted, 15, what="web running again with a new pid")
            d.wait_for(lambda: second in c.seen, 10, what="an answer from the restarted instance")
        self.assertEqual(c.refused + c.failed, [], "connections failed through the crash and the restart")
        self.assertEqual([os.readlink("/proc/%d/fd/%d" % (second, fd)) for fd in (3, 4)], held,
                         "the restarted instance got newly bound sockets, not the stored ones")
        # A clean stop closes them and empties the store of them; the socket file goes.
        d.stop()
        self.assertFalse({"sock.web.0", "sock.web.1"} & set(sink.stored()))
        self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
    main()
