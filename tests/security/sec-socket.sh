#!/bin/bash
# security.socket (issue 14, findings 1 and 10).
# 1: with no XDG_RUNTIME_DIR a user's certctl looks at /tmp/certagent-UID/certagent.sock first,
#    and any user may create /tmp/certagent-UID before them.  The attacker (nobody) runs a fake
#    agent there; the victim (uid 4242, no passwd entry, no XDG_RUNTIME_DIR) imports a PFX with
#    its password.  certctl must refuse before sending anything: a directory or socket owned by
#    another user, a directory writable by others, a server running as another user.  The
#    victim's own agent still works, in a /tmp/certagent-4242 it created 0700.
# 10: the agent refuses a state directory another user owns or may write to, and touches
#    nothing in it.
# Runs in its own mount namespace with a private tmpfs on /tmp: nothing touches the host's /tmp.
if [ "$(id -u)" -eq 0 ] && [ -z "${CERTAGENT_SOCK_NS:-}" ] &&
    unshare --mount --propagation private true 2>/dev/null; then
    CERTAGENT_SOCK_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi
if [ -n "${CERTAGENT_SOCK_NS:-}" ]; then
    # What the test needs of the host's /tmp (a checkout, a build, its data there): their
    # top-level entries, staged on a private tmpfs and bound again over the new /tmp.
    keep=()
    for p in "$(cd "$(dirname "$0")" && pwd)" "$PWD" "$@"; do
        case $p in
        /tmp/?*)
            rest=${p#/tmp/}
            top=/tmp/${rest%%/*}
            case " ${keep[*]} " in *" $top "*) ;; *) keep+=("$top") ;; esac
            ;;
        esac
    done
    if [ "${#keep[@]}" -gt 0 ]; then
        mount -t tmpfs -o size=1m certagent-sec-keep /mnt ||
            { echo "FAIL: cannot mount a staging tmpfs on /mnt"; exit 1; }
        for i in "${!keep[@]}"; do
            if [ -d "${keep[$i]}" ]; then mkdir "/mnt/$i"; else touch "/mnt/$i"; fi
            mount --bind "${keep[$i]}" "/mnt/$i" || { echo "FAIL: cannot keep ${keep[$i]}"; exit 1; }
        done
    fi
    mount -t tmpfs -o mode=1777,size=64m certagent-sec-tmp /tmp ||
        { echo "FAIL: cannot mount a private tmpfs on /tmp"; exit 1; }
    for i in "${!keep[@]}"; do
        if [ -d "/mnt/$i" ]; then mkdir -p "${keep[$i]}"; else touch "${keep[$i]}"; fi
        mount --bind "/mnt/$i" "${keep[$i]}" || { echo "FAIL: cannot bind ${keep[$i]}"; exit 1; }
    done
    cd "$PWD" || exit 1
fi
# shellcheck source=tests/security/lib-sec.sh
. "$(dirname "$0")/lib-sec.sh" "$@" || { echo "FAIL: cannot load lib-sec.sh"; exit 1; }
[ -n "${T:-}" ] && [ -d "$T" ] || { echo "FAIL: no test directory"; exit 1; }
need_root
[ -n "${CERTAGENT_SOCK_NS:-}" ] || { fail "no private mount namespace (unshare --mount)"; finish; }
unset CERTAGENT_AGENT_USER
open_test_dir

VICTIM=4242
V=$T/victim   # the victim's home and files
A=$T/attacker # nobody's files
mkdir -p "$V" "$A"
cp "$DATA/leaf.pfx" "$V/leaf.pfx"
printf 'correct horse' >"$V/pw"
PASSWORD='correct horse'
chown -R "$VICTIM:$VICTIM" "$V"
chown nobody:nogroup "$A"
chmod 0700 "$V" "$A"
FALLBACK=/tmp/certagent-$VICTIM

# Processes this test starts besides $AGENT_PID: killed at exit, so that the namespace goes.
PIDS=()
kill_started() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null
    done
}
trap 'kill_started; cleanup' EXIT

# The victim, as su or cron leave them: no XDG_RUNTIME_DIR, no CERTAGENT_SOCKET.
as_victim() {
    env -u XDG_RUNTIME_DIR -u CERTAGENT_SOCKET HOME="$V" \
        setpriv --reuid="$VICTIM" --regid="$VICTIM" --clear-groups -- "$@"
}
# victim_import NAME [CERTCTL OPTIONS]: the victim imports the PFX with its password.
victim_import() {
    local name=$1
    shift
    as_victim "$CTL" "$@" import "$name" --pfx "$V/leaf.pfx" --password-file "$V/pw"
}

# A fake agent: nobody listening on a socket.  It answers the hello as the agent would and
# records every byte each connection sends (the hello and the request after it) until a
# connection says STOP.  listen NAME PATH; stop_listener PATH; $A/NAME.got is what it got.
# A python3 that nobody may run (not a shim under root's home).
NOBODY_PY=
for py in $(type -ap python3) /usr/bin/python3; do
    if as_nobody "$py" -c '' 2>/dev/null; then
        NOBODY_PY=$py
        break
    fi
done
[ -n "$NOBODY_PY" ] || { fail "no python3 that nobody may run"; finish; }
cat >"$T/listener.py" <<'EOF'
import os, socket, struct, sys
path, out = sys.argv[1], sys.argv[2]

def read_exact(c, n):
    data = b""
    while len(data) < n:
        more = c.recv(n - len(data))
        if not more:
            break
        data += more
    return data

def read_frame(c):
    head = read_exact(c, 4)
    if len(head) < 4 or head == b"STOP":
        return head
    return head + read_exact(c, struct.unpack(">I", head)[0])

# The agent's answer to certctl's first request (id 1): {"id": 1, "ok": true, "result": {}}.
body = b"\x83\xa2id\x01\xa2ok\xc3\xa6result\x80"
hello_ok = struct.pack(">I", len(body)) + body
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
os.chmod(path, 0o666)
s.listen(8)
print("ready", flush=True)
with open(out, "wb") as f:
    while True:
        c, _ = s.accept()
        hello = read_frame(c)
        if hello == b"STOP":
            break
        f.write(hello)
        if len(hello) > 4:
            c.sendall(hello_ok)
            f.write(read_frame(c))
        f.flush()
        c.close()
EOF
chmod 0644 "$T/listener.py"
LISTENER=
listen() {
    mkfifo "$A/$1.ready"
    as_nobody "$NOBODY_PY" "$T/listener.py" "$2" "$A/$1.got" >"$A/$1.ready" &
    LISTENER=$!
    PIDS+=("$LISTENER")
    read -r _ <"$A/$1.ready"
}
stop_listener() {
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"STOP")' "$1"
    wait "$LISTENER"
}
# received_nothing NAME: the fake agent NAME got no byte, so no password either.
received_nothing() {
    check "the fake agent $1 received nothing" test -f "$A/$1.got" -a ! -s "$A/$1.got"
    check "the password is nowhere in what $1 received" \
        sh -c "! grep -qF '$PASSWORD' '$A/$1.got'"
}
# start_as WHO LOG AGENT-ARGS...: an agent as nobody or the victim (agent-up as that user
# too, so that the agent can reach its notification socket); prints nothing, sets STARTED.
STARTED=
start_as() {
    local who=$1 log=$2
    shift 2
    if [ "$who" = nobody ]; then
        STARTED=$(as_nobody "$AGENT_UP" "$log" "$AGENT" --foreground --log-level debug "$@")
    else
        STARTED=$(as_victim "$AGENT_UP" "$log" "$AGENT" --foreground --log-level debug "$@")
    fi
}
# refused_start: after 'run 1 start_as ...' or 'run 1 $AGENT_UP ...': an agent that started
# after all (the check under test is missing) is stopped at exit.
refused_start() {
    if [ "$RC" -eq 0 ]; then
        PIDS+=("${STARTED:-$JOUT}")
    fi
}
stop_pid() {
    kill -TERM "$1"
    wait_gone "$1"
}

# --- The issue's attack: nobody's real certagent on the victim's fallback socket.
as_nobody mkdir -m 0755 "$FALLBACK"
echo '{"socket_mode": "0666"}' >"$A/config.json"
chown nobody:nogroup "$A/config.json"
if start_as nobody "$A/agent.log" --config "$A/config.json" --socket "$FALLBACK/certagent.sock" \
    --state-dir "$A/state"; then
    FAKE=$STARTED
    PIDS+=("$FAKE")
    run 3 victim_import stolen
    has "$FALLBACK"
    has "owned by nobody (uid 65534)"
    has "nothing was sent"
    lacks "cannot reach"
    run 3 as_victim "$CTL" status
    has "owned by nobody (uid 65534)"
    check "the fake agent saw no hello" sh -c "! grep -q 'says hello' '$A/agent.log'"
    check "the password is not in the fake agent's log or store" \
        sh -c "! grep -rqF '$PASSWORD' '$A'"
    # What the fake agent holds, asked by its owner (nobody trusts its own agent).
    run 0 as_nobody "$CTL" --socket "$FALLBACK/certagent.sock" list
    lacks "stolen"
    lacks "www.example.test"
    stop_pid "$FAKE"
else
    fail "nobody's agent did not start on $FALLBACK"
fi
# The same with a fake agent that answers the hello and records what it gets.
listen fallback "$FALLBACK/certagent.sock"
run 3 victim_import stolen
has "the socket's directory $FALLBACK is owned by nobody (uid 65534)"
stop_listener "$FALLBACK/certagent.sock"
received_nothing fallback
rm -f "$FALLBACK/certagent.sock"

# The victim's own agent refuses the planted directory too.
STARTED=
run 1 start_as victim "$V/agent.log"
refused_start
has "socket directory $FALLBACK is owned by nobody (uid 65534), not by us"
rm -rf "$FALLBACK"

# A planted symbolic link: refused by certctl and by the victim's agent.
as_nobody mkdir -m 0755 "$A/linked"
listen link "$A/linked/certagent.sock"
as_nobody ln -s "$A/linked" "$FALLBACK"
run 3 victim_import stolen
has "$FALLBACK is a symbolic link owned by nobody (uid 65534)"
stop_listener "$A/linked/certagent.sock"
received_nothing link
STARTED=
run 1 start_as victim "$V/agent.log"
refused_start
has "socket directory $FALLBACK is a symbolic link owned by nobody (uid 65534)"
rm -f "$FALLBACK"

# --- The legitimate use: the victim's own agent creates $FALLBACK 0700 and serves certctl.
if start_as victim "$V/agent.log"; then
    MINE=$STARTED
    PIDS+=("$MINE")
    check "the agent created $FALLBACK" test -d "$FALLBACK"
    check "$FALLBACK is the victim's" test "$(stat -c %u "$FALLBACK")" = "$VICTIM"
    check "$FALLBACK is 0700" test "$(mode_of "$FALLBACK")" = 700
    run 0 victim_import mine
    run 0 as_victim "$CTL" list
    has "mine"
    # A uid with no name is trusted as itself.
    run 0 as_victim "$CTL" --socket "$FALLBACK/certagent.sock" ping
    # Root trusts neither the victim's agent ...
    run 3 "$CTL" --socket "$FALLBACK/certagent.sock" ping
    has "owned by uid $VICTIM"
    # ... unless told it is the agent's account (a uid, as the victim has no name).
    run 0 env CERTAGENT_AGENT_USER="$VICTIM" "$CTL" --socket "$FALLBACK/certagent.sock" ping
    run 3 env CERTAGENT_AGENT_USER=no-such-user-$$ "$CTL" --socket "$FALLBACK/certagent.sock" ping
    has "CERTAGENT_AGENT_USER names no user: 'no-such-user-$$'"
    stop_pid "$MINE"
else
    fail "the victim's agent did not start: $OUT"
fi

# --- A socket owned by another user in the victim's own directory.
as_victim mkdir -m 0755 "$V/run-owner"
listen owner "$A/owner.sock"
mv "$A/owner.sock" "$V/run-owner/certagent.sock"
run 3 victim_import stolen --socket "$V/run-owner/certagent.sock"
has "the socket is owned by nobody (uid 65534), not by you (uid $VICTIM) or root"
stop_listener "$V/run-owner/certagent.sock"
received_nothing owner

# --- A directory writable by others (not sticky), the socket in it nobody's.
mkdir -m 0777 "$T/open"
chown "$VICTIM:$VICTIM" "$T/open"
chmod 0777 "$T/open"
listen open "$T/open/certagent.sock"
run 3 victim_import stolen --socket "$T/open/certagent.sock"
has "the socket's directory $T/open is writable by group or others (mode 0777)"
stop_listener "$T/open/certagent.sock"
received_nothing open

# --- The server runs as another user: nobody's listener, its socket file given to the
# victim in the victim's private directory, so that only SO_PEERCRED tells.
as_victim mkdir -m 0700 "$V/run-peer"
listen peer "$A/peer.sock"
mv "$A/peer.sock" "$V/run-peer/certagent.sock"
chown "$VICTIM:$VICTIM" "$V/run-peer/certagent.sock"
run 3 victim_import stolen --socket "$V/run-peer/certagent.sock"
has "runs as nobody (uid 65534), not as you (uid $VICTIM) or root"
has "nothing was sent"
stop_listener "$V/run-peer/certagent.sock"
received_nothing peer
# Named as the agent's account, the same server is talked to (the check is what refused):
# it gets the hello and the request.
listen peer2 "$A/peer2.sock"
mv "$A/peer2.sock" "$V/run-peer/certagent2.sock"
chown "$VICTIM:$VICTIM" "$V/run-peer/certagent2.sock"
run 3 env CERTAGENT_AGENT_USER=nobody setpriv --reuid="$VICTIM" --regid="$VICTIM" \
    --clear-groups -- "$CTL" --socket "$V/run-peer/certagent2.sock" ping
has "the agent closed the connection"
stop_listener "$V/run-peer/certagent2.sock"
check "with CERTAGENT_AGENT_USER=nobody the fake agent got the request" grep -q ping "$A/peer2.got"

# --- Finding 10: state directories.
# snapshot DIR: what is in DIR, with modes and owners.
snapshot() {
    find "$1" -printf '%P %m %u %s\n' | sort
}
mkdir -m 0777 "$T/badstate"
chown nobody:nogroup "$T/badstate"
chmod 0777 "$T/badstate"
as_nobody sh -c "echo planted >'$T/badstate/state.json'"
before=$(snapshot "$T/badstate")
STARTED=
run 1 "$AGENT_UP" "$T/bad.log" "$AGENT" --foreground --config "$CONFIG" --socket "$T/bad.sock" \
    --state-dir "$T/badstate"
refused_start
has "refusing the state directory $T/badstate: it is owned by nobody (uid 65534), mode 0777, not by the agent's user root (uid 0)"
check "the refused store is untouched" test "$(snapshot "$T/badstate")" = "$before"
check "no lock taken in the refused store" test ! -e "$T/badstate/.lock"

mkdir -m 0777 "$T/openstate"
chmod 0777 "$T/openstate"
run 1 "$AGENT_UP" "$T/open.log" "$AGENT" --foreground --config "$CONFIG" \
    --socket "$T/open.sock" --state-dir "$T/openstate"
refused_start
has "refusing the state directory $T/openstate: it is writable by group or others (owner root (uid 0), mode 0777)"
check "nothing created in the group-writable store" test -z "$(ls -A "$T/openstate")"

# A state directory the agent creates itself, and a private one made beforehand, are used.
start_agent
check "the agent created its state directory" test -d "$STATE"
run 0 ctl selfsigned web --dns www.example.test
stop_agent
mkdir -m 0700 "$T/private"
STATE=$T/private start_agent
run 0 ctl selfsigned web --dns www.example.test
stop_agent
finish
