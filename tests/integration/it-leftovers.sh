#!/bin/bash
# Temporary files of writes cut short by a kill ("NAME.tmp-PID-N", which may hold a copy of a
# private key): removed from the state directory at start and from a deploy target when it is
# next written; files that only look alike (another base name, no PID) are left alone.
. "$(dirname "$0")/lib.sh" "$@"

start_agent
run 0 ctl selfsigned web --dns web.test --key ec256 --deploy-files "$T/deploy"
check "deployed" wait_for 30 test -s "$T/deploy/privkey.pem"
closed_port
run 0 ctl ca add other --directory "https://127.0.0.1:$CLOSED_PORT/dir"
stop_agent

# As a kill mid-write leaves them (PIDs of a process that is gone).
for f in renew.json.tmp-999999-1 status.json.tmp-999999-2 acme/cas.json.tmp-999999-3 \
    acme/orders/x.key.tmp-999999-4 acme/orders/x.json.tmp-999999-5; do
    mkdir -p "$(dirname "$STATE/$f")"
    echo leftover >"$STATE/$f"
done
# Look-alikes that are not ours: kept.
echo keep >"$STATE/notes.tmp-draft"
echo keep >"$STATE/notes.tmp-1-"
start_agent
for f in renew.json.tmp-999999-1 status.json.tmp-999999-2 acme/cas.json.tmp-999999-3 \
    acme/orders/x.key.tmp-999999-4 acme/orders/x.json.tmp-999999-5; do
    check "start removed $f" test ! -e "$STATE/$f"
done
check "the removals are logged" test "$(grep -c "left by a write that was cut short" "$LOG")" = 5
check "look-alikes kept" test -e "$STATE/notes.tmp-draft" -a -e "$STATE/notes.tmp-1-"

# In a deploy target: the next deploy removes the leftovers of its own files only.
echo leftover >"$T/deploy/privkey.pem.tmp-999999-6"
echo leftover >"$T/deploy/cert.pem.tmp-999999-7"
echo keep >"$T/deploy/nginx.conf.tmp-999999-8"
run 0 ctl deploy web
check "deploy removed privkey.pem's leftover" test ! -e "$T/deploy/privkey.pem.tmp-999999-6"
check "deploy removed cert.pem's leftover" test ! -e "$T/deploy/cert.pem.tmp-999999-7"
check "another file's look-alike kept" test -e "$T/deploy/nginx.conf.tmp-999999-8"
check "the target is whole" key_matches "$T/deploy/cert.pem" "$T/deploy/privkey.pem"
stop_agent
finish
