#!/bin/bash
# Revocation against a real Pebble: certctl revoke records the revocation in the store
# (lineage.json: it survives a restart), status shows it (the row's revoked and
# revoked_reason, the critical warning 'revoked' in text and JSON, show's history), and the
# scheduler replaces an ACME certificate at once when renew_after_revoke is true (the
# default): the new version clears the warning.  With renew_after_revoke false the revoked
# version stays, planned as before, and the warning names the command that replaces it.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

pebble_start || finish
pebble_agent_config '{"renew_after_revoke": false}'
start_agent

version_of() {
    python3 -c "import json,sys; print(json.load(open('$STATE/certs/$1/lineage.json'))['current'])" 2>/dev/null
}
version_gt() { [ "$(version_of "$1")" -gt "$2" ]; }
# lineage_revoked NAME VERSION REASON: lineage.json records VERSION of NAME revoked for REASON.
lineage_revoked() {
    python3 -c "import json,sys
l = json.load(open('$STATE/certs/$1/lineage.json'))
v = [v for v in l['versions'] if v['version'] == $2][0]
sys.exit(0 if v.get('revoked', 0) > 0 and v.get('revoked_reason') == '$3' else 1)"
}
# row EXPR: a Python expression on the status row of web (r) must hold.
row() { json "[c for c in j['certificates'] if c['name'] == 'web'][0] and (lambda r: $1)([c for c in j['certificates'] if c['name'] == 'web'][0])"; }

run 0 ctl ca add pebble --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl request web --dns web.example.test --ca pebble --agree-tos
has "issued 'web' version 1"
run 0 ctl --json status
row "r['revoked'] is None and r['revoked_reason'] is None and r['health'] != 'critical'"

# --- A: renew_after_revoke false: recorded and shown, not renewed ------------------------------
cp "$STATE/live/web/cert.pem" "$T/v1.pem"
run 0 ctl --json revoke web --reason keyCompromise
json "j['version'] == 1 and j['recorded'] is True"
check "A: Pebble reports it revoked (keyCompromise = 1)" pebble_revoked "$T/v1.pem" 1
check "A: lineage.json records the revocation" lineage_revoked web 1 keyCompromise
run 0 ctl --json status
row "r['revoked'] > 0 and r['revoked_reason'] == 'keyCompromise' and r['health'] == 'critical'"
row "[w['level'] for w in r['warnings'] if w['code'] == 'revoked'] == ['critical']"
row "'renew_after_revoke is false' in [w for w in r['warnings'] if w['code'] == 'revoked'][0]['message']"
row "'certctl renew web --force' in [w for w in r['warnings'] if w['code'] == 'revoked'][0]['message']"
# Not replaced: the plan is still the lifetime rule, weeks away.
row "r['next_reason'] == 'lifetime' and r['next_renewal'] > $(date +%s) + 86400"
run 0 ctl status
has "CRITICAL web: version 1 was revoked at its CA"
has "[revoked]"
run 0 ctl show web
has "revoked:      "
has "(keyCompromise)"
# The record survives a restart.
stop_agent
start_agent
run 0 ctl --json status
row "r['revoked'] > 0 and r['revoked_reason'] == 'keyCompromise' and r['next_reason'] == 'lifetime'"
check "A: still version 1" test "$(version_of web)" = 1

# --- B: renew_after_revoke true (reloaded): replaced at once, the warning clears -------------
pebble_agent_reload '{"renew_after_revoke": true}'
check "B: renewed after the reload" wait_for 60 version_gt web 1
check "B: the renewal says why" wait_log "renewing 'web' (revoked)" 10
check "B: version 2 is not revoked" sh -c "! python3 -c \"import json,sys; l = json.load(open('$STATE/certs/web/lineage.json')); sys.exit(0 if [v for v in l['versions'] if v['version'] == 2][0].get('revoked') else 1)\""
run 0 ctl --json status
# (Pebble's root is not a trust anchor here: chain_incomplete stays, a warning, not critical.)
row "r['version'] == 2 and r['revoked'] is None and r['health'] != 'critical'"
row "[w for w in r['warnings'] if w['code'] == 'revoked'] == []"
run 0 ctl show web
lacks "revoked:      "
run 0 ctl --json show web
json "[h['revoked'] is not None for h in j['history']] == [False, True]"

# The default (true): revoking the current version replaces it at once.
cp "$STATE/live/web/cert.pem" "$T/v2.pem"
run 0 ctl revoke web --reason superseded
has "revoked 'web' version 2"
has "recorded: status warns 'revoked' until a new version replaces it"
check "B: Pebble reports version 2 revoked (superseded = 4)" pebble_revoked "$T/v2.pem" 4
check "B: lineage.json records version 2 revoked" lineage_revoked web 2 superseded
check "B: replaced at once" wait_for 60 version_gt web 2
run 0 ctl --json status
row "r['version'] == 3 and r['revoked'] is None and [w for w in r['warnings'] if w['code'] == 'revoked'] == []"
run 0 ctl status
lacks "was revoked at its CA"
stop_agent
finish
