#!/bin/bash
# Life cycle: readiness, SIGHUP reload, bad configs, --daemon with a pid file,
# a second agent, SIGTERM.
. "$(dirname "$0")/lib.sh" "$@"

# A config with a wrong type stops the start with a message naming the key.
echo '{"log_level": 3}' >"$CONFIG"
run 1 "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE"
has '$.log_level: expected a string, got a number'
echo '{"selfsigned_days": 0}' >"$CONFIG"
run 1 "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE"
has '$.selfsigned_days'
# An explicit config that does not exist is an error; unknown arguments are usage errors.
run 1 "$AGENT" --foreground --config "$T/missing.json" --socket "$SOCK" --state-dir "$STATE"
has "does not exist"
run 2 "$AGENT" --bogus
has "unknown argument"
run 2 "$AGENT" --daemon
has "--pid-file"
run 0 "$AGENT" --version
has "26.1.0"

# Unknown keys are warnings; the agent starts.
echo '{"log_level": "info", "colour": "blue"}' >"$CONFIG"
start_agent
check "unknown key warned" grep -q 'colour: unknown key' "$LOG"

# SIGHUP: reloadable keys take effect (selfsigned_days), others are reported.
printf '{"selfsigned_days": 12, "socket_mode": "0600"}' >"$CONFIG"
kill -HUP "$AGENT_PID"
run 0 ctl selfsigned reload-test --dns r.example.test
run 0 ctl --json show reload-test
json "j['not_after'] - j['not_before'] == 12 * 86400 + 300"
check "restart-only key reported" grep -q 'socket_mode changed; that takes effect at the next restart' "$LOG"
check "reload logged" grep -q 'configuration reloaded' "$LOG"

# A broken config on reload keeps the running one.
echo '{"log_level": ' >"$CONFIG"
kill -HUP "$AGENT_PID"
run 0 ctl selfsigned reload-test2 --dns r2.example.test
run 0 ctl --json show reload-test2
json "j['not_after'] - j['not_before'] == 12 * 86400 + 300"
check "failed reload logged" grep -q 'reload failed, keeping the running configuration' "$LOG"
echo '{}' >"$CONFIG"

# windows_store on Linux: the reload warns that it is ignored and why; versions are stored
# and deployed as without it (no warning, nothing recorded for a store).
printf '{"windows_store": "MY"}' >"$CONFIG"
kill -HUP "$AGENT_PID"
check "windows_store ignored on Linux" wait_log "windows_store is ignored: the Windows certificate store exists only on Windows" 10
run 0 ctl selfsigned winstore --dns w.example.test
lacks "warning"
run 0 ctl --json show winstore
json "j['version'] == 1 and j['windows_store'] == {}"
echo '{}' >"$CONFIG"
kill -HUP "$AGENT_PID"

# A second agent on the same socket refuses and leaves the live one alone.
run 1 "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$T/state2"
has "already listening on $SOCK"
run 0 ctl ping

# SIGTERM: exit 0, socket removed.
kill -TERM "$AGENT_PID"
wait_gone "$AGENT_PID"
AGENT_PID=
check "socket removed" test ! -e "$SOCK"
check "stop logged" grep -q 'stopped' "$LOG"

# --daemon: returns once listening, writes the pid file, detaches.
run 0 "$AGENT" --daemon --pid-file "$T/agent.pid" --config "$CONFIG" --socket "$SOCK" \
    --state-dir "$STATE"
check "pid file written" test -s "$T/agent.pid"
AGENT_PID=$(cat "$T/agent.pid")
check "daemon alive" kill -0 "$AGENT_PID"
run 0 ctl --json list
json "j['count'] == 3"
# A second daemon fails with the reason on stderr, exit 1.
run 1 "$AGENT" --daemon --pid-file "$T/agent2.pid" --config "$CONFIG" --socket "$SOCK" \
    --state-dir "$STATE"
has "already"
stop_agent
check "pid file removed" test ! -e "$T/agent.pid"
finish
