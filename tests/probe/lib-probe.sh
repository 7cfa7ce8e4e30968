# shellcheck shell=bash
# Shared by the probe and trust tests, sourced after ../integration/lib.sh.
# Starts real TLS servers on free loopback ports and the test PKI.
PROBE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$PROBE_DIR/pki.sh"
SERVER_PIDS=
trap 'stop_servers; cleanup' EXIT

stop_servers() {
    for p in $SERVER_PIDS; do
        kill "$p" 2>/dev/null
    done
    SERVER_PIDS=
}

# wait_line FILE REGEX: returns once FILE has a line matching REGEX (at most 15 s).
wait_line() {
    for _ in $(seq 300); do
        grep -qE -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "no '$2' in $1: $(cat "$1" 2>/dev/null)"
    return 1
}

# s_server NAME ARGS...: openssl s_server -www on a free loopback port;
# the port is left in $PORT (and in $T/NAME.port).
s_server() {
    name=$1
    shift
    openssl s_server -www -accept 127.0.0.1:0 "$@" >"$T/$name.out" 2>&1 </dev/null &
    SERVER_PIDS="$SERVER_PIDS $!"
    wait_line "$T/$name.out" '^ACCEPT ' || return 1
    PORT=$(sed -n 's/^ACCEPT .*:\([0-9]*\)$/\1/p' "$T/$name.out" | head -1)
    echo "$PORT" >"$T/$name.port"
}

# py_server NAME SCRIPT ARGS...: a Python server that prints "READY PORT".
py_server() {
    name=$1
    shift
    python3 -u "$@" >"$T/$name.out" 2>&1 </dev/null &
    SERVER_PIDS="$SERVER_PIDS $!"
    wait_line "$T/$name.out" '^READY [0-9]+' || return 1
    PORT=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$T/$name.out" | head -1)
}

# http_server DIR: python3 -m http.server on a free loopback port, port in $HTTP_PORT.
http_server() {
    (cd "$1" && exec python3 -u -m http.server 0 --bind 127.0.0.1) >"$T/http.out" 2>&1 </dev/null &
    SERVER_PIDS="$SERVER_PIDS $!"
    wait_line "$T/http.out" 'port [0-9]+' || return 1
    # shellcheck disable=SC2034 # the port is for the test that sources this file
    HTTP_PORT=$(sed -n 's/.* port \([0-9]*\).*/\1/p' "$T/http.out" | head -1)
}
