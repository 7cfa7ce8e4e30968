#!/bin/bash
# Store benchmark: N certificates (default 10000) in the store; agent start-up
# time (exec to READY=1), `certctl list` time, agent RSS.  Prints figures.
# usage: bench-store.sh CERTAGENT CERTCTL AGENT-UP [N]
set -eu
AGENT=$1 CTL=$2 AGENT_UP=$3 N=${4:-10000}
T=$(mktemp -d /tmp/certagent-bench-XXXXXX)
trap 'kill -TERM $pid 2>/dev/null; rm -rf "$T"' EXIT
echo '{"log_level": "warn"}' >"$T/c.json"
args=(--foreground --config "$T/c.json" --socket "$T/s" --state-dir "$T/state")
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}")
"$CTL" --socket "$T/s" selfsigned c00000 --dns c00000.example.test >/dev/null
kill -TERM "$pid"
python3 -c 'import os,select,sys; select.select([os.pidfd_open(int(sys.argv[1]))],[],[],30)' "$pid" || true

# Clone that lineage N-1 times, the way the agent would have written it.
python3 "$(dirname "$0")/clone-lineage.py" "$T/state" "$N"
sync
echo "store: $N certificates, $(du -sh "$T/state" | cut -f1) on disk"

for run in 1 2 3; do
    t=$(date +%s%N)
    pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}")
    echo "agent start-up with $N certificates (exec to READY=1), run $run: $(ms "$t") ms"
    [ "$run" -lt 3 ] && { kill -TERM "$pid"; python3 -c 'import os,select,sys; select.select([os.pidfd_open(int(sys.argv[1]))],[],[],30)' "$pid"; }
done
echo "agent RSS with $N certificates: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
for run in 1 2 3; do
    t=$(date +%s%N)
    "$CTL" --socket "$T/s" list >/dev/null
    a=$(ms "$t")
    t=$(date +%s%N)
    "$CTL" --socket "$T/s" --json list >/dev/null
    b=$(ms "$t")
    t=$(date +%s%N)
    "$CTL" --socket "$T/s" status >/dev/null
    c=$(ms "$t")
    echo "certctl list: $a ms, list --json: $b ms, status: $c ms (run $run)"
done
"$CTL" --socket "$T/s" --json status | python3 -c 'import json,sys; j=json.load(sys.stdin); print("status reports", j["count"], "certificates")'
echo "agent RSS after listing: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
