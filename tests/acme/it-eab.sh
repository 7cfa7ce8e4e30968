#!/bin/bash
# External Account Binding (RFC 8555 section 7.3.4): a CA that requires it refuses
# registration without it (clearly), refuses a wrong HMAC key with its own error, and accepts
# the right one; the HMAC key never reaches the agent's log.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

pebble_start --eab || exit 1
pebble_agent_config
start_agent
run 0 ctl ca add eab --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"

run 1 ctl account register --ca eab --agree-tos
has "requires External Account Binding"
has "--eab-kid"
run 1 ctl request x --dns x.example.test --ca eab --agree-tos
has "requires External Account Binding"

# A wrong key: the CA's words.
openssl rand 48 | base64 -w0 | tr '+/' '-_' | tr -d '=' >"$T/wrong-hmac"
run 1 ctl account register --ca eab --agree-tos --eab-kid "$PEBBLE_EAB_KID" --eab-hmac-file "$T/wrong-hmac"
has "the CA 'eab' refused"
has "[E_ACME]"
# Not base64url at all.
echo 'not base64!' >"$T/junk-hmac"
run 1 ctl account register --ca eab --agree-tos --eab-kid "$PEBBLE_EAB_KID" --eab-hmac-file "$T/junk-hmac"
has "base64url"
run 2 ctl account register --ca eab --agree-tos --eab-kid "$PEBBLE_EAB_KID"
has "go together"

run 0 ctl account register --ca eab --agree-tos --email ops@example.test --eab-kid "$PEBBLE_EAB_KID" --eab-hmac-file "$PEBBLE_EAB_HMAC_FILE"
has "registered an account at CA 'eab'"
run 0 ctl request x --dns x.example.test --ca eab
check "issued under the EAB account" pebble_verify "$STATE/live/x/fullchain.pem"

check "the HMAC key is not in the log" sh -c "! grep -qF -- '$PEBBLE_EAB_HMAC' '$LOG'"
check "the wrong HMAC key is not in the log" sh -c "! grep -qF \"\$(cat '$T/wrong-hmac')\" '$LOG'"
check "the account key is not in the log" sh -c "! grep -q 'PRIVATE KEY' '$LOG'"

stop_agent
finish
