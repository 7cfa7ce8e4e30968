#!/usr/bin/python3
"""A stand-in for the journal's native socket: binds a datagram socket at PATH and appends
every entry it receives to OUT, entries separated by an empty line.  Prints "READY 0"."""
import os
import socket
import sys

path, out = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print("READY 0", flush=True)
while True:
    data = s.recv(65536)
    with open(out, "ab") as f:
        f.write(data.rstrip(b"\n") + b"\n\n")
