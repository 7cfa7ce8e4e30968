#!/bin/bash
# The staging canary (issue 17 item 2) with two real Pebbles: "staging" behind the fault proxy
# (the canary's directory) and "prod" (the CA certificates renew with, declared in acme_cas).
# Bad input at config load (an unknown CA, the same CA twice, a wildcard with http-01, an http://
# directory off loopback) refuses the reload, naming the member.  A canary run passes; then
# staging's finalize answers an error document never seen before: the canary fails at step
# finalize with the CA's words, status raises ca_canary_failing, ca list shows it, while a
# production certificate is issued by prod; an order that stays "processing" beyond the
# canary's deadline fails at finalize too; a chain checked against another CA's root fails at
# step chain; the state survives a restart; then staging behaves: certctl canary run recovers
# it and the warning goes.  Only the last canary certificate that passed is kept, apart in
# STATE/canary/CA.pem: never in the store, listed or resumed.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

PEBBLE_WFE_NONCEREJECT=0 pebble_start || finish
acmeproxy_start '{}' || finish
PEBBLE_WFE_NONCEREJECT=0 pebble_start_second || finish

canaries() { # canaries ROOTS [EXTRA-MEMBERS]: the "canaries" value
    printf '[{"ca": "prod", "name": "canary.example.test", "directory": "%s", "trust": "%s", "roots": "%s", "every": "1d", "deadline": 6%s}]' \
        "$ACMEPROXY_DIRECTORY" "$PEBBLE_TRUST" "$1" "${2:-}"
}
base() { # base CANARIES: the agent's config
    printf '{"http01_listen": ["127.0.0.1:%s", "127.0.0.1:%s"], "acme_http_timeout": 5,
  "acme_cas": {"prod": {"directory": "%s", "trust": "%s", "auto_register": true}},
  "canaries": %s}' "$PEBBLE_HTTP01_PORT" "$PEBBLE2_HTTP01_PORT" "$PEBBLE2_DIRECTORY" "$PEBBLE2_TRUST" "$1"
}
pebble_agent_config "$(base "$(canaries "$PEBBLE_ROOT")")"
start_agent

# --- bad input: the reload is refused, naming the member ------------------------------------
refused() { # refused CANARIES PATTERN
    local before
    before=$(grep -c "reload failed" "$LOG")
    pebble_agent_config "$(base "$1")"
    kill -HUP "$AGENT_PID"
    check "config: refused ($2)" wait_for 20 sh -c "[ \$(grep -c 'reload failed' '$LOG') -gt $before ]"
    check "config: ... naming it: $2" grep -q "reload failed.*$2" "$LOG"
}
refused '[{"ca": "nosuch", "name": "c.example.test", "directory": "https://127.0.0.1:1/dir"}]' \
    "canaries\[0\].ca: no CA named 'nosuch'"
refused '[{"ca": "prod", "name": "a.example.test", "directory": "https://127.0.0.1:1/dir"},
  {"ca": "prod", "name": "b.example.test", "directory": "https://127.0.0.1:1/dir"}]' \
    "canaries\[1\].ca: CA 'prod' has a canary already"
refused '[{"ca": "prod", "name": "*.example.test", "directory": "https://127.0.0.1:1/dir"}]' \
    "canaries\[0\].name: the wildcard name \*.example.test cannot be validated with http-01"
refused '[{"ca": "prod", "name": "c.example.test", "directory": "http://acme.example.test/dir"}]' \
    "canaries\[0\].directory: 'http://acme.example.test/dir' is not an https:// URL"
refused '[{"ca": "zerossl", "name": "c.example.test"}]' \
    "canaries\[0\].directory: CA 'zerossl' has no built-in staging directory"
pebble_agent_reload "$(base "$(canaries "$PEBBLE_ROOT")")"
run 1 ctl canary run nosuch
has "CA 'nosuch' has no staging canary"

# --- a run that passes -------------------------------------------------------------------
run 0 ctl canary status
has "never"
run 0 ctl canary run prod
has "ok"
run 0 ctl --json canary status
json "j['canaries'][0]['ca'] == 'prod' and j['canaries'][0]['state'] == 'ok' and j['canaries'][0]['last_run'] > 0 and j['canaries'][0]['step'] is None"
json "j['canaries'][0]['certificate'] == '$STATE/canary/prod.pem'"
check "the canary's certificate is kept apart" pebble_verify "$STATE/canary/prod.pem" "$PEBBLE_ROOT"
first_serial=$(openssl x509 -in "$STATE/canary/prod.pem" -noout -serial)
run 0 ctl canary status
has "prod: last certificate kept in $STATE/canary/prod.pem"
check "the canary's account is staging's own, registered on first use" test -s "$STATE/acme/accounts/canary@prod.json"
check "the canary went through the proxy (its finalize)" test "$(acmeproxy_count finalize)" -ge 1

# --- staging changes its finalize: the canary fails, production keeps working --------------
acmeproxy_rules '[{"kind": "finalize", "action": "status", "status": 400,
  "type": "urn:ietf:params:acme:error:csrProfileChanged",
  "detail": "finalize now wants a new CSR profile", "times": -1}]'
run 1 ctl canary run
has "failed at step finalize"
has "finalize now wants a new CSR profile"
run 0 ctl --json status
json "[w for w in j['agent_warnings'] if w['code'] == 'ca_canary_failing' and w['ca'] == 'prod' and w['step'] == 'finalize' and 'CSR profile' in w['error']] != []"
json "j['health'] == 'warning'"
run 0 ctl status
has "ca_canary_failing"
run 0 ctl --json ca list
json "[c for c in j['cas'] if c['name'] == 'prod'][0]['canary']['state'] == 'failing'"
run 0 ctl ca list
ca_row_has() { printf '%s\n' "$OUT" | grep -E "^$1 " | grep -q "$2"; }
check "ca list: prod's canary column says failing" ca_row_has prod failing
run 0 ctl request www --dns www.example.test --ca prod --agree-tos
has "issued 'www' version 1 from CA 'prod'"
check "production: the certificate verifies against prod's root" pebble_verify "$STATE/live/www/fullchain.pem" "$PEBBLE2_ROOT"

# --- the order stays "processing" beyond the canary's deadline (6 s) ------------------------
acmeproxy_rules '[{"kind": "order", "action": "processing", "polls": 100, "retry_after": 1}]'
run 1 ctl canary run prod
has "failed at step finalize"
has "within the canary's deadline of 6 s"

# --- the chain leads to a root the canary does not expect ----------------------------------
acmeproxy_rules '[]'
pebble_agent_reload "$(base "$(canaries "$PEBBLE2_ROOT")")"
run 1 ctl canary run prod
has "failed at step chain"
has "does not lead to a root of $PEBBLE2_ROOT"

# --- the state survives a restart ----------------------------------------------------------
run 0 ctl --json canary status
last=$(printf '%s' "$JOUT" | python3 -c "import json,sys; print(int(json.load(sys.stdin)['canaries'][0]['last_run']))")
stop_agent
check "canary.json is private" sh -c "[ \$(stat -c %a '$STATE/canary.json') = 600 ]"
start_agent
run 0 ctl --json canary status
json "j['canaries'][0]['state'] == 'failing' and j['canaries'][0]['step'] == 'chain' and int(j['canaries'][0]['last_run']) == $last"
run 0 ctl --json status
json "[w for w in j['agent_warnings'] if w['code'] == 'ca_canary_failing'] != []"

# --- staging behaves: canary run recovers it, the warning goes ------------------------------
pebble_agent_reload "$(base "$(canaries "$PEBBLE_ROOT")")"
run 0 ctl canary run
has "ok"
run 0 ctl --json status
json "[w for w in j['agent_warnings'] if w['code'] == 'ca_canary_failing'] == []"
run 0 ctl --json ca list
json "[c for c in j['cas'] if c['name'] == 'prod'][0]['canary']['state'] == 'ok'"
check "only the last canary certificate is kept: the new one replaced the first" \
    test "$(openssl x509 -in "$STATE/canary/prod.pem" -noout -serial)" != "$first_serial"
check "one file per CA in canary/" test "$(ls "$STATE/canary")" = prod.pem

# --- the schedule: a canary whose last run is older than "every" (and its jitter) runs by itself
stop_agent
python3 - "$STATE/canary.json" <<'PY'
import json, sys, time
path = sys.argv[1]
state = json.load(open(path))
state["prod"]["last_run"] = int(time.time()) - 2 * 86400
json.dump(state, open(path, "w"))
PY
start_agent
ran_again() {
    ctl --json canary status | python3 -c "
import json, sys, time
c = json.load(sys.stdin)['canaries'][0]
sys.exit(0 if c['last_run'] > time.time() - 120 and c['state'] == 'ok' and not c['running'] else 1)"
}
check "schedule: an overdue canary runs after the start without being asked" wait_for 40 ran_again

# --- the canary's certificates are kept apart, not in the store --------------------------------------------
run 0 ctl list
lacks "canary"
check "no certificate directory for the canary" sh -c "! ls '$STATE/certs' | grep -q canary"
check "no canary order left to resume" sh -c "! ls '$STATE/acme/orders' | grep -q canary"
check "the production certificate is still the only one" test "$(ls "$STATE/certs")" = www
run 0 ctl ping
finish
