# shellcheck shell=bash
# Helpers of the fleet view tests (it-fleet-view.sh, it-fleet-quorum.sh), sourced after
# lib.sh and lib-fleet.sh: more agents, records put into etcd, what a node's status says.
#
#   mkcert NAME DAYS                  self-signed $T/NAME.pem and $T/NAME.key
#   put_record NAME VERSION CERT KEY [--acme JSON]  the fleet's record of NAME in etcd (fleet prod)
#   cluster_config FILE NODE [EXTRA]  an agent config joining fleet prod
#   node_start NODE [CONFIG]          another agent: $T/NODE.sock, $T/NODE-state, $T/NODE.log
#   node_ctl NODE ARGS...             certctl against it
#   node_pid NODE                     its pid
#   has_serial NAME PEM [SOCKET]      NAME's current version is the certificate in PEM
#   warns NODE NAME CODE              certctl status of NODE shows CODE on NAME
HERE=$(cd "$(dirname "$0")" && pwd)

mkcert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$2" \
        -subj "/CN=$1.example.test" -addext "subjectAltName=DNS:$1.example.test" \
        -keyout "$T/$1.key" -out "$T/$1.pem" 2>/dev/null
}

put_record() {
    /usr/bin/python3 "$HERE/fleet-record.py" "$T/fleet.key" prod "$1" "$2" "$3" "$4" "${@:5}" \
        >"$T/record.json" || { fail "fleet-record.py failed"; return 1; }
    etcdctl_ put "/certagent/prod/certs/$1/current" <"$T/record.json" >/dev/null ||
        fail "etcdctl put of $1 failed"
}

cluster_config() {
    cat >"$1" <<JSON
{"cluster": {"etcd": $ETCD_ENDPOINTS_JSON, "trust": "$ETCD_CA",
             "client_cert_file": "$ETCD_CLIENT_CERT", "client_key_file": "$ETCD_CLIENT_KEY",
             "fleet": "prod", "fleet_key_file": "$T/fleet.key", "node": "$2"${3:-}}}
JSON
}

node_start() {
    local pid
    pid=$("$AGENT_UP" "$T/$1.log" "$AGENT" --foreground --config "${2:-$T/$1.json}" \
        --socket "$T/$1.sock" --state-dir "$T/$1-state" --log-level debug) ||
        { fail "agent $1 did not start"; return 1; }
    eval "NODE_PID_$1=$pid"
    HELD_PIDS="$HELD_PIDS $pid"
}

node_pid() {
    local v="NODE_PID_$1"
    printf '%s' "${!v:-}"
}

node_ctl() {
    local n=$1
    shift
    "$CTL" --socket "$T/$n.sock" "$@"
}

serial_of() {
    "$CTL" --socket "${2:-$SOCK}" --json show "$1" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
print((json.load(sys.stdin).get("serial") or "").replace(":", "").lstrip("0").upper())'
}

has_serial() {
    [ "$(serial_of "$1" "${3:-}")" = "$(openssl x509 -noout -serial -in "$2" | sed 's/serial=//' |
        sed 's/^0*//' | tr a-f A-F)" ]
}

# warns_on SOCKET NAME CODE: certctl --json status on SOCKET shows CODE on certificate NAME.
warns_on() {
    "$CTL" --socket "$1" --json status 2>/dev/null | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
c = [c for c in j["certificates"] if c["name"] == sys.argv[1]]
sys.exit(0 if c and any(w["code"] == sys.argv[2] for w in c[0]["warnings"]) else 1)' "$2" "$3"
}
warns() {
    warns_on "$T/$1.sock" "$2" "$3"
}
