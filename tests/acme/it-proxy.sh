#!/bin/bash
# The fault-injecting ACME proxy (acmeproxy.py) in front of a real Pebble: every action
# seen with curl, Renewal Information and profiles, then real issuance with Debian's lego
# through injected 503/429 with Retry-After, a long "processing" and replica lag, the
# certificates verifying against Pebble's root; the raw order states a client sees through
# orderNotReady, processing and lag (acme-steps.py, on Debian's python3-acme).
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

command -v lego >/dev/null || { fail "lego is not installed (packaging/install-deps.sh)"; finish; }
# Nonce rejection off: python3-acme retries a badNonce only once, and the nonce paths are not
# what this test is about (the proxy passes Replay-Nonce through; checked below).
PEBBLE_WFE_NONCEREJECT=0 pebble_start || finish
acmeproxy_start '{
  "profiles": {"classic": "the default", "shortlived": "6 days"},
  "default_profile": "classic",
  "renewal_info": {"start": -60, "end": 3600, "explanation_url": "https://ca.example/why",
                   "retry_after": 120}}' || finish
P=${ACMEPROXY_DIRECTORY%/dir}
PEB=${PEBBLE_DIRECTORY%/dir}
pcurl() { curl -sS --cacert "$PEBBLE_TRUST" --max-time 20 "$@"; }
b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# --- a transparent proxy: origin rewritten, directory extras, nonces passed through ---------
run 0 pcurl -D "$T/h" "$P/dir"
json "j['newOrder'] == '$P/order-plz' and j['newNonce'] == '$P/nonce-plz'"
json "all(v.startswith('$P/') for k, v in j.items() if k != 'meta')"
json "j['meta']['profiles'] == {'classic': 'the default', 'shortlived': '6 days'}"
json "j['renewalInfo'] == '$P/renewal-info'"
lacks "$PEB"
run 0 pcurl -I "$P/nonce-plz"
has "Replay-Nonce: "
has "Link: <$P/dir>;rel=\"index\""
# The upstream directory has no such extras.
run 0 pcurl "$PEBBLE_DIRECTORY"
json "'renewalInfo' not in j and 'profiles' not in j['meta']"

# --- status: 503 with Retry-After in seconds, 429 with an HTTP-date, fresh nonces -----------
acmeproxy_rules '[
  {"kind": "newOrder", "action": "status", "status": 503, "retry_after": 7,
   "detail": "service busy"},
  {"kind": "newOrder", "action": "status", "status": 429, "retry_after_date": 30,
   "detail": "too many new orders"}]' || fail "rules refused"
run 0 pcurl -D "$T/h" -X POST -H 'Content-Type: application/jose+json' -d '{}' "$P/order-plz"
json "j == {'type': 'urn:ietf:params:acme:error:serverInternal', 'detail': 'service busy'}"
check "503 status" grep -q '^HTTP/1.1 503' "$T/h"
check "Retry-After in seconds" grep -qx $'Retry-After: 7\r' "$T/h"
check "a fresh Replay-Nonce with the 503" grep -qE '^Replay-Nonce: [A-Za-z0-9_-]{10,}' "$T/h"
check "problem+json" grep -qi '^Content-Type: application/problem+json' "$T/h"
run 0 pcurl -D "$T/h" -X POST -d '{}' "$P/order-plz"
json "j['type'] == 'urn:ietf:params:acme:error:rateLimited'"
check "429 status" grep -q '^HTTP/1.1 429' "$T/h"
ra=$(sed -n 's/^Retry-After: \(.*\)\r$/\1/p' "$T/h")
check "Retry-After as an HTTP-date about 30 s ahead" "$ACME_PYTHON" -c '
import email.utils, sys, time
t = email.utils.parsedate_to_datetime(sys.argv[1]).timestamp()
sys.exit(0 if 20 <= t - time.time() <= 31 and sys.argv[1].endswith(" GMT") else 1)' "$ra"
# Both rules are used up: the third request reaches Pebble (which refuses the empty JWS).
run 0 pcurl -X POST -H 'Content-Type: application/jose+json' -d '{}' "$P/order-plz"
json "j['type'] == 'urn:ietf:params:acme:error:malformed'"
run 0 acmeproxy_log
json "j['counts']['newOrder'] == 3 and len(j['injected']) == 2"
json "[e['detail'] for e in j['injected']][0] == '503; Retry-After: 7'"

# --- transport faults: reset, stall, truncate, bad JSON, wrong content type ----------------
acmeproxy_rules '[{"kind": "directory", "action": "reset"}]'
run 7 bash -c 'curl -sS --cacert "$1" --max-time 20 "$2" >/dev/null 2>&1; r=$?; [ $r -ne 0 ] && exit 7' _ "$PEBBLE_TRUST" "$P/dir"
run 0 pcurl "$P/dir"
json "'newOrder' in j"
acmeproxy_rules '[{"kind": "directory", "action": "stall", "seconds": 3}]'
t0=$(date +%s%N)
run 28 pcurl --max-time 1 "$P/dir"
acmeproxy_rules '[{"kind": "directory", "action": "stall", "seconds": 1}]'
t0=$(date +%s%N)
run 0 pcurl "$P/dir"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
check "a stall of 1 s held the reply ($ms ms)" test "$ms" -ge 950
json "'newOrder' in j"
acmeproxy_rules '[{"kind": "directory", "action": "truncate", "bytes": 40}]'
run 18 pcurl -o "$T/trunc" "$P/dir"
check "truncated body is 40 bytes" test "$(stat -c %s "$T/trunc")" -eq 40
acmeproxy_rules '[{"kind": "directory", "action": "badjson"}]'
run 0 pcurl -D "$T/h" "$P/dir"
check "badjson is not JSON" bash -c '! printf "%s" "$1" | python3 -m json.tool >/dev/null 2>&1' _ "$JOUT"
check "badjson keeps the 200" grep -q '^HTTP/1.1 200' "$T/h"
acmeproxy_rules '[{"kind": "directory", "action": "content-type", "times": 2}]'
run 0 pcurl -D "$T/h" "$P/dir"
check "wrong content type" grep -qi '^Content-Type: text/html' "$T/h"
json "'newOrder' in j"
run 0 acmeproxy_log
json "[r['applied'] for r in j['rules']] == [1]"
json "[e['action'] for e in j['injected']][-6:] == ['reset', 'stall', 'stall', 'truncate', 'badjson', 'content-type']"

# --- orderNotReady on finalize; invalidProfile on newOrder ----------------------------------
acmeproxy_rules '[{"kind": "finalize", "action": "order-not-ready"}]'
run 0 pcurl -D "$T/h" -X POST -d '{}' "$P/finalize-order/abc"
json "j['type'] == 'urn:ietf:params:acme:error:orderNotReady'"
check "403 orderNotReady" grep -q '^HTTP/1.1 403' "$T/h"
check "with a nonce" grep -q '^Replay-Nonce: ' "$T/h"
run 0 pcurl -X POST -d '{}' "$P/finalize-order/abc"
lacks "orderNotReady"
acmeproxy_rules '[]'
prot=$(printf '{"alg":"none"}' | b64url)
pay=$(printf '{"identifiers":[{"type":"dns","value":"x.test"}],"profile":"nope"}' | b64url)
run 0 pcurl -D "$T/h" -X POST -H 'Content-Type: application/jose+json' \
    -d "{\"protected\":\"$prot\",\"payload\":\"$pay\",\"signature\":\"\"}" "$P/order-plz"
json "j['type'] == 'urn:ietf:params:acme:error:invalidProfile' and 'nope' in j['detail']"
check "400 invalidProfile" grep -q '^HTTP/1.1 400' "$T/h"
pay=$(printf '{"identifiers":[{"type":"dns","value":"x.test"}],"profile":"shortlived"}' | b64url)
run 0 pcurl -X POST -d "{\"protected\":\"$prot\",\"payload\":\"$pay\",\"signature\":\"\"}" "$P/order-plz"
json "j['type'] != 'urn:ietf:params:acme:error:invalidProfile'"
run 0 acmeproxy_log
json "[o['profile'] for o in j['orders'] if o['identifiers']] == ['nope', 'shortlived']"

# --- control endpoint refuses bad rules and keeps the old ones -------------------------------
acmeproxy_rules '[{"kind": "directory", "action": "content-type", "times": 5}]'
run 1 acmeproxy_rules '[{"kind": "nope", "action": "status"}]'
has "kind 'nope'"
run 1 acmeproxy_rules '[{"kind": "finalize", "action": "lag"}]'
has "lag applies to kind order only"
run 1 acmeproxy_post /config '{"rules": [], "default_profile": "x"}'
has "default_profile"
run 0 curl -s "$ACMEPROXY_CONTROL/rules"
json "len(j) == 1 and j[0]['times'] == 5"
acmeproxy_rules '[]'

# --- real issuance through the proxy: 503 + Retry-After, processing held, lag ---------------
lego_run() {
    LEGO_CA_CERTIFICATES=$PEBBLE_TRUST lego --server "$ACMEPROXY_DIRECTORY" \
        --email test@example.test --accept-tos --path "$T/lego" "$@" \
        --http --http.port "127.0.0.1:$PEBBLE_HTTP01_PORT" run
}
acmeproxy_post /log/clear '{}'
acmeproxy_rules '[
  {"kind": "order", "action": "processing", "polls": 3, "retry_after": 1},
  {"kind": "order", "action": "status", "status": 503, "retry_after": 1,
   "detail": "service busy"}]'
run 0 lego_run --domains p1.proxy.test --domains p2.proxy.test
check "lego's certificate verifies against Pebble's root" \
    pebble_verify "$T/lego/certificates/p1.proxy.test.crt"
check "it names both identifiers" bash -c \
    'openssl x509 -in "$1" -noout -ext subjectAltName | grep -q "DNS:p1.proxy.test, DNS:p2.proxy.test"' \
    _ "$T/lego/certificates/p1.proxy.test.crt"
run 0 acmeproxy_log
json "[(r['action'], r['applied']) for r in j['rules']] == [('processing', 1), ('status', 1)]"
json "sum(1 for e in j['injected'] if e['action'] == 'processing' and e['kind'] == 'order') == 3"
json "j['counts']['order'] >= 5 and j['counts']['cert'] >= 1"
json "len(j['orders']) >= 1 and all(o['profile'] is None for o in j['orders'])"

acmeproxy_post /log/clear '{}'
acmeproxy_rules '[
  {"kind": "order", "action": "lag"},
  {"kind": "order", "action": "status", "status": 429, "retry_after_date": 1,
   "type": "urn:ietf:params:acme:error:rateLimited", "detail": "slow down"},
  {"kind": "order", "action": "processing", "polls": 1, "retry_after": 1}]'
run 0 lego_run --domains p3.proxy.test
check "second certificate verifies" pebble_verify "$T/lego/certificates/p3.proxy.test.crt"
run 0 acmeproxy_log
json "[r['applied'] for r in j['rules']] == [1, 1, 1]"
json "any(e['action'] == 'lag' and e['detail'] == 'valid shown as pending' for e in j['injected'])"

# --- the order states a client sees, step by step (acme-steps.py, python3-acme) -------------
acmeproxy_post /log/clear '{}'
acmeproxy_rules '[
  {"kind": "finalize", "action": "order-not-ready"},
  {"kind": "order", "action": "processing", "polls": 2, "retry_after": 1},
  {"kind": "order", "action": "lag"}]'
run 0 "$ACME_PYTHON" "$(dirname "$0")/acme-steps.py" --directory "$ACMEPROXY_DIRECTORY" \
    --cafile "$PEBBLE_TRUST" --http01-port "$PEBBLE_HTTP01_PORT" --out "$T/steps.pem" \
    s1.proxy.test s2.proxy.test
printf '%s\n' "$JOUT" >"$T/steps.jsonl"
steps() {
    "$ACME_PYTHON" -c '
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
want = [("order", "pending"), ("poll", "ready"), ("finalize", "orderNotReady"),
        ("poll", "pending"), ("poll", "ready"), ("finalize", "processing"),
        ("poll", "processing"), ("poll", "processing"), ("poll", "pending"), ("poll", "valid"),
        ("cert", None)]
got = [(e["event"], (e.get("type") or "").rsplit(":", 1)[-1] or e.get("status"))
       for e in ev if e["event"] != "authz"]
got = [(a, None if a == "cert" else b) for a, b in got]
sys.exit(0 if got == want else 1)' "$T/steps.jsonl"
}
check "finalize orderNotReady, pending once, ready, processing x2 with Retry-After, lag, valid: $(tr '\n' ' ' <"$T/steps.jsonl")" steps
check "Retry-After 1 on the processing answers" test "$(grep -c '"status": "processing", "retry_after": "1"' "$T/steps.jsonl")" = 3
check "every order object carries the default profile" test "$(grep -c '"profile": "classic"' "$T/steps.jsonl")" -ge 7
check "the certificate verifies" pebble_verify "$T/steps.pem"

# --- concurrency: 6 lego processes at once through the proxy (dns-01 through the hook), every
# order held "processing" twice and four order polls answered 503 ---------------------------
cat >"$T/lego-exec" <<'EOF'
#!/bin/bash
case $1 in present) op=add ;; cleanup) op=remove ;; *) exit 0 ;; esac
d=${2#_acme-challenge.}
CERTAGENT_DNS01_NAME=$2 CERTAGENT_DNS01_VALUE=$3 CERTAGENT_DNS01_DOMAIN=${d%.} \
    exec "$ACME_DNS01_HOOK" "$op"
EOF
chmod +x "$T/lego-exec"
acmeproxy_post /log/clear '{}'
acmeproxy_rules '[
  {"kind": "order", "action": "processing", "polls": 2, "retry_after": 1, "times": -1},
  {"kind": "order", "action": "status", "status": 503, "retry_after": 1, "times": 4,
   "after": 2}]'
pids=
for i in 1 2 3 4 5 6; do
    EXEC_PATH=$T/lego-exec EXEC_POLLING_INTERVAL=1 LEGO_CA_CERTIFICATES=$PEBBLE_TRUST \
        lego --server "$ACMEPROXY_DIRECTORY" --email "c$i@example.test" --accept-tos \
        --path "$T/lego-c$i" --domains "c$i.proxy.test" --dns exec --dns.disable-cp \
        --dns.resolvers "$CHALLTEST_DNS" run >"$T/lego-c$i.log" 2>&1 &
    pids="$pids $!"
done
n=0
for p in $pids; do
    n=$((n + 1))
    if wait "$p"; then pass; else fail "concurrent lego $n failed: $(tail -n 3 "$T/lego-c$n.log")"; fi
done
for i in 1 2 3 4 5 6; do
    check "concurrent certificate $i verifies" pebble_verify "$T/lego-c$i/certificates/c$i.proxy.test.crt"
done
run 0 acmeproxy_log
json "j['counts']['newOrder'] >= 6 and j['counts']['finalize'] >= 6"
json "j['rules'][0]['applied'] >= 6 and j['rules'][1]['applied'] == 4"
json "sum(1 for e in j['injected'] if e['action'] == 'processing' and e['kind'] == 'order') >= 12"

# --- Renewal Information for the issued certificate ----------------------------------------
crt=$T/lego/certificates/p3.proxy.test.crt
cid=$(acme_cert_id "$crt")
check "CertID has the RFC 9773 form" test -n "$(printf '%s' "$cid" | grep -E '^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$')"
acmeproxy_post /renewal-info '{"start": "notAfter-600", "end": "notAfter-60",
    "explanation_url": "https://ca.example/incident", "retry_after": 60}'
run 0 pcurl -D "$T/h" "$P/renewal-info/$cid"
na=$(date -u -d "$(openssl x509 -in "$crt" -noout -enddate | cut -d= -f2)" +%s)
json "j['suggestedWindow']['start'] == '$(date -u -d "@$((na - 600))" +%Y-%m-%dT%H:%M:%SZ)'"
json "j['suggestedWindow']['end'] == '$(date -u -d "@$((na - 60))" +%Y-%m-%dT%H:%M:%SZ)'"
json "j['explanationURL'] == 'https://ca.example/incident'"
check "Retry-After on renewalInfo" grep -qx $'Retry-After: 60\r' "$T/h"
run 0 pcurl -D "$T/h" "$P/renewal-info/not-a-cert-id"
json "j['type'] == 'urn:ietf:params:acme:error:malformed'"
check "bad CertID is a 400" grep -q '^HTTP/1.1 400' "$T/h"
acmeproxy_rules '[{"kind": "renewalInfo", "action": "status", "status": 503, "retry_after": 30}]'
run 0 pcurl -D "$T/h" "$P/renewal-info/$cid"
check "renewalInfo 503 with Retry-After" grep -qx $'Retry-After: 30\r' "$T/h"
acmeproxy_post /renewal-info 'null'
run 0 pcurl "$P/dir"
json "'renewalInfo' not in j"
run 0 acmeproxy_log
json "j['counts']['renewalInfo'] == 3 and len(j['renewal_info']) == 2"
json "j['renewal_info'][0]['cert_id'] == '$cid'"

# --- the upstream gone: a clear 503, not a hang --------------------------------------------
acmeproxy_rules '[]'
pebble_stop
run 0 pcurl -D "$T/h" "$P/dir"
json "j['type'] == 'urn:ietf:params:acme:error:serverInternal' and 'unreachable' in j['detail']"
check "proxy alive after all of it" kill -0 "$ACMEPROXY_PID"
finish
