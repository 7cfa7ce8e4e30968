#!/usr/bin/python3
"""A real HTTP(S) webhook receiver on a free loopback port for the notify tests.

usage: hookd.py DIR [--cert C --key K] [--status CODE] [--fail-first N] [--hang]
Prints "READY PORT".  Every POST is saved as DIR/NNN.json (the body) and
DIR/NNN.headers (the request's headers).  --status answers CODE to every
request (default 200); --fail-first answers 500 to the first N requests;
--hang reads the request and never answers."""
import argparse
import http.server
import os
import ssl
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--cert")
ap.add_argument("--key")
ap.add_argument("--status", type=int, default=200)
ap.add_argument("--fail-first", type=int, default=0)
ap.add_argument("--hang", action="store_true")
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)
lock = threading.Lock()
count = {"requests": 0, "saved": 0}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        if args.hang:
            time.sleep(3600)
            return
        with lock:
            count["requests"] += 1
            failing = count["requests"] <= args.fail_first
            code = 500 if failing else args.status
            if not failing and 200 <= code < 300:
                count["saved"] += 1
                base = os.path.join(args.dir, "%03d" % count["saved"])
                with open(base + ".headers", "w") as f:
                    f.write(str(self.headers))
                with open(base + ".tmp", "wb") as f:
                    f.write(body)
                os.rename(base + ".tmp", base + ".json")
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"received" if code < 300 else b"receiver failure")

    def log_message(self, fmt, *a):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
if args.cert:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print("READY %d" % srv.server_address[1], flush=True)
srv.serve_forever()
