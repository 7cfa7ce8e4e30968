# shellcheck shell=bash
# Shared by the served-check tests, sourced after ../integration/lib.sh: free loopback
# ports, and the checks on the agent's served results.
# free_port: a loopback TCP port free right now, in $FREE_PORT (a server that then fails to
# bind it because another test took it meanwhile is started again on another one).
free_port() {
    # shellcheck disable=SC2034 # for the test that sources this file
    FREE_PORT=$(/usr/bin/python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
}

# served_is NAME URL RESULT [VERSION]: status --json says the last check of NAME's URL found
# RESULT (match, stale, unreachable), with no deploy grace running, compared with VERSION.
served_is() {
    ctl --json status | /usr/bin/python3 -c '
import json, sys
name, url, result = sys.argv[1:4]
version = int(sys.argv[4]) if len(sys.argv) > 4 else 0
j = json.load(sys.stdin)
for c in j["certificates"]:
    if c["name"] != name:
        continue
    for e in c["served"]:
        if e["url"] == url and e["result"] == result and not e["in_grace"] and \
                (version == 0 or e["current_version"] == version):
            sys.exit(0)
sys.exit(1)' "$@"
}

# warning_of NAME CODE: status --json has warning CODE for NAME; its message in $WARNING.
warning_of() {
    # shellcheck disable=SC2034 # for the test that sources this file
    WARNING=$(ctl --json status | /usr/bin/python3 -c '
import json, sys
name, code = sys.argv[1:3]
for c in json.load(sys.stdin)["certificates"]:
    for w in c["warnings"] if c["name"] == name else []:
        if w["code"] == code:
            print(w["message"])
            sys.exit(0)
sys.exit(1)' "$1" "$2")
}

# serial_of NAME: the current version's serial.
serial_of() {
    ctl --json show "$1" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["serial"])'
}

# no_warning NAME CODE: status has no warning CODE for NAME.
no_warning() {
    ! warning_of "$1" "$2"
}
