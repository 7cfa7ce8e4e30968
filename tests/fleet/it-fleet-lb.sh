#!/bin/bash
# http-01 behind a load balancer (issue 18, item 6): three agents of one fleet, each with its
# own http-01 responder, and a TCP load balancer on the port Pebble's validation connects to,
# sending each connection to a random node. 20 shared names requested on the three nodes at
# once: the node that orders a name puts its tokens in etcd, and a node the CA reaches for a
# token it does not serve looks it up there. Every order validates (real validation: no
# PEBBLE_VA_ALWAYS_VALID), exactly 20 certificates are issued, all three nodes hold the same
# serial for every name, deploy targets are written and every chain verifies.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/../acme/pebble.sh"
. "$(dirname "$0")/lib-fleet.sh"
. "$(dirname "$0")/lib-nodes.sh"

pebble_start || exit 1
etcd_start || exit 1
run 0 "$CTL" fleet keygen "$T/fleet.key"

NODES="n1 n2 n3"
lb_ports=
for n in $NODES; do
    # The responders listen all the time (as behind a load balancer they must).
    node_config "$n" "$PEBBLE_DIRECTORY" '{}' '{"challenge_listen_always": true}'
    lb_ports="$lb_ports $(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["http01_listen"][0].split(":")[1])' "$T/$n.json")"
    node_start "$n" || finish
    run 0 node_ctl "$n" account register --ca pebble --agree-tos
done
# shellcheck disable=SC2086 # one argument per port
/usr/bin/python3 "$(dirname "$0")/lb.py" "$PEBBLE_HTTP01_PORT" $lb_ports >"$T/lb.log" 2>&1 &
LB_PID=$!
HELD_PIDS="$HELD_PIDS $LB_PID"
check "the load balancer listens" wait_for 10 grep -q "lb: ready" "$T/lb.log"
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
}
check "all three nodes hold the same serial for all 20 names" wait_for 60 all_same
issued=$(($(grep -c 'Issued certificate serial' "$PEBBLE_LOG") - issued_before))
check "exactly 20 certificates issued by Pebble (got $issued)" test "$issued" = 20
looked_up=$(cat "$T"/n1.log "$T"/n2.log "$T"/n3.log | grep -c "token of the fleet: 200")
check "nodes answered tokens of other nodes' orders from etcd (got $looked_up)" test "$looked_up" -ge 1
check "the load balancer spread the validations" test "$(sort -u <(grep -- '->' "$T/lb.log") | wc -l)" -ge 2
check "every chain verifies on every node" chains_ok w 20
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
