#!/bin/bash
# Issue 14, findings 3 and 6: a peer that may only read (anyone who can connect to a 0666
# socket) must not make the root agent reach the network (probe, verify's AIA fetches), nor
# read its logs, metrics, trust store, CAs or accounts; members of operate_group may operate
# but not change; and nothing a peer says can forge a log line or reach a terminal as an
# escape sequence.
# shellcheck source=tests/security/lib-sec.sh
. "$(dirname "$0")/lib-sec.sh" "$@"
need_root
open_test_dir

# A local listener that records every connection (and the first line it is sent): the
# target of the probes and of the AIA URL.  It must see nothing from a refused request.
cat >"$T/listener.py" <<'PY'
import socket, sys, threading
log, portfile = sys.argv[1], sys.argv[2]
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(64)
with open(portfile + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(portfile + ".tmp", portfile)
lock = threading.Lock()
def serve(c):
    c.settimeout(5)
    try:
        first = c.recv(1024).split(b"\r\n")[0]
    except OSError:
        first = b""
    with lock, open(log, "a") as f:
        f.write("connection: %r\n" % first)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
PY
: >"$T/listener.log"
python3 "$T/listener.py" "$T/listener.log" "$T/listener.port" &
LISTENER=$!
trap 'kill "$LISTENER" 2>/dev/null; [ -z "${GRP:-}" ] || groupdel "$GRP" 2>/dev/null; cleanup' EXIT
wait_for 30 test -s "$T/listener.port" || fail "the listener did not start"
PORT=$(cat "$T/listener.port")
TARGET="tls://127.0.0.1:$PORT"

# A certificate whose issuer the agent does not have: verify would fetch it from its AIA
# caIssuers URL, on the listener.
cat >"$T/leaf.ext" <<EOF
subjectAltName = DNS:leaf.test
authorityInfoAccess = caIssuers;URI:http://127.0.0.1:$PORT/sec-rights-ca.der
EOF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/ca.key" \
    -out "$T/ca.pem" -subj "/CN=sec-rights CA" -days 2 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/leaf.key" \
    -out "$T/leaf.csr" -subj "/CN=leaf.test" 2>/dev/null
openssl x509 -req -in "$T/leaf.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -set_serial 2 -days 2 \
    -extfile "$T/leaf.ext" -out "$T/leaf.pem" 2>/dev/null
chmod 0644 "$T/leaf.pem"
check "test certificate made" test -s "$T/leaf.pem"

# no_control_bytes FILE: FILE holds no ESC, BEL or CR.
no_control_bytes() {
    ! LC_ALL=C grep -q $'[\x1b\x07\r]' "$1"
}
# no_forged_line FILE: no line of FILE begins with the text the forged hello puts after its
# newline.
no_forged_line() {
    ! grep -q '^\[forged\]' "$1"
}
# listener_quiet: the listener has seen no connection at all.
listener_quiet() {
    if [ -s "$T/listener.log" ]; then
        fail "$1: the listener saw: $(cat "$T/listener.log")"
    else
        pass
    fi
}

echo '{"socket_mode": "0666"}' >"$CONFIG"
start_agent
run 0 ctl selfsigned shared --dns shared.test

# read: anyone who can connect.
for args in "status" "list" "show shared" "version" "ping"; do
    # shellcheck disable=SC2086
    run 0 ctl_nobody $args
done
run 0 ctl_nobody list
has "shared"

# operate: refused to nobody, with the op, the right and who has it, before any work.
for args in "probe $TARGET" "verify --cert $T/leaf.pem" "logs" "metrics" "trust list" \
    "trust show" "ca list" "account show" "fleet status" "fleet nodes"; do
    # shellcheck disable=SC2086
    run 1 ctl_nobody $args
    has "E_DENIED"
    has "needs the operate right: root"
    has "operate_group"
done
run 1 ctl_nobody probe "$TARGET"
has "'probe' needs the operate right"
run 1 ctl_nobody logs
has "'logs' needs the operate right"
lacks "selfsigned"
# change: as before.
run 1 ctl_nobody selfsigned evil --dns evil.test
has "'selfsigned' needs the change right: root"
run 1 ctl_nobody trust add "$T/ca.pem"
has "needs the change right"
run 1 ctl_nobody fleet forget somenode
has "'fleet_forget' needs the change right"
check "refusals logged with user, uid and pid" \
    grep -q "refused 'probe' from nobody (uid $NOBODY_UID, pid [0-9]*): it needs the operate right" "$LOG"
check "the verify refusal is logged" grep -q "refused 'verify' from nobody" "$LOG"
listener_quiet "refused probe and verify"

# The listener would have seen them: root's probe connects, root's verify fetches.
run 4 ctl probe "$TARGET"
run 4 ctl verify --cert "$T/leaf.pem"
check "root's probe and AIA fetch reach the listener" \
    wait_for 30 grep -q "GET /sec-rights-ca.der" "$T/listener.log"
check "root's probe reached the listener" test "$(grep -c '^connection' "$T/listener.log")" -ge 2
run 0 ctl logs
has "refused 'probe' from nobody"

# operate_group (reloadable): a member may operate, not change; others still may only read.
GRP=certagent-op-$$
if ! groupadd "$GRP" 2>"$T/groupadd.err"; then
    echo "SKIP: cannot create a temporary group: $(cat "$T/groupadd.err")"
    stop_agent
    finish
fi
gid=$(getent group "$GRP" | cut -d: -f3)
as_operator() {
    setpriv --reuid=nobody --regid="$gid" --clear-groups -- "$CTL" --socket "$SOCK" "$@"
}
printf '{"socket_mode": "0666", "operate_group": "%s"}\n' "$GRP" >"$CONFIG"
kill -HUP "$AGENT_PID"
wait_log "configuration reloaded" || fail "no reload"
: >"$T/listener.log"
run 4 as_operator probe "$TARGET"
check "the operator's probe reached the listener" grep -q '^connection' "$T/listener.log"
run 0 as_operator logs --lines 5
run 0 as_operator metrics
run 0 as_operator trust list
run 0 as_operator ca list
run 0 as_operator status
for args in "selfsigned op --dns op.test" "remove shared" "export shared --format pem --out $T/op.pem" \
    "trust add $T/ca.pem" "deploy shared"; do
    # shellcheck disable=SC2086
    run 1 as_operator $args
    has "needs the change right: root"
    has "E_DENIED"
done
check "nothing exported" test ! -e "$T/op.pem"
run 1 ctl_nobody probe "$TARGET"
has "needs the operate right: root, the agent's user"
has "operate_group '$GRP'"
run 1 ctl_nobody logs
has "E_DENIED"
# A group that does not exist: the reload is refused and the running group stays.
printf '{"socket_mode": "0666", "operate_group": "no-such-group-%s"}\n' "$$" >"$CONFIG"
kill -HUP "$AGENT_PID"
wait_log "operate_group: group 'no-such-group-$$' does not exist" ||
    fail "a missing operate_group was not refused"
run 0 as_operator logs --lines 1

# Finding 6: a hello whose client string holds a newline, a forged line and escape
# sequences is logged as one line with those bytes escaped.  certctl sends a clean client
# string, so the hello is sent by hand: a 4-byte length and a msgpack map.
run 0 ctl --json version
proto=$(printf '%s' "$JOUT" | python3 -c 'import json, sys; print(json.load(sys.stdin)["proto"])')
cat >"$T/hello.py" <<'PY'
import socket, struct, sys
def s(b):
    return (bytes([0xa0 | len(b)]) if len(b) < 32 else bytes([0xd9, len(b)])) + b
client = b"sec-rights-forge\n[forged] certagent[error]: root gave nobody the key\x1b[31m\x1b]0;t\x07\r"
body = (b"\x83" + s(b"id") + b"\x01" + s(b"op") + s(b"hello") + s(b"args") +
        b"\x82" + s(b"proto") + bytes([int(sys.argv[2])]) + s(b"client") + s(client))
c = socket.socket(socket.AF_UNIX)
c.connect(sys.argv[1])
c.sendall(struct.pack(">I", len(body)) + body)
n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
reply = c.recv(n, socket.MSG_WAITALL)
sys.exit(0 if b"\xa2ok\xc3" in reply else 1)
PY
# The system's python3, which nobody may run (a per-user install, pyenv, may be private).
py=/usr/bin/python3
[ -x "$py" ] || py=python3
run 0 as_nobody "$py" "$T/hello.py" "$SOCK" "$proto"
wait_log "says hello as sec-rights-forge" 10 || fail "the forged hello was not logged"
check "the hello is one line" test "$(grep -c 'sec-rights-forge' "$LOG")" -eq 1
check "its newline is escaped" grep -qF 'sec-rights-forge\n[forged] certagent[error]: root gave' "$LOG"
check "its escape sequences are escaped" grep -qF 'the key\x1b[31m\x1b]0;t\x07\r' "$LOG"
check "no forged line" no_forged_line "$LOG"
check "no ESC, BEL or CR reaches the log" no_control_bytes "$LOG"
run 0 ctl logs --lines 1000
has 'sec-rights-forge\n[forged]'
check "nor certctl logs" no_control_bytes "$T/.out"
stop_agent
groupdel "$GRP"
GRP=
finish
