#!/bin/bash
# An order in flight survives the agent: killed with SIGKILL while the CA holds the order in
# "processing", the restarted agent resumes it from the persisted order URL (no second
# newOrder) and stores the certificate.  Also: a CA outage (Pebble stopped) fails with a clear
# error, and the next request succeeds once Pebble is back.  A resumed order whose
# certificate was already stored is not stored twice.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

pebble_start || exit 1
acmeproxy_start || exit 1
pebble_agent_config
start_agent
run 0 ctl ca add proxied --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl account register --ca proxied --agree-tos

# Hold the order in processing for 4 polls (a second each): in flight when we kill.
acmeproxy_rules '[{"kind": "order", "action": "processing", "polls": 4, "retry_after": 1}]'
"$CTL" --socket "$SOCK" request slow --dns slow.example.test --ca proxied >"$T/req.out" 2>&1 &
req_pid=$!
# Wait for the first injected "processing" (the order was created and persisted before).
processing_seen() { [ "$(acmeproxy_injected processing)" -ge 1 ]; }
wait_for 30 processing_seen
check "the order is held in processing" test "$(acmeproxy_injected processing)" -ge 1
check "the order is persisted" test -s "$STATE/acme/orders/slow.json"
check "its key is persisted 0600" test "$(mode_of "$STATE/acme/orders/slow.key")" = 600
cp -p "$STATE/acme/orders/slow.json" "$STATE/acme/orders/slow.key" "$T/"
kill_agent
wait "$req_pid"
check "certctl saw the agent go (exit 3 or 1)" test $? -ne 0
check "no certificate yet" test ! -e "$STATE/live/slow"
orders_before=$(acmeproxy_count newOrder)

# Restart: the agent resumes the order and, once the CA lets it through, stores it.
start_agent
wait_log "issued by ACME 'slow'" 60
check "resumed log line" grep -q "resuming the ACME order for 'slow'" "$LOG"
run 0 ctl --json show slow
json "j['source'] == 'acme' and j['version'] == 1"
check "resumed certificate verifies" pebble_verify "$STATE/live/slow/fullchain.pem"
check "its key is the persisted one" key_matches "$STATE/live/slow/cert.pem" "$STATE/live/slow/privkey.pem"
check "no second newOrder" test "$(acmeproxy_count newOrder)" -eq "$orders_before"
check "the persisted order is gone" test ! -e "$STATE/acme/orders/slow.json"

# A kill between the store's commit and the order file's removal leaves an order whose
# certificate is stored: the next start finds it stored and does not store it again.
stop_agent
cp -p "$T/slow.json" "$T/slow.key" "$STATE/acme/orders/"
# And a kill between an order's key and its file leaves a key no order points at.
cp -p "$T/slow.key" "$STATE/acme/orders/orphan.key"
start_agent
check "an order key without its order is removed at start" test ! -e "$STATE/acme/orders/orphan.key"
check "and its removal is logged" \
    grep -qF "orphan.key: an ACME order key without its order file" "$LOG"
wait_log "already stored as version 1" 60
run 0 ctl --json show slow
json "j['version'] == 1 and len(j['history']) == 1"
check "the persisted order is gone again" wait_for 10 test ! -e "$STATE/acme/orders/slow.json"
check "still no second newOrder" test "$(acmeproxy_count newOrder)" -eq "$orders_before"

# CA outage: Pebble stopped; the error names the CA; after it returns, requests work.
pebble_stop
acmeproxy_stop
run 1 ctl request outage --dns outage.example.test --ca proxied
has "CA 'proxied'"
run 0 ctl status
check "agent still up" kill -0 "$AGENT_PID"

stop_agent
finish
