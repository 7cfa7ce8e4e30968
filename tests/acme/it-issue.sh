#!/bin/bash
# ACME issuance against a real Pebble with real validation (not VA_ALWAYS_VALID): http-01,
# tls-alpn-01 and dns-01 (with a wildcard), an IP identifier, chains that verify against
# Pebble's root, progress as JSON lines, renew, revoke (Pebble reports it revoked), account
# show, rollover and deactivate, and the CA's own error for an unreachable challenge.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

# Pebble's defaults stay on: 5% nonce rejection, 50% authorization reuse, random processing.
pebble_start || exit 1
pebble_agent_config
start_agent

run 0 ctl ca add pebble --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"
has "added CA 'pebble'"
run 0 ctl --json ca list
json "any(c['name'] == 'pebble' and c['account'] is None for c in j['cas'])"
json "any(c['name'] == 'letsencrypt' and c['builtin'] for c in j['cas'])"
check "cas.json names pebble" grep -q '"pebble"' "$STATE/acme/cas.json"
check "its trust file is kept" cmp -s "$PEBBLE_TRUST" "$STATE/acme/trust/pebble.pem"
run 0 ctl ca add tmpca --directory https://ca.example.test/dir
run 1 ctl ca add tmpca --directory https://other.example.test/dir
has "exists already"
run 2 ctl ca add nodir
run 1 ctl ca add badurl --directory ftp://x.example.test/dir
has "must be an https:// URL"
run 0 ctl ca remove tmpca
has "removed CA 'tmpca'"
check "cas.json no longer names tmpca" sh -c "! grep -q tmpca '$STATE/acme/cas.json'"
run 1 ctl ca remove letsencrypt
has "built in"

# No account yet and no --agree-tos: the terms of service are shown, nothing is ordered.
run 1 ctl request web --dns web.example.test --ca pebble
has "terms of service"
has "--agree-tos"

# http-01 with two names; the account is registered on the way.
run 0 ctl request web --dns www.example.test --dns example.test --ca pebble --agree-tos \
    --email ops@example.test
has "issued 'web' version 1 from CA 'pebble'"
live=$STATE/live/web
check "web: chain verifies against Pebble's root" pebble_verify "$live/fullchain.pem"
check "web: key matches" key_matches "$live/cert.pem" "$live/privkey.pem"
check "web: key 0600" test "$(mode_of "$live/privkey.pem")" = 600
check "web: both names in the certificate" sh -c \
    "openssl x509 -in '$live/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:www.example.test' &&
     openssl x509 -in '$live/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:example.test'"
run 0 ctl --json show web
json "j['source'] == 'acme' and j['dns'] == ['www.example.test', 'example.test'] and j['has_key']"

# With --json, progress streams as JSON lines on stderr; stdout holds the result alone.
run 0 ctl --json request api --dns api.example.test --ca pebble --key rsa2048
check "api: progress lines on stderr" grep -q '"event":"progress"' "$T/.err"
json "j['name'] == 'api' and j['version'] == 1 and j['key'] == 'RSA 2048' and j['ca'] == 'pebble'"
check "api: chain verifies" pebble_verify "$STATE/live/api/fullchain.pem"

# tls-alpn-01, and an IP address (RFC 8738) over http-01.
run 0 ctl request alpn --dns alpn.example.test --ca pebble --challenge tls-alpn-01
has "issued 'alpn' version 1"
check "alpn: chain verifies" pebble_verify "$STATE/live/alpn/fullchain.pem"
run 0 ctl request ipcert --ip 127.0.0.1 --ca pebble
check "ipcert: IP SAN" sh -c "openssl x509 -in '$STATE/live/ipcert/cert.pem' -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1'"

# dns-01 through the hook, with a wildcard.
run 0 ctl request wild --dns 'wild.example.test' --dns '*.wild.example.test' --ca pebble \
    --challenge dns-01
has "issued 'wild' version 1"
check "wild: wildcard SAN" sh -c "openssl x509 -in '$STATE/live/wild/cert.pem' -noout -ext subjectAltName | grep -qF 'DNS:*.wild.example.test'"
check "wild: chain verifies" pebble_verify "$STATE/live/wild/fullchain.pem"

# Refused before anything reaches the CA.
run 1 ctl request bad --dns '*.example.test' --ca pebble
has "needs --challenge dns-01"
run 1 ctl request bad --ip 127.0.0.1 --ca pebble --challenge dns-01
has "cannot be validated with dns-01"
run 1 ctl request bad --dns x.example.test --ca nosuchca
has "no CA named 'nosuchca'"
run 2 ctl request bad
has "give at least one"

# renew: not due without --force; with it, a new version with a new key.
run 1 ctl renew web
has "not due for renewal"
run 0 ctl renew web --force
has "renewed 'web' version 2"
check "renewed chain verifies" pebble_verify "$live/fullchain.pem"
run 0 ctl --json renew --all
json "j['renewed'] == [] and j['failed'] == 0"

# revoke: Pebble's management interface reports it revoked with the reason.
cp "$live/cert.pem" "$T/revoked.pem"
run 0 ctl revoke web --reason superseded
has "revoked 'web' version 2"
check "Pebble reports the certificate revoked (superseded = 4)" pebble_revoked "$T/revoked.pem" 4
# The agent replaces it at once (renew_after_revoke; tests/acme/it-revoke.sh has the rest):
# wait for that, so that the account changes below do not race with the order.
check "the revoked certificate is replaced" wait_for 60 test -s "$STATE/certs/web/v3/cert.pem"
check "the replacement is deployed" wait_log "'web' version 3" 20
run 1 ctl revoke web --reason nonsense
has "unknown reason"

# Accounts.
run 0 ctl --json account show --ca pebble
json "j['status'] == 'valid' and j['key'] == 'ec256' and j['url'].startswith('https://127.0.0.1')"
acct_url=$(printf '%s' "$JOUT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["url"])')
check "account key 0600" test "$(mode_of "$STATE/acme/accounts/pebble.key")" = 600
old_key=$(sha256sum <"$STATE/acme/accounts/pebble.key")
run 0 ctl account rollover --ca pebble
has "now uses a new ec256 key"
check "rollover wrote a new key" test "$(sha256sum <"$STATE/acme/accounts/pebble.key")" != "$old_key"
# The new key works: an order signed with it succeeds, under the same account URL.
run 0 ctl request after-rollover --dns after.example.test --ca pebble
run 0 ctl --json account show --ca pebble
json "j['url'] == '$acct_url'"
# To an RSA key: requests are signed RS256 from now on.
run 0 ctl account rollover --ca pebble --key rsa2048
has "now uses a new rsa2048 key"
run 0 ctl request after-rsa --dns after-rsa.example.test --ca pebble
check "after-rsa verifies" pebble_verify "$STATE/live/after-rsa/fullchain.pem"
run 0 ctl --json account show --ca pebble
json "j['url'] == '$acct_url' and j['key'] == 'rsa2048'"
run 1 ctl account register --ca pebble --agree-tos
has "has an account already"

# A CA that certificates renew with is not removed without --force; with it, status warns at
# once and names the fix; the account stays under the CA's name and ca add finds it again.
run 1 ctl ca remove pebble
has "CA 'pebble' is in use"
has "after-rollover"
has "certctl ca remove pebble --force"
has "[E_BAD_INPUT]"
run 0 ctl --json ca list
json "any(c['name'] == 'pebble' and c['account'] == '$acct_url' for c in j['cas'])"
run 0 ctl ca remove pebble --force
has "removed CA 'pebble'"
has "will fail until it is added again (certctl ca add pebble --directory URL)"
has "after-rollover"
check "the account is kept under the CA's name" test -s "$STATE/acme/accounts/pebble.json"
run 0 ctl --json status
json "[w for c in j['certificates'] if c['name'] == 'after-rollover' for w in c['warnings'] if w['code'] == 'ca_unknown' and 'certctl ca add pebble --directory URL' in w['message'] and w['ca'] == 'pebble'] != []"
run 0 ctl status
has "[ca_unknown]"
run 1 ctl renew after-rollover --force
has "no CA named 'pebble'"
has "certctl ca add pebble --directory URL"
# The same name for another CA: the account kept belongs to Pebble and is not used there.
run 0 ctl ca add pebble --directory https://127.0.0.1:9/other-ca/dir
lacks "account kept from before"
check "the log says whose account it is" wait_log "belongs to $PEBBLE_DIRECTORY, not https://127.0.0.1:9/other-ca/dir"
run 0 ctl ca remove pebble --force
run 0 ctl ca add pebble --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"
has "account kept from before: $acct_url"
run 0 ctl --json ca list
json "any(c['name'] == 'pebble' and c['account'] == '$acct_url' for c in j['cas'])"
run 0 ctl --json status
json "[w for c in j['certificates'] for w in c['warnings'] if w['code'] == 'ca_unknown'] == []"
run 0 ctl renew after-rollover --force
has "renewed 'after-rollover' version 2"
run 0 ctl --json account show --ca pebble
json "j['url'] == '$acct_url' and j['status'] == 'valid'"

# An unreachable challenge: the CA's own error reaches the user.
stop_agent
pebble_agent_config '{"http01_listen": ["127.0.0.1:'"$(_pebble_free_ports 1)"'"]}'
start_agent
run 1 ctl request unreachable --dns unreachable.example.test --ca pebble
has "unreachable.example.test"
has "urn:ietf:params:acme:error:connection"
run 1 ctl show unreachable
stop_agent
pebble_agent_config
start_agent
# The CA list survived the restart.
run 0 ctl --json ca list
json "any(c['name'] == 'pebble' and c['trust'] for c in j['cas']) and not any(c['name'] == 'tmpca' for c in j['cas'])"

# dns-01 hooks that cannot run or fail: the order fails with words, the agent stays up.
pebble_agent_reload '{"dns01_hook": "/nonexistent/hook"}'
run 1 ctl request nohook --dns nohook.example.test --ca pebble --challenge dns-01
has "cannot run the dns-01 hook /nonexistent/hook"
pebble_agent_reload '{"dns01_hook": "/bin/false"}'
run 1 ctl request badhook --dns badhook.example.test --ca pebble --challenge dns-01
has "the dns-01 hook failed for badhook.example.test"
if [ "$(id -u)" -eq 0 ]; then
    # A hook program in a directory another user may change is not run as the agent.
    mkdir -m 0755 "$T/nobodys"
    printf '#!/bin/sh\ntouch "%s/planted-ran"\n' "$T" >"$T/nobodys/hook"
    chmod 0755 "$T/nobodys/hook"
    chown nobody "$T/nobodys"
    pebble_agent_reload "{\"dns01_hook\": \"$T/nobodys/hook\"}"
    run 1 ctl request planted --dns planted.example.test --ca pebble --challenge dns-01
    has "refusing to run $T/nobodys/hook"
    has "$T/nobodys is owned by uid $(id -u nobody)"
    check "the planted hook did not run" test ! -e "$T/planted-ran"
fi
pebble_agent_reload '{}'
run 0 ctl ping

# Deactivate: the account is gone; a new request must agree again.
run 0 ctl account deactivate --ca pebble
has "deactivated the account"
check "account files removed" test ! -e "$STATE/acme/accounts/pebble.json"
run 1 ctl request late --dns late.example.test --ca pebble
has "certctl account register --ca pebble --agree-tos"
# Without an account, revocation is signed with the certificate's own key.
cp "$STATE/live/api/cert.pem" "$T/api.pem"
run 0 ctl --json revoke api --reason keyCompromise
json "j['signed_by'] == 'certificate key' and j['reason'] == 'keyCompromise'"
check "Pebble reports api revoked (keyCompromise = 1)" pebble_revoked "$T/api.pem" 1
# A renewal without an account names the command that registers one (renew has no
# --agree-tos), and so do the renewal_failing warning and the failure hook's CERTAGENT_ERROR.
run 0 ctl set alpn --failure-hook "printf '%s\\n' \"\$CERTAGENT_ERROR\" >>'$T/failure.log'"
run 1 ctl renew alpn --force
has "agree to them with 'certctl account register --ca pebble --agree-tos', then try again"
lacks "run again with --agree-tos"
run 0 ctl --json status
json "[w for c in j['certificates'] if c['name'] == 'alpn' for w in c['warnings'] if w['code'] == 'renewal_failing' and 'certctl account register --ca pebble --agree-tos' in w['message']] != []"
check "the failure hook's CERTAGENT_ERROR names the command" \
    wait_for 30 grep -qF "'certctl account register --ca pebble --agree-tos'" "$T/failure.log"
# Doing what it says works.
run 0 ctl account register --ca pebble --agree-tos
has "registered an account at CA 'pebble'"
run 0 ctl renew alpn --force
has "renewed 'alpn' version 2"
run 0 ctl --json status
json "[w for c in j['certificates'] if c['name'] == 'alpn' for w in c['warnings'] if w['code'] == 'renewal_failing'] == []"

stop_agent
finish
