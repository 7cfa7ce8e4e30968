# shellcheck shell=bash
# A real three-member etcd cluster (Debian's etcd-server) for the fleet tests, on free
# loopback ports, TLS on the client and the peer URLs, client certificates required.
# Source it after tests/integration/lib.sh (which provides $T, fail, pass and the cleanup
# trap; this file chains its own cleanup in front of it):
#
#   . "$(dirname "$0")/../integration/lib.sh" "$@"
#   . "$(dirname "$0")/lib-fleet.sh"
#   etcd_start            three members m1 m2 m3, returns once the cluster is healthy
#
# Exported after etcd_start:
#   ETCD_CA               PEM of the test CA (the agents' cluster.trust)
#   ETCD_CLIENT_CERT/KEY  a client certificate of that CA (cluster.client_cert_file/_key_file)
#   ETCD_ENDPOINTS        https://127.0.0.1:P1,https://127.0.0.1:P2,https://127.0.0.1:P3
#   ETCD_ENDPOINTS_JSON   the same as a JSON array (for cluster.etcd)
#   ETCD_CLIENT_PORT_m1.. each member's client port; ETCD_PID_m1..: its pid
# etcd_stop NAME / etcd_resume NAME: stop one member (SIGTERM) and start it again on its data.
# etcdctl_ ARGS...: etcdctl v3 against the whole cluster with the client certificate.
# etcd_leader: the name of the current leader (m1, m2 or m3).
# With agents named in $NODES whose state is $T/NODE-state (and tests/acme/pebble.sh):
#   chains_ok PREFIX K  on every node, live/PREFIX1..PREFIXK/fullchain.pem verifies against
#                       Pebble's root
#   deployed_own N      node N's deploy targets ($T/deploy-N/NAME) hold its live NAME

ETCD_DIR=$T/etcd
ETCD_MEMBERS="m1 m2 m3"
mkdir -p "$ETCD_DIR"

eval "_etcd_prev_exit=$(trap -p EXIT | sed -e 's/^trap -- //' -e 's/ EXIT$//')"
_etcd_prev_exit=${_etcd_prev_exit:-:}
_etcd_cleanup() {
    local rc=$? m pid
    if [ "${FAILURES:-0}" -ne 0 ] || [ -n "${KEEP_TEST_DIR:-}" ]; then
        for m in $ETCD_MEMBERS; do
            [ -s "$ETCD_DIR/$m.log" ] || continue
            echo "--- etcd $m ($ETCD_DIR/$m.log) ---"
            tail -n 5 "$ETCD_DIR/$m.log"
        done
    fi
    for m in $ETCD_MEMBERS; do
        pid=$(_etcd_var ETCD_PID "$m")
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    done
    for m in $ETCD_MEMBERS; do
        pid=$(_etcd_var ETCD_PID "$m")
        [ -n "$pid" ] && wait "$pid" 2>/dev/null
    done
    eval "$_etcd_prev_exit"
    return $rc
}
trap _etcd_cleanup EXIT

_etcd_var() {
    local v="$1_$2"
    printf '%s' "${!v:-}"
}

# _etcd_pki: test CA, one server certificate for 127.0.0.1 (every member uses it, as client
# and peer), one client certificate.
_etcd_pki() {
    local d=$ETCD_DIR
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=certagent test etcd CA $$" -keyout "$d/ca.key" -out "$d/ca.pem" \
        -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null || return 1
    _etcd_leaf server 'subjectAltName=IP:127.0.0.1,DNS:localhost' 'extendedKeyUsage=serverAuth,clientAuth' || return 1
    _etcd_leaf client 'subjectAltName=DNS:certagent-client' 'extendedKeyUsage=clientAuth'
}

_etcd_leaf() {
    local d=$ETCD_DIR
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null &&
        openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
            -days 2 -out "$d/$1.pem" -extfile <(printf '%s\n' "$2" "$3" \
                'basicConstraints=critical,CA:FALSE' \
                'keyUsage=critical,digitalSignature') 2>/dev/null &&
        chmod 600 "$d/$1.key"
}

# _etcd_free_ports N: N distinct free loopback TCP ports, held together, then released.
_etcd_free_ports() {
    /usr/bin/python3 - "$1" <<'PY'
import socket, sys
held = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
}

# _etcd_run NAME STATE: starts member NAME (STATE new or existing).
_etcd_run() {
    local m=$1 d=$ETCD_DIR cport pport
    cport=$(_etcd_var ETCD_CLIENT_PORT "$m")
    pport=$(_etcd_var ETCD_PEER_PORT "$m")
    etcd --name "$m" --data-dir "$d/$m" \
        --listen-client-urls "https://127.0.0.1:$cport" \
        --advertise-client-urls "https://127.0.0.1:$cport" \
        --listen-peer-urls "https://127.0.0.1:$pport" \
        --initial-advertise-peer-urls "https://127.0.0.1:$pport" \
        --initial-cluster "$_ETCD_INITIAL" --initial-cluster-state "$2" \
        --initial-cluster-token "certagent-test-$$" \
        --cert-file "$d/server.pem" --key-file "$d/server.key" \
        --trusted-ca-file "$d/ca.pem" --client-cert-auth \
        --peer-cert-file "$d/server.pem" --peer-key-file "$d/server.key" \
        --peer-trusted-ca-file "$d/ca.pem" --peer-client-cert-auth \
        --heartbeat-interval 50 --election-timeout 500 \
        --log-outputs stderr --logger zap >>"$d/$m.log" 2>&1 &
    eval "ETCD_PID_$m=$!"
}

etcdctl_() {
    ETCDCTL_API=3 etcdctl --endpoints "$ETCD_ENDPOINTS" --cacert "$ETCD_CA" \
        --cert "$ETCD_CLIENT_CERT" --key "$ETCD_CLIENT_KEY" --dial-timeout 2s \
        --command-timeout 5s "$@"
}

# _etcd_healthy: every member answers its health check.
_etcd_healthy() {
    etcdctl_ endpoint health >/dev/null 2>&1
}

etcd_start() {
    _etcd_pki || { fail "etcd_start: openssl could not make the test PKI"; return 1; }
    ETCD_CA=$ETCD_DIR/ca.pem
    ETCD_CLIENT_CERT=$ETCD_DIR/client.pem
    ETCD_CLIENT_KEY=$ETCD_DIR/client.key
    export ETCD_CA ETCD_CLIENT_CERT ETCD_CLIENT_KEY
    local attempt ok='' m ports i=0 p
    for attempt in 1 2 3; do
        read -r -a ports <<<"$(_etcd_free_ports 6)"
        _ETCD_INITIAL='' ETCD_ENDPOINTS='' ETCD_ENDPOINTS_JSON=''
        i=0
        for m in $ETCD_MEMBERS; do
            eval "ETCD_CLIENT_PORT_$m=${ports[$i]} ETCD_PEER_PORT_$m=${ports[$((i + 1))]}"
            i=$((i + 2))
            p=$(_etcd_var ETCD_PEER_PORT "$m")
            _ETCD_INITIAL="${_ETCD_INITIAL:+$_ETCD_INITIAL,}$m=https://127.0.0.1:$p"
            p=$(_etcd_var ETCD_CLIENT_PORT "$m")
            ETCD_ENDPOINTS="${ETCD_ENDPOINTS:+$ETCD_ENDPOINTS,}https://127.0.0.1:$p"
            # shellcheck disable=SC2089 # JSON text, not words for a command line
            ETCD_ENDPOINTS_JSON="${ETCD_ENDPOINTS_JSON:+$ETCD_ENDPOINTS_JSON, }\"https://127.0.0.1:$p\""
        done
        ETCD_ENDPOINTS_JSON="[$ETCD_ENDPOINTS_JSON]"
        # shellcheck disable=SC2090
        export ETCD_ENDPOINTS ETCD_ENDPOINTS_JSON
        for m in $ETCD_MEMBERS; do
            rm -rf "${ETCD_DIR:?}/$m"
            _etcd_run "$m" new
        done
        if wait_for 30 _etcd_healthy; then
            ok=1
            break
        fi
        echo "etcd_start: attempt $attempt: the cluster did not become healthy"
        for m in $ETCD_MEMBERS; do
            p=$(_etcd_var ETCD_PID "$m")
            kill -TERM "$p" 2>/dev/null
            wait "$p" 2>/dev/null
            eval "ETCD_PID_$m="
        done
    done
    [ -n "$ok" ] || { fail "etcd_start: no healthy cluster (logs in $ETCD_DIR)"; return 1; }
}

# etcd_stop NAME: stops one member and waits until it is gone.
etcd_stop() {
    local pid
    pid=$(_etcd_var ETCD_PID "$1")
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    eval "ETCD_PID_$1="
}

# etcd_resume NAME: starts a stopped member again on its data directory.
etcd_resume() {
    _etcd_run "$1" existing
}

# etcd_leader: prints the name of the member that leads now.
etcd_leader() {
    etcdctl_ endpoint status -w json 2>/dev/null | /usr/bin/python3 -c '
import json, sys, urllib.parse
st = json.load(sys.stdin)
for s in st:
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
        print(s["Endpoint"])
' | while read -r ep; do
        for m in $ETCD_MEMBERS; do
            [ "$ep" = "https://127.0.0.1:$(_etcd_var ETCD_CLIENT_PORT "$m")" ] && echo "$m"
        done
    done
}

# etcd_requests: the requests the members served so far (their gRPC counters, which count
# the JSON gateway's calls too), for the benchmarks.
etcd_requests() {
    local m total=0 n
    for m in $ETCD_MEMBERS; do
        n=$(curl -s --cacert "$ETCD_CA" --cert "$ETCD_CLIENT_CERT" --key "$ETCD_CLIENT_KEY" \
            "https://127.0.0.1:$(_etcd_var ETCD_CLIENT_PORT "$m")/metrics" |
            awk '/^grpc_server_started_total/ {s += $2} END {printf "%d", s}')
        total=$((total + n))
    done
    echo "$total"
}

chains_ok() {
    local n i
    for n in $NODES; do
        for i in $(seq 1 "$2"); do
            pebble_verify "$T/$n-state/live/$1$i/fullchain.pem" || return 1
        done
    done
}

deployed_own() {
    local n=$1 f
    for f in "$T/deploy-$n"/*; do
        cmp -s "$f/fullchain.pem" "$T/$n-state/live/$(basename "$f")/fullchain.pem" || return 1
    done
}
