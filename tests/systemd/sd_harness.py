"""Helpers for the systemd tests: a notify socket that records every datagram the
daemon sends (what systemd would receive), on top of tests/api's ApiDaemon."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from api_harness import ApiDaemon  # noqa: E402,F401
from harness import main, sh, service, wait_for, TestCase, alive  # noqa: E402,F401


class NotifySink:
    """An AF_UNIX datagram socket standing in for systemd's notify socket. `address`
    is a path, or "@name" for the abstract namespace (as NOTIFY_SOCKET spells it).
    Every datagram is kept with its arrival time (time.monotonic())."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.1)
        self.lock = threading.Lock()
        self.received = []  # (monotonic seconds, text)
        self.done = False
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.received.append((time.monotonic(), data.decode("utf-8", "replace")))

    def messages(self):
        with self.lock:
            return list(self.received)

    def texts(self):
        return [t for _, t in self.messages()]

    def wait(self, predicate, timeout=10.0, what="datagram"):
        """Waits until predicate(list of (time, text)) is truthy; returns its value."""
        return wait_for(lambda: predicate(self.messages()), timeout, 0.02, what,
                        context=lambda: "received: %r" % self.texts()[-30:])

    def wait_text(self, text, after=0, timeout=10.0):
        """Index of the first datagram equal to `text` at index >= after."""
        def find(msgs):
            for i in range(after, len(msgs)):
                if msgs[i][1] == text:
                    return i + 1  # truthy even for index 0
            return None
        return self.wait(find, timeout, what="%r after #%d" % (text, after)) - 1

    def close(self):
        self.done = True
        self.thread.join(2)
        self.sock.close()
        if not self.address.startswith("@"):
            try:
                os.unlink(self.address)
            except FileNotFoundError:
                pass


def environ_of(pid):
    """A process's environment as a dict ({} when it is gone)."""
    try:
        with open("/proc/%d/environ" % pid, "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    out = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            out[k.decode()] = v.decode("utf-8", "replace")
    return out


def open_fds(pid):
    try:
        return sorted(int(n) for n in os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return []
