#!/bin/bash
# http-01 and tls-alpn-01 behind a load balancer (issue 18, item 6): three agents of one fleet,
# each with its own responders, and a TCP load balancer on each port Pebble's validation
# connects to, sending each connection to a random node. 20 shared http-01 names and 8 shared
# tls-alpn-01 names requested on the three nodes at once: the node that orders a name puts its
# answers in etcd, and a node the CA reaches for a token (http-01) or an SNI (tls-alpn-01) it
# does not serve looks it up there (tls-alpn-01: the handshake waits for the answer). Every
# order validates (real validation: no PEBBLE_VA_ALWAYS_VALID), exactly 28 certificates are
# issued, all three nodes hold the same serial for every name, deploy targets are written and
# every chain verifies.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/../acme/pebble.sh"
. "$(dirname "$0")/lib-fleet.sh"
. "$(dirname "$0")/lib-nodes.sh"

pebble_start || exit 1
etcd_start || exit 1
run 0 "$CTL" fleet keygen "$T/fleet.key"

NODES="n1 n2 n3"
http_ports=''
alpn_ports=''
port_of() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][0].split(":")[1])' "$T/$1.json" "$2"; }
for n in $NODES; do
    # The responders listen all the time (as behind a load balancer they must), and admit
    # more than 16 connections from the balancer's one address (Pebble validates the 28
    # names from 3 places at once): docs/fleet.md says so.
    node_config "$n" "$PEBBLE_DIRECTORY" '{}' \
        '{"challenge_listen_always": true, "responder_max_per_address": 256}'
    http_ports="$http_ports $(port_of "$n" http01_listen)"
    alpn_ports="$alpn_ports $(port_of "$n" tls_alpn01_listen)"
    node_start "$n" || finish
    run 0 node_ctl "$n" account register --ca pebble --agree-tos
done
# shellcheck disable=SC2086 # one argument per port
/usr/bin/python3 "$(dirname "$0")/lb.py" "$PEBBLE_HTTP01_PORT" $http_ports >"$T/lb.log" 2>&1 &
HELD_PIDS="$HELD_PIDS $!"
# shellcheck disable=SC2086 # one argument per port
/usr/bin/python3 "$(dirname "$0")/lb.py" "$PEBBLE_TLSALPN01_PORT" $alpn_ports >"$T/lb-alpn.log" 2>&1 &
HELD_PIDS="$HELD_PIDS $!"
check "the load balancers listen" wait_for 10 grep -q "lb: ready" "$T/lb.log" "$T/lb-alpn.log"
issued_before=$(grep -c 'Issued certificate serial' "$PEBBLE_LOG")

read -r -a node_list <<<"$NODES"
pids=
for i in $(seq 1 20); do
    n=${node_list[$(((i - 1) % 3))]}
    mkdir -p "$T/deploy-$n"
    node_ctl "$n" request "w$i" --dns "w$i.example.test" --shared \
        --deploy-files "$T/deploy-$n/w$i" >"$T/req-$i.out" 2>&1 &
    pids="$pids $!"
done
for i in $(seq 1 8); do
    n=${node_list[$(((i - 1) % 3))]}
    node_ctl "$n" request "a$i" --dns "a$i.example.test" --challenge tls-alpn-01 --shared \
        --deploy-files "$T/deploy-$n/a$i" >"$T/req-a$i.out" 2>&1 &
    pids="$pids $!"
done
rc=0
for p in $pids; do
    wait "$p" || rc=1
done
check "every request succeeded (the CA validated through the load balancer)" test "$rc" = 0
[ "$rc" = 0 ] || grep -h -i "fail\|error" "$T"/req-*.out | head -5

same_everywhere() {
    local a b c
    a=$(serial_on n1 "$1") b=$(serial_on n2 "$1") c=$(serial_on n3 "$1")
    [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ]
}
all_same() {
    local i
    for i in $(seq 1 20); do
        same_everywhere "w$i" || return 1
    done
    for i in $(seq 1 8); do
        same_everywhere "a$i" || return 1
    done
}
check "all three nodes hold the same serial for all 28 names" wait_for 60 all_same
issued=$(($(grep -c 'Issued certificate serial' "$PEBBLE_LOG") - issued_before))
check "exactly 28 certificates issued by Pebble (got $issued)" test "$issued" = 28
looked_up=$(cat "$T"/n1.log "$T"/n2.log "$T"/n3.log | grep -c "token of the fleet: 200")
check "nodes answered tokens of other nodes' orders from etcd (got $looked_up)" test "$looked_up" -ge 1
alpn_looked_up=$(cat "$T"/n1.log "$T"/n2.log "$T"/n3.log | grep -c "is validated by another node of the fleet")
check "nodes answered tls-alpn-01 handshakes of other nodes' orders from etcd (got $alpn_looked_up)" test "$alpn_looked_up" -ge 1
for lb in lb lb-alpn; do
    check "$lb spread the validations" test "$(sort -u <(grep -- '->' "$T/$lb.log") | wc -l)" -ge 2
done
check "every chain verifies on every node" chains_ok w 20
check "every tls-alpn-01 chain verifies on every node" chains_ok a 8
for n in $NODES; do
    check "$n wrote its deploy targets" wait_for 30 deployed_own "$n"
done
tokens_gone() { [ -z "$(etcdctl_ get --prefix --keys-only /certagent/prod/challenges/)" ]; }
check "the tokens were deleted from etcd after the orders" wait_for 10 tokens_gone
for n in $NODES; do
    # shellcheck disable=SC2034 # verify_store reads STATE
    STATE=$T/$n-state
    check "$n: the store is whole" verify_store
done
finish
