#!/bin/bash
# Status report benchmark: N certificates (default 10000) in the store, made
# the way bench-store.sh makes them (one self-signed lineage cloned); then the
# time of `certctl status --json`, `certctl metrics`, `certctl status --check`,
# GET /metrics on the loopback listener, how long the pool takes to check every
# version, the size of STATE/status.json and the agent's RSS.  Prints figures.
# usage: bench-status.sh CERTAGENT CERTCTL AGENT-UP [N]
set -eu
AGENT=$1 CTL=$2 AGENT_UP=$3 N=${4:-10000}
T=$(mktemp -d /tmp/certagent-bench-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -TERM $pid 2>/dev/null; rm -rf "$T"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "{\"log_level\": \"warn\", \"metrics_listen\": \"127.0.0.1:$PORT\"}" >"$T/c.json"
args=(--foreground --config "$T/c.json" --socket "$T/s" --state-dir "$T/state")
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
gone() { python3 -c 'import os,select,sys; select.select([os.pidfd_open(int(sys.argv[1]))],[],[],60)' "$1" 2>/dev/null || true; }

pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}")
"$CTL" --socket "$T/s" selfsigned c00000 --dns c00000.example.test >/dev/null
kill -TERM "$pid"
gone "$pid"

python3 "$(dirname "$0")/clone-lineage.py" "$T/state" "$N"
sync
echo "store: $N certificates"

t=$(date +%s%N)
pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}")
echo "agent start-up (exec to READY=1): $(ms "$t") ms"
# The pool checks key, signature and chain of every version once.
for _ in $(seq 600); do
    "$CTL" --socket "$T/s" --json status | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["certs_unchecked"] == 0 else 1)' && break
    sleep 0.2
done
echo "every version checked: $(ms "$t") ms after start"
for run in 1 2 3; do
    t=$(date +%s%N)
    "$CTL" --socket "$T/s" --json status >"$T/status.out"
    a=$(ms "$t")
    t=$(date +%s%N)
    "$CTL" --socket "$T/s" status >/dev/null
    b=$(ms "$t")
    t=$(date +%s%N)
    "$CTL" --socket "$T/s" status --check >/dev/null || true
    c=$(ms "$t")
    t=$(date +%s%N)
    "$CTL" --socket "$T/s" metrics >"$T/metrics.out"
    d=$(ms "$t")
    t=$(date +%s%N)
    curl -sf -o "$T/http.out" "http://127.0.0.1:$PORT/metrics"
    e=$(ms "$t")
    echo "status --json: $a ms, status (table): $b ms, status --check: $c ms, metrics: $d ms, GET /metrics: $e ms (run $run)"
done
python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("status reports", j["count"], "certificates, health", j["health"])' "$T/status.out"
echo "status --json: $(wc -c <"$T/status.out") bytes; metrics: $(wc -l <"$T/metrics.out") lines, $(wc -c <"$T/metrics.out") bytes"
echo "STATE/status.json: $(wc -c <"$T/state/status.json") bytes"
echo "agent RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
