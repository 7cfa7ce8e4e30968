#!/bin/bash
# Fallback CA benchmark (issue 17): N certificates (default 50) issued by a preferred CA
# (Pebble "prim", behind the fault proxy), then prim goes down (every request answered 503
# serverInternal); `certctl renew --all --force` starts the renewals, each fails once at prim
# (fallback_after 1, renew_retry_min 1 s: the policy's delay) and goes to the fallback CA
# (a second Pebble, "back", registered on first use).  Prints the wall time from the renew
# until all N hold a certificate from back, and both Pebbles' CPU seconds (utime+stime from
# /proc/PID/stat) over that time.  Asserts nothing.  Gives up after 600 s (saying how many
# moved): Pebble 2.x's newOrder was seen to stop answering under 16 concurrent orders.
#
# usage: bench-fallback.sh CERTAGENT CERTCTL AGENT-UP [N] [CONCURRENCY]
#        CONCURRENCY: renew_concurrency (default 16)
HERE=$(cd "$(dirname "$0")" && pwd)
N=${4:-50}
C=${5:-16}
. "$HERE/../integration/lib.sh" "$1" "$2" "$3" "" ""
. "$HERE/../acme/pebble.sh"

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

export PEBBLE_VA_NOSLEEP=1
PEBBLE_WFE_NONCEREJECT=0 pebble_start || { echo "bench-fallback: Pebble did not start"; exit 1; }
acmeproxy_start '{}' || exit 1
PEBBLE_WFE_NONCEREJECT=0 pebble_start_second || { echo "bench-fallback: the second Pebble did not start"; exit 1; }
pebble_agent_config "{\"http01_listen\": [\"127.0.0.1:$PEBBLE_HTTP01_PORT\", \"127.0.0.1:$PEBBLE2_HTTP01_PORT\"],
  \"renew_retry_min\": 1, \"renew_retry_max\": 2, \"fallback_after\": 1, \"renew_concurrency\": $C,
  \"responder_max_per_address\": 256,
  \"fallback_cas\": [\"back\"],
  \"acme_cas\": {\"back\": {\"directory\": \"$PEBBLE2_DIRECTORY\", \"trust\": \"$PEBBLE2_TRUST\",
    \"auto_register\": true}}}"
# Pebble's validators all come from 127.0.0.1 (3 perspectives per challenge): the
# responder's default of 16 connections per address refuses some at renew_concurrency 8.
start_agent
echo "two Pebbles; N=$N, renew_concurrency $C; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
ctl ca add prim --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST" >/dev/null
ctl account register --ca prim --agree-tos >/dev/null
# Wait for the requests only: a bare `wait` would also wait for Pebble and the agent.
pids=()
for i in $(seq 1 "$N"); do
    ctl request "f$i" --dns "f$i.bench.test" --ca prim >/dev/null 2>&1 &
    pids+=($!)
done
wait "${pids[@]}"
# from_ca CA: prints how many of the N current versions come from CA; true when all do.
from_ca() {
    python3 - "$STATE" "$N" "$1" <<'PY'
import json, sys
state, n, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
done = 0
for i in range(1, n + 1):
    try:
        d = "%s/certs/f%d" % (state, i)
        v = json.load(open(d + "/lineage.json"))["current"]
        done += json.load(open("%s/v%d/meta.json" % (d, v)))["extra"]["acme"]["ca"] == ca
    except (OSError, ValueError, KeyError):
        pass
print(done)
sys.exit(0 if done == n else 1)
PY
}
all_back() { from_ca back; }
echo "issued at prim: $(from_ca prim) of $N"

acmeproxy_rules '[{"kind": ["directory", "newNonce", "newAccount", "newOrder", "order", "authz",
  "challenge", "finalize", "cert"], "action": "status", "status": 503,
  "type": "urn:ietf:params:acme:error:serverInternal", "detail": "prim is down",
  "retry_after": 0, "times": -1}]'
c1=$(ticks "$PEBBLE_PID")
c2=$(ticks "$PEBBLE2_PID")
t0=$(now)
ctl renew --all --force >/dev/null 2>&1
# tf: when the first certificate from back is current (the policy's delay plus one order).
tf=
until moved=$(all_back); do
    [ -z "$tf" ] && [ "$moved" -gt 0 ] && tf=$(now)
    sleep 0.1
    if [ $(( ($(now) - t0) / 1000000000 )) -gt 600 ]; then
        echo "bench-fallback: not all moved within 600 s ($moved of $N)"
        break
    fi
done
t1=$(now)
[ -z "$tf" ] && tf=$t1
echo "$N certificates from fallback CA 'back' $(secs "$t0" "$t1") s after 'renew --all --force'," \
    "the first after $(secs "$t0" "$tf") s (policy delay: 1 failure at prim, then" \
    "renew_retry_min 1 s)"
echo "Pebble CPU: prim $(awk -v a="$c1" -v b="$(ticks "$PEBBLE_PID")" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }') s," \
    "back $(awk -v a="$c2" -v b="$(ticks "$PEBBLE2_PID")" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }') s"
stop_agent
finish
