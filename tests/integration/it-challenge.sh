#!/bin/bash
# The challenge responders through the agent's config: http01_listen,
# tls_alpn01_listen and challenge_listen_always at start and on SIGHUP, a
# port in use, a bad address.  curl and openssl s_client are the clients.
. "$(dirname "$0")/lib.sh" "$@"

# Free loopback ports, from the OS.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_log TEXT COUNT: the agent's log has COUNT lines with TEXT (bounded, short steps:
# a reload has no readiness notification to wait on).
wait_log() {
    for _ in $(seq 200); do
        [ "$(grep -cF -- "$1" "$LOG")" -ge "$2" ] && return 0
        sleep 0.05
    done
    return 1
}

# http_code PORT: the status of GET /.well-known/acme-challenge/x, 000 when refused.
http_code() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        "http://127.0.0.1:$1/.well-known/acme-challenge/x"
}

# tls_alert PORT: what s_client says of a handshake with ALPN acme-tls/1 and an SNI.
tls_says() {
    timeout 10 openssl s_client -connect "127.0.0.1:$1" -alpn acme-tls/1 \
        -servername nothing.example.test </dev/null 2>&1
}

P1=$(free_port)
P2=$(free_port)
P3=$(free_port)

# A bad address stops the start with a message naming the key.
echo '{"http01_listen": ["localhost:80"]}' >"$CONFIG"
run 1 "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE"
has "\$.http01_listen[0]: 'localhost:80' is not ADDR:PORT"

# challenge_listen_always: both responders listen from the start.
printf '{"http01_listen": ["127.0.0.1:%s"], "tls_alpn01_listen": ["127.0.0.1:%s"],
  "challenge_listen_always": true}' "$P1" "$P2" >"$CONFIG"
start_agent
OUT=$(http_code "$P1")
has 404
OUT=$(tls_says "$P2")
has "unrecognized name"
check "http-01 request logged" grep -q "http-01: 127.0.0.1:[0-9]*: unknown token x: 404" "$LOG"
check "tls-alpn-01 refusal logged" \
    grep -q "tls-alpn-01: 127.0.0.1:[0-9]*: handshake refused for nothing.example.test" "$LOG"

# SIGHUP with another port: the http-01 listener moves, tls-alpn-01 stays.
printf '{"http01_listen": ["127.0.0.1:%s"], "tls_alpn01_listen": ["127.0.0.1:%s"],
  "challenge_listen_always": true}' "$P3" "$P2" >"$CONFIG"
kill -HUP "$AGENT_PID"
check "reload logged" wait_log "configuration reloaded" 1
OUT=$(http_code "$P3")
has 404
OUT=$(http_code "$P1")
has 000
OUT=$(tls_says "$P2")
has "unrecognized name"

# SIGHUP without challenge_listen_always: nothing pending, so nothing listens.
printf '{"http01_listen": ["127.0.0.1:%s"], "tls_alpn01_listen": ["127.0.0.1:%s"]}' \
    "$P3" "$P2" >"$CONFIG"
kill -HUP "$AGENT_PID"
check "second reload logged" wait_log "configuration reloaded" 2
OUT=$(http_code "$P3")
has 000
OUT=$(tls_says "$P2")
has "Connection refused"
stop_agent

# A port in use: a warning naming the address, and the agent runs on.
python3 -c '
import signal, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1)
sys.stdout.write("holding\n"); sys.stdout.flush(); signal.pause()
' "$P1" >"$T/holder.out" 2>&1 </dev/null &
HOLDER=$!
wait_file() {
    for _ in $(seq 200); do grep -q holding "$1" 2>/dev/null && return 0; sleep 0.05; done
    return 1
}
check "port holder ready" wait_file "$T/holder.out"
printf '{"http01_listen": ["127.0.0.1:%s"], "tls_alpn01_listen": ["127.0.0.1:%s"],
  "challenge_listen_always": true}' "$P1" "$P2" >"$CONFIG"
start_agent
check "bind failure warned" \
    grep -q "warn.*cannot listen on 127.0.0.1:$P1 for http-01: address already in use" "$LOG"
run 0 ctl ping
OUT=$(tls_says "$P2")
has "unrecognized name"
kill "$HOLDER"
stop_agent
finish
