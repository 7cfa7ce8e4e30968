#!/bin/bash
# Disk full: the state directory is a 2 MiB tmpfs, filled to the last byte.  import,
# selfsigned, rollback and remove then fail with a clear error naming the cause and the path,
# the previous current version stays current and whole (exported and compared), live/ still
# points at a complete version, and after a restart no half-written version is visible.  Once
# space is freed the same operations succeed.  Needs root (mount); otherwise SKIP.
. "$(dirname "$0")/lib.sh" "$@"

state_tmpfs 2m

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=imp.test -addext subjectAltName=DNS:imp.test \
    -keyout "$T/imp.key" -out "$T/imp.pem" 2>/dev/null || { fail "openssl req"; finish; }
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=imp2.test -addext subjectAltName=DNS:imp2.test \
    -keyout "$T/imp2.key" -out "$T/imp2.pem" 2>/dev/null || { fail "openssl req"; finish; }

start_agent
run 0 ctl import imp --cert "$T/imp.pem" --key "$T/imp.key"
run 0 ctl selfsigned self --dns self.test --key ec256
run 0 ctl selfsigned self --dns self.test --key ec256
run 0 ctl selfsigned gone --dns gone.test --key ec256
for n in imp self gone; do
    run 0 ctl export "$n" --format pem --out "$T/$n.before.pem"
done

check "the tmpfs is full" fill_state

run 1 ctl import imp --cert "$T/imp2.pem" --key "$T/imp2.key"
disk_full_error
whole imp
run 1 ctl selfsigned self --dns self.test --key ec256
disk_full_error
whole self
run 1 ctl rollback self
disk_full_error
whole self
# Failed changes (not refusals of bad input) are logged at warn, so logs --level warn shows them.
run 0 ctl logs --level warn
has "selfsigned of 'self' failed"
has "rollback of 'self' failed"
has "[E_IO]"
# remove frees space; on a full disk it either succeeds or fails clearly, never half-way.
ctl remove gone >"$T/remove.out" 2>&1
rc=$?
if [ "$rc" -ne 0 ]; then
    OUT=$(cat "$T/remove.out")
    check "remove on a full disk: exit 1 with the cause" test "$rc" -eq 1
    disk_full_error
    whole gone
else
    pass
    check "removed: live/gone is gone" test ! -e "$STATE/live/gone"
fi
check "the agent is alive" kill -0 "$AGENT_PID"
run 0 ctl --json list

# After a restart (store repair) no half-written version is visible.
stop_agent
start_agent
check "store consistent after restart on a full disk" python3 - "$STATE" <<'PY'
import json, os, sys
state = sys.argv[1]
certs = os.path.join(state, "certs")
bad = []
for name in sorted(os.listdir(certs)):
    d = os.path.join(certs, name)
    if name.startswith("."):
        bad.append("leftover certs/" + name)
        continue
    lin = json.load(open(os.path.join(d, "lineage.json")))
    listed = {v["version"] for v in lin["versions"]}
    for e in os.listdir(d):
        if e.startswith("."):
            bad.append("%s: leftover %s" % (name, e))
        elif e.startswith("v") and int(e[1:]) not in listed:
            bad.append("%s: unlisted version directory %s" % (name, e))
    for v in listed:
        for f in ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem", "meta.json"):
            if not os.path.isfile(os.path.join(d, "v%d" % v, f)):
                bad.append("%s v%d: %s missing" % (name, v, f))
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PY
whole imp
whole self

# Space again: the same operations succeed.
rm -f "$STATE/filler" "$STATE/filler2"
run 0 ctl import imp --cert "$T/imp2.pem" --key "$T/imp2.key"
run 0 ctl export imp --format pem --out "$T/imp.after.pem"
check "imp: the new import is current" key_matches "$T/imp.after.pem" "$T/imp2.key"
run 0 ctl selfsigned self --dns self.test --key ec256
run 0 ctl rollback self
run 0 ctl remove imp
check "removed: live/imp is gone" test ! -e "$STATE/live/imp"
stop_agent
finish
