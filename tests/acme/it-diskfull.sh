#!/bin/bash
# ACME on a full disk: the state directory is a 2 MiB tmpfs.  With the disk full, a request
# and a renewal fail with the cause and the path before finalize (no certificate issued to
# be thrown away), the current version stays current and whole, and the status report shows
# the renewal failing with those words.  A disk that
# fills while the CA processes the order (held by the proxy) fails the same way at the
# store's commit.  Once space is freed, the same renewal succeeds.  Needs root; else SKIP.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

state_tmpfs 2m
pebble_start || finish
acmeproxy_start || finish
pebble_agent_config
start_agent
run 0 ctl ca add proxied --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl account register --ca proxied --agree-tos
run 0 ctl request a --dns a.example.test --ca proxied
run 0 ctl export a --format pem --out "$T/a.before.pem"

# Full before the order: the order's own files cannot be written, so the order fails before
# finalize and the CA issues nothing (retries on a full disk must not use up rate limits).
check "the tmpfs is full" fill_state
finalized=$(acmeproxy_count finalize)
run 1 ctl request b --dns b.example.test --ca proxied
disk_full_error
has "the CA was not asked to issue"
check "no certificate b" test ! -e "$STATE/live/b"
run 1 ctl renew a --force
disk_full_error
whole a
check "no finalize was sent on the full disk" test "$(acmeproxy_count finalize)" -eq "$finalized"
run 0 ctl --json status
json "any(w['code'] == 'renewal_failing' and 'No space left on device' in w['message']
          for c in j['certificates'] if c['name'] == 'a' for w in c['warnings'])"
check "the agent is alive" kill -0 "$AGENT_PID"

# Full while the CA processes the order: the certificate arrives and cannot be stored.
rm -f "$STATE/filler" "$STATE/filler2"
acmeproxy_rules '[{"kind": "order", "action": "processing", "polls": 2, "retry_after": 1}]'
ctl renew a --force >"$T/renew.out" 2>&1 &
renew_pid=$!
processing_seen() { [ "$(acmeproxy_injected processing)" -ge 1 ]; }
check "the order is held in processing" wait_for 30 processing_seen
check "the tmpfs is full again" fill_state
wait "$renew_pid"
check "the renewal failed (exit 1)" test $? -eq 1
OUT=$(cat "$T/renew.out")
disk_full_error
whole a
check "the agent is alive" kill -0 "$AGENT_PID"

# A restart on the full disk finds the store whole.
stop_agent
start_agent
check "the store is whole after a restart on a full disk" verify_store
whole a

# Space again: the renewal succeeds and the warning goes.
rm -f "$STATE/filler" "$STATE/filler2"
acmeproxy_rules '[]'
run 0 ctl renew a --force
run 0 ctl --json show a
json "j['version'] == 2 and j['source'] == 'acme'"
check "the new version verifies" pebble_verify "$STATE/live/a/fullchain.pem"
check "its key matches" key_matches "$STATE/live/a/cert.pem" "$STATE/live/a/privkey.pem"
run 0 ctl --json status
json "not any(w['code'] == 'renewal_failing' for c in j['certificates'] if c['name'] == 'a'
              for w in c['warnings'])"
check "the store is whole at the end" verify_store
stop_agent
finish
