#!/usr/bin/python3
"""A real SMTP server on a free loopback port for the notify tests (aiosmtpd).

usage: smtpd.py DIR [--cert C --key K] [--user U --password P] [--stall] [--garbage]
Prints "READY PORT" once listening.  Each delivered message is saved as
DIR/NNN.eml (the bytes as received) and DIR/NNN.env (JSON: mail_from, rcpt_tos,
tls, auth).  --cert/--key offer STARTTLS; --user/--password require AUTH
(PLAIN or LOGIN, only after STARTTLS); --stall accepts connections and never
answers; --garbage answers every connection with a line that is not SMTP."""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--cert")
ap.add_argument("--key")
ap.add_argument("--user")
ap.add_argument("--password")
ap.add_argument("--stall", action="store_true")
ap.add_argument("--garbage", action="store_true")
ap.add_argument("--port", type=int, default=0)
args = ap.parse_args()
os.makedirs(args.dir, exist_ok=True)


class Saver:
    def __init__(self):
        self.n = len([f for f in os.listdir(args.dir) if f.endswith(".eml")])

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(args.dir, "%03d" % self.n)
        with open(base + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".env", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "tls": session.ssl is not None,
                       "auth": session.authenticated}, f)
        os.rename(base + ".tmp", base + ".eml")
        return "250 2.0.0 Ok: queued as test%03d" % self.n


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (auth_data.login.decode() == args.user and auth_data.password.decode() == args.password)
    return AuthResult(success=ok, handled=False)


async def stall(reader, writer):
    await asyncio.sleep(3600)


async def garbage(reader, writer):
    writer.write(b"HTTP/1.1 400 this is not an SMTP server\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(1)
    writer.close()


async def main():
    loop = asyncio.get_running_loop()
    if args.stall:
        srv = await asyncio.start_server(stall, "127.0.0.1", args.port)
    elif args.garbage:
        srv = await asyncio.start_server(garbage, "127.0.0.1", args.port)
    else:
        kw = {}
        if args.cert:
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(args.cert, args.key)
            kw["tls_context"] = ctx
        if args.user:
            kw["authenticator"] = authenticator
            kw["auth_required"] = True
            kw["auth_require_tls"] = True
        handler = Saver()
        srv = await loop.create_server(lambda: SMTP(handler, hostname="mail.test", **kw),
                                       "127.0.0.1", args.port)
    print("READY %d" % srv.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


try:
    asyncio.run(main())
except KeyboardInterrupt:
    sys.exit(0)
