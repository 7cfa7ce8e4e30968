#!/usr/bin/env python3
"""A small STARTTLS front for the probe tests: speaks the plain-text start of
IMAP, POP3 or SMTP on a free loopback port, switches to TLS when asked, and
answers one line after the handshake.  Prints "READY <port>" once listening.

usage: starttls-server.py imap|pop3|smtp CERT KEY [CHAIN] [--no-starttls]
"""
import socket
import ssl
import sys
import threading

proto, cert, key = sys.argv[1], sys.argv[2], sys.argv[3]
rest = sys.argv[4:]
offer = "--no-starttls" not in rest
chain = [a for a in rest if not a.startswith("--")]

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
if chain:
    # The leaf first, then the chain, in one file as load_cert_chain wants.
    with open(cert) as f, open(chain[0]) as g:
        bundle = f.read() + g.read()
    import os, tempfile
    fd, path = tempfile.mkstemp(suffix=".pem")
    os.write(fd, bundle.encode())
    os.close(fd)
    ctx.load_cert_chain(path, key)
    os.unlink(path)
else:
    ctx.load_cert_chain(cert, key)


def lines(f):
    while True:
        line = f.readline()
        if not line:
            return
        yield line.rstrip(b"\r\n").decode("latin-1")


def tls(conn):
    try:
        s = ctx.wrap_socket(conn, server_side=True)
        s.settimeout(10)
        s.sendall(b"* OK over TLS\r\n")
        s.recv(100)
    except (OSError, ssl.SSLError):
        pass


def imap(conn, f):
    conn.sendall(b"* OK [CAPABILITY IMAP4rev1] test server ready\r\n")
    for line in lines(f):
        tag, _, cmd = line.partition(" ")
        cmd = cmd.upper()
        if cmd == "CAPABILITY":
            caps = "IMAP4rev1 LOGINDISABLED" + (" STARTTLS" if offer else "")
            conn.sendall(("* CAPABILITY %s\r\n%s OK done\r\n" % (caps, tag)).encode())
        elif cmd == "STARTTLS" and offer:
            conn.sendall(("%s OK begin TLS\r\n" % tag).encode())
            return tls(conn)
        else:
            conn.sendall(("%s BAD unknown\r\n" % tag).encode())


def pop3(conn, f):
    conn.sendall(b"+OK test POP3 server\r\n")
    for line in lines(f):
        cmd = line.upper()
        if cmd == "CAPA":
            caps = "USER\r\nUIDL\r\n" + ("STLS\r\n" if offer else "")
            conn.sendall(("+OK capabilities\r\n" + caps + ".\r\n").encode())
        elif cmd == "STLS" and offer:
            conn.sendall(b"+OK begin TLS\r\n")
            return tls(conn)
        else:
            conn.sendall(b"-ERR unknown\r\n")


def smtp(conn, f):
    conn.sendall(b"220-test.example ESMTP\r\n220 ready\r\n")
    for line in lines(f):
        cmd = line.upper()
        if cmd.startswith("EHLO"):
            ext = ["test.example", "PIPELINING", "SIZE 10240000"]
            if offer:
                ext.append("STARTTLS")
            ext.append("8BITMIME")
            out = "".join("250%s%s\r\n" % ("-" if i < len(ext) - 1 else " ", e)
                          for i, e in enumerate(ext))
            conn.sendall(out.encode())
        elif cmd == "STARTTLS" and offer:
            conn.sendall(b"220 go ahead\r\n")
            return tls(conn)
        elif cmd == "QUIT":
            conn.sendall(b"221 bye\r\n")
            return
        else:
            conn.sendall(b"502 unknown\r\n")


def serve(conn):
    conn.settimeout(10)
    try:
        with conn, conn.makefile("rb") as f:
            {"imap": imap, "pop3": pop3, "smtp": smtp}[proto](conn, f)
    except OSError:
        pass


srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print("READY %d" % srv.getsockname()[1], flush=True)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
