#!/bin/bash
# Status report and dashboard benchmark (issue 15): N certificates (default 10000), of
# which W (default 1000) have a warning: N-W imported ones with a complete chain (ok) and W
# self-signed ones (self_signed_in_use), cloned on disk as bench-status.sh does.  Prints the
# time to build the report (the agent's own figure, and certctl report's wall time) and its
# size (text and HTML), and the dashboard page's time to first byte and size (and of
# /status.json).  Asserts nothing.
# usage: bench-report.sh CERTAGENT CERTCTL AGENT-UP [N] [W]
set -eu
AGENT=$1 CTL=$2 AGENT_UP=$3 N=${4:-10000} W=${5:-1000}
T=$(mktemp -d /tmp/certagent-bench-XXXXXX)
pid=
trap '[ -n "$pid" ] && kill -TERM $pid 2>/dev/null; rm -rf "$T"' EXIT
echo '{"log_level": "debug", "dashboard_listen": "127.0.0.1:0", "log_ring_lines": 0}' >"$T/c.json"
args=(--foreground --config "$T/c.json" --socket "$T/s" --state-dir "$T/state")
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
gone() { python3 -c 'import os,select,sys; select.select([os.pidfd_open(int(sys.argv[1]))],[],[],60)' "$1" 2>/dev/null || true; }

# One CA, one leaf with a complete chain (ok), one self-signed (warning).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" \
    -out "$T/ca.pem" -days 3650 -subj "/CN=Bench CA" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/leaf.key" \
    -out "$T/leaf.csr" -subj "/CN=ok.example.test" -addext "subjectAltName=DNS:ok.example.test" 2>/dev/null
openssl x509 -req -in "$T/leaf.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
    -days 300 -copy_extensions copy -out "$T/leaf.pem" 2>/dev/null
pid=$("$AGENT_UP" "$T/log0" "$AGENT" "${args[@]}")
"$CTL" --socket "$T/s" import o00000 --cert "$T/leaf.pem" --key "$T/leaf.key" --chain "$T/ca.pem" >/dev/null
"$CTL" --socket "$T/s" selfsigned w00000 --dns w00000.example.test >/dev/null
kill -TERM "$pid"
gone "$pid"
python3 "$(dirname "$0")/clone-lineage.py" "$T/state" $((N - W)) o00000 o
python3 "$(dirname "$0")/clone-lineage.py" "$T/state" "$W" w00000 w
sync
echo "store: $N certificates, $W of them with a warning (self-signed)"

pid=$("$AGENT_UP" "$T/log" "$AGENT" "${args[@]}")
PORT=$(sed -n 's/.*dashboard: serving https:.*(port \([0-9]*\)).*/\1/p' "$T/log" | head -1)
for _ in $(seq 600); do
    "$CTL" --socket "$T/s" --json status | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["certs_unchecked"] == 0 else 1)' && break
    sleep 0.2
done
for _ in $(seq 600); do
    grep -q "dashboard: serving certificate" "$T/log" && break
    sleep 0.2
done
for run in 1 2 3; do
    t=$(date +%s%N)
    "$CTL" --socket "$T/s" report >"$T/report.txt"
    a=$(ms "$t")
    built=$(grep "report: built in" "$T/log" | tail -1 | sed 's/.*report: //')
    c=$(curl -sk -o "$T/page.html" -w '%{time_starttransfer} %{time_total} %{size_download}' \
        "https://127.0.0.1:$PORT/")
    j=$(curl -sk -o "$T/status.json" -w '%{time_starttransfer} %{size_download}' \
        "https://127.0.0.1:$PORT/status.json")
    read -r ttfb total size <<<"$c"
    read -r jttfb jsize <<<"$j"
    echo "run $run: certctl report $a ms (agent: $built); dashboard: first byte" \
        "$(awk "BEGIN {printf \"%d\", $ttfb * 1000}") ms, all $(awk "BEGIN {printf \"%d\", $total * 1000}") ms," \
        "$size bytes; /status.json: first byte $(awk "BEGIN {printf \"%d\", $jttfb * 1000}") ms, $jsize bytes"
done
echo "report: $(head -1 "$T/report.txt")"
echo "report text: $(wc -l <"$T/report.txt") lines, $(wc -c <"$T/report.txt") bytes"
echo "agent RSS: $(awk '/VmRSS/ {print $2, $3}' "/proc/$pid/status")"
