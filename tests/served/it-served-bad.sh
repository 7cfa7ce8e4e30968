#!/bin/bash
# Bad input to the served check: URLs refused at set (unknown scheme, no host, port out of
# range, a --served-sni that is no DNS name or that follows no URL), and endpoints that give
# served_unreachable with the reason: a host name that does not resolve, a server that sends
# garbage, a TLS server that stalls.  The agent stays up and the settings stay as they were.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-served.sh"
PROBE_DIR=$(cd "$(dirname "$0")/../probe" && pwd)
PIDS=
stop_pids() {
    local p
    for p in $PIDS; do
        kill "$p" 2>/dev/null
    done
}
trap 'stop_pids; cleanup' EXIT

# py_server NAME ARGS...: a Python server that prints "READY PORT"; the port in $PORT.
py_server() {
    local name=$1
    shift
    /usr/bin/python3 -u "$@" >"$T/$name.out" 2>&1 </dev/null &
    PIDS="$PIDS $!"
    wait_for 15 grep -q '^READY ' "$T/$name.out" || { fail "$name did not start"; exit 1; }
    PORT=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$T/$name.out")
}

echo '{"served_grace": 0, "probe_timeout": 2, "trust_system_roots": false}' >"$CONFIG"
start_agent
run 0 ctl selfsigned a --dns a.test

# Refused at set, with the option and the problem named; nothing is stored.
run 1 ctl set a --check-served "gopher://a.test"
has "--check-served: 'gopher://a.test': unknown scheme 'gopher'"
run 1 ctl set a --check-served "https://"
has "no host"
run 1 ctl set a --check-served "https://a.test:70000"
has "port must be a number from 1 to 65535"
run 1 ctl set a --check-served "a.test:443"
has "is not a URL"
run 1 ctl set a --check-served "https://127.0.0.1:1" --served-sni "bad name!"
has "--served-sni 'bad name!' is not a DNS name"
run 2 ctl set a --served-sni a.test
has "--served-sni a.test must follow the --check-served URL"
run 1 ctl set a --no-check-served "https://a.test"
has "is not a --check-served URL of this certificate"
# An http.sys binding exists only on Windows.
run 1 ctl set a --deploy-binding 0.0.0.0:443
has "cannot bind 0.0.0.0:443: http.sys SSL bindings are Windows only"
run 0 ctl --json set a
json "'check_served' not in j['settings'] and j['settings']['deploy'] == []"

# Unreachable endpoints: each with its reason; a stalled server ends at probe_timeout.
py_server garbage -c 'import socket, threading
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print("READY %d" % s.getsockname()[1], flush=True)
while True:
    c, _ = s.accept()
    c.sendall(b"HTTP/1.0 200 OK\r\n\r\nthis is not TLS at all\r\n" * 20)
    c.close()'
GARBAGE=$PORT
py_server hang "$PROBE_DIR/hang-server.py"
HANG=$PORT
run 0 ctl set a --check-served "https://no-such-host.invalid:443" \
    --check-served "https://127.0.0.1:$GARBAGE" --served-sni a.test \
    --check-served "https://127.0.0.1:$HANG"
check "unresolvable: unreachable" wait_for 30 served_is a "https://no-such-host.invalid:443" unreachable
check "garbage: unreachable" wait_for 30 served_is a "https://127.0.0.1:$GARBAGE" unreachable
check "stalled: unreachable" wait_for 30 served_is a "https://127.0.0.1:$HANG" unreachable
run 0 ctl --json show a
json "[e for e in j['served'] if e['url'].startswith('https://no-such') and ('resolve' in e['error'] or 'timed out' in e['error'])]"
json "[e for e in j['served'] if e['url'].endswith(':$GARBAGE') and 'TLS handshake failed' in e['error'] and e['sni'] == 'a.test']"
json "[e for e in j['served'] if e['url'].endswith(':$HANG') and 'timed out after 2000 ms' in e['error']]"
run 0 ctl status
has "served_unreachable"
has "cannot check what https://127.0.0.1:$HANG serves: timed out"
run 1 ctl deploy a --wait-served
has "https://127.0.0.1:$GARBAGE is unreachable: TLS handshake failed"
# --wait-served without a URL to check: refused before anything is deployed.
run 0 ctl selfsigned b --dns b.test
run 1 ctl deploy b --wait-served
has "'b' has no URL to check: add one with certctl set b --check-served URL"
# A broken served.json is only a record: logged, replaced, the agent starts.
stop_agent
echo 'not json' >"$STATE/served.json"
start_agent
check "broken served.json logged" grep -q "served.json is not a JSON object" "$LOG"
run 0 ctl ping
run 0 ctl --json show a
json "len(j['served']) == 3"
finish
