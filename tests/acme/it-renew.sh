#!/bin/bash
# Automatic renewal against a real Pebble whose certificates live 30 seconds, through the
# fault proxy: the agent renews on its own when half the lifetime is left (short-lived rule),
# deploys each version once and runs the deploy hook once per version; a restart between
# the plan and the renewal still renews on time; a CA that fails every newOrder gets retries
# backing off 1, 2, 4 s (renew_retry_min/max), the failure hook and the history carry the
# CA's own words, and renewal recovers when the CA does; the CA's Renewal Information
# (RFC 9773, added by the proxy) overrides the lifetime rule, the CertID asked is the
# certificate's, and newOrder carries "replaces", retried without it on alreadyReplaced.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

HOOKLOG=$T/deploy.log
FAILLOG=$T/failure.log
PEBBLE_WFE_NONCEREJECT=0 pebble_start --validity 30 || finish
acmeproxy_start '{}' || finish
pebble_agent_config "{\"renew_retry_min\": 1, \"renew_retry_max\": 4,
  \"deploy_hook\": \"echo \$CERTAGENT_NAME \$CERTAGENT_VERSION >> $HOOKLOG\",
  \"failure_hook\": \"echo \$CERTAGENT_FAILURES \$(date +%s) \$CERTAGENT_NEXT_ATTEMPT \$CERTAGENT_ERROR >> $FAILLOG\"}"
start_agent

# state KEY NAME: a field of NAME in the scheduler's file.
state() {
    python3 -c "import json,sys; print(json.load(open('$STATE/renew.json'))[sys.argv[2]].get(sys.argv[1], ''))" "$1" "$2" 2>/dev/null
}
version_of() {
    python3 -c "import json,sys; print(json.load(open('$STATE/certs/$1/lineage.json'))['current'])" 2>/dev/null
}
# version_gt NAME N / state_is KEY NAME VALUE: conditions for wait_for (evaluated each time).
version_gt() { [ "$(version_of "$1")" -gt "$2" ]; }
state_is() { [ "$(state "$1" "$2")" = "$3" ]; }
failures_ge() { [ "$(grep -c . "$FAILLOG" 2>/dev/null)" -ge "$1" ]; }
now_after() { [ "$(date +%s)" -gt "$1" ]; }
# deployed_from DIR NAME FIRST: DIR's cert.pem is that of version FIRST or a later one of NAME
# (with a 30 s lifetime the next renewal can have landed by the time a loaded machine looks).
deployed_from() {
    local v
    for v in "$STATE/certs/$2"/v*; do
        [ "${v##*/v}" -ge "$3" ] && cmp -s "$1/cert.pem" "$v/cert.pem" && return 0
    done
    return 1
}
epoch() { date -d "$(openssl x509 -in "$1" -noout "-$2" | cut -d= -f2)" +%s; }
# log_time TEXT SKIP: the time stamp (epoch) of the agent's first log line containing TEXT
# after the first SKIP lines; empty when there is none.
log_time() {
    python3 - "$LOG" "$1" "$2" <<'PY'
import datetime, sys
for i, line in enumerate(open(sys.argv[1], errors="replace")):
    if i >= int(sys.argv[3]) and sys.argv[2] in line:
        print(int(datetime.datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%SZ")
                  .replace(tzinfo=datetime.timezone.utc).timestamp()))
        break
PY
}

run 0 ctl ca add pebble --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl request www --dns www.example.test --ca pebble --agree-tos --deploy-files "$T/www"
has "issued 'www' version 1"

# --- A: the agent renews by itself when half of the 30 s lifetime is left ---------------------
nb=$(epoch "$STATE/live/www/cert.pem" startdate)
na=$(epoch "$STATE/live/www/cert.pem" enddate)
check "A: planned by the short-lifetime rule" wait_for 10 state_is reason www lifetime
check "A: planned at half the lifetime" test "$(state next www)" = $((na - (na - nb) / 2))
check "A: renewed on its own" wait_for 60 version_gt www 1
check "A: version 2 deployed" wait_log "'www' version 2 deployed to 1 target(s)" 20
# When the renewal started and when the new version was in place, on the agent's clock (the
# time this script gets round to looking can be seconds later on a loaded machine).
t1=$(log_time "renewing 'www' (" 0)
t2=$(log_time "'www' version 2 deployed" 0)
check "A: not before the planned time ($t1)" test "$t1" -ge $((na - (na - nb) / 2))
check "A: before the old one expired ($t2)" test "$t2" -le "$na"
check "A: the deployed files are version 2 (or a later one)" deployed_from "$T/www" www 2
check "A: deployed key matches" key_matches "$T/www/cert.pem" "$T/www/privkey.pem"
check "A: the deploy hook ran once for version 2" test "$(grep -cx 'www 2' "$HOOKLOG")" = 1
check "A: history: success" wait_for 10 state_is last_ok www 1

# --- B: stopped right after a renewal, restarted: the next renewal still comes on time --------
stop_agent
v=$(version_of www)
nb=$(epoch "$STATE/certs/www/v$v/cert.pem" startdate)
na=$(epoch "$STATE/certs/www/v$v/cert.pem" enddate)
mark=$(wc -l <"$LOG")
start_agent
check "B: renewed after the restart" wait_for 60 version_gt www "$v"
check "B: deployed after the restart" wait_log "'www' version $((v + 1)) deployed" 20
t3=$(log_time "renewing 'www' (" "$mark")
t4=$(log_time "'www' version $((v + 1)) deployed" "$mark")
check "B: on time (not before half the lifetime) ($t3)" test "$t3" -ge $((na - (na - nb) / 2))
check "B: before the old one expired ($t4)" test "$t4" -le "$na"
check "B: the history survived the restart" test "$(state attempts_total www)" -ge 1

# --- C: the CA fails every newOrder: back-off 1, 2, 4 s, failure hook, the CA's words --------
# 403 (not retried inside the order): each attempt fails at once, the scheduler retries.
acmeproxy_rules '[{"kind": "newOrder", "action": "status", "status": 403,
  "type": "urn:ietf:params:acme:error:unauthorized",
  "detail": "Fail to finalize order: the HSM is on fire", "times": -1}]'
check "C: three failures in a row" wait_for 60 failures_ge 3
check "C: the failure hook got the CA's words" grep -q "Fail to finalize order: the HSM is on fire" "$FAILLOG"
check "C: the history keeps the CA's words" sh -c "python3 -c \"import json; print(json.load(open('$STATE/renew.json'))['www']['last_error'])\" | grep -q 'HSM is on fire'"
check "C: failures counted" test "$(state failures www)" -ge 3
# The status report says so, with the CA's words, and --check is not OK.
run 0 ctl --json status
json "[w for w in [c for c in j['certificates'] if c['name'] == 'www'][0]['warnings'] if w['code'] == 'renewal_failing' and 'HSM is on fire' in w['message']] != []"
json "[c for c in j['certificates'] if c['name'] == 'www'][0]['failures'] >= 3 and 'HSM is on fire' in [c for c in j['certificates'] if c['name'] == 'www'][0]['last_error']"
run 0 ctl status
has "renewal_failing"
has "HSM is on fire"
ctl status --check >"$T/check.out" 2>&1
crc=$?
check "C: status --check is WARNING or CRITICAL (got $crc)" test "$crc" -eq 1 -o "$crc" -eq 2
check "C: --check names the failing renewal" grep -q "www" "$T/check.out"
run 0 ctl metrics
has "certagent_renewal_failures_total{name=\"www\"}"
# Delays between a failure and its next planned attempt: 1, 2, 4 seconds, as the agent's log
# line of each failure states them (its time stamp and the next attempt, both the agent's
# clock).  Not the failure hook's own clock: the hook starts after the failure, and on a
# loaded machine that can be seconds later.
delays=$(python3 - "$LOG" <<'PY'
import re, sys, datetime
def epoch(s):
    return int(datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp())
out = []
pat = re.compile(r"^(\S+) certagent\[error\]: renewal of 'www' failed \((\d+) in a row\); "
                 r"next attempt at (\S+): ")
for line in open(sys.argv[1]):
    m = pat.match(line)
    if m and int(m.group(2)) == len(out) + 1:
        out.append(str(epoch(m.group(3)) - epoch(m.group(1))))
print(" ".join(out[:3]))
PY
)
check "C: back-off 1, 2, 4 s (got: $delays)" python3 -c "
d = [int(x) for x in '$delays'.split()]
want = [1, 2, 4]
import sys; sys.exit(0 if len(d) == 3 and all(abs(a - b) <= 1 for a, b in zip(d, want)) else 1)"
run 0 ctl ping
check "C: the current version is still there" test -s "$STATE/live/www/cert.pem"
v=$(version_of www)
acmeproxy_rules '[]'
check "C: renewal recovers once the CA does" wait_for 60 version_gt www "$v"
check "C: failures reset" wait_for 10 state_is failures www 0
check "C: history says success" test "$(state last_ok www)" = 1

# --- D: ACME Renewal Information overrides the lifetime rule; replaces and alreadyReplaced ---
run 0 ctl set www --auto-renew no
acmeproxy_post /renewal-info '{"start": 3600, "end": 7200, "explanation_url": "https://ca.example.test/why", "retry_after": 120}' >/dev/null
# A fresh agent reads the directory anew (a running one re-reads it when it is 5 s old).
stop_agent
start_agent
run 0 ctl request ari --dns ari.example.test --ca pebble
has "issued 'ari' version 1"
id=$(acme_cert_id "$STATE/live/ari/cert.pem")
# A window an hour away on a 30-second certificate: the emergency floor (1/20 of the lifetime
# left, docs/resilience.md) plans it before the window; without the floor it would be "ari".
check "D: planned by the CA's window, held at the floor" wait_for 20 state_is reason ari floor
now=$(date +%s)
check "D: the window is the CA's (in an hour)" python3 -c "
import json,sys; e = json.load(open('$STATE/renew.json'))['ari']
sys.exit(0 if $now + 3500 <= e['ari_start'] <= $now + 3700 and e['next'] < e['ari_start'] and e['ari_cert_id'] == '$id' else 1)"
# An exact match among the CertIDs asked: the ID is random base64url and may begin with '-',
# which a grep pattern would take for an option (1 run in 64 failed that way).
asked_for() {
    acmeproxy_log | python3 -c 'import json, sys
sys.exit(0 if sys.argv[1] in [e["cert_id"] for e in json.load(sys.stdin)["renewal_info"]] else 1)' "$1"
}
check "D: the proxy was asked for this CertID" asked_for "$id"
check "D: the explanation is logged" grep -q "explanation: https://ca.example.test/why" "$LOG"
nb=$(epoch "$STATE/live/ari/cert.pem" startdate)
na=$(epoch "$STATE/live/ari/cert.pem" enddate)
# Past the point where the lifetime rule would have renewed, the window still holds it back.
wait_for 30 now_after $((na - (na - nb) / 2 + 3))
check "D: not renewed by the lifetime rule" test "$(version_of ari)" = 1
# The floor would renew it at 28.5 s by itself; the forced renewal below is the one checked.
run 0 ctl set ari --auto-renew no
acmeproxy_post /log/clear '{}' >/dev/null
acmeproxy_rules '[{"kind": "newOrder", "payload_has": "replaces", "action": "status", "status": 409,
  "type": "urn:ietf:params:acme:error:alreadyReplaced", "detail": "already replaced", "times": 1}]'
run 0 ctl renew ari --force
has "renewed 'ari' version 2"
JOUT=$(acmeproxy_log)
# The order naming the replaced certificate was refused (the rule matched it), the retry
# without "replaces" went through.
json "j['rules'][0]['applied'] == 1 and [o['replaces'] for o in j['orders']] == [None]"
check "D: the retry without replaces is logged" grep -q "already replaced" "$LOG"
finish
