#!/bin/bash
# The ACME client under faults a test proxy injects in front of Pebble: asynchronous
# finalization held in "processing" with Retry-After, 503 and 429 with Retry-After in seconds
# and as an HTTP-date, 500 without it, orderNotReady, an order seen valid then pending, errors
# that must reach the user verbatim (problem documents with subproblems), and profiles.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

pebble_start || exit 1
acmeproxy_start '{"profiles": {"classic": "the usual", "shortlived": "six days"}}' || exit 1
pebble_agent_config
start_agent
run 0 ctl ca add proxied --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl account register --ca proxied --agree-tos

n=0
# issue RULES: one certificate through the proxy with RULES in force; checks it verifies.
issue() {
    n=$((n + 1))
    acmeproxy_post /log/clear '{}' || fail "proxy log not cleared"
    acmeproxy_rules "$1" || fail "proxy refused rules $1"
    run 0 ctl request "c$n" --dns "c$n.example.test" --ca proxied
    check "c$n: chain verifies" pebble_verify "$STATE/live/c$n/fullchain.pem"
}

# Asynchronous finalization (the April 2023 change): processing for 3 polls, Retry-After 1.
issue '[{"kind": "order", "action": "processing", "polls": 3, "retry_after": 1}]'
check "processing was injected 3 times" test "$(acmeproxy_injected processing)" -ge 3

# 503 with Retry-After in seconds on newOrder, 429 rateLimited with an HTTP-date on finalize.
issue '[{"kind": "newOrder", "action": "status", "status": 503, "type": "urn:ietf:params:acme:error:serverInternal", "detail": "service busy", "retry_after": 1}]'
check "503 injected" test "$(acmeproxy_injected status)" -eq 1
issue '[{"kind": "finalize", "action": "status", "status": 429, "type": "urn:ietf:params:acme:error:rateLimited", "detail": "slow down", "retry_after_date": 2}]'
check "429 injected" test "$(acmeproxy_injected status)" -eq 1
# 500 without Retry-After on an authorization: bounded back-off, then success.
issue '[{"kind": "authz", "action": "status", "status": 500, "type": "urn:ietf:params:acme:error:serverInternal", "detail": "oops", "times": 2}]'
check "500 injected twice" test "$(acmeproxy_injected status)" -eq 2
# orderNotReady on finalize: poll until ready, finalize again.
issue '[{"kind": "finalize", "action": "order-not-ready"}]'
check "orderNotReady injected" test "$(acmeproxy_injected order-not-ready)" -ge 1
# An order seen valid and then pending (replica lag) is not an error.
issue '[{"kind": "order", "action": "lag"}]'
check "lag injected" test "$(acmeproxy_injected lag)" -eq 1
# A connection reset and a truncated body on polls are retried.
issue '[{"kind": "authz", "action": "reset"}, {"kind": "order", "action": "truncate", "after": 1}]'

# Errors reach the user verbatim: type, detail and each subproblem, in words (the raw
# problem document only with --json).
acmeproxy_rules '[{"kind": "newOrder", "action": "status", "status": 400, "type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "Error creating new order :: Cannot issue for \"bad.example.test\"", "subproblems": [{"type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "Domain name is on a blocklist", "identifier": {"type": "dns", "value": "bad.example.test"}}], "times": -1}]'
run 1 ctl request bad --dns bad.example.test --ca proxied
has 'Error creating new order :: Cannot issue for "bad.example.test"'
has "urn:ietf:params:acme:error:rejectedIdentifier"
has "bad.example.test: Domain name is on a blocklist"
has "[E_ACME]"
# In text the sentence says it all: the raw problem document is only --json's detail.
lacks '"subproblems"'
lacks '{"type"'
run 1 ctl --json request bad --dns bad.example.test --ca proxied
json "j['error']['code'] == 'E_ACME' and json.loads(j['error']['detail'])['subproblems'][0]['identifier']['value'] == 'bad.example.test'"
# 429 rateLimited without Retry-After is not hammered: one try, the CA's words.
acmeproxy_post /log/clear '{}'
acmeproxy_rules '[{"kind": "newOrder", "action": "status", "status": 429, "type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many certificates already issued", "times": -1}]'
run 1 ctl request limited --dns limited.example.test --ca proxied
has "too many certificates already issued"
check "rateLimited without Retry-After tried once" test "$(acmeproxy_injected status)" -eq 1
run 1 ctl show bad
acmeproxy_rules '[]'

# Profiles (meta.profiles): sent in newOrder, remembered for renewal.
run 0 ctl --json request prof --dns prof.example.test --ca proxied --profile shortlived
json "j['profile'] == 'shortlived'"
check "proxy saw profile shortlived" sh -c "curl -sf '$ACMEPROXY_CONTROL/log' | grep -q '\"profile\": \"shortlived\"'"
run 0 ctl renew prof --force
check "renewal kept the profile" test "$(curl -sf "$ACMEPROXY_CONTROL/log" | grep -o '"profile": "shortlived"' | wc -l)" -ge 2
# A profile the CA lacks: --profile falls back with a warning, --require-profile fails.
run 0 ctl request prof2 --dns prof2.example.test --ca proxied --profile nosuch
grep -q "does not offer the profile 'nosuch'" "$LOG" && pass || fail "no warning for a missing profile"
run 1 ctl request prof3 --dns prof3.example.test --ca proxied --require-profile nosuch
has "does not offer the profile 'nosuch' (it offers: classic, shortlived)"
# invalidProfile from the CA is shown clearly.
acmeproxy_rules '[{"kind": "newOrder", "action": "status", "status": 400, "type": "urn:ietf:params:acme:error:invalidProfile", "detail": "profile shortlived is not allowed for this account"}]'
run 1 ctl request prof4 --dns prof4.example.test --ca proxied --profile shortlived
has "refused the profile 'shortlived'"
has "not allowed for this account"
acmeproxy_rules '[]'


# Every request carried a User-Agent naming certagent and its version.
run 0 curl -sf "$ACMEPROXY_CONTROL/log"
version=$("$CTL" --version 2>/dev/null | awk '{print $2}')
json "len(j['user_agents']) > 0 and all(ua.startswith('certagent/$version ') for ua in j['user_agents'])"

stop_agent
finish
