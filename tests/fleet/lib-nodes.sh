# shellcheck shell=bash
# Agents of one fleet for the fleet tests: source after lib.sh, pebble.sh and lib-fleet.sh,
# once etcd_start and pebble_start ran and "$T/fleet.key" exists.
#
#   node_config N [DIRECTORY] [EXTRA-CLUSTER-JSON] [EXTRA-TOP-JSON]
#                       writes $T/N.json: its own responder ports, the CA "pebble" at
#                       DIRECTORY (default PEBBLE_DIRECTORY), the fleet "prod" as node N
#   node_start N        starts agent N (its own state dir and socket), waits until it joined;
#                       sets PID_N
#   node_kill N         kill -9 of agent N
#   node_ctl N ARGS...  certctl against agent N
#   serial_on N NAME    the serial of N's current version of NAME (empty when none)

# On a failure, what each node said (info and above), before the etcd and Pebble logs.
eval "_nodes_prev_exit=$(trap -p EXIT | sed -e 's/^trap -- //' -e 's/ EXIT$//')"
_nodes_prev_exit=${_nodes_prev_exit:-:}
_nodes_cleanup() {
    local rc=$? f
    if [ "${FAILURES:-0}" -ne 0 ]; then
        for f in "$T"/*.log; do
            [ -f "${f%.log}.json" ] || continue
            echo "--- node ${f##*/} (info and above, last 25 lines) ---"
            grep -v 'certagent\[debug\]' "$f" | tail -n 25
        done
    fi
    eval "$_nodes_prev_exit"
    return $rc
}
trap _nodes_cleanup EXIT

node_config() {
    /usr/bin/python3 - "$T/$1.json" "$1" "$T" "${2:-$PEBBLE_DIRECTORY}" "${3:-{\}}" \
        "${4:-{\}}" <<PY
import json, socket, sys
path, node, t, directory, extra, top = sys.argv[1:]
ports = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    ports.append(s.getsockname()[1])
    s.close()
cfg = {"http01_listen": ["127.0.0.1:%d" % ports[0]],
       "tls_alpn01_listen": ["127.0.0.1:%d" % ports[1]],
       "acme_cas": {"pebble": {"directory": directory, "trust": "$PEBBLE_TRUST"}},
       "default_ca": "pebble",
       "cluster": {"etcd": $ETCD_ENDPOINTS_JSON, "trust": "$ETCD_CA",
                   "client_cert_file": "$ETCD_CLIENT_CERT", "client_key_file": "$ETCD_CLIENT_KEY",
                   "fleet": "prod", "fleet_key_file": t + "/fleet.key", "node": node}}
cfg["cluster"].update(json.loads(extra))
cfg.update(json.loads(top))
json.dump(cfg, open(path, "w"), indent=2)
PY
}

_node_joined() { [ "$(grep -c "node '$1' joined fleet 'prod'" "$T/$1.log")" -gt "$2" ]; }

node_start() {
    local n=$1 pid joined
    joined=$(grep -c "node '$n' joined fleet 'prod'" "$T/$n.log" 2>/dev/null)
    pid=$("$AGENT_UP" "$T/$n.log" "$AGENT" --foreground --config "$T/$n.json" \
        --socket "$T/$n.sock" --state-dir "$T/$n-state" --log-level debug) ||
        { fail "agent $n did not start"; return 1; }
    HELD_PIDS="$HELD_PIDS $pid"
    eval "PID_$n=$pid"
    wait_for 30 _node_joined "$n" "${joined:-0}" || { fail "$n did not join"; return 1; }
}

node_kill() {
    local v="PID_$1"
    kill -9 "${!v}" 2>/dev/null
    wait_gone "${!v}"
    return 0
}

node_ctl() {
    local n=$1
    shift
    "$CTL" --socket "$T/$n.sock" "$@"
}

serial_on() {
    node_ctl "$1" --json show "$2" 2>/dev/null | /usr/bin/python3 -c \
        'import json,sys; print(json.load(sys.stdin).get("serial") or "")' 2>/dev/null
}

