#!/bin/bash
# The served check at scale: N certificates (default 1000, one self-signed lineage cloned as in
# bench-status.sh), each with one --check-served URL (tls://127.0.0.1:PORT) on a loopback farm
# (tls-farm.py, FARMS processes, default 2) serving that certificate.  The agent starts with no
# STATE/served.json, so every certificate is due at once: one full round.  Prints the round's
# wall time (agent READY=1 until served.json records N checked endpoints), the agent's peak RSS
# and CPU, and the wall times of `certctl status` run back to back during the round (p50, p99,
# max): the loop stays responsive while it probes.
# usage: bench-served.sh CERTAGENT CERTCTL AGENT-UP [N=1000] [FARMS=2]
set -u
AGENT=$1 CTL=$2 AGENT_UP=$3 N=${4:-1000} FARMS=${5:-2}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/certagent-bench-served-XXXXXX)
PIDS=
pid=
stop_all() {
    local p
    for p in $PIDS $pid; do
        kill "$p" 2>/dev/null
    done
    rm -rf "$T"
}
trap stop_all EXIT
gone() { python3 -c 'import os,select,sys; select.select([os.pidfd_open(int(sys.argv[1]))],[],[],60)' "$1" 2>/dev/null || true; }
echo '{"log_level": "warn", "trust_system_roots": false}' >"$T/c.json"
args=(--foreground --config "$T/c.json" --socket "$T/s" --state-dir "$T/state")

# One certificate, cloned N-1 times on disk.
pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}") || exit 1
"$CTL" --socket "$T/s" selfsigned c00000 --dns c00000.example.test >/dev/null || exit 1
kill -TERM "$pid"
gone "$pid"
pid=
python3 "$HERE/clone-lineage.py" "$T/state" "$N"

# The farm serves that certificate on N ports.
: >"$T/empty.pem"
: >"$T/urls.txt"
for f in $(seq "$FARMS"); do
    python3 -u "$HERE/tls-farm.py" $((N / FARMS)) "$T/urls-$f.txt" "$T/state/live/c00000/cert.pem" \
        "$T/state/live/c00000/privkey.pem" "$T/empty.pem" >"$T/farm-$f.out" 2>&1 &
    PIDS="$PIDS $!"
done
for f in $(seq "$FARMS"); do
    for _ in $(seq 600); do
        grep -q READY "$T/farm-$f.out" && break
        sleep 0.05
    done
    grep -q READY "$T/farm-$f.out" || { echo "farm $f did not start"; cat "$T/farm-$f.out"; exit 1; }
    cat "$T/urls-$f.txt" >>"$T/urls.txt"
done
# One URL per certificate, written as certctl set --check-served would have saved it.
python3 - "$T/state" "$T/urls.txt" "$N" <<'PY'
import json, os, sys
state, urls, n = sys.argv[1], open(sys.argv[2]).read().split(), int(sys.argv[3])
settings = {"c%05d" % i: {"check_served": [{"url": urls[i % len(urls)]}]} for i in range(n)}
with open(os.path.join(state, "settings.json"), "w") as f:
    json.dump(settings, f)
os.chmod(os.path.join(state, "settings.json"), 0o600)
PY

done_count() {
    python3 -c '
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception:
    print(0, 0)
    sys.exit()
eps = [e for v in j.values() for e in v if e.get("checked")]
print(len(eps), sum(1 for e in eps if e["result"] == "match"))' "$T/state/served.json"
}

start=$(date +%s%N)
pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}") || exit 1
ready=$(date +%s%N)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cpu0=$(cpu "$pid")
: >"$T/status-ms.txt"
# certctl status back to back in the background until the round is over.
(
    while [ ! -e "$T/round-done" ]; do
        t=$(date +%s%N)
        "$CTL" --socket "$T/s" status >/dev/null
        echo $(( ($(date +%s%N) - t) / 1000 )) >>"$T/status-ms.txt"
    done
) &
STATUS_LOOP=$!
checked=0
matched=0
while :; do
    read -r checked matched < <(done_count)
    [ "$checked" -ge "$N" ] && break
    [ $(( ($(date +%s%N) - ready) / 1000000000 )) -lt 300 ] || { echo "round not done after 300 s"; break; }
    sleep 0.05
done
end=$(date +%s%N)
touch "$T/round-done"
wait "$STATUS_LOOP"
acpu=$(( ($(cpu "$pid") - cpu0) * 1000 / $(getconf CLK_TCK) ))
rss=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "certificates: $N, one --check-served URL each on $FARMS farm process(es)"
echo "agent start-up (exec to READY=1): $(( (ready - start) / 1000000 )) ms"
echo "one full round (READY=1 until served.json has $checked checked, $matched match): $(( (end - ready) / 1000000 )) ms"
echo "agent CPU during the round: $acpu ms ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo "agent peak RSS (VmHWM): $((rss / 1024)) MiB"
# The same after the round, for comparison: what status costs on this machine now.
: >"$T/idle-ms.txt"
for _ in $(seq 16); do
    t=$(date +%s%N)
    "$CTL" --socket "$T/s" status >/dev/null
    echo $(( ($(date +%s%N) - t) / 1000 )) >>"$T/idle-ms.txt"
done
python3 - "$T/status-ms.txt" "$T/idle-ms.txt" <<'PY'
import sys
for what, f in (("during the round", sys.argv[1]), ("after the round", sys.argv[2])):
    v = sorted(int(x) / 1000 for x in open(f).read().split())
    p = lambda q: v[min(len(v) - 1, int(q * len(v)))]
    print("certctl status %s: %d calls, p50 %.1f ms, p99 %.1f ms, max %.1f ms"
          % (what, len(v), p(0.5), p(0.99), v[-1]))
PY
