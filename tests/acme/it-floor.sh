#!/bin/bash
# The emergency floor (issue 17 item 3) against a real Pebble whose certificates live 60
# seconds, behind the fault proxy serving ACME Renewal Information: A, a window far in the
# future does not hold the renewal back once less than 1/20 of the lifetime is left (the
# renewal starts at the floor, is logged as such, and lands before the old one expires);
# B, a window that ended in the past renews at once, logged as such.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

PEBBLE_WFE_NONCEREJECT=0 pebble_start --validity 60 || finish
acmeproxy_start '{"renewal_info": {"start": "notAfter+3600", "end": "notAfter+7200",
  "retry_after": 3600}}' || finish
pebble_agent_config '{"renew_retry_min": 1, "renew_retry_max": 4}'
start_agent

state() {
    python3 -c "import json,sys; print(json.load(open('$STATE/renew.json'))[sys.argv[2]].get(sys.argv[1], ''))" "$1" "$2" 2>/dev/null
}
state_is() { [ "$(state "$1" "$2")" = "$3" ]; }
version_of() {
    python3 -c "import json,sys; print(json.load(open('$STATE/certs/$1/lineage.json'))['current'])" 2>/dev/null
}
version_gt() { [ "$(version_of "$1")" -gt "$2" ]; }
epoch() { date -d "$(openssl x509 -in "$1" -noout "-$2" | cut -d= -f2)" +%s; }
log_time() {
    python3 - "$LOG" "$1" <<'PY'
import datetime, sys
for line in open(sys.argv[1], errors="replace"):
    if sys.argv[2] in line:
        print(int(datetime.datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%SZ")
                  .replace(tzinfo=datetime.timezone.utc).timestamp()))
        break
PY
}

run 0 ctl ca add pebble --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl request www --dns www.example.test --ca pebble --agree-tos
has "issued 'www' version 1"
nb=$(epoch "$STATE/certs/www/v1/cert.pem" startdate)
na=$(epoch "$STATE/certs/www/v1/cert.pem" enddate)

# --- A: ARI says "in two hours", the floor says "now" ----------------------------------------
check "A: the CA's window was read" wait_for 20 sh -c "[ \"\$(python3 -c \"import json; print(json.load(open('$STATE/renew.json'))['www'].get('ari_end', 0))\")\" -gt $na ]"
check "A: planned at the floor, not in the window" wait_for 10 state_is reason www floor
check "A: the floor is 1/20 of the lifetime before expiry" test "$(state next www)" = $((na - (na - nb) / 20))
check "A: renewed before the window opened" wait_for 70 version_gt www 1
check "A: logged as the emergency floor" grep -q "'www': less than 1/20 of its lifetime is left.*renewing at once (the emergency floor)" "$LOG"
t1=$(log_time "renewing 'www' (floor)")
t2=$(log_time "issued by ACME 'www' version 2")
check "A: not before the floor ($t1)" test "${t1:-0}" -ge $((na - (na - nb) / 20))
check "A: in place before the old one expired ($t2)" test "${t2:-99999999999}" -le "$na"
check "A: the new version is planned by the floor again" wait_for 20 state_is reason www floor

# --- B: a window that ended in the past renews at once ----------------------------------------
acmeproxy_post /renewal-info '{"start": -120, "end": -60, "retry_after": 3600}' ||
    fail "B: the proxy refused the window"
run 0 ctl request past --dns past.example.test --ca pebble
has "issued 'past' version 1"
check "B: renewed at once" wait_for 30 version_gt past 1
check "B: logged as a window in the past" grep -q "'past': the CA's renewal window ended in the past: renewing at once" "$LOG"
check "B: the attempt's reason was ari_past" grep -q "renewing 'past' (ari_past)" "$LOG"
# Every new version of 'past' gets a window in the past too: stop that before the end.
acmeproxy_post /renewal-info '{"start": "notAfter+3600", "end": "notAfter+7200", "retry_after": 3600}' ||
    fail "B: the proxy refused the window"
run 0 ctl ping
finish
