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

stop_agent
check "socket removed after SIGTERM" test ! -e "$SOCK"
finish
