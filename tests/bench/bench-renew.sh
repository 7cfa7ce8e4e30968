#!/bin/bash
# Renewal scheduler benchmark: N certificates (default 10000, cloned as in bench-store.sh),
# every one set to renew itself (settings.json), none due.  Measures the agent's start-up,
# how long the scheduler takes to plan all of them (STATE/renew.json lists N entries), the
# agent's CPU time and RSS once planned; then M (default 200) certificates made due at once
# (their own renew_before_days: 90, the whole lifetime but the 5 minutes before issue) and how long the
# scheduler takes to renew them all with renew_concurrency 4 (self-signed EC P-256 versions,
# deploy hooks off).  Prints figures.
# usage: bench-renew.sh CERTAGENT CERTCTL AGENT-UP [N] [M]
set -eu
AGENT=$1 CTL=$2 AGENT_UP=$3 N=${4:-10000} M=${5:-200}
T=$(mktemp -d /tmp/certagent-bench-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -TERM $pid 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
echo '{"log_level": "warn", "renew_concurrency": 4}' >"$T/c.json"
args=(--foreground --config "$T/c.json" --socket "$T/s" --state-dir "$T/state")
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
gone() { python3 -c 'import os,select,sys; select.select([os.pidfd_open(int(sys.argv[1]))],[],[],60)' "$1" 2>/dev/null || true; }
cpu() { awk '{printf "%.2f s", ($14 + $15) / 100}' "/proc/$1/stat"; }

pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}")
"$CTL" --socket "$T/s" selfsigned c00000 --dns c00000.example.test --days 90 >/dev/null
kill -TERM "$pid"
gone "$pid"
python3 "$(dirname "$0")/clone-lineage.py" "$T/state" "$N"
python3 - "$T/state" "$N" <<'PY'
import json, sys
state, n = sys.argv[1], int(sys.argv[2])
json.dump({"c%05d" % i: {"auto_renew": True} for i in range(n)}, open(state + "/settings.json", "w"))
PY
rm -f "$T/state/renew.json"
sync
echo "store: $N self-signed certificates (90 days), all set to renew themselves"

planned() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if sum(1 for v in d.values() if v.get("reason")) >= int(sys.argv[2]) else 1)' \
        "$T/state/renew.json" "$1" 2>/dev/null
}
t=$(date +%s%N)
pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}")
echo "agent start-up (exec to READY=1): $(ms "$t") ms"
for _ in $(seq 1200); do planned "$N" && break; sleep 0.05; done
echo "all $N planned (renew.json written): $(ms "$t") ms after start; agent CPU $(cpu "$pid")"
echo "renew.json: $(wc -c <"$T/state/renew.json") bytes; agent RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"

# M certificates become due now: their settings say renew 90 days before expiry (the
# certificates live 90 days and 5 minutes).
t=$(date +%s%N)
for i in $(seq 1 "$M"); do
    printf -v name 'c%05d' "$i"
    "$CTL" --socket "$T/s" set "$name" --renew-before-days 90 >/dev/null
done
echo "$M settings changed: $(ms "$t") ms"
renewed() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if sum(1 for v in d.values() if v.get("last_ok") == 1) >= int(sys.argv[2]) else 1)' \
        "$T/state/renew.json" "$1" 2>/dev/null
}
for _ in $(seq 2400); do renewed "$M" && break; sleep 0.05; done
echo "$M renewals (new key, certificate, store commit each) done: $(ms "$t") ms after the first change; agent CPU $(cpu "$pid"); RSS $(awk '/VmRSS/ {print $2, $3}' /proc/$pid/status)"
