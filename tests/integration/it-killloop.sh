#!/bin/bash
# kill -9 at random instants during repeated imports, self-signed creations,
# rollbacks and removals; after each restart the store must be intact: every
# current version complete, every key present and matching its certificate,
# no leftovers.  ROUNDS (default 30) sets the length.
. "$(dirname "$0")/lib.sh" "$@"
ROUNDS=${ROUNDS:-30}

# Import material made here: a key and a self-signed certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=imported.test -addext subjectAltName=DNS:imported.test \
    -keyout "$T/imp.key" -out "$T/imp.pem" 2>/dev/null || { fail "openssl req"; finish; }

workload() {
    i=0
    while :; do
        i=$((i + 1))
        n=$((i % 4))
        case $((i % 5)) in
        0 | 1) "$CTL" --socket "$SOCK" selfsigned "s$n" --dns "s$n.test" --key ec256 ;;
        2) "$CTL" --socket "$SOCK" import "i$n" --cert "$T/imp.pem" --key "$T/imp.key" ;;
        3) "$CTL" --socket "$SOCK" rollback "s$n" ;;
        4) [ $((i % 15)) -eq 4 ] && "$CTL" --socket "$SOCK" remove "i$n" ;;
        esac >/dev/null 2>&1
        # Exit 3: the agent is gone (killed); stop this round.
        [ $? -eq 3 ] && return
    done
}

verify_store() {
    python3 - "$STATE" <<'PY'
import json, os, subprocess, sys
state = sys.argv[1]
errors = []
certs = os.path.join(state, "certs")
names = sorted(os.listdir(certs)) if os.path.isdir(certs) else []
for name in names:
    d = os.path.join(certs, name)
    if name.startswith("."):
        errors.append("leftover temp entry certs/%s" % name)
        continue
    try:
        lin = json.load(open(os.path.join(d, "lineage.json")))
    except Exception as e:
        errors.append("%s: lineage.json unreadable: %s" % (name, e))
        continue
    listed = {v["version"] for v in lin["versions"]}
    for entry in os.listdir(d):
        if entry.startswith("."):
            errors.append("%s: leftover %s" % (name, entry))
        elif entry.startswith("v") and int(entry[1:]) not in listed:
            errors.append("%s: unlisted version dir %s" % (name, entry))
    for v in lin["versions"]:
        vd = os.path.join(d, "v%d" % v["version"])
        for f in ("cert.pem", "chain.pem", "fullchain.pem", "meta.json", "privkey.pem"):
            if not os.path.isfile(os.path.join(vd, f)):
                errors.append("%s v%d: %s missing" % (name, v["version"], f))
        key = os.path.join(vd, "privkey.pem")
        if os.path.isfile(key) and os.stat(key).st_mode & 0o777 != 0o600:
            errors.append("%s v%d: key mode %o" % (name, v["version"], os.stat(key).st_mode & 0o777))
    cur = os.path.join(d, "v%d" % lin["current"])
    live = os.path.join(state, "live", name)
    if os.path.realpath(live) != os.path.realpath(cur):
        errors.append("%s: live/ shows %s, current is v%d" % (name, os.path.realpath(live), lin["current"]))
    def pub(args):
        return subprocess.run(args, capture_output=True).stdout
    c = pub(["openssl", "x509", "-in", os.path.join(cur, "cert.pem"), "-noout", "-pubkey"])
    k = pub(["openssl", "pkey", "-in", os.path.join(cur, "privkey.pem"), "-pubout"])
    if not c or c != k:
        errors.append("%s: current key does not match its certificate" % name)
for name in os.listdir(os.path.join(state, "live")) if os.path.isdir(os.path.join(state, "live")) else []:
    if name not in names:
        errors.append("live/%s has no lineage" % name)
for e in errors:
    print("store:", e)
print("store: %d certificates checked" % len(names))
sys.exit(1 if errors else 0)
PY
}

start_agent
for round in $(seq 1 "$ROUNDS"); do
    workload &
    wl=$!
    # The random instant: between 20 and 400 ms into the workload.
    sleep "0.$(printf '%03d' $((RANDOM % 380 + 20)))"
    kill_agent
    wait "$wl"
    start_agent
    if out=$(verify_store); then
        pass
    else
        fail "round $round: store damaged after kill -9:"
        echo "$out"
        break
    fi
    # Every certificate must still be usable through the agent.
    run 0 ctl --json list
done
echo "$out" | tail -n 1
stop_agent
finish
