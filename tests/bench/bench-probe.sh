#!/bin/bash
# Probes N TLS endpoints on loopback (default 1000) with one `certctl probe`
# and prints the wall time and the agent's peak RSS (VmHWM).  The endpoints
# are served by FARMS Python processes (tls-farm.py, default 2), each
# listening on N/FARMS ports, with the test PKI of tests/probe/pki.sh.
# usage: bench-probe.sh CERTAGENT CERTCTL AGENT-UP [N=1000] [FARMS=2] [CONCURRENCY]
set -u
AGENT=$1 CTL=$2 AGENT_UP=$3 N=${4:-1000} FARMS=${5:-2} CONC=${6:-}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../probe/pki.sh"
T=$(mktemp -d /tmp/certagent-bench-probe-XXXXXX)
PIDS=
trap 'for p in $PIDS; do kill "$p" 2>/dev/null; done; rm -rf "$T"' EXIT

make_pki "$T/pki" "http://127.0.0.1:9/int.der" || exit 1
: >"$T/urls.txt"
for f in $(seq "$FARMS"); do
    python3 -u "$HERE/tls-farm.py" $((N / FARMS)) "$T/urls-$f.txt" "$T/pki/leaf.pem" \
        "$T/pki/leaf.key" "$T/pki/int.pem" >"$T/farm-$f.out" 2>&1 &
    PIDS="$PIDS $!"
    FARM_PIDS="${FARM_PIDS:-} $!"
done
for f in $(seq "$FARMS"); do
    for _ in $(seq 600); do
        grep -q READY "$T/farm-$f.out" && break
        sleep 0.05
    done
    grep -q READY "$T/farm-$f.out" || { echo "farm $f did not start"; cat "$T/farm-$f.out"; exit 1; }
    cat "$T/urls-$f.txt" >>"$T/urls.txt"
done
echo '{"trust_system_roots": false, "log_level": "warn"}' >"$T/certagent.json"
APID=$("$AGENT_UP" "$T/agent.log" "$AGENT" --foreground --config "$T/certagent.json" \
    --socket "$T/agent.sock" --state-dir "$T/state") || exit 1
PIDS="$PIDS $APID"
"$CTL" --socket "$T/agent.sock" trust add "$T/pki/root.pem" >/dev/null || exit 1
rss0=$(awk '/VmHWM/ {print $2}' "/proc/$APID/status")
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
acpu0=$(cpu "$APID")
fcpu0=0
for p in $FARM_PIDS; do fcpu0=$((fcpu0 + $(cpu "$p"))); done
if [ -n "${BENCH_PERF:-}" ]; then # a profile of the agent during the probe
    perf record -g -q -o "$BENCH_PERF" -p "$APID" 2>/dev/null &
    PERF_PID=$!
    sleep 0.5
fi
start=$(date +%s%N)
"$CTL" --socket "$T/agent.sock" --json probe --urls-from "$T/urls.txt" \
    ${CONC:+--concurrency "$CONC"} >"$T/out.json"
rc=$?
end=$(date +%s%N)
if [ -n "${BENCH_PERF:-}" ]; then
    kill -INT "$PERF_PID"
    wait "$PERF_PID"
fi
rss=$(awk '/VmHWM/ {print $2}' "/proc/$APID/status")
acpu=$(( ($(cpu "$APID") - acpu0) * 1000 / $(getconf CLK_TCK) ))
fcpu=0
for p in $FARM_PIDS; do fcpu=$((fcpu + $(cpu "$p"))); done
fcpu=$(( (fcpu - fcpu0) * 1000 / $(getconf CLK_TCK) ))
python3 - "$T/out.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
ms = sorted(r["ms"] for r in j["results"])
print("probes: %d, ok %d, failed %d; per probe ms: median %d, max %d"
      % (j["count"], j["ok"], j["failed"], ms[len(ms) // 2], ms[-1]))
errs = [r["error"] for r in j["results"] if r["error"]]
if errs:
    print("first errors:", errs[:3])
PY
echo "certctl probe of $(wc -l <"$T/urls.txt") endpoints: exit $rc, wall $(( (end - start) / 1000000 )) ms"
echo "CPU during the probe: agent $acpu ms, TLS servers $fcpu ms ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
echo "agent peak RSS (VmHWM): $((rss / 1024)) MiB (before the probe: $((rss0 / 1024)) MiB)"
