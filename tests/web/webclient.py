#!/usr/bin/python3
"""Clients that misbehave towards the dashboard (tests/web/it-dashboard.sh).

  webclient.py bighead PORT            a request head of 9 KiB; prints the status line
  webclient.py slow PORT               one byte every half second; prints "closed" when
                                       the agent cut it (or "open" after 60 s)
  webclient.py flood PORT N DONE       opens N idle connections from 127.0.0.2 on (5 per
                                       address), prints "open K", waits (60 s at most) for
                                       the file DONE, then prints how many the agent closed
"""
import os
import resource
import socket
import sys
import time


def bighead(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Filler: " + b"a" * 9300 + b"\r\n\r\n"
    try:
        s.sendall(head)
    except OSError:
        pass
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    print(data.split(b"\r\n", 1)[0].decode(errors="replace"))


def slow(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    end = time.monotonic() + 60
    request = b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"s" * 400
    i = 0
    while time.monotonic() < end:
        try:
            s.sendall(request[i % len(request):i % len(request) + 1])
            i += 1
            s.settimeout(0.5)
            if s.recv(4096) == b"":
                print("closed")
                return
        except socket.timeout:
            continue
        except OSError:
            print("closed")
            return
    print("open")


def flood(port, n, done):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n + 100)), hard))
    socks = []
    for i in range(n):
        src = "127.0.%d.%d" % (2 + (i // 5) // 250, 2 + (i // 5) % 250)
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(10)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            pass
        socks.append(s)
    print("open %d" % len(socks), flush=True)
    end = time.monotonic() + 60
    while time.monotonic() < end and not os.path.exists(done):
        time.sleep(0.1)
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
        s.close()
    print("closed %d" % closed, flush=True)


if __name__ == "__main__":
    what, port = sys.argv[1], int(sys.argv[2])
    if what == "bighead":
        bighead(port)
    elif what == "slow":
        slow(port)
    else:
        flood(port, int(sys.argv[3]), sys.argv[4])
