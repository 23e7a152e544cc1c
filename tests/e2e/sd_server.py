#!/usr/bin/env python3
"""A socket-activated server in plain Python: finds its sockets from LISTEN_FDS,
LISTEN_PID and LISTEN_FDNAMES with socket.fromfd, prints "NAME=FD TYPE" for each, then
answers on all of them: a stream connection gets "py NAME PID\n", a datagram is echoed
back prefixed with "py NAME ". On SIGTERM it finishes the connection it has accepted, if
any, and exits: what it has not accepted stays in the listening socket's backlog, which
the daemon keeps for the next instance (a server that died mid-answer would lose that one
connection, and no supervisor can give it back). With IDLE_EXIT=SECONDS it exits (code 0)
after that long without a connection or datagram, as a lazily started service does. Used by
tests/e2e/sockets_test.py, lazy_test.py and overlap_test.py.

With NOTIFY_SOCKET set (ready = "notify") it sends READY=1 once it has its sockets; a
MODE_FILE, read at start, changes that: "delay N" waits N seconds first (a slow starter),
"never" never sends it, "exit N" exits with code N instead."""
import os
import select
import signal
import socket
import sys
import time

# busy: between taking a connection and answering it; a SIGTERM then waits for the answer.
state = {"busy": False, "stopping": False}


def on_term(_signum, _frame):
    if state["busy"]:
        state["stopping"] = True
    else:
        os._exit(0)


def listen_sockets():
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        sys.exit("LISTEN_PID=%r is not my pid %d" % (os.environ.get("LISTEN_PID"), os.getpid()))
    n = int(os.environ["LISTEN_FDS"])
    names = os.environ.get("LISTEN_FDNAMES", "").split(":")
    out = {}
    for i in range(n):
        fd = 3 + i
        s = socket.socket(fileno=fd)  # family and type read from the fd
        out[names[i]] = s
        print("%s=%d %s %s" % (names[i], fd, s.family.name, s.type.name), flush=True)
    return out


def notify_ready():
    """READY=1 to $NOTIFY_SOCKET, as sd_notify does; what MODE_FILE says first."""
    path = os.environ.get("NOTIFY_SOCKET")
    if not path:
        return
    mode = ""
    if os.environ.get("MODE_FILE") and os.path.exists(os.environ["MODE_FILE"]):
        with open(os.environ["MODE_FILE"]) as f:
            mode = f.read().strip()
    if mode.startswith("exit"):
        print("pid %d exiting before READY=1" % os.getpid(), flush=True)
        os._exit(int(mode.split()[1]))
    if mode == "never":
        print("pid %d never ready" % os.getpid(), flush=True)
        return
    if mode.startswith("delay"):
        time.sleep(float(mode.split()[1]))
    addr = "\0" + path[1:] if path.startswith("@") else path
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as n:
        n.sendto(b"READY=1\nSTATUS=serving", addr)
    print("pid %d ready" % os.getpid(), flush=True)


def main():
    socks = listen_sockets()
    for s in socks.values():
        s.setblocking(False)  # select's "ready" may be taken by another process first
    by_fd = {s.fileno(): (name, s) for name, s in socks.items()}
    pid = os.getpid()
    signal.signal(signal.SIGTERM, on_term)
    notify_ready()
    idle = float(os.environ["IDLE_EXIT"]) if os.environ.get("IDLE_EXIT") else None
    while True:
        ready, _, _ = select.select(list(by_fd), [], [], idle)
        if not ready and idle is not None:
            print("idle for %gs: exiting" % idle, flush=True)
            os._exit(0)
        for fd in ready:
            name, s = by_fd[fd]
            if s.type == socket.SOCK_STREAM:
                state["busy"] = True  # before accept: a SIGTERM now must not drop what it takes
                try:
                    c, _ = s.accept()
                except BlockingIOError:
                    c = None
                if c is not None:
                    c.setblocking(True)
                    c.sendall(("py %s %d\n" % (name, pid)).encode())
                    c.close()
                state["busy"] = False
                if state["stopping"]:
                    os._exit(0)
            else:
                try:
                    data, peer = s.recvfrom(4096)
                except BlockingIOError:
                    continue
                if peer:
                    s.sendto(("py %s " % name).encode() + data, peer)


if __name__ == "__main__":
    main()
