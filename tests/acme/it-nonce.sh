#!/bin/bash
# Pebble rejecting half of all nonces (PEBBLE_WFE_NONCEREJECT=50) and keeping its VA's random
# sleeps (the one test that does): concurrent orders still all succeed, and certctl status
# answers at once while they are in flight.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

export PEBBLE_WFE_NONCEREJECT=50 PEBBLE_VA_NOSLEEP=0 PEBBLE_VA_SLEEPTIME=3
pebble_start || exit 1
pebble_agent_config
start_agent
run 0 ctl ca add pebble --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl account register --ca pebble --agree-tos

pids=
for i in 1 2 3 4 5 6; do
    "$CTL" --socket "$SOCK" request "n$i" --dns "n$i.example.test" --dns "m$i.example.test" \
        --ca pebble >"$T/n$i.out" 2>&1 &
    pids="$pids $!"
done
# While six orders wait on the VA, status answers.
wait_log "ACME order for 'n6'" 30
run 0 ctl --json status
json "j['acme_orders'] >= 1 and j['pid'] > 0"
for p in $pids; do
    wait "$p"
    check "order $p succeeded" test $? -eq 0
done
for i in 1 2 3 4 5 6; do
    check "n$i verifies" pebble_verify "$STATE/live/n$i/fullchain.pem"
done
check "badNonce was retried" grep -q "badNonce" "$LOG"

stop_agent
finish
