#!/bin/bash
# The renewal plan follows the wall clock: when the clock jumps (an administrator's or NTP's
# change, or a system that slept while the agent's monotonic timer did not count), the
# scheduler notices at its next look (renew_check_interval) and renews what became due;
# a jump back makes nothing due.  The agent's clock is moved with Debian's libfaketime
# (LD_PRELOAD, the offset re-read from a file on every call, the monotonic clock left real),
# so the machine's own clock is never touched.  Needs libfaketime: otherwise SKIP.
. "$(dirname "$0")/lib.sh" "$@"

FAKETIME_LIB=
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
    [ -e "$f" ] && FAKETIME_LIB=$f && break
done
if [ -z "$FAKETIME_LIB" ]; then
    echo "SKIP: libfaketime is not installed (apt-get install libfaketime)"
    finish
fi
OFFSET=$T/clock-offset
echo "+0" >"$OFFSET"
echo '{"renew_check_interval": 1}' >"$CONFIG"
# start_faked: the agent under libfaketime (a sanitizer runtime does not come first then).
start_faked() {
    LD_PRELOAD=$FAKETIME_LIB FAKETIME_TIMESTAMP_FILE=$OFFSET FAKETIME_NO_CACHE=1 \
        FAKETIME_DONT_FAKE_MONOTONIC=1 \
        ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 start_agent
}
start_faked

current() {
    python3 -c "import json,sys; print(json.load(open('$STATE/certs/$1/lineage.json'))['current'])" 2>/dev/null
}
current_is() { [ "$(current "$1")" = "$2" ]; }
# field NAME KEY: a field of NAME in certctl status --json.
field() {
    ctl --json status | python3 -c "
import json, sys
for c in json.load(sys.stdin)['certificates']:
    if c['name'] == sys.argv[1]:
        print(c.get(sys.argv[2]))" "$1" "$2"
}

# A 2-day self-signed certificate that renews itself: due when half its lifetime is left,
# about a day from now.
run 0 ctl selfsigned two --dns two.example.test --days 2 --auto-renew yes
planned() { n=$(field two next_renewal) && [ -n "$n" ] && [ "$n" != None ]; }
check "the certificate gets a plan" wait_for 30 planned
next=$(field two next_renewal)
now=$(date +%s)
check "the renewal is planned about a day ahead (next_renewal $next, now $now)" \
    test "$next" -gt $((now + 20 * 3600)) -a "$next" -lt $((now + 28 * 3600))
check "not renewed before the clock moves" current_is two 1

# The clock jumps 30 hours ahead: the agent sees it within a second or two and renews.
echo "+30h" >"$OFFSET"
check "the agent notices the clock change" wait_log "the clock moved by" 30
check "the certificate that became due is renewed" wait_for 30 current_is two 2
has_reason=$(grep -c "renewing 'two'" "$LOG")
check "one renewal for one due certificate ($has_reason)" test "$has_reason" -eq 1
# The new version starts at the agent's (moved) time and is planned a day after it.
planned_after() { next=$(field two next_renewal) && [ "$next" != None ] && [ "$next" -gt "$1" ]; }
check "the next renewal is planned from the moved clock" wait_for 30 planned_after $((now + 50 * 3600))
next=$(field two next_renewal)
check "... about a day after the new version's start ($next)" test "$next" -lt $((now + 58 * 3600))

# The clock jumps back 40 hours (before the new version's start): nothing becomes due, the
# agent logs the change and keeps its plan.
moved=$(grep -c "the clock moved by" "$LOG")
echo "-10h" >"$OFFSET"
check "the jump back is noticed" wait_for 30 sh -c "[ \$(grep -c 'the clock moved by' '$LOG') -gt $moved ]"
# Nothing can announce a renewal that does not happen: give the scheduler (which looks every
# second here) three seconds to do it.
if wait_for 3 current_is two 3; then fail "a jump back renewed the certificate"; else pass; fi
check "still version 2" current_is two 2
check "the plan is kept after the jump back" test "$(field two next_renewal)" = "$next"

# The plan survives a restart at the moved clock: the agent starts, sees it due, renews.
stop_agent
echo "+56h" >"$OFFSET"
start_faked
check "after a restart with the clock past the plan, the certificate is renewed" \
    wait_for 30 current_is two 3
stop_agent
finish
