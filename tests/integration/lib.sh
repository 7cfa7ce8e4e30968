# shellcheck shell=bash
# Shared by the shell integration tests.  Each test runs the real certagent
# on a private temp directory and drives it with the real certctl.
# Usage from a test: . lib.sh "$@"
# (arguments: CERTAGENT CERTCTL AGENT-UP DATA-DIR UPGRADE-CHECK)
set -u
# What the caller's environment could point at instead of this test's own agent: a
# systemd unit's notification socket (a test agent started outside agent-up would tell
# the unit running the suite it is ready), a default socket for certctl, and the journal
# (the agent would log without the time stamps that tests read).
unset NOTIFY_SOCKET CERTAGENT_SOCKET JOURNAL_STREAM

AGENT=$1
CTL=$2
AGENT_UP=$3
# shellcheck disable=SC2034 # DATA and UPGRADE_CHECK are for the tests that source this file.
DATA=$4
# shellcheck disable=SC2034
UPGRADE_CHECK=${5:-}
T=$(mktemp -d /tmp/certagent-it-XXXXXX)
SOCK=$T/agent.sock
STATE=$T/state
CONFIG=$T/certagent.json
LOG=$T/agent.log
AGENT_PID=
FAILURES=0
CHECKS=0
OUT=
JOUT=
RC=0
STATE_TMPFS=
HELD_PIDS=
echo '{}' >"$CONFIG"

cleanup() {
    if [ -n "$AGENT_PID" ] && kill -0 "$AGENT_PID" 2>/dev/null; then
        kill -KILL "$AGENT_PID" 2>/dev/null
        [ -z "$STATE_TMPFS" ] || wait_gone "$AGENT_PID"
    fi
    if [ -n "$STATE_TMPFS" ]; then
        umount "$STATE" 2>/dev/null || umount -l "$STATE" 2>/dev/null
    fi
    # shellcheck disable=SC2086 # a list of pids
    [ -z "$HELD_PIDS" ] || kill $HELD_PIDS 2>/dev/null
    if [ "$FAILURES" -ne 0 ] || [ -n "${KEEP_TEST_DIR:-}" ]; then
        echo "--- agent log ($LOG) ---"
        tail -n 60 "$LOG" 2>/dev/null
        echo "--- kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

fail() {
    FAILURES=$((FAILURES + 1))
    echo "FAIL: $*"
}

pass() {
    CHECKS=$((CHECKS + 1))
}

# start_agent [EXTRA ARGS]: returns once the agent said READY=1.
start_agent() {
    AGENT_PID=$("$AGENT_UP" "$LOG" "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" \
        --state-dir "$STATE" --log-level debug "$@") || { fail "agent did not start"; exit 1; }
}

# wait_gone PID: returns when the process has exited (a pidfd becomes readable;
# the agent is not our child, so 'wait' cannot be used).
wait_gone() {
    python3 -c '
import os, select, sys
try:
    fd = os.pidfd_open(int(sys.argv[1]))
except ProcessLookupError:
    sys.exit(0)
select.select([fd], [], [], 60)
' "$1" || tail --pid="$1" -f /dev/null
}

# wait_for SECONDS CMD...: runs CMD every 50 ms until it succeeds (0) or SECONDS pass (1).
# For conditions no process reports as an event (a remote server's state).
wait_for() {
    local limit=$1 end
    shift
    end=$(($(date +%s%N) + limit * 1000000000))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

# closed_port: a loopback TCP port that refuses connections, in $CLOSED_PORT: bound and never
# listening, held until the test ends (or its shell dies), so no other test's server takes it.
# For "nothing answers there": fixed ports such as 1 or 9 may be served on some hosts.
closed_port() {
    /usr/bin/python3 -u -c '
import os, socket, time
parent = os.getppid()
s = socket.socket()
s.bind(("127.0.0.1", 0))
print("READY %d" % s.getsockname()[1], flush=True)
while os.getppid() == parent:
    time.sleep(1)
' >"$T/closed-port.out" 2>&1 </dev/null &
    HELD_PIDS="$HELD_PIDS $!"
    wait_for 15 grep -q '^READY ' "$T/closed-port.out" || {
        fail "closed_port: $(cat "$T/closed-port.out")"
        return 1
    }
    # shellcheck disable=SC2034 # the port is for the test that sources this file
    CLOSED_PORT=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$T/closed-port.out")
}

# wait_log TEXT [SECONDS]: waits until the agent's log has a line containing TEXT.
wait_log() {
    wait_for "${2:-60}" grep -qF -- "$1" "$LOG"
}

# stop_agent: SIGTERM and wait for the process to go.
stop_agent() {
    kill -TERM "$AGENT_PID"
    wait_gone "$AGENT_PID"
    AGENT_PID=
}

kill_agent() {
    kill -KILL "$AGENT_PID"
    wait_gone "$AGENT_PID"
    AGENT_PID=
}

ctl() {
    "$CTL" --socket "$SOCK" "$@"
}

# state_tmpfs SIZE: the state directory becomes a tmpfs of SIZE (unmounted at exit), for
# disk-full tests.  Needs root: otherwise prints SKIP and exits 0.
state_tmpfs() {
    mkdir -p "$STATE"
    if ! mount -t tmpfs -o "size=$1,mode=0700" certagent-diskfull "$STATE" 2>"$T/mount.err"; then
        echo "SKIP: cannot mount a tmpfs on $STATE (needs root): $(cat "$T/mount.err")"
        exit 0
    fi
    STATE_TMPFS=1
}

# fill_state: writes to the state directory until the file system refuses a single byte
# more (files filler, filler2; remove them to free the space).  0 when full.
fill_state() {
    dd if=/dev/zero of="$STATE/filler" bs=64k 2>/dev/null
    dd if=/dev/zero of="$STATE/filler2" bs=1 2>/dev/null
    local avail
    avail=$(df --output=avail -B1 "$STATE" | tail -n 1 | tr -d ' ')
    [ "$avail" -eq 0 ]
}

# whole NAME: the current version is still the one exported to $T/NAME.before.pem, complete,
# its key matching.
whole() {
    local n=$1
    run 0 ctl export "$n" --format pem --out "$T/$n.now.pem"
    check "$n: current version unchanged after the failure" cmp -s "$T/$n.before.pem" "$T/$n.now.pem"
    check "$n: live/ points at a complete version whose key matches" \
        key_matches "$STATE/live/$n/cert.pem" "$STATE/live/$n/privkey.pem"
    check "$n: live/ has the full chain" test -s "$STATE/live/$n/fullchain.pem"
}

# disk_full_error: the last run's output names the cause and a path in the store.
disk_full_error() {
    has "No space left on device"
    has "$STATE"
}

# run EXPECTED-EXIT CMD...: runs CMD, keeps its stdout+stderr in $OUT.
run() {
    want=$1
    shift
    "$@" >"$T/.out" 2>"$T/.err"
    RC=$?
    JOUT=$(cat "$T/.out")
    OUT=$(cat "$T/.out" "$T/.err")
    if [ "$RC" -ne "$want" ]; then
        fail "'$*' exited $RC, expected $want; output: $OUT"
    else
        pass
    fi
}

# has TEXT: the last output contains TEXT.
has() {
    if printf '%s' "$OUT" | grep -qF -- "$1"; then
        pass
    else
        fail "expected '$1' in output of last command: $OUT"
    fi
}

# lacks TEXT
lacks() {
    if printf '%s' "$OUT" | grep -qF -- "$1"; then
        fail "did not expect '$1' in: $OUT"
    else
        pass
    fi
}

# check DESCRIPTION CMD...: CMD must succeed.
check() {
    desc=$1
    shift
    if "$@" >/dev/null 2>&1; then
        pass
    else
        fail "$desc"
    fi
}

# json EXPR: evaluates a Python expression over the last stdout parsed as JSON (as j).
json() {
    if printf '%s' "$JOUT" | python3 -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if ($1) else 1)" 2>/dev/null; then
        pass
    else
        fail "JSON check failed: $1; output: $OUT"
    fi
}

mode_of() {
    stat -c %a "$1"
}

# key_matches CERT KEY: the public key of the certificate is the key's.
key_matches() {
    a=$(openssl x509 -in "$1" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)
    b=$(openssl pkey -in "$2" -pubout -outform DER 2>/dev/null | sha256sum)
    [ -n "$a" ] && [ "$a" = "$b" ]
}

# temp_leftovers DIR...: prints the temporary files of writes cut short under DIR (NAME.tmp-PID-N,
# and the store's .tmp-vN-PID-N), orphans/ included; the running agent's own writes in flight
# (its pid) are not leftovers.  no_temp_leftovers DIR...: there are none.
temp_leftovers() {
    find "$@" -name '*.tmp-*' ! -name "*.tmp-${AGENT_PID:-none}-*" \
        ! -name ".tmp-v*-${AGENT_PID:-none}-*" 2>/dev/null
}
no_temp_leftovers() {
    [ -z "$(temp_leftovers "$@")" ]
}
# check_no_temp_leftovers DESC DIR...: a check that names the leftovers when there are any
# (a write in flight when it looks is waited for).
check_no_temp_leftovers() {
    local desc=$1
    shift
    if wait_for 20 no_temp_leftovers "$@"; then
        pass
    else
        fail "$desc: $(temp_leftovers "$@" | tr '\n' ' ')"
    fi
}

# verify_store: the store under $STATE is whole: every version listed complete, keys 0600,
# no leftovers, live/ showing each current version, each current key matching its certificate.
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

finish() {
    # Under the sanitizer build, any report by the agent fails the test.
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOG" 2>/dev/null; then
        fail "the agent's log has a sanitizer report"
        grep -E -A20 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOG" | head -40
    else
        pass
    fi
    echo "$CHECKS passed, $FAILURES failed"
    [ "$FAILURES" -eq 0 ]
    exit $?
}
