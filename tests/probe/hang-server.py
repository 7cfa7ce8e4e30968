#!/usr/bin/env python3
"""Listens on a free loopback port and never answers (the kernel completes
the TCP handshake from the backlog), for probe time-outs.  Prints READY PORT."""
import signal
import socket

s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print("READY %d" % s.getsockname()[1], flush=True)
signal.pause()
