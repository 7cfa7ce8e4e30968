#!/bin/bash
# Shared certificates through a real etcd cluster and Pebble: three agents (own state
# directories and sockets) in one fleet; 20 names requested with --shared on the three nodes
# at once. Each is ordered once (20 orders at Pebble), published by the node that ordered it,
# and taken by the two others: all three hold the same serial for every name, every chain
# verifies, each node's deploy targets are written. A node that took a name from the fleet
# renews it under the fleet's lock and the others take that version. --no-shared stops
# publishing.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/../acme/pebble.sh"
. "$(dirname "$0")/lib-fleet.sh"
. "$(dirname "$0")/lib-nodes.sh"

# Validation is not what this test is about: Pebble takes every challenge as valid.
export PEBBLE_VA_ALWAYS_VALID=1
pebble_start || exit 1
etcd_start || exit 1
run 0 "$CTL" fleet keygen "$T/fleet.key"

NODES="n1 n2 n3"
for n in $NODES; do
    node_config "$n"
    node_start "$n" || finish
    # One account per node (each issues the names it was asked for).
    run 0 node_ctl "$n" account register --ca pebble --agree-tos
done
issued_before=$(grep -c 'Issued certificate serial' "$PEBBLE_LOG")

# 20 names, asked on the three nodes in turn, all at once.
read -r -a node_list <<<"$NODES"
pids=
for i in $(seq 1 20); do
    n=${node_list[$(((i - 1) % 3))]}
    mkdir -p "$T/deploy-$n"
    node_ctl "$n" request "s$i" --dns "s$i.example.test" --shared \
        --deploy-files "$T/deploy-$n/s$i" >"$T/req-$i.out" 2>&1 &
    pids="$pids $!"
done
rc=0
for p in $pids; do
    wait "$p" || rc=1
done
check "every request succeeded" test "$rc" = 0
[ "$rc" = 0 ] || cat "$T"/req-*.out | grep -v issued | head

# same_everywhere NAME: the three nodes' current versions have one serial.
same_everywhere() {
    local a b c
    a=$(serial_on n1 "$1") b=$(serial_on n2 "$1") c=$(serial_on n3 "$1")
    [ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" = "$c" ]
}
all_same() {
    local i
    for i in $(seq 1 20); do
        same_everywhere "s$i" || return 1
    done
}
check "all three nodes hold the same serial for all 20 names" wait_for 60 all_same
# Pebble logs each certificate it issues once (a POST retried after a bad nonce is logged
# twice, so requests are not what is counted).
issued=$(($(grep -c 'Issued certificate serial' "$PEBBLE_LOG") - issued_before))
check "exactly 20 certificates issued by Pebble (got $issued)" test "$issued" = 20
check "every chain verifies on every node" chains_ok s 20
# Each node deploys the names it asked for to its own targets (set with the request).
for n in $NODES; do
    check "$n wrote its deploy targets" wait_for 30 deployed_own "$n"
done
run 0 node_ctl n2 --json show s1
json "j['source'] == 'fleet'"
run 0 node_ctl n1 --json show s1
json "j['source'] == 'acme'"
# Any node that holds a shared name renews it, under the fleet's lock: n2 took s1 from the
# fleet; its renewal is ordered once, published, and taken by n1 and n3.
old=$(serial_on n1 s1)
run 0 node_ctl n2 renew s1 --force
check "n2 renewed s1 under the fleet's lock" grep -q "node 'n2' took the lock of 's1'" "$T/n2.log"
new_everywhere() { same_everywhere s1 && [ "$(serial_on n1 s1)" != "$old" ]; }
check "n1 and n3 take n2's renewal of s1" wait_for 30 new_everywhere
check "n2 released the lock of s1" wait_for 10 grep -q "node 'n2' released the lock of 's1'" "$T/n2.log"
issued=$(($(grep -c 'Issued certificate serial' "$PEBBLE_LOG") - issued_before))
check "one more certificate issued for the renewal (got $issued)" test "$issued" = 21
# --no-shared: a new version of s1 on n1 stays local.
run 0 node_ctl n1 set s1 --no-shared
run 0 node_ctl n1 renew s1 --force
# A shared name requested after it is a barrier: once n2 has it, n1's publications before it
# have been made.
run 0 node_ctl n1 request s21 --dns s21.example.test --shared
check "n2 takes s21" wait_for 30 same_everywhere s21
check "n1's renewed s1 was not published" test "$(serial_on n1 s1)" != "$(serial_on n2 s1)"
check "n1 published s1 only once" test "$(grep -c "published 's1'" "$T/n1.log")" = 1
# (once for its request of s1, not for the renewal after --no-shared)
check "n1 took the lock of s1 only for its request" test "$(grep -c "node 'n1' took the lock of 's1'" "$T/n1.log")" = 1
for n in $NODES; do
    # shellcheck disable=SC2034 # verify_store reads STATE
    STATE=$T/$n-state
    check "$n: the store is whole" verify_store
done
finish
