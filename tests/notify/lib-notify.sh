# shellcheck shell=bash
# Shared by the notify tests (sourced after tests/integration/lib.sh): the test's own
# SMTP server (smtpd.py, aiosmtpd) and webhook receivers (hookd.py) on free loopback
# ports, a TLS certificate for them, and readers of what they received.
NOTIFY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=/usr/bin/python3

# serve NAME SCRIPT ARGS...: starts a server in the background, waits for its "READY PORT",
# sets PORT; the pid is in $T/NAME.pid (killed at exit).
serve() {
    local name=$1 script=$2
    shift 2
    "$PY" -u "$NOTIFY_DIR/$script" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
    echo $! >"$T/$name.pid"
    HELD_PIDS="$HELD_PIDS $!"
    wait_for 20 grep -q '^READY ' "$T/$name.out" || {
        fail "$name did not start: $(cat "$T/$name.err")"
        exit 1
    }
    # shellcheck disable=SC2034 # the port is for the test that sources this file
    PORT=$(sed -n 's/^READY \([0-9]*\)$/\1/p' "$T/$name.out")
}

# unserve NAME: stops a server started by serve and waits until it is gone.
unserve() {
    local pid
    pid=$(cat "$T/$1.pid")
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

# make_tls: a self-signed certificate for 127.0.0.1 and localhost in $T/tls/srv.pem, .key.
make_tls() {
    mkdir -p "$T/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=localhost" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
        -keyout "$T/tls/srv.key" -out "$T/tls/srv.pem" 2>/dev/null || {
        fail "openssl could not make the test certificate"
        exit 1
    }
}

# mails DIR: the number of messages delivered to DIR.
mails() {
    find "$1" -name '*.eml' 2>/dev/null | wc -l
}

# mail_count DIR N: at least N messages were delivered to DIR.
mail_count() {
    [ "$(mails "$1")" -ge "$2" ]
}

# mail_with DIR TEXT: a delivered message whose subject or a decoded part holds TEXT
# (prints its file).
mail_with() {
    "$PY" - "$1" "$2" <<'PY'
import email, email.policy, glob, sys
for f in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    m = email.message_from_binary_file(open(f, "rb"), policy=email.policy.default)
    text = str(m["Subject"])
    for part in m.walk():
        if not part.is_multipart():
            text += "\n" + part.get_content()
    if sys.argv[2] in text:
        print(f)
        sys.exit(0)
sys.exit(1)
PY
}

# mails_with DIR TEXT: how many delivered messages hold TEXT in their subject.
mails_with() {
    "$PY" - "$1" "$2" <<'PY'
import email, email.policy, glob, sys
n = 0
for f in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    m = email.message_from_binary_file(open(f, "rb"), policy=email.policy.default)
    n += sys.argv[2] in str(m["Subject"])
print(n)
PY
}

# mails_body_with DIR TEXT: how many delivered messages hold TEXT in their text part.
mails_body_with() {
    "$PY" - "$1" "$2" <<'PY'
import email, email.policy, glob, sys
n = 0
for f in sorted(glob.glob(sys.argv[1] + "/*.eml")):
    m = email.message_from_binary_file(open(f, "rb"), policy=email.policy.default)
    n += sys.argv[2] in m.get_body(("plain",)).get_content()
print(n)
PY
}

# hook_with DIR TEXT: a webhook body in DIR holds TEXT (prints its file).
hook_with() {
    grep -lF -- "$2" "$1"/*.json 2>/dev/null | head -n 1 | grep .
}
