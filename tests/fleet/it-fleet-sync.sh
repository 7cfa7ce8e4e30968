#!/bin/bash
# Fleet sync through a real three-member etcd cluster (TLS, client certificates): agents
# join the fleet, take each record of a shared certificate into their store (source fleet,
# the same serial), at start (catch-up) and within seconds (watch); a record under a wrong
# fleet key, one copied from another name and one cut short are refused with a log line
# naming the certificate and change nothing; an older record never replaces a newer local
# version, one that expires in the same second does; a node whose watch missed events that
# etcd compacted away reads the keys again; bad cluster configs are refused at start naming the key.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-fleet.sh"
HERE=$(cd "$(dirname "$0")" && pwd)

etcd_start || finish

# put_record NAME VERSION CERT KEY [fleet-record.py options]: the record, written as etcd's
# /certagent/prod/certs/NAME/current (under FLEET_KEY unless KEYFILE is set).
put_record() {
    local name=$1 version=$2 cert=$3 key=$4
    shift 4
    /usr/bin/python3 "$HERE/fleet-record.py" "${KEYFILE:-$T/fleet.key}" prod "$name" "$version" \
        "$cert" "$key" "$@" >"$T/record.json" || { fail "fleet-record.py failed"; return 1; }
    etcdctl_ put "/certagent/prod/certs/$name/current" <"$T/record.json" >/dev/null ||
        fail "etcdctl put of $name failed"
}

# mkcert NAME DAYS: a self-signed certificate and key in $T/NAME.pem, $T/NAME.key.
mkcert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$2" \
        -subj "/CN=$1.example.test" -addext "subjectAltName=DNS:$1.example.test" \
        -keyout "$T/$1.key" -out "$T/$1.pem" 2>/dev/null
}

# serial_of NAME [SOCKET]: the serial of NAME's current version as certctl show reports it.
serial_of() {
    "$CTL" --socket "${2:-$SOCK}" --json show "$1" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
print((json.load(sys.stdin).get("serial") or "").replace(":", "").lstrip("0").upper())'
}
openssl_serial() {
    openssl x509 -noout -serial -in "$1" | sed 's/serial=//' | sed 's/^0*//' | tr a-f A-F
}
# has_serial NAME PEM [SOCKET]: NAME's current version is the certificate in PEM.
has_serial() {
    [ "$(serial_of "$1" "${3:-}")" = "$(openssl_serial "$2")" ]
}

# cluster_config FILE NODE [EXTRA JSON]: an agent config joining fleet prod.
cluster_config() {
    cat >"$1" <<JSON
{"cluster": {"etcd": $ETCD_ENDPOINTS_JSON, "trust": "$ETCD_CA",
             "client_cert_file": "$ETCD_CLIENT_CERT", "client_key_file": "$ETCD_CLIENT_KEY",
             "fleet": "prod", "fleet_key_file": "$T/fleet.key", "node": "$2"${3:-}}}
JSON
}

run 0 "$CTL" fleet keygen "$T/fleet.key"
check "the fleet key is 32 bytes" test "$(stat -c %s "$T/fleet.key")" = 32
check "the fleet key is 0600" test "$(mode_of "$T/fleet.key")" = 600
run 1 "$CTL" fleet keygen "$T/fleet.key"
has "exists"

# A record written before the agent starts is taken at start.
mkcert web 30
put_record web 1 "$T/web.pem" "$T/web.key"
cluster_config "$CONFIG" n1
start_agent
wait_log "node 'n1' joined fleet 'prod'" 30 || fail "the agent did not join the fleet"
check "catch-up: web stored from the fleet with the record's serial" wait_for 30 \
    has_serial web "$T/web.pem"
run 0 ctl --json show web
has '"fleet"'
check "node n1 announced in etcd" etcdctl_ get /certagent/prod/nodes/n1 --print-value-only

# A second agent takes the same record: the same serial everywhere.
B_STATE=$T/b-state B_SOCK=$T/b.sock B_LOG=$T/b.log
cluster_config "$T/b.json" n2
B_PID=$("$AGENT_UP" "$B_LOG" "$AGENT" --foreground --config "$T/b.json" --socket "$B_SOCK" \
    --state-dir "$B_STATE" --log-level debug) || fail "agent n2 did not start"
HELD_PIDS="$HELD_PIDS $B_PID"
check "n2 stores web with the same serial" wait_for 30 has_serial web "$T/web.pem" "$B_SOCK"

# A new version through the watch: within seconds on both.
mkcert web2 60
put_record web 2 "$T/web2.pem" "$T/web2.key"
check "n1 takes version 2 by the watch" wait_for 20 has_serial web "$T/web2.pem"
check "n2 takes version 2 by the watch" wait_for 20 has_serial web "$T/web2.pem" "$B_SOCK"
check "n1 live key matches" key_matches "$STATE/live/web/cert.pem" "$STATE/live/web/privkey.pem"
check "n1 key 0600" test "$(mode_of "$STATE/live/web/privkey.pem")" = 600

# An older record (expires before the local version) never replaces it.
put_record web 3 "$T/web.pem" "$T/web.key"
wait_log "keeping the local one" 20 || fail "the older record was not refused"
check "web keeps version 2's serial" has_serial web "$T/web2.pem"

# Refused records: the store is unchanged, the log names the certificate.
mkcert bad 90
openssl rand 32 >"$T/wrong.key"
chmod 600 "$T/wrong.key"
KEYFILE=$T/wrong.key put_record web 4 "$T/bad.pem" "$T/bad.key"
wait_log "refused the record of 'web': the fleet key does not open" 20 ||
    fail "a record under a wrong fleet key was not refused"
put_record web 5 "$T/bad.pem" "$T/bad.key" --aad-name other
wait_log "refused the record of 'web': the fleet key does not open the record of 'web' version 5" 20 ||
    fail "a record copied from another name was not refused"
put_record web 6 "$T/bad.pem" "$T/bad.key" --truncate
wait_log "refused the record of 'web': the fleet's record of 'web' is not a valid record" 20 ||
    fail "a truncated record was not refused"
check "web still has version 2's serial" has_serial web "$T/web2.pem"
check "n2: web still has version 2's serial" has_serial web "$T/web2.pem" "$B_SOCK"
run 0 ctl list
lacks "bad"

# A record whose version expires in the same second as the local one (two versions issued in
# the same second, e.g. a forced renewal right after another node's): the fleet's record wins
# the tie on every node, or the nodes would stay on two serials for good.
enddate() { openssl x509 -noout -enddate -in "$1"; }
for _ in 1 2 3 4 5; do
    mkcert tie1 90
    mkcert tie2 90
    [ "$(enddate "$T/tie1.pem")" != "$(enddate "$T/tie2.pem")" ] || break
done
check "two certificates that expire in the same second: $(enddate "$T/tie1.pem")" \
    test "$(enddate "$T/tie1.pem")" = "$(enddate "$T/tie2.pem")"
put_record web 7 "$T/tie1.pem" "$T/tie1.key"
check "n1 takes tie1" wait_for 20 has_serial web "$T/tie1.pem"
check "n2 takes tie1" wait_for 20 has_serial web "$T/tie1.pem" "$B_SOCK"
put_record web 8 "$T/tie2.pem" "$T/tie2.key"
check "n1 takes tie2, which expires in the same second as its tie1" \
    wait_for 20 has_serial web "$T/tie2.pem"
check "n2 takes tie2 too" wait_for 20 has_serial web "$T/tie2.pem" "$B_SOCK"

# The history the watch would resume from is compacted while it is away: n1 (stopped, its
# etcd member gone) misses a new record and a deleted definition in the watch; it reads the
# fleet's keys again, takes the record and forgets the definition.
etcdctl_ put /certagent/prod/certs/web/def '{"names": ["web.example.test"]}' >/dev/null ||
    fail "etcdctl put of web's definition failed"
wait_log "'web' is defined in the fleet for this node" 20 || fail "n1 did not see web's definition"
kill -STOP "$AGENT_PID"
etcd_stop m1
mkcert comp 120
put_record web 9 "$T/comp.pem" "$T/comp.key"
etcdctl_ del /certagent/prod/certs/web/def >/dev/null || fail "etcdctl del of web's definition failed"
rev=$(etcdctl_ get /certagent/prod/certs/web/current -w json |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["header"]["revision"])')
run 0 etcdctl_ compact "$rev"
etcd_resume m1
kill -CONT "$AGENT_PID"
wait_log "was compacted while the watch was away" 30 || fail "n1 did not notice the compaction"
check "n1 takes the record put while its watch was away" wait_for 30 has_serial web "$T/comp.pem"
wait_log "the definition of 'web' was deleted from etcd" 20 ||
    fail "n1 did not forget the definition deleted while its watch was away"
check "n2 takes it too" wait_for 30 has_serial web "$T/comp.pem" "$B_SOCK"
check "the store is whole" verify_store
lacks_secret() { ! grep -q "PRIVATE KEY" "$LOG" "$B_LOG"; }
check "no key material in the logs" lacks_secret

# Bad cluster configs are refused at start, naming the key.
bad_config() {
    echo "$1" >"$T/bad.json"
    "$AGENT" --foreground --config "$T/bad.json" --socket "$T/bad.sock" \
        --state-dir "$T/bad-state" >"$T/bad.out" 2>&1 &
    local pid=$!
    wait_for 20 grep -q "$2" "$T/bad.out" || fail "config $1: expected '$2', got: $(cat "$T/bad.out")"
    kill "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
head -c 31 /dev/urandom >"$T/short.key"
chmod 600 "$T/short.key"
cp "$T/fleet.key" "$T/open.key"
chmod 644 "$T/open.key"
bad_config '{"cluster": {"etcd": ["https://127.0.0.1:1"], "fleet": "a/b", "fleet_key_file": "'"$T"'/fleet.key"}}' 'cluster.fleet'
bad_config '{"cluster": {"etcd": ["https://127.0.0.1:1"], "fleet": "p", "fleet_key_file": "'"$T"'/short.key"}}' 'holds 31 bytes'
bad_config '{"cluster": {"etcd": ["https://127.0.0.1:1"], "fleet": "p", "fleet_key_file": "'"$T"'/open.key"}}' 'must be 0600'
bad_config '{"cluster": {"etcd": ["http://10.0.0.1:2379"], "fleet": "p", "fleet_key_file": "'"$T"'/fleet.key"}}' 'only on a loopback'
finish
