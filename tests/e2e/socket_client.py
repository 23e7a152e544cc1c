"""A client of sd_server.py for the socket-activation tests: one-line answers ("py NAME PID")
over TCP, and a client connecting in a loop on a thread while a test restarts, kills or
upgrades things, counting answers, the pids that answered, refusals and other failures."""
import socket
import threading
import time


def udp_port():
    """A UDP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(port, timeout=10.0):
    """One TCP connection: the server's one-line answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as c:
        c.settimeout(timeout)
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(100)
            if not chunk:
                break
            data += chunk
        return data.decode()


class LoopingClient:
    """`with LoopingClient(port) as c:` connects every 2 ms until the block ends (60 s at
    most): c.ok answers, c.seen the pids that answered, c.refused and c.failed what went
    wrong (a refusal, or any other error)."""

    def __init__(self, port, limit=60.0):
        self.port, self.limit = port, limit
        self.ok, self.seen, self.refused, self.failed = 0, set(), [], []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self):
        deadline = time.monotonic() + self.limit
        while not self._done.is_set() and time.monotonic() < deadline:
            try:
                self.seen.add(int(ask(self.port).split()[2]))
                self.ok += 1
            except ConnectionRefusedError as e:
                self.refused.append(repr(e))
            except (OSError, IndexError, ValueError) as e:
                self.failed.append(repr(e))
            time.sleep(0.002)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
        return False
