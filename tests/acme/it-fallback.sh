#!/bin/bash
# Fallback CAs (issue 17 item 1) with two real Pebbles (different roots): the preferred one
# ("prim") behind the fault proxy, the fallback ("back") registered on first use from the
# config (auto_register).  A: prim's finalize answers serverInternal: after fallback_after (2)
# failures the certificate comes from back, verifies against back's root, is deployed, status
# shows the CA and ca_fallback_in_use, the history has every CA tried with its words.  B: the
# next renewal goes to prim first; prim times out: back again.  C: prim works: the next
# renewal returns to prim and the warning clears.  Bad input: an unknown fallback CA, one
# named twice, an unknown one in the config, a missing EAB file: clear errors, the agent
# stays up.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

HOOKLOG=$T/deploy.log
PEBBLE_WFE_NONCEREJECT=0 pebble_start || finish
acmeproxy_start '{}' || finish
PEBBLE_WFE_NONCEREJECT=0 pebble_start_second || finish
BASE="{\"http01_listen\": [\"127.0.0.1:$PEBBLE_HTTP01_PORT\", \"127.0.0.1:$PEBBLE2_HTTP01_PORT\"],
  \"renew_retry_min\": 1, \"renew_retry_max\": 2, \"fallback_after\": 2, \"acme_http_timeout\": 1, \"fallback_cas\": [\"back\"],
  \"deploy_hook\": \"echo \$CERTAGENT_NAME \$CERTAGENT_VERSION >> $HOOKLOG\",
  \"acme_cas\": {\"back\": {\"directory\": \"$PEBBLE2_DIRECTORY\", \"trust\": \"$PEBBLE2_TRUST\",
    \"auto_register\": true, \"email\": \"ops@example.test\"}}}"
pebble_agent_config "$BASE"
start_agent

meta() { # meta NAME KEY: extra.acme.KEY of NAME's current version
    python3 -c "
import json, sys
v = json.load(open('$STATE/certs/$1/lineage.json'))['current']
print(json.load(open('$STATE/certs/$1/v%d/meta.json' % v))['extra']['acme'].get('$2', ''))" 2>/dev/null
}
version_of() {
    python3 -c "import json,sys; print(json.load(open('$STATE/certs/$1/lineage.json'))['current'])" 2>/dev/null
}
version_gt() { [ "$(version_of "$1")" -gt "$2" ]; }

run 0 ctl ca add prim --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST"

# --- bad input ---------------------------------------------------------------------------
run 1 ctl request bad --dns bad.example.test --ca prim --agree-tos --fallback-ca nosuch
has "no CA named 'nosuch'"
run 1 ctl request bad --dns bad.example.test --ca prim --agree-tos --fallback-ca back --fallback-ca back
has "'back' is named twice"
check "bad input: nothing requested" test ! -e "$STATE/certs/bad/lineage.json"
run 2 ctl set x --on-expiry never
has "--on-expiry takes keep, selfsigned or default"
before=$(grep -c "reload failed" "$LOG")
pebble_agent_config '{"fallback_cas": ["nosuch"]}'
kill -HUP "$AGENT_PID"
check "config: an unknown fallback CA refuses the reload" wait_for 20 sh -c "[ \$(grep -c 'reload failed' '$LOG') -gt $before ]"
check "config: ... naming the key and the CA" grep -q "reload failed.*fallback_cas: no CA named 'nosuch'" "$LOG"
before=$(grep -c "reload failed" "$LOG")
pebble_agent_config "{\"fallback_cas\": [], \"acme_cas\": {\"back\": {\"directory\": \"$PEBBLE2_DIRECTORY\",
  \"auto_register\": true, \"eab_kid\": \"kid\", \"eab_hmac_file\": \"$T/no-such-hmac\"}}}"
kill -HUP "$AGENT_PID"
check "config: a missing EAB file refuses the reload" wait_for 20 sh -c "[ \$(grep -c 'reload failed' '$LOG') -gt $before ]"
check "config: ... naming the key and the file" grep -q "reload failed.*acme_cas.back.eab_hmac_file.*no-such-hmac" "$LOG"
pebble_agent_config "$BASE"
run 0 ctl ping

# --- the certificate, from prim ------------------------------------------------------------
run 0 ctl request www --dns www.example.test --ca prim --agree-tos --fallback-ca back \
    --deploy-files "$T/www"
has "issued 'www' version 1 from CA 'prim'"
run 0 ctl set www
has "fallback CAs back"

# --- A: prim's finalize answers serverInternal: back issues --------------------------------
acmeproxy_rules '[{"kind": "finalize", "action": "status", "status": 500,
  "type": "urn:ietf:params:acme:error:serverInternal",
  "detail": "finalize is broken at prim", "retry_after": 0, "times": -1}]'
run 1 ctl renew www --force
has "finalize is broken at prim"
check "A: a fallback version" wait_for 60 version_gt www 1
check "A: issued by back" test "$(meta www ca)" = back
check "A: its own CA is remembered" test "$(meta www preferred_ca)" = prim
check "A: logged as a fallback" grep -q "'www': renewing at fallback CA 'back' (2 failed attempts in a row; its own CA is 'prim')" "$LOG"
check "A: the chain verifies against back's root" pebble_verify "$STATE/live/www/fullchain.pem" "$PEBBLE2_ROOT"
not_verify() { ! pebble_verify "$@"; }
check "A: ... not against prim's" not_verify "$STATE/live/www/fullchain.pem" "$PEBBLE_ROOT"
check "A: deployed" wait_log "'www' version 2 deployed" 20
check "A: the deployed files verify against back's root" pebble_verify "$T/www/fullchain.pem" "$PEBBLE2_ROOT"
check "A: the deploy hook ran" wait_for 10 grep -qx "www 2" "$HOOKLOG"
check "A: back's account was registered on first use" grep -q '"account":' <(ctl --json ca list)
run 0 ctl --json status
json "[c for c in j['certificates'] if c['name'] == 'www'][0]['ca'] == 'back'"
json "[w for w in [c for c in j['certificates'] if c['name'] == 'www'][0]['warnings'] if w['code'] == 'ca_fallback_in_use' and w['preferred_ca'] == 'prim' and w['level'] == 'warning'] != []"
run 0 ctl status
has "ca_fallback_in_use"
tried() { # the CAs of the history, with ok/failed
    python3 -c "
import json
for t in json.load(open('$STATE/renew.json'))['www'].get('tried', []):
    print(t['ca'], 'ok' if t['ok'] else 'failed', t.get('error', ''))"
}
check "A: the history has prim's words twice" test "$(tried | grep -c '^prim failed .*finalize is broken at prim')" = 2
last_tried() { tried | tail -n "$1" | head -n 1; }
check "A: ... and back's success" test "$(last_tried 1 | cut -d' ' -f1-2)" = "back ok"
run 0 ctl --json ca list
cajson() { json "(lambda c: $2)([c for c in j['cas'] if c['name'] == '$1'][0])"; }
cajson prim "c['failures'] == 2"
cajson prim "c['last_error'].find('finalize is broken at prim') >= 0"
cajson prim "c['last_success'] is None and c['fallback_order'] is None"
cajson back "c['failures'] == 0 and c['last_success'] > 0 and c['fallback_order'] == 1"
cajson back "c['canary'] is None"
run 0 ctl ca list
has "prim: 2 failure(s) in a row, the last: "
check "ca list: the columns" sh -c "echo '$OUT' | head -n 1 | grep -q 'LAST SUCCESS *FAILURES *CANARY *FALLBACK'"

# --- B: the next renewal tries prim first; prim times out: back again -----------------------
acmeproxy_rules '[{"kind": "newOrder", "action": "stall", "seconds": 5, "times": -1}]'
mark=$(wc -l <"$LOG")
run 1 ctl renew www --force
check "B: a new fallback version" wait_for 60 version_gt www 2
check "B: prim was asked first" sh -c "tail -n +$mark '$LOG' | grep -q \"ACME order for 'www' at CA 'prim' started\""
check "B: issued by back again" test "$(meta www ca)" = back
check "B: the history has prim's timeout" sh -c "echo '$(last_tried 3)' | grep -q '^prim failed .*timed out'"
check "B: ... twice" sh -c "echo '$(last_tried 2)' | grep -q '^prim failed .*timed out'"

# --- C: prim works again: the next renewal returns to it -----------------------------------
acmeproxy_rules '[]'
run 0 ctl renew www --force
has "from CA 'prim'"
check "C: issued by prim" test "$(meta www ca)" = prim
check "C: no preferred_ca left" test -z "$(meta www preferred_ca)"
check "C: the chain verifies against prim's root" pebble_verify "$STATE/live/www/fullchain.pem" "$PEBBLE_ROOT"
run 0 ctl --json ca list
cajson prim "c['failures'] == 0 and c['last_success'] > 0 and c['last_error'] is None"
run 0 ctl --json status
json "[w for w in [c for c in j['certificates'] if c['name'] == 'www'][0]['warnings'] if w['code'] == 'ca_fallback_in_use'] == []"
run 0 ctl ping
finish
