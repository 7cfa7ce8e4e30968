#!/bin/bash
# The last resort (issue 17 item 4) against a real Pebble whose certificates live 60 seconds,
# behind the fault proxy: with --on-expiry selfsigned and last_resort_minutes 1, a renewal
# that fails while the CA is down makes a self-signed stand-in with the same names and key
# type through the commit path (deployed to the target, deploy hook run), status raises the
# critical last_resort_in_use; a rollback to the CA's version is possible; the CA comes back
# and a real certificate replaces the stand-in, the warning clears.  Then kill -9 at random
# instants while stand-ins are made: the store stays whole (verify_store).  With
# --on-expiry keep (the default) nothing is made.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"
ROUNDS=${ROUNDS:-4}

HOOKLOG=$T/deploy.log
PEBBLE_WFE_NONCEREJECT=0 pebble_start --validity 60 || finish
acmeproxy_start '{}' || finish
pebble_agent_config "{\"renew_retry_min\": 1, \"renew_retry_max\": 2, \"last_resort_minutes\": 1,
  \"deploy_hook\": \"echo \$CERTAGENT_NAME \$CERTAGENT_VERSION \$CERTAGENT_SOURCE >> $HOOKLOG\"}"
start_agent

meta() { # meta NAME KEY: extra.acme.KEY of NAME's current version
    python3 -c "
import json
v = json.load(open('$STATE/certs/$1/lineage.json'))['current']
print(json.load(open('$STATE/certs/$1/v%d/meta.json' % v)).get('extra', {}).get('acme', {}).get('$2', ''))" 2>/dev/null
}
version_of() {
    python3 -c "import json,sys; print(json.load(open('$STATE/certs/$1/lineage.json'))['current'])" 2>/dev/null
}
is_stand_in() { [ "$(meta "$1" last_resort)" = True ]; }
is_ca_version_after() { [ "$(version_of "$1")" -gt "$2" ] && [ "$(meta "$1" last_resort)" != True ]; }
self_issued() { # the deployed certificate is self-signed (issuer = subject)
    [ "$(openssl x509 -in "$1" -noout -issuer | cut -d= -f2-)" = "$(openssl x509 -in "$1" -noout -subject | cut -d= -f2-)" ]
}
sans() { openssl x509 -in "$1" -noout -ext subjectAltName | tail -n +2 | tr -d ' '; }
keyalg() { openssl x509 -in "$1" -noout -text | grep -m1 'Public Key Algorithm'; }

run 0 ctl ca add pebble --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl request www --dns www.example.test --dns alt.example.test --ca pebble --agree-tos \
    --on-expiry selfsigned --deploy-files "$T/www"
has "issued 'www' version 1"
run 0 ctl request kept --dns kept.example.test --ca pebble
run 0 ctl set www
has "on expiry    selfsigned"

# --- the CA goes down: the stand-in ---------------------------------------------------------
acmeproxy_rules '[{"kind": ["newOrder", "newNonce"], "action": "status", "status": 503,
  "type": "urn:ietf:params:acme:error:serverInternal", "detail": "the CA is down",
  "retry_after": 0, "times": -1}]'
run 1 ctl renew www --force
has "the CA is down"
check "a stand-in is current" wait_for 30 is_stand_in www
check "logged as the last resort" wait_log "'www': renewal keeps failing and it expires soon: a self-signed stand-in" 10
v=$(version_of www)
check "the stand-in is deployed" wait_for 20 self_issued "$T/www/cert.pem"
check "the deploy hook ran for it" wait_for 20 grep -qx "www $v selfsigned" "$HOOKLOG"
check "same names" test "$(sans "$T/www/cert.pem")" = "$(sans "$STATE/certs/www/v1/cert.pem")"
check "same key type" test "$(keyalg "$T/www/cert.pem")" = "$(keyalg "$STATE/certs/www/v1/cert.pem")"
check "it remembers the CA" test "$(meta www ca)" = pebble
run 0 ctl --json status
json "[w for w in [c for c in j['certificates'] if c['name'] == 'www'][0]['warnings'] if w['code'] == 'last_resort_in_use' and w['level'] == 'critical'] != []"
json "j['health'] == 'critical'"
# --on-expiry keep (the default): 'kept' fails too but gets no stand-in.
run 1 ctl renew kept --force
check "keep: no stand-in" test "$(meta kept last_resort)" != True
check "keep: still version 1" test "$(version_of kept)" = 1
# A rollback to the CA's version is possible.
# (The scheduler may renew at once after it, fail and make the next stand-in, so the rollback's
# own answer is what is checked, not the version current a moment later.)
run 0 ctl rollback www --to 1
has "'www' is now at version 1 (was "

# --- the CA comes back: a real certificate replaces the stand-in ---------------------------
acmeproxy_rules '[]'
check "the CA's certificate replaces it" wait_for 60 is_ca_version_after www 1
check "it verifies against the CA's root" pebble_verify "$STATE/live/www/fullchain.pem"
check "deployed" wait_for 20 pebble_verify "$T/www/fullchain.pem"
run 0 ctl --json status
json "[w for w in [c for c in j['certificates'] if c['name'] == 'www'][0]['warnings'] if w['code'] == 'last_resort_in_use'] == []"

# --- kill -9 while stand-ins are made -------------------------------------------------------
acmeproxy_rules '[{"kind": ["newOrder", "newNonce"], "action": "status", "status": 503,
  "type": "urn:ietf:params:acme:error:serverInternal", "detail": "the CA is down",
  "retry_after": 0, "times": -1}]'
# Each round goes back to the CA's version 1 (expired by now): the scheduler renews at once,
# fails, and makes a new stand-in; the kill lands somewhere in that switch.
for round in $(seq 1 "$ROUNDS"); do
    wait_for 30 is_stand_in www
    ctl rollback www --to 1 >/dev/null 2>&1 &
    job=$!
    sleep "0.$(printf '%03d' $((RANDOM % 600)))"
    kill_agent
    wait "$job"
    start_agent
    # The restarted agent goes on with the switch (a new stand-in is committed soon after the
    # start): damage stays, a commit in progress passes, so look until the store is whole.
    wait_for 20 sh -c "$(declare -f verify_store); STATE='$STATE' verify_store >/dev/null"
    if out=$(verify_store); then
        pass
    else
        fail "round $round: store damaged after kill -9 during the switch:"
        echo "$out"
        break
    fi
    check_no_temp_leftovers "round $round: temporary files of cut-short writes left" "$STATE"
done
check "a stand-in after the last restart" wait_for 30 is_stand_in www
check "the store is whole at the end" verify_store
run 0 ctl ping
finish
