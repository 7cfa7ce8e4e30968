#!/bin/bash
# Alerts benchmark: IPC status p99 while the mail server stalls every connection (it accepts
# and never answers; delivery timeout 60 s), against the same agent before any message was
# queued; and the agent's RSS before and after 1,000 queued messages (certctl report --send
# with the mail server stalled).  Prints figures; asserts nothing.
# usage: bench-notify.sh CERTAGENT CERTCTL AGENT-UP [REQUESTS]
set -eu
AGENT=$1 CTL=$2 AGENT_UP=$3 REQUESTS=${4:-300}
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/certagent-bench-XXXXXX)
pid=""
smtp=""
trap '[ -n "$pid" ] && kill -TERM $pid 2>/dev/null; [ -n "$smtp" ] && kill $smtp 2>/dev/null; rm -rf "$T"' EXIT

/usr/bin/python3 -u "$HERE/../notify/smtpd.py" "$T/mail" --stall >"$T/smtp.out" 2>&1 &
smtp=$!
for _ in $(seq 100); do grep -q '^READY ' "$T/smtp.out" && break; sleep 0.1; done
PORT=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$T/smtp.out")
cat >"$T/c.json" <<JSON
{"log_level": "warn", "notify": {"email": {"smtp_url": "smtp://127.0.0.1:$PORT",
  "from": "bench@example.test", "to": ["ops@example.test"], "tls": "none"},
  "coalesce_seconds": 0, "timeout": 60}}
JSON
pid=$("$AGENT_UP" "$T/log" "$AGENT" --foreground --config "$T/c.json" --socket "$T/s" \
    --state-dir "$T/state")
for i in $(seq -w 1 20); do
    "$CTL" --socket "$T/s" selfsigned "c$i" --dns "c$i.example.test" >/dev/null
done

# p99 [LABEL]: REQUESTS timed `certctl status --json` calls; prints p50, p99 and the maximum.
p99() {
    local times=$T/times
    : >"$times"
    for _ in $(seq "$REQUESTS"); do
        local t
        t=$(date +%s%N)
        "$CTL" --socket "$T/s" --json status >/dev/null
        echo $((($(date +%s%N) - t) / 1000)) >>"$times"
    done
    sort -n "$times" | awk -v label="$1" '{a[NR] = $1} END {
        printf "%s: status p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d requests)\n", label,
            a[int(NR * 0.5)] / 1000, a[int(NR * 0.99)] / 1000, a[NR] / 1000, NR}'
}
rss() { awk '/VmRSS/ {print $2 " kB"}' "/proc/$pid/status"; }

# The 20 self-signed certificates' warnings are queued and stall at the mail server; wait
# until the spool holds them, then compare with a fresh agent without the stall.
sleep 2
spooled() { "$CTL" --socket "$T/s" --json notify status | python3 -c 'import json,sys; print(json.load(sys.stdin)["spooled"])'; }
echo "spooled while the mail server stalls: $(spooled)"
p99 "mail server stalling (one connection held 60 s)"
echo "agent RSS before 1000 more messages: $(rss)"
t=$(date +%s%N)
for _ in $(seq 1000); do
    "$CTL" --socket "$T/s" report --send >/dev/null
done
echo "1000 x report --send: $((($(date +%s%N) - t) / 1000000)) ms; spooled: $(spooled); spool: $(du -sk "$T/state/notify" | cut -f1) kB"
echo "agent RSS after 1000 queued messages: $(rss)"
p99 "1000 messages queued, mail server stalling"
kill -TERM "$pid"
python3 -c 'import os,select,sys; select.select([os.pidfd_open(int(sys.argv[1]))],[],[],60)' "$pid" 2>/dev/null || true

# The baseline: the same store, no notify config.
echo '{"log_level": "warn"}' >"$T/c.json"
rm -rf "$T/state/notify"
pid=$("$AGENT_UP" "$T/log" "$AGENT" --foreground --config "$T/c.json" --socket "$T/s" \
    --state-dir "$T/state")
sleep 2
p99 "no alerts configured (baseline)"
echo "agent RSS (baseline): $(rss)"
