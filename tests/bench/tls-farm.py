#!/usr/bin/env python3
"""Many TLS endpoints in one process: listens on COUNT free loopback ports
(asyncio, one SSL context), writes one tls://127.0.0.1:PORT URL a line to
URLFILE and prints READY.  Each connection gets a handshake and is closed by
the client.

usage: tls-farm.py COUNT URLFILE CERT KEY CHAIN
"""
import asyncio
import os
import resource
import ssl
import sys
import tempfile

count, urlfile, cert, key, chain = int(sys.argv[1]), sys.argv[2], *sys.argv[3:6]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
fd, bundle = tempfile.mkstemp(suffix=".pem")
with open(cert) as a, open(chain) as b:
    os.write(fd, (a.read() + b.read()).encode())
os.close(fd)
ctx.load_cert_chain(bundle, key)
os.unlink(bundle)


class Quiet(asyncio.Protocol):
    def data_received(self, data):
        pass


async def main():
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda loop, context: None)
    servers = []
    for _ in range(count):
        servers.append(await loop.create_server(Quiet, "127.0.0.1", 0, ssl=ctx, backlog=64))
    with open(urlfile, "w") as f:
        for s in servers:
            f.write("tls://127.0.0.1:%d\n" % s.sockets[0].getsockname()[1])
    print("READY", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
