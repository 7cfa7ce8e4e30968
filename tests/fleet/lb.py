#!/usr/bin/python3
"""A small TCP load balancer for the fleet tests: listens on 127.0.0.1:PORT and forwards each
connection to a random one of the UPSTREAM ports (127.0.0.1), as a load balancer in front of
a web farm sends the CA's http-01 validation to any node.

    lb.py PORT UPSTREAM_PORT...

Prints "lb: ready" once it listens and one line per connection ("lb: -> PORT").
"""
import asyncio
import random
import sys


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def handle(creader, cwriter, upstreams):
    port = random.choice(upstreams)
    print("lb: -> %d" % port, flush=True)
    try:
        ureader, uwriter = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        cwriter.close()
        return
    await asyncio.gather(pipe(creader, uwriter), pipe(ureader, cwriter))


async def main():
    port = int(sys.argv[1])
    upstreams = [int(p) for p in sys.argv[2:]]
    server = await asyncio.start_server(lambda r, w: handle(r, w, upstreams), "127.0.0.1", port)
    print("lb: ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
