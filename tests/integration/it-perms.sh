#!/bin/bash
# Authorization: a user who may connect but is neither root, the agent's
# user nor in the socket's group can read but not change or export.
# Runs as root (as CI does); as another user it checks what it can.
. "$(dirname "$0")/lib.sh" "$@"

if [ "$(id -u)" -ne 0 ]; then
    start_agent
    # The agent's own user may change the store.
    run 0 ctl selfsigned mine --dns mine.test
    stop_agent
    echo "it-perms: not root: the other-user checks need root and were not run"
    finish
fi

chmod 0711 "$T"
# World-connectable socket, so that 'nobody' reaches the agent at all.
echo '{"socket_mode": "0666"}' >"$CONFIG"
start_agent
check "socket mode from config" test "$(mode_of "$SOCK")" = 666
run 0 ctl selfsigned shared --dns shared.test
as_nobody() {
    runuser -u nobody -- "$CTL" --socket "$SOCK" "$@"
}
run 0 as_nobody list
has "shared"
run 0 as_nobody show shared
run 1 as_nobody selfsigned evil --dns evil.test
has "E_DENIED"
run 1 as_nobody remove shared
has "E_DENIED"
run 1 as_nobody export shared --out /tmp/certagent-stolen-$$.pem
has "E_DENIED"
check "nothing exported" test ! -e /tmp/certagent-stolen-$$.pem
check "refusal logged with the user" grep -q "refused 'remove' from nobody" "$LOG"
run 0 ctl show shared
stop_agent

# Default mode 0660: 'nobody' cannot even connect (exit 3).
echo '{}' >"$CONFIG"
start_agent
check "default socket mode 0660" test "$(mode_of "$SOCK")" = 660
run 3 as_nobody list
# Keys are 0600 and owned by the agent's user.
key=$(readlink -f "$STATE/live/shared/privkey.pem")
check "key 0600" test "$(mode_of "$key")" = 600
check "key owned by root" test "$(stat -c %u "$key")" = 0
run 1 runuser -u nobody -- cat "$key"
stop_agent
finish
