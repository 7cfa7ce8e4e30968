#!/usr/bin/env python3
"""Minimal http-01 responder for the ACME benchmark (uacme has none of its own).

    http01-responder.py PORT WEBROOT

Serves GET /.well-known/acme-challenge/TOKEN from WEBROOT/TOKEN on 127.0.0.1:PORT and prints
"http01-responder: ready" once it listens.  uacme's hook (uacme-hook.sh) writes and removes
the token files.
"""
import http.server
import os
import re
import sys

PREFIX = "/.well-known/acme-challenge/"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        token = self.path[len(PREFIX):] if self.path.startswith(PREFIX) else ""
        body = None
        if re.fullmatch(r"[A-Za-z0-9_-]{1,256}", token):
            try:
                with open(os.path.join(self.server.webroot, token), "rb") as f:
                    body = f.read()
            except OSError:
                body = None
        if body is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    port, webroot = int(sys.argv[1]), sys.argv[2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.webroot = webroot
    print("http01-responder: ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
