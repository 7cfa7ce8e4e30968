#!/bin/bash
# certctl basics: unreachable agent, usage errors, version, status, list, ping, --json.
. "$(dirname "$0")/lib.sh" "$@"

# Agent not running: exit 3, and the message says where certctl looked and how to start it.
run 3 ctl status
has "$SOCK"
has "cannot reach certagent"
has "Start the agent"
run 3 env CERTAGENT_SOCKET="$T/nowhere.sock" "$CTL" list
has "$T/nowhere.sock"

# Usage errors: exit 2, before any connection.
run 2 "$CTL"
run 2 "$CTL" frobnicate
has "unknown command 'frobnicate'"
run 2 ctl selfsigned web
has "give at least one --dns"
run 2 ctl selfsigned --dns a.example
has "missing NAME"
run 2 ctl selfsigned web --dns a.example --days abc
has "--days takes 1 to 3650"
run 2 ctl import web
has "give either --cert FILE, --pfx FILE or --from-store THUMBPRINT"
run 2 ctl import web --pfx "$T/x.pfx" --from-store 00112233445566778899AABBCCDDEEFF00112233
has "give either --cert FILE, --pfx FILE or --from-store THUMBPRINT"
run 2 ctl import web --from-store 00112233445566778899AABBCCDDEEFF00112233 --key "$T/x.key"
has "--from-store takes the key from the store"
run 2 ctl import web --cert "$T/x.pem" --store MY
has "--store goes with --from-store"
run 2 ctl import web --cert "$T/does-not-exist.pem"
has "does-not-exist.pem"
run 2 ctl export web
has "missing --out"
run 2 ctl rollback web --to 0
run 2 ctl --bogus status
run 0 "$CTL" --help
has "selfsigned"
has "Exit codes"
run 0 "$CTL" help import
has "--password-file"
run 0 "$CTL" import --help
has "--pfx FILE"

# --json: every run prints exactly one JSON object on stdout, errors included
# ({"ok": false, "error": {code, message, detail}}).  one_object [CODE]: the last
# stdout is one JSON object (json.load refuses trailing data); with CODE, an error of that code.
one_object() {
    if printf '%s' "$JOUT" | /usr/bin/python3 -c '
import json, sys
o = json.load(sys.stdin)
assert isinstance(o, dict), "not an object"
if sys.argv[1]:
    assert o.get("ok") is False and o["error"]["code"] == sys.argv[1], o
    assert isinstance(o["error"]["message"], str) and o["error"]["message"], o
else:
    assert "error" not in o, o
' "${1:-}" 2>"$T/.py"; then
        pass
    else
        fail "not one JSON object${1:+ with error $1}: $(tail -n 1 "$T/.py"); output: $OUT"
    fi
}
# Each command line that reaches the agent, valid as far as certctl can tell.
EVERY=(
    "status" "status --check" "list" "show web" "selfsigned web --dns web.example"
    "import imp --cert $DATA/leaf.pem --key $DATA/leaf.key" "export web --out $T/web.pem"
    "remove web" "rollback web" "request web --dns web.example" "set web" "deploy web"
    "renew web" "revoke web" "ca list" "ca add x --directory https://127.0.0.1:1/dir"
    "ca remove x" "account show" "account register --agree-tos" "version" "ping"
    "trust list" "trust show" "trust add $DATA/root.pem" "trust remove 0011223344556677"
    "verify web" "probe https://127.0.0.1:1/" "metrics" "logs"
)
# The agent is down: exit 3 and E_UNAVAILABLE naming the socket, for every command.
for c in "${EVERY[@]}"; do
    # shellcheck disable=SC2086 # a command line
    run 3 ctl --json $c
    one_object E_UNAVAILABLE
done
run 3 ctl --json status
json "'$SOCK' in j['error']['detail'] and j['error']['sockets'][0]['path'] == '$SOCK' and 'certagent' in j['error']['message']"
run 3 ctl status --check --json
one_object E_UNAVAILABLE
lacks "CERTAGENT UNKNOWN"
# Bad options and arguments: exit 2 and E_USAGE, for every command (help included).
for c in $("$CTL" --json help | /usr/bin/python3 -c 'import json,sys; print(" ".join(c["name"] for c in json.load(sys.stdin)["commands"]))'); do
    run 2 ctl --json "$c" --no-such-option
    one_object E_USAGE
done
for c in "" "--no-such-option status" "frobnicate" "help frobnicate" "--socket" "selfsigned web"; do
    # shellcheck disable=SC2086 # a command line
    run 2 "$CTL" --json $c
    one_object E_USAGE
done
run 2 "$CTL" --json import web --cert "$T/does-not-exist.pem"
json "j['error']['code'] == 'E_NOT_FOUND' and 'does-not-exist.pem' in j['error']['message']"
run 2 "$CTL" --json selfsigned web
json "j['error']['code'] == 'E_USAGE' and '--dns' in j['error']['message'] and j['error']['detail'].startswith('certctl selfsigned NAME')"
# help and --version need no agent; help is a command with its own help.
for c in "help" "help import" "help help" "import --help" "--help" "--version"; do
    # shellcheck disable=SC2086 # a command line
    run 0 "$CTL" --json $c
    one_object
done
run 0 "$CTL" --json help import
json "j['commands'][0]['name'] == 'import' and '--pfx FILE' in j['commands'][0]['options']"
run 0 "$CTL" help help
has "usage: certctl [--socket PATH] [--json] help [COMMAND]"
run 2 "$CTL" help frobnicate
has "unknown command 'frobnicate'"

# The status header counts against warn_days, not a fixed 30.
echo '{"warn_days": 60}' >"$CONFIG"
start_agent

run 0 ctl version
has "certctl   26.1.0"
has "certagent 26.1.0"
has "protocol 1"
run 0 ctl --json version
json "j['certctl'] == '26.1.0' and j['agent'] == '26.1.0' and j['proto'] == 1"

run 0 ctl ping
has "certagent answers"

run 0 ctl status
has "certagent 26.1.0"
has "store:        $STATE"
has "certificates: 0"
run 0 ctl status --json
json "j['count'] == 0 and j['state_dir'] == '$STATE' and j['certificates'] == [] and j['uptime_seconds'] >= 0"

run 0 ctl list
has "The store is empty"
has "'certctl request'"
has "'certctl import'"
has "'certctl selfsigned'"
run 0 ctl status
has "'certctl request'"
run 0 ctl --json list
json "j == {'count': 0, 'certificates': []}"

# The socket from the environment.
run 0 env CERTAGENT_SOCKET="$SOCK" "$CTL" ping

# Errors from the agent: exit 1, message and code; JSON error object with --json.
run 1 ctl show nothing-here
has "no certificate named 'nothing-here'"
has "E_NOT_FOUND"
run 1 ctl --json show nothing-here
json "j['ok'] == False and j['error']['code'] == 'E_NOT_FOUND'"
run 1 ctl remove nothing-here
has "E_NOT_FOUND"
run 1 ctl show '../etc'
has "E_BAD_INPUT"
# Refusals of bad input are logged at info with who asked, not at warn (the client was told).
run 1 ctl remove nothing-here
run 1 ctl import mismatch --cert "$DATA/leaf.pem" --key "$DATA/other.key"
run 0 ctl logs --level info
has "remove of 'nothing-here' failed: no certificate named 'nothing-here' [E_NOT_FOUND]"
has "import of 'mismatch' failed: private key does not match the certificate [E_BAD_INPUT]"
run 0 ctl logs --level warn
lacks "of 'nothing-here' failed"
lacks "of 'mismatch' failed"

# --json with the agent up: one object for every command, whether it works or not.
run 0 ctl selfsigned web --dns web.example --days 45
run 0 ctl status
has "certificates: 1, 1 expiring within 60 days (warn_days)"
lacks "within 30 days"
run 0 ctl --json status
json "j['warn_days'] == 60 and j['expiring'] == 1 and j['expiring_30d'] == 0"
run 0 ctl selfsigned web --dns web.example
closed_port
for c in "${EVERY[@]}" "status --check" "logs --lines 1" "show nothing-here" \
    "export nothing-here --out $T/n.pem" "remove nothing-here" "rollback nothing-here" \
    "deploy nothing-here" "renew nothing-here" "revoke nothing-here" \
    "verify nothing-here" "probe https://127.0.0.1:$CLOSED_PORT/" "request n --dns n.example --ca nosuch"; do
    # shellcheck disable=SC2086 # a command line
    ctl --json $c >"$T/.out" 2>"$T/.err"
    RC=$?
    JOUT=$(cat "$T/.out")
    OUT=$(cat "$T/.out" "$T/.err")
    case $RC in
    0 | 4) one_object ;;
    1) one_object "$(printf '%s' "$JOUT" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["error"]["code"])' 2>/dev/null)" ;;
    *) fail "'ctl --json $c' exited $RC; output: $OUT" ;;
    esac
done
for c in show export remove rollback deploy renew revoke verify; do
    args=""
    [ "$c" != export ] || args="--out $T/n.pem"
    # shellcheck disable=SC2086 # options
    run 1 ctl --json "$c" nothing-here $args
    one_object E_NOT_FOUND
done
run 0 ctl selfsigned web --dns web.example
ctl --json status --check >"$T/.out" 2>"$T/.err"
RC=$?
JOUT=$(cat "$T/.out")
OUT=$(cat "$T/.out" "$T/.err")
json "j['check']['exit_code'] == j['health_code'] == $RC and j['check']['line'].startswith('CERTAGENT ') and 'certificates=' in j['check']['line']"
run 0 ctl --json logs --lines 2
json "len(j['lines']) == 2 and all('text' in l for l in j['lines'])"
run 0 ctl --json metrics
json "j['format'] == 'prometheus' and 'certagent_' in j['text']"
run 0 ctl --json show web
json "j['live_dir'] == '$STATE/live/web'"
run 0 ctl show web
has "files:        $STATE/live/web/"

stop_agent
check "socket removed after SIGTERM" test ! -e "$SOCK"
finish
