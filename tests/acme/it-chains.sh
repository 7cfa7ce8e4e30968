#!/bin/bash
# Alternate chains (Link rel="alternate") and --preferred-chain, with Pebble serving three
# roots and chains of length 3 (PEBBLE_ALTERNATE_ROOTS=2, PEBBLE_CHAIN_LENGTH=3).
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

export PEBBLE_ALTERNATE_ROOTS=2 PEBBLE_CHAIN_LENGTH=3
pebble_start || exit 1
# The same Pebble also as a CA declared in the config, and the default CA.
pebble_agent_config '{"acme_cas": {"cfg": {"directory": "'"$PEBBLE_DIRECTORY"'", "trust": "'"$PEBBLE_TRUST"'"}}, "default_ca": "cfg"}'
start_agent
run 0 ctl ca add pebble --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl --json ca list
json "any(c['name'] == 'cfg' and c['config'] for c in j['cas']) and j['default_ca'] == 'cfg'"
run 0 ctl request fromcfg --dns fromcfg.example.test --agree-tos
has "from CA 'cfg'"
check "fromcfg verifies" pebble_verify "$STATE/live/fromcfg/fullchain.pem"
run 1 ctl ca remove cfg
has "declared in the config"
run 1 ctl ca add cfg --directory https://example.test/dir
has "exists already"

root_cn() { openssl x509 -in "$1" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p'; }
cn1=$(root_cn "$PEBBLE_ROOT_1")
cn2=$(root_cn "$PEBBLE_ROOT_2")
check "three distinct roots" test -n "$cn1" -a -n "$cn2" -a "$cn1" != "$cn2"

# The default chain leads to root 0.
run 0 ctl request dflt --dns dflt.example.test --ca pebble --agree-tos
check "default chain verifies against root 0" pebble_verify "$STATE/live/dflt/fullchain.pem" "$PEBBLE_ROOT_0"
check "the whole chain is stored (leaf and two or more CA certificates)" test "$(grep -c "BEGIN CERTIFICATE" "$STATE/live/dflt/fullchain.pem")" -ge 3

# --preferred-chain by root name picks the alternate that leads there.
for i in 1 2; do
    cn=$(root_cn "$(eval echo "\$PEBBLE_ROOT_$i")")
    run 0 ctl request "alt$i" --dns "alt$i.example.test" --ca pebble --preferred-chain "$cn"
    check "alt$i verifies against root $i" pebble_verify "$STATE/live/alt$i/fullchain.pem" "$(eval echo "\$PEBBLE_ROOT_$i")"
    if pebble_verify "$STATE/live/alt$i/fullchain.pem" "$PEBBLE_ROOT_0"; then
        fail "alt$i chain still leads to root 0"
    else
        pass
    fi
done
# Renewal keeps the preference.
run 0 ctl renew alt2 --force
check "renewed alt2 still leads to root 2" pebble_verify "$STATE/live/alt2/fullchain.pem" "$PEBBLE_ROOT_2"

# A name no chain leads to: the default chain, with a warning in the log.
run 0 ctl request nomatch --dns nomatch.example.test --ca pebble --preferred-chain "No Such Root"
check "nomatch falls back to root 0" pebble_verify "$STATE/live/nomatch/fullchain.pem" "$PEBBLE_ROOT_0"
check "warning logged" grep -q "no chain leads to 'No Such Root'" "$LOG"

stop_agent
finish
