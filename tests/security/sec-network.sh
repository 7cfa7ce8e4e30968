#!/bin/bash
# Finding 4 of issue 14: one peer's network work must not stall everyone.
# - verify requests whose AIA caIssuers URL never answers (a black hole) hold
#   sockets, not the thread pool: a root selfsigned completes while 12 of
#   them are pending; they are capped per connection (4) and in all (16), at
#   most 4 fetches run at once, and they end with a clear error when the
#   black hole goes; a client that leaves has its verifies abandoned.
# - probes of 1,000 black-hole addresses from two clients stay under the
#   connection cap (the agent's descriptors stay bounded, status is answered,
#   the agent lives), and stop when their clients are killed: the
#   descriptors come back to their baseline and the probes are logged as
#   abandoned.
# The requests are made as root (the rights to make them are another finding's).
# shellcheck source=tests/security/lib-sec.sh
. "$(dirname "$0")/lib-sec.sh" "$@"
PROBE_DIR=$(cd "$(dirname "$0")/../probe" && pwd)
# shellcheck source=tests/probe/pki.sh
. "$PROBE_DIR/pki.sh"
need_root

HOLES=
stop_holes() {
    for p in $HOLES; do
        kill "$p" 2>/dev/null
    done
}
trap 'stop_holes; cleanup' EXIT

# black_hole NAME: a listener on a free loopback port that never accepts (hang-server.py);
# its port in $PORT, its pid in $HOLE.
black_hole() {
    python3 -u "$PROBE_DIR/hang-server.py" >"$T/$1.out" 2>&1 </dev/null &
    HOLE=$!
    HOLES="$HOLES $HOLE"
    wait_for 15 grep -q '^READY ' "$T/$1.out" || { fail "$1 did not start"; exit 1; }
    PORT=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$T/$1.out")
}

fd_count() {
    find "/proc/$AGENT_PID/fd" -mindepth 1 -maxdepth 1 | wc -l
}
fds_at_most() {
    [ "$(fd_count)" -le "$1" ]
}
fds_at_least() {
    [ "$(fd_count)" -ge "$1" ]
}
log_count() {
    grep -cF -- "$1" "$LOG"
}
log_count_is() {
    [ "$(log_count "$1")" -ge "$2" ]
}
alive() {
    kill -0 "$1" 2>/dev/null
}
# Connections from the agent to 127.0.0.1:PORT (accepted by the kernel or still connecting).
conns_to() {
    ss -Htn state established state syn-sent "( dport = :$1 )" | wc -l
}
no_conns_to() {
    [ "$(conns_to "$1")" -eq 0 ]
}

black_hole aia
AIA=$PORT
URL="http://127.0.0.1:$AIA/int.der"
P=$T/pki
make_pki "$P" "$URL" || { fail "test PKI"; exit 1; }
# Long AIA deadlines: the verifies end when the black hole goes, not by themselves.
echo '{"trust_system_roots": false, "trust_aia_timeout": 60}' >"$CONFIG"
start_agent
run 0 ctl trust add "$P/root.pem"

# One connection asks for 5 verifies: the fifth is refused, the four others wait on the
# black hole.  The client holds its connection until it is killed.
python3 - "$SOCK" "$P/leaf.pem" >"$T/hold.out" 2>&1 <<'PY' &
import socket, struct, sys

def pack(o):
    if isinstance(o, bytes):
        return b"\xc5" + struct.pack(">H", len(o)) + o
    if isinstance(o, int):
        return bytes([o])
    if isinstance(o, str):
        b = o.encode()
        return (bytes([0xA0 | len(b)]) if len(b) < 32 else b"\xd9" + bytes([len(b)])) + b
    if isinstance(o, dict):
        return bytes([0x80 | len(o)]) + b"".join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(o)

def frame(rid, op, args):
    body = pack({"id": rid, "op": op, "args": args})
    return struct.pack(">I", len(body)) + body

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(frame(1, "hello", {"proto": 1, "client": "holder"}))
cert = open(sys.argv[2], "rb").read()
s.sendall(b"".join(frame(2 + i, "verify", {"cert": cert}) for i in range(5)))
seen = b""
while True:
    data = s.recv(65536)
    if not data:
        break
    seen += data
    if b"already has 4 verify or probe requests" in seen:
        print("REFUSED", flush=True)
        seen = b""
PY
HOLDER=$!
check "the fifth verify of one connection is refused (E_BUSY, per connection)" \
    wait_for 30 grep -q REFUSED "$T/hold.out"
check "the holder's four verifies wait on the black hole" \
    wait_for 30 log_count_is "verify fetches $URL" 4

# Twelve verifies from twelve connections: 16 in flight, the most the agent runs.
VPIDS=
for i in $(seq 12); do
    "$CTL" --socket "$SOCK" verify --cert "$P/leaf.pem" >"$T/v$i.out" 2>&1 &
    VPIDS="$VPIDS $!"
done
check "16 verifies in flight, each with its fetch started or waiting" \
    wait_for 30 log_count_is "verify fetches $URL" 16
run 1 ctl verify --cert "$P/leaf.pem"
has "the agent already runs 16 verify and probe requests"
check "at most 4 AIA fetches at once" test "$(conns_to "$AIA")" -le 4

# The pool is free: a root selfsigned completes while every verify is pending.
run 0 ctl selfsigned web --dns www.example.test
still=0
for p in $VPIDS; do
    alive "$p" && still=$((still + 1))
done
check "all 12 verifies still pending when selfsigned returned ($still)" test "$still" -eq 12
run 0 ctl status

# The holder leaves: its verifies are abandoned, their fetches cancelled.
kill "$HOLDER"
wait "$HOLDER" 2>/dev/null
check "the holder's verifies logged as abandoned" \
    wait_for 30 log_count_is "left: its verify is abandoned" 4

# The black hole goes: every verify returns, naming the failed fetch.
kill "$HOLE"
for p in $VPIDS; do
    wait "$p"
    echo "rc $?" >>"$T/v.rc"
done
check "every verify returned 'not trusted' (4)" test "$(grep -c '^rc 4$' "$T/v.rc")" -eq 12
for i in $(seq 12); do
    if ! grep -qF "fetching $URL failed" "$T/v$i.out"; then
        fail "verify $i does not name the failed fetch: $(cat "$T/v$i.out")"
    fi
done
pass

# Probes: 1,000 black-hole addresses, from two clients, each asking for 4096 connections.
black_hole probes
PROBE_PORT=$PORT
for _ in $(seq 1000); do
    echo "tls://127.0.0.1:$PROBE_PORT"
done >"$T/urls"
BASE=$(fd_count)
# certctl itself in the background (not through the ctl function): its pid is the one killed.
"$CTL" --socket "$SOCK" probe --urls-from "$T/urls" --timeout 300 --concurrency 4096 \
    >"$T/p1.out" 2>&1 &
P1=$!
"$CTL" --socket "$SOCK" probe --urls-from "$T/urls" --timeout 300 --concurrency 4096 \
    >"$T/p2.out" 2>&1 &
P2=$!
check "both probes started" wait_for 30 log_count_is "probing 1000 URL(s)" 2
check "the probes hold their connections" wait_for 30 fds_at_least $((BASE + 250))
LIMIT=$((BASE + 256 + 8))
check "the agent's descriptors stay under $LIMIT ($(fd_count))" fds_at_most "$LIMIT"
echo "descriptors: $BASE before the probes, $(fd_count) while they run"
run 0 ctl status
run 0 ctl selfsigned web2 --dns www2.example.test
check "the agent's descriptors stay under $LIMIT after status ($(fd_count))" fds_at_most "$LIMIT"
check "the agent is alive" alive "$AGENT_PID"

# The clients go: their probes stop, the descriptors come back.
kill "$P1" "$P2"
wait "$P1" "$P2" 2>/dev/null
check "both probes logged as abandoned" \
    wait_for 30 log_count_is "left: its probe of 1000 URL(s) is abandoned" 2
check "the agent's descriptors back to $BASE" wait_for 30 fds_at_most "$BASE"
check "no connection to the black hole left" wait_for 30 no_conns_to "$PROBE_PORT"
run 0 ctl status
check "the agent is alive" alive "$AGENT_PID"
stop_agent
finish
