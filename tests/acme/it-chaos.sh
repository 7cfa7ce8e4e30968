#!/bin/bash
# 100 orders through the fault proxy's seeded random plan (5xx with and without Retry-After,
# 429 rateLimited with and without it, resets before a reply, mid-headers and mid-body, stalls
# past the agent's HTTP timeout, truncated bodies, malformed JSON, wrong Content-Type) with
# Pebble rejecting half of all nonces: every order ends valid (stored, key matches, chain
# verifies) or with a clear error (exit 1, the CA named and the problem in words), the agent
# never crashes, nothing stays in flight, and once the faults stop every failed name is
# issued.  Prints the counts.  CHAOS_ORDERS (100), CHAOS_JOBS (12), CHAOS_RATE (0.12) and
# CHAOS_SEED (8) change the run.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

ORDERS=${CHAOS_ORDERS:-100}
JOBS=${CHAOS_JOBS:-12}
RATE=${CHAOS_RATE:-0.12}
SEED=${CHAOS_SEED:-8}
# The agent gives up on one HTTP exchange after 2 s; the proxy's stalls last 4 s.
HTTP_TIMEOUT=2
STALL=4

export PEBBLE_WFE_NONCEREJECT=50
pebble_start || exit 1
acmeproxy_start || exit 1
pebble_agent_config "{\"acme_http_timeout\": $HTTP_TIMEOUT}"
start_agent
run 0 ctl ca add proxied --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl account register --ca proxied --agree-tos

acmeproxy_post /log/clear '{}' || fail "proxy log not cleared"
acmeproxy_post /chaos "{\"seed\": $SEED, \"rate\": $RATE, \"stall_seconds\": $STALL}" ||
    fail "the proxy refused the chaos plan"

# order N: one `certctl request` with three names; its exit code and output in $T/oN.*
order() {
    local n=$1
    "$CTL" --socket "$SOCK" request "o$n" --dns "o$n.example.test" --dns "w$n.example.test" \
        --dns "x$n.example.test" --ca proxied >"$T/o$n.out" 2>&1
    echo $? >"$T/o$n.rc"
}
export -f order
export CTL SOCK T

start=$(date +%s.%N)
seq 1 "$ORDERS" | xargs -P "$JOBS" -I{} bash -c 'order {}'
wall=$(echo "$(date +%s.%N) - $start" | bc)

check "the agent is alive after $ORDERS orders under faults" kill -0 "$AGENT_PID"
acmeproxy_log >"$T/proxy-log.json" || fail "proxy log unreadable"
acmeproxy_post /chaos 'null' || fail "chaos not turned off"

valid=0
failed=
unclear=0
for n in $(seq 1 "$ORDERS"); do
    rc=$(cat "$T/o$n.rc" 2>/dev/null || echo missing)
    if [ "$rc" = 0 ]; then
        valid=$((valid + 1))
        continue
    fi
    failed="$failed $n"
    # A clear error: exit 1, "Error:" with the agent's code in brackets, naming the CA.
    if [ "$rc" != 1 ] || ! grep -q "\[E_[A-Z_]*\]" "$T/o$n.out" ||
        ! grep -qi "proxied\|the CA" "$T/o$n.out"; then
        unclear=$((unclear + 1))
        fail "order o$n: exit $rc without a clear error: $(cat "$T/o$n.out")"
    fi
done
nfailed=$(echo $failed | wc -w)
check "no order ended without a clear error ($unclear unclear)" test "$unclear" -eq 0

# Nothing is left in flight once the requests have returned.
run 0 ctl --json status
json "j['acme_orders'] == 0"

# Once the faults stop, every failed name is issued by a new request (as many at once).
retry() {
    local n=$1
    "$CTL" --socket "$SOCK" request "o$n" --dns "o$n.example.test" --dns "w$n.example.test" \
        --dns "x$n.example.test" --ca proxied >"$T/r$n.out" 2>&1 || cat "$T/r$n.out"
}
export -f retry
echo "phase: orders done at $(date +%T)"
printf '%s\n' $failed | xargs -r -P "$JOBS" -I{} bash -c 'retry {}' >"$T/retry.out" 2>&1
retried=0
for n in $failed; do
    [ -s "$T/r$n.out" ] && grep -q "^certctl:" "$T/r$n.out" || retried=$((retried + 1))
done
check "every failed name was issued once the faults stopped: $(cat "$T/retry.out")" \
    test ! -s "$T/retry.out"
echo "phase: retries done at $(date +%T)"

# Every name now holds a valid, complete certificate whose key matches: each exported (PEM:
# certificate, chain, key) and its key compared with its certificate's; the leaves verified in
# one openssl call through their own exported chains; every tenth one with pebble_verify too.
# exported N: export oN (PEM: certificate, chain, key), compare its key with its certificate's
# and split out its leaf and chain; prints a line on failure.
exported() {
    local n=$1 f=$T/o$1.pem
    "$CTL" --socket "$SOCK" export "o$n" --format pem --out "$f" >/dev/null 2>&1 ||
        { echo "o$n: export failed"; return; }
    [ "$(openssl x509 -in "$f" -noout -pubkey 2>/dev/null)" = \
        "$(openssl pkey -in "$f" -pubout 2>/dev/null)" ] ||
        echo "o$n: the exported key does not match the certificate"
    awk '/-----BEGIN CERTIFICATE-----/ {n++; p = n == 1} p {print}
         /-----END CERTIFICATE-----/ {p = 0}' "$f" >"$T/o$n.leaf.pem"
    awk '/-----BEGIN CERTIFICATE-----/ {n++; p = n > 1} p {print}
         /-----END CERTIFICATE-----/ {p = 0}' "$f" >"$T/o$n.chain.pem"
}
export -f exported
seq 1 "$ORDERS" | xargs -P "$JOBS" -I{} bash -c 'exported {}' >"$T/export.out" 2>&1
bad=$(grep -c . "$T/export.out")
[ "$bad" -eq 0 ] && pass || fail "$(cat "$T/export.out")"
leaves=()
for n in $(seq 1 "$ORDERS"); do
    cat "$T/o$n.chain.pem" >>"$T/chains.pem" 2>/dev/null
    leaves+=("$T/o$n.leaf.pem")
    if [ $((n % 10)) -eq 0 ] && ! pebble_verify "$T/o$n.pem"; then
        bad=$((bad + 1))
        fail "o$n: the exported chain does not verify to Pebble's root"
    fi
done
echo "phase: exported at $(date +%T)"
out=$(openssl verify -purpose sslserver -CAfile "$PEBBLE_ROOT" -untrusted "$T/chains.pem" \
    "${leaves[@]}" 2>&1)
ok=$(printf '%s\n' "$out" | grep -c ': OK$')
[ "$ok" -eq "$ORDERS" ] || { bad=$((bad + 1)); fail "openssl verify: $ok of $ORDERS OK: $out"; }
echo "phase: verified at $(date +%T)"
check "all $ORDERS names hold a verified certificate with a matching key" test "$bad" -eq 0
# The forced renewal of one name also goes through now.
run 0 ctl renew o1 --force
echo "phase: renewed at $(date +%T)"

"$ACME_PYTHON" - "$T/proxy-log.json" "$T" "$ORDERS" "$valid" "$nfailed" "$retried" "$wall" \
    "$RATE" "$SEED" "$JOBS" <<'PY' || fail "no chaos faults were injected"
import collections, json, re, sys
log_path, t, orders, valid, nfailed, retried, wall, rate, seed, jobs = sys.argv[1:]
log = json.load(open(log_path))
chaos = log.get("chaos", {})
total = sum(chaos.values())
print("chaos run: %s orders (3 names each), %s at once, fault rate %s, seed %s, %.1f s wall"
      % (orders, jobs, rate, seed, float(wall)))
print("requests seen by the proxy: %d; faults injected: %d" % (sum(log["counts"].values()), total))
for name, count in sorted(chaos.items(), key=lambda x: -x[1]):
    print("  %-16s %d" % (name, count))
print("orders valid at once: %s; failed with a clear error: %s; failed names issued after the"
      " faults stopped: %s" % (valid, nfailed, retried))
msgs = collections.Counter()
for n in range(1, int(orders) + 1):
    try:
        if open("%s/o%d.rc" % (t, n)).read().strip() == "0":
            continue
        text = open("%s/o%d.out" % (t, n)).read()
    except OSError:
        continue
    line = next((l for l in text.splitlines() if l.startswith("certctl:")), text.strip()[:200])
    # Group by the words, not the URLs and names.
    line = re.sub(r"https://[^ :,)]+", "URL", line)
    line = re.sub(r"\bo\d+\b", "NAME", line)
    msgs[line[:160]] += 1
for m, c in msgs.most_common():
    print("  %3d x %s" % (c, m))
sys.exit(0 if total > 0 else 1)
PY
check "most orders met a fault: more faults than orders" \
    test "$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1]))["chaos"].values()))' "$T/proxy-log.json")" -gt "$ORDERS"

check "the agent is alive at the end" kill -0 "$AGENT_PID"
stop_agent
check "the agent logged its clean stop" grep -q "stopped" "$LOG"
finish
