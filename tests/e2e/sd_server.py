#!/usr/bin/env python3
"""A socket-activated server in plain Python: finds its sockets from LISTEN_FDS,
LISTEN_PID and LISTEN_FDNAMES with socket.fromfd, prints "NAME=FD TYPE" for each, then
answers on all of them: a stream connection gets "py NAME PID\n", a datagram is echoed
back prefixed with "py NAME ". Used by tests/e2e/sockets_test.py."""
import os
import select
import socket
import sys


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


def main():
    socks = listen_sockets()
    by_fd = {s.fileno(): (name, s) for name, s in socks.items()}
    pid = os.getpid()
    while True:
        ready, _, _ = select.select(list(by_fd), [], [])
        for fd in ready:
            name, s = by_fd[fd]
            if s.type == socket.SOCK_STREAM:
                c, _ = s.accept()
                c.sendall(("py %s %d\n" % (name, pid)).encode())
                c.close()
            else:
                data, peer = s.recvfrom(4096)
                if peer:
                    s.sendto(("py %s " % name).encode() + data, peer)


if __name__ == "__main__":
    main()
