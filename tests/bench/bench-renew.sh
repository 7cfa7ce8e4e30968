#!/bin/bash
# Renewal scheduler benchmark: N certificates (default 10000, cloned as in bench-store.sh),
# every one set to renew itself (settings.json), none due.  Measures the agent's start-up,
# how long the scheduler takes to plan all of them (STATE/renew.json lists N entries), the
# agent's CPU time and RSS once planned; the cost of a settings change; then M (default 200)
# certificates due at once (failed attempts whose retries fall due together, as after a CA
# outage) and how long the scheduler takes to renew them all with renew_concurrency 4
# (self-signed EC P-256 versions, deploy hooks off).  Prints figures.
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
echo "renew.json: $(wc -c <"$T/state/renew.json") bytes; agent RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"

# Changing one certificate's settings re-plans it: 20 changes, timed one by one.
t=$(date +%s%N)
for i in $(seq 1 20); do
    printf -v name 'c%05d' "$((N - i))"
    "$CTL" --socket "$T/s" set "$name" --renew-before-days 30 >/dev/null
done
echo "20 settings changes (certctl set, settings.json rewritten, re-planned): $(ms "$t") ms"

# M certificates come due at once, as after a CA outage: their failed attempts' retry
# times are now (renew.json edited while the agent is stopped), and the agent restarts.
kill -TERM "$pid"
gone "$pid"
python3 - "$T/state/renew.json" "$M" <<'PY'
import json, sys, time
path, m = sys.argv[1], int(sys.argv[2])
d = json.load(open(path))
for i in range(1, m + 1):
    e = d["c%05d" % i]
    e.update(failures=1, retry_at=int(time.time()), last_ok=0)
json.dump(d, open(path, "w"))
PY
t=$(date +%s%N)
pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}")
renewed() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if sum(1 for v in d.values() if v.get("last_ok") == 1 and v.get("failures") == 0) >= int(sys.argv[2]) else 1)' \
        "$T/state/renew.json" "$1" 2>/dev/null
}
for _ in $(seq 2400); do renewed "$M" && break; sleep 0.05; done
renewed "$M" || { echo "bench-renew: the $M due renewals did not all end" >&2; exit 1; }
echo "$M due renewals (new key, certificate, store commit each; renew_concurrency 4) done: $(ms "$t") ms after the restart; agent CPU $(cpu "$pid"); RSS $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
versions=$(python3 -c 'import json,sys; print(sum(len(json.load(open("%s/certs/c%05d/lineage.json" % (sys.argv[1], i)))["versions"]) for i in range(1, int(sys.argv[2]) + 1)))' "$T/state" "$M")
echo "versions stored for those $M: $versions (one new each: $((2 * M)))"
