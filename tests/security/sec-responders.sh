#!/bin/bash
# Finding 7 of issue 14: one remote client holding 300 connections kept the CA's validation
# out of the responders (http-01, tls-alpn-01, metrics: one cap of 256 each, silent
# connections kept 10 s).  Here nobody floods them from loopback addresses and the test
# checks that a source address gets only its share (responder_max_per_address), that a full
# responder closes its oldest idle connection for a new one (responder_max_connections),
# that requests from elsewhere are answered (and, with Pebble, that issuance over http-01 and
# tls-alpn-01 succeeds under the flood), and that silent or slow connections are closed by
# the deadlines (responder_first_byte_timeout, responder_request_timeout).
. "$(dirname "$0")/lib-sec.sh" "$@"
need_root

PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

# Pebble when installed: the http-01 and tls-alpn-01 ports are then where its VA connects.
PEBBLE=
if command -v pebble >/dev/null && command -v pebble-challtestsrv >/dev/null; then
    # shellcheck source=tests/acme/pebble.sh
    . "$(dirname "$0")/../acme/pebble.sh"
    pebble_start || finish
    PEBBLE=1
    P_HTTP=$PEBBLE_HTTP01_PORT
    P_ALPN=$PEBBLE_TLSALPN01_PORT
    P_METRICS=$(_pebble_free_ports 1)
else
    echo "SKIP (part): no pebble: issuance under the flood is not checked"
    read -r P_HTTP P_ALPN P_METRICS < <("$PY" -c '
import socket
s = [socket.socket() for _ in range(3)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
fi

# The attacker's tool, driven line by line through a coprocess (commands below); every wait
# in it is for an event (a connection closed, an answer), bounded only as a fail-safe.
cat >"$T/flood.py" <<'PY'
import resource, select, socket, ssl, sys, time

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
groups = {}

def connect(port, src):
    s = socket.socket()
    s.settimeout(20)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    return s

def readable(socks, ms):
    # poll, not select: the descriptors go far beyond FD_SETSIZE.
    p = select.poll()
    for s in socks:
        p.register(s, select.POLLIN)
    ready = {fd for fd, _ in p.poll(ms)}
    return [s for s in socks if s.fileno() in ready]

def closed(s):
    if not readable([s], 0):
        return False
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True

def barrier(port):
    # The agent accepts in order: once a later connection is answered, the earlier ones
    # were accepted and either kept or closed.
    s = socket.create_connection(("127.0.0.1", port), timeout=20, source_address=("127.0.0.254", 0))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    while s.recv(4096):
        pass
    s.close()

def reply(*words):
    print(*words, flush=True)

for line in sys.stdin:
    cmd, *a = line.split()
    if cmd == "flood":  # flood NAME PORT SRC COUNT [TEXT]: COUNT connections from SRC, silent
        name, port, src, n = a[0], int(a[1]), a[2], int(a[3])  # or sending TEXT at once
        g = groups.setdefault(name, [])
        for _ in range(n):
            g.append(connect(port, src))
            if len(a) > 4:
                g[-1].send(a[4].encode())
        reply("ok")
    elif cmd == "count":  # count NAME PORT: "held H closed C" after a barrier
        barrier(int(a[1]))
        c = sum(closed(s) for s in groups[a[0]])
        reply("held", len(groups[a[0]]) - c, "closed", c)
    elif cmd == "first":  # first NAME N: how many of the first N are closed
        reply("closed", sum(closed(s) for s in groups[a[0]][:int(a[1])]))
    elif cmd == "eof":  # eof NAME: waits until every connection of NAME is closed
        g, start = list(groups[a[0]]), time.monotonic()
        while g and time.monotonic() - start < 120:
            r = readable(g, 1000)
            g = [s for s in g if not (s in r and closed(s))]
        reply("open", len(g))
    elif cmd == "http":  # http PORT SRC PATH: the status line and the last body line
        s = socket.create_connection(("127.0.0.1", int(a[0])), timeout=20, source_address=(a[1], 0))
        s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % a[2]).encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        text = data.decode(errors="replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = [l for l in body.splitlines() if l.startswith("certagent_up") or not l.startswith("#")]
        reply(head.splitlines()[0] if head else "none", "|", lines[0] if lines else "")
    elif cmd == "tls":  # tls PORT SRC: a tls-alpn-01 handshake for a name nobody asked for
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["acme-tls/1"])
        s = socket.create_connection(("127.0.0.1", int(a[0])), timeout=20, source_address=(a[1], 0))
        try:
            ctx.wrap_socket(s, server_hostname="nothing.example.test")
            reply("handshake completed")
        except ssl.SSLError as e:
            reply("alert", e.reason)
        s.close()
    elif cmd == "drop":  # drop NAME
        for s in groups.pop(a[0], []):
            s.close()
        reply("ok")
PY

# flood CMD...: one command to the tool, its answer in $OUT.
coproc FLOOD { as_nobody "$PY" "$T/flood.py" 2>"$T/flood.err"; }
flood() {
    echo "$*" >&"${FLOOD[1]}"
    OUT=
    # shellcheck disable=SC2034 # OUT is what has and lacks read
    read -r -t 300 -u "${FLOOD[0]}" OUT || fail "the flood tool did not answer '$*': $(cat "$T/flood.err")"
}

write_config() {
    printf '{"http01_listen": ["127.0.0.1:%s"], "tls_alpn01_listen": ["127.0.0.1:%s"],
  "challenge_listen_always": true, "metrics_listen": "127.0.0.1:%s",
  "responder_first_byte_timeout": %s, "responder_request_timeout": %s}\n' \
        "$P_HTTP" "$P_ALPN" "$P_METRICS" "$1" "$2" >"$CONFIG"
}
# Deadlines long enough for the whole flood phase (the test waits on events, not on them).
write_config 300 300
open_test_dir
start_agent

for p in "$P_HTTP" "$P_ALPN" "$P_METRICS"; do
    # 300 silent connections from one address: 16 are kept, the others closed at once.
    flood flood "a$p" "$p" 127.0.0.1 300
    flood count "a$p" "$p"
    has "held 16 closed 284"
    # One more from that address is closed too; the 16 are still held.
    flood flood "b$p" "$p" 127.0.0.1 1
    flood count "b$p" "$p"
    has "held 0 closed 1"
    flood count "a$p" "$p"
    has "held 16 closed 284"
    # 20 more addresses, 16 each: 336 held in all would be too many; the responder keeps 256
    # and closed the oldest (127.0.0.1's) to make room.
    for i in $(seq 1 20); do flood flood "c$p" "$p" "127.0.1.$i" 16; done
    # (The count's own connection closes one more.)
    flood count "c$p" "$p"
    has "held 255 closed 65"
    flood first "a$p" 16
    has "closed 16"
done
check "per-address refusal warned" grep -q "http-01: 127.0.0.1 holds 16 connections already" "$LOG"
check "full responder warned" \
    grep -q "tls-alpn-01: 256 connections are open (responder_max_connections)" "$LOG"
check "eviction logged" grep -q "metrics: 127.0.1.1:[0-9]*: closed to make room (sent nothing)" "$LOG"

# A client at another address is served by all three under the flood, although they are
# full (one more connection each makes 256 idle ones): each closes its oldest idle one.
for p in "$P_HTTP" "$P_ALPN" "$P_METRICS"; do flood flood "c$p" "$p" 127.0.2.1 1; done
flood http "$P_HTTP" 127.0.0.2 /.well-known/acme-challenge/unknown-token
has "HTTP/1.1 404 Not Found | 404 Not Found"
flood tls "$P_ALPN" 127.0.0.2
has "alert TLSV1_UNRECOGNIZED_NAME"
flood http "$P_METRICS" 127.0.0.2 /metrics
has "HTTP/1.1 200 OK | certagent_up 1"
for p in "$P_HTTP" "$P_ALPN" "$P_METRICS"; do
    flood count "c$p" "$p"
    has "held 255 closed 66"
done

if [ -n "$PEBBLE" ]; then
    # The CA's validation under a flood from other addresses: Pebble's VA connects from
    # 127.0.0.1, which the flood above no longer holds (it was evicted); the connections the
    # flood still holds stay open while the CA gets through.
    flood drop "a$P_HTTP"
    flood flood "d$P_HTTP" "$P_HTTP" 127.0.0.2 300
    flood flood "d$P_ALPN" "$P_ALPN" 127.0.0.2 300
    run 0 ctl ca add pebble --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"
    run 0 ctl account register --ca pebble --agree-tos
    run 0 ctl request web --dns web.example.test --ca pebble --challenge http-01
    run 0 ctl request alpn --dns alpn.example.test --ca pebble --challenge tls-alpn-01
    check "http-01 validation served" grep -q "http-01: 127.0.0.1:[0-9]*: GET token" "$LOG"
    check "tls-alpn-01 validation served" \
        grep -q "tls-alpn-01: 127.0.0.1:[0-9]*: served the validation certificate for alpn.example.test" "$LOG"
    flood count "d$P_HTTP" "$P_HTTP"
    has "held 16 closed 284"
fi

for g in a b c d; do
    for p in "$P_HTTP" "$P_ALPN" "$P_METRICS"; do flood drop "$g$p"; done
done

# The deadlines, short now (a reload applies them to new connections).
write_config 1 3
kill -HUP "$AGENT_PID"
check "reload logged" wait_log "configuration reloaded"
for p in "$P_HTTP" "$P_ALPN" "$P_METRICS"; do
    # 300 silent connections: the 16 kept are closed by the first-byte deadline.
    flood flood "s$p" "$p" 127.0.0.1 300
    flood eof "s$p"
    has "open 0"
    # A slow client that sent a little is closed by the whole-request deadline.
    flood flood "t$p" "$p" 127.0.0.3 4 GET
    flood eof "t$p"
    has "open 0"
done
check "first-byte deadline logged" grep -q "http-01: 127.0.0.1:[0-9]*: closed: no byte within" "$LOG"
check "request deadline logged" \
    grep -q "metrics: 127.0.0.3:[0-9]*: closed: no complete request within" "$LOG"
# And a proper request is still answered.
flood http "$P_METRICS" 127.0.0.1 /metrics
has "HTTP/1.1 200 OK | certagent_up 1"
run 0 ctl ping
stop_agent
finish
