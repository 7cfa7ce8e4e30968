"""A log follower that never reads, and a busy client that makes the agent log.
The agent must drop the follower (bounded queue) and keep answering.
usage: slow-follower.py SOCKET LINES
Exit 0 when the follower's connection was closed by the agent."""
import socket
import struct
import sys


def pack(o):
    """The few msgpack types a request needs."""
    if isinstance(o, bool):
        return b"\xc3" if o else b"\xc2"
    if isinstance(o, int):
        return bytes([o]) if o < 128 else b"\xce" + struct.pack(">I", o)
    if isinstance(o, str):
        b = o.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(o)


def frame(rid, op, args):
    body = pack({"id": rid, "op": op, "args": args})
    return struct.pack(">I", len(body)) + body


def connect(path, rcvbuf=None):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(path)
    s.sendall(frame(1, "hello", {"proto": 1, "client": "slow-follower"}))
    return s


path, lines = sys.argv[1], int(sys.argv[2])
follower = connect(path, rcvbuf=4096)
follower.sendall(frame(2, "logs", {"follow": True, "lines": 0}))

busy = connect(path)
pending = b""


def read_frames(n):
    """Reads n reply frames from busy (each: 4-byte length, payload)."""
    global pending
    while n > 0:
        while len(pending) < 4 or len(pending) < 4 + struct.unpack(">I", pending[:4])[0]:
            data = busy.recv(65536)
            if not data:
                raise SystemExit("the agent closed the busy client")
            pending += data
        pending = pending[4 + struct.unpack(">I", pending[:4])[0]:]
        n -= 1


read_frames(1)
# Every hello is a debug line "client N: ... says hello as ..." for the follower.  Batches
# with their replies awaited spread the lines over many turns of the agent's loop.
batch = b"".join(frame(3 + i, "hello", {"proto": 1, "client": "busy"}) for i in range(200))
for _ in range(lines // 200):
    busy.sendall(batch)
    read_frames(200)
busy.close()

# Now read what the follower was sent: the agent must have closed it.
follower.settimeout(60)
try:
    while follower.recv(1 << 20):
        pass
except (ConnectionResetError, socket.timeout) as e:
    sys.exit(0 if isinstance(e, ConnectionResetError) else 1)
sys.exit(0)
