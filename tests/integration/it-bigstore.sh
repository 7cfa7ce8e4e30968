#!/bin/bash
# A store of 10,000 certificates (one lineage cloned on disk, as the benchmarks make it): the
# replies of status, list and metrics run to megabytes, far past the cap on replies queued to
# a client that does not read (4 MiB), yet certctl gets them whole, four clients at once too;
# a client that pipelines requests without reading is still dropped.
. "$(dirname "$0")/lib.sh" "$@"
N=10000

echo '{"log_level": "info"}' >"$CONFIG"
start_agent
run 0 ctl selfsigned c00000 --dns c00000.example.test
stop_agent
python3 "$(dirname "$0")/../bench/clone-lineage.py" "$STATE" "$N"
start_agent

run 0 ctl --json status
check "status --json is megabytes (${#OUT} bytes)" test "${#OUT}" -gt $((4 * 1024 * 1024))
json "j['count'] == $N and len(j['certificates']) == $N"
run 0 ctl --json list
json "j['count'] == $N and len(j['certificates']) == $N"
run 0 ctl status
check "the status table has a row per certificate" \
    test "$(printf '%s\n' "$OUT" | grep -c '^ *c[0-9][0-9][0-9][0-9][0-9] ')" -eq "$N"
run 0 ctl metrics
check "metrics has every certificate" \
    test "$(printf '%s\n' "$OUT" | grep -c '^certagent_certificate_not_after_seconds{')" -eq "$N"

# Four clients at once, each with a 10 MB reply.
for i in 1 2 3 4; do
    ctl --json status >"$T/st$i.json" 2>"$T/st$i.err" &
done
wait
for i in 1 2 3 4; do
    check "concurrent status $i is whole" python3 -c "
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))['count'] == $N else 1)" "$T/st$i.json"
done
check "no client was taken for one that does not read" sh -c "! grep -q 'does not read its replies' '$LOG'"

# A client that sends status requests and never reads: dropped once its replies pile up.
python3 - "$SOCK" <<'PY' &
import socket, struct, sys, time
# msgpack by hand: {"id": 0, "op": "hello", "args": {"proto": 1, "client": "noread"}}, then
# {"id": i, "op": "status", "args": {}}.
def s(x): return bytes([0xa0 | len(x)]) + x.encode()
def frame(body): return struct.pack(">I", len(body)) + body
hello = frame(b"\x83" + s("id") + b"\x00" + s("op") + s("hello") + s("args") +
              b"\x82" + s("proto") + b"\x01" + s("client") + s("noread"))
c = socket.socket(socket.AF_UNIX)
c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
c.connect(sys.argv[1])
c.sendall(hello)
try:
    for i in range(1, 50):
        c.sendall(frame(b"\x83" + s("id") + bytes([i]) + s("op") + s("status") + s("args") + b"\x80"))
        time.sleep(0.05)
except OSError:
    pass
time.sleep(2)
PY
reader=$!
check "a client that never reads is dropped" wait_log "does not read its replies" 60
wait "$reader"
run 0 ctl --json status
json "j['count'] == $N"
stop_agent
finish
