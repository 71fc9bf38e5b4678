#!/usr/bin/env python3
"""A minimal inetd for the interop suite's telnet module.

Listens on one loopback address and runs a command per connection with the
socket as its stdin, stdout and stderr, as inetd does for in.telnetd (whose
own -debug mode would listen on every address). On SIGTERM it stops its
children and exits.

    inetd.py --work DIR --listen 127.0.0.1:PORT -- /usr/sbin/in.telnetd ARGS...
"""
import argparse
import os
import signal
import socket
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True, help="directory for the log")
    ap.add_argument("--listen", required=True, help="127.0.0.1:PORT")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")
    host, port = a.listen.rsplit(":", 1)
    if not host.startswith("127."):
        ap.error("loopback addresses only")
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, int(port)))
    ls.listen(16)
    log = open(os.path.join(a.work, "inetd-%s.log" % port), "ab", buffering=0)
    children = set()

    def stop(*_):
        for p in list(children):
            try:
                p.terminate()
            except OSError:
                pass
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        conn, peer = ls.accept()
        log.write(("connection from %s:%d\n" % peer).encode())
        p = subprocess.Popen(cmd, stdin=conn.fileno(), stdout=conn.fileno(), stderr=log, close_fds=True)
        conn.close()
        children.add(p)
        for c in list(children):
            if c.poll() is not None:
                children.discard(c)


if __name__ == "__main__":
    main()
