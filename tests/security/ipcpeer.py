#!/usr/bin/env python3
"""A raw IPC peer for the security tests (tests/security/sec-connections.sh, sec-ipcfuzz.sh),
run as the attacker (nobody). It speaks the agent's frames (4-byte big-endian length, one
msgpack map) with its own small encoder, so that it can also send what certctl never would.

usage:
  ipcpeer.py hold SOCK
      Holds connections, driven by lines on stdin; answers one line on stdout per command:
        open N silent|hello|partial:BYTES   opens N connections; silent sends nothing, hello
                                            says hello (and reads the reply), partial:BYTES
                                            says hello, then begins a 1 MiB frame and sends
                                            BYTES of it  -> "opened N"
        await_closed K SECONDS              waits until K connections in all were closed by
                                            the agent (EOF), at most SECONDS -> the state
        state                               -> "closed=C open=O E_UNAVAILABLE=U E_PROTO=P"
                                            (connections whose replies named that code)
        closeall                            -> "ok"
        quit                                (so does the end of stdin)
  ipcpeer.py big SOCK BYTES
      Says hello and sends a ping padded to BYTES, in pieces of 64 KiB; prints "ok" when the
      agent answers it, "failed: ..." otherwise.
  ipcpeer.py fuzz SOCK SEED-DIR FRAMES SEED
      Sends about FRAMES malformed, random and mutated frames over many connections (seeds:
      the frames of the files in SEED-DIR, tests/fuzz/corpus/fuzz_proto) and prints counts.
"""
import os
import random
import select
import socket
import struct
import sys
import time

PROTO_VERSION = 1
PROTO_MAX_FRAME = 1024 * 1024


def pack(o):
    """msgpack of None, bool, int, str, bytes, list, tuple, dict."""
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 128:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack(">b", o)
        if 0 <= o < 2**64:
            return b"\xcf" + struct.pack(">Q", o)
        return b"\xd3" + struct.pack(">q", max(-(2**63), o))
    if isinstance(o, str):
        o = o.encode("utf-8", "surrogateescape")
        n = len(o)
        if n < 32:
            return bytes([0xA0 | n]) + o
        return b"\xdb" + struct.pack(">I", n) + o
    if isinstance(o, bytes):
        return b"\xc6" + struct.pack(">I", len(o)) + o
    if isinstance(o, (list, tuple)):
        return b"\xdd" + struct.pack(">I", len(o)) + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        return b"\xdf" + struct.pack(">I", len(o)) + b"".join(
            pack(k) + pack(v) for k, v in o.items())
    raise TypeError(type(o))


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def request(rid, op, args=None):
    return frame(pack({"id": rid, "op": op, "args": args if args is not None else {}}))


HELLO = request(1, "hello", {"proto": PROTO_VERSION, "client": "ipcpeer"})


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.closed = False
        self.data = b""

    def drain(self):
        """Reads what is there without blocking; notes EOF."""
        while not self.closed:
            try:
                d = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                d = b""
            if not d:
                self.closed = True
                return
            self.data += d


def read_reply(c, timeout):
    """Reads until one whole frame or EOF arrived (or timeout)."""
    end = time.monotonic() + timeout
    while not c.closed:
        if len(c.data) >= 4 and len(c.data) >= 4 + struct.unpack(">I", c.data[:4])[0]:
            return
        left = end - time.monotonic()
        if left <= 0:
            return
        select.select([c.sock], [], [], left)
        c.drain()


def state(conns):
    for c in conns:
        c.drain()
    closed = sum(c.closed for c in conns)
    counts = {code: sum(code.encode() in c.data for c in conns)
              for code in ("E_UNAVAILABLE", "E_PROTO")}
    return "closed=%d open=%d E_UNAVAILABLE=%d E_PROTO=%d" % (
        closed, len(conns) - closed, counts["E_UNAVAILABLE"], counts["E_PROTO"])


def hold(path):
    conns = []
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "open":
            n, mode = int(words[1]), words[2]
            for _ in range(n):
                c = Conn(connect(path))
                conns.append(c)
                if mode == "silent":
                    continue
                try:
                    c.sock.sendall(HELLO)
                except OSError:
                    continue
                read_reply(c, 30)
                if mode.startswith("partial:") and not c.closed:
                    try:
                        c.sock.sendall(struct.pack(">I", PROTO_MAX_FRAME) +
                                       b"\x00" * int(mode.split(":")[1]))
                    except OSError:
                        pass
            print("opened %d" % n, flush=True)
        elif words[0] == "await_closed":
            want, end = int(words[1]), time.monotonic() + float(words[2])
            while True:
                for c in conns:
                    c.drain()
                left = end - time.monotonic()
                if sum(c.closed for c in conns) >= want or left <= 0:
                    break
                select.select([c.sock for c in conns if not c.closed], [], [], min(left, 1))
            print(state(conns), flush=True)
        elif words[0] == "state":
            print(state(conns), flush=True)
        elif words[0] == "quit":
            return
        elif words[0] == "closeall":
            for c in conns:
                c.sock.close()
            conns = []
            print("ok", flush=True)
        else:
            print("unknown command", flush=True)


def big(path, size):
    c = Conn(connect(path))
    c.sock.sendall(HELLO)
    read_reply(c, 30)
    c.data = b""
    f = request(2, "ping", {"padding": b"\x00" * size})
    try:
        for i in range(0, len(f), 65536):
            c.sock.sendall(f[i:i + 65536])
    except OSError as e:
        print("failed: %s" % e)
        return
    read_reply(c, 60)
    print("ok" if b"\xa2ok\xc3" in c.data else "failed: %r" % c.data[:200])


# The fuzzer.

# Ops a read-only peer may run that start no network work (probe and verify connect out).
SAFE_OPS = ["hello", "ping", "version", "status", "list", "show", "export", "import",
            "selfsigned", "remove", "rollback", "set", "deploy", "ca-list", "ca-remove",
            "account-show", "trust-add", "trust-list", "trust-remove", "trust-show", "metrics",
            "logs", "report"]
ARG_NAMES = ["name", "password", "pfx", "cert", "key", "chain", "dns", "ips", "format", "version",
             "days", "proto", "client", "follow", "level", "lines", "fingerprint", "purpose",
             "to", "ca", "reason", "directory", "eab_kid", "eab_hmac", "trust", "out"]


def random_value(r, depth=0):
    k = r.randrange(9 if depth < 3 else 6)
    if k == 0:
        return None
    if k == 1:
        return r.random() < 0.5
    if k == 2:
        return r.choice([0, 1, -1, 127, 128, 2**31, 2**63, 2**64 - 1, -(2**63), r.getrandbits(40)])
    if k == 3:
        return "".join(chr(r.randrange(1, 0x250)) for _ in range(r.randrange(0, 40)))
    if k == 4:
        return r.randbytes(r.randrange(0, 300))
    if k == 5:
        return r.choice(["", "x" * r.randrange(1, 70000), "../../etc/passwd", "a\nb\x1b[31m"])
    if k == 6:
        return [random_value(r, depth + 1) for _ in range(r.randrange(0, 6))]
    if k == 7:
        # Keys of any type, not only strings.
        return {hashable(random_value(r, depth + 1)) if r.random() < 0.2 else r.choice(ARG_NAMES):
                random_value(r, depth + 1) for _ in range(r.randrange(0, 6))}
    return {r.choice(ARG_NAMES): random_value(r, depth + 1) for _ in range(r.randrange(0, 4))}


def hashable(v):
    return v if isinstance(v, (str, int, bytes, bool, type(None))) else str(v)


def fix_keys(o):
    if isinstance(o, dict):
        return {hashable(k): fix_keys(v) for k, v in o.items()}
    if isinstance(o, list):
        return [fix_keys(v) for v in o]
    return o


def load_seeds(seed_dir):
    """The frames of the fuzz_proto corpus (each file: a chunk-size byte, then frames)."""
    seeds = []
    for name in sorted(os.listdir(seed_dir)):
        if name in ("probe", "request", "verify"):
            continue  # they would make the agent connect out if they survived mutation
        data = open(os.path.join(seed_dir, name), "rb").read()[1:]
        if data:
            seeds.append(data)
    return seeds


def mutate(r, data):
    b = bytearray(data)
    for _ in range(r.randrange(1, 8)):
        op = r.randrange(5)
        if op == 0 and b:
            b[r.randrange(len(b))] ^= 1 << r.randrange(8)
        elif op == 1 and b:
            b[r.randrange(len(b))] = r.choice([0x00, 0xFF, 0xC1, 0xDD, 0xDF, 0xDB, 0xC6, 0x7F])
        elif op == 2:
            b[r.randrange(len(b) + 1):r.randrange(len(b) + 1)] = r.randbytes(r.randrange(1, 9))
        elif op == 3 and len(b) > 4:
            del b[r.randrange(len(b)):]
        elif op == 4 and len(b) >= 4:
            b[0:4] = struct.pack(">I", r.choice([0, 1, len(b) - 4, len(b) + 10, PROTO_MAX_FRAME,
                                                 PROTO_MAX_FRAME + 1, 0xFFFFFFFF]))
    return bytes(b)


def fuzz_frame(r, seeds, rid):
    """One piece of input: a frame (valid or not), or raw garbage."""
    k = r.randrange(8)
    if k == 0:
        return r.randbytes(r.randrange(0, 200))
    if k == 1:
        return struct.pack(">I", r.choice([0, 3, 100, PROTO_MAX_FRAME + 1, 0xFFFFFFFF])) + \
            r.randbytes(r.randrange(0, 120))
    if k == 2:
        return frame(pack(fix_keys(random_value(r))))
    if k == 3:
        # Counts that lie (array32 / map32 of 2^32-1 entries) and deep nesting.
        return frame(r.choice([b"\xdd\xff\xff\xff\xff", b"\xdf\xff\xff\xff\xff\xa1a",
                               b"\x91" * 200 + b"\xc0", b"\x81\xa1a" * 100 + b"\xc0"]))
    if k == 4 and seeds:
        return mutate(r, r.choice(seeds))
    op = r.choice(SAFE_OPS) if r.random() < 0.85 else "".join(
        chr(r.randrange(32, 127)) for _ in range(r.randrange(0, 20)))
    args = {r.choice(ARG_NAMES): random_value(r) for _ in range(r.randrange(0, 5))}
    msg = {"id": r.choice([rid, 0, -1, "x", None]) if r.random() < 0.1 else rid, "op": op,
           "args": fix_keys(args) if r.random() < 0.9 else random_value(r)}
    if r.random() < 0.05:
        del msg["id"]
    return frame(pack(msg))


def fuzz(path, seed_dir, total, seed):
    r = random.Random(seed)
    seeds = load_seeds(seed_dir)
    sent = conns = refused = dropped = replies = 0
    while sent < total:
        try:
            s = connect(path)
        except OSError:
            refused += 1
            continue
        conns += 1
        c = Conn(s)
        try:
            if r.random() < 0.8:
                s.sendall(HELLO)
            for i in range(r.randrange(1, 12)):
                piece = fuzz_frame(r, seeds, 2 + i)
                # Sometimes in small pieces, sometimes cut short by a close.
                if r.random() < 0.1:
                    for j in range(0, len(piece), 7):
                        s.sendall(piece[j:j + 7])
                else:
                    s.sendall(piece)
                sent += 1
                if r.random() < 0.1:
                    break
        except OSError:
            pass
        if r.random() < 0.5:
            read_reply(c, 0.2)
        c.drain()
        replies += c.data.count(b"\xa2id")
        dropped += c.closed
        s.close()
    print("fuzz: seed %d, %d frames or pieces sent on %d connections (%d connects refused), "
          "%d replies read, %d connections closed by the agent" % (
              seed, sent, conns, refused, replies, dropped))


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "hold":
        hold(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "big":
        big(sys.argv[2], int(sys.argv[3]))
    elif len(sys.argv) == 6 and sys.argv[1] == "fuzz":
        fuzz(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
