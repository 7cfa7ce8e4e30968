#!/bin/bash
# Definitions and tags (issue 18, item 2): certctl request NAME --shared --tag web puts the
# certificate's definition in etcd; the nodes tagged web take its versions, a node tagged db
# does not. A definition in etcd that is not JSON, or that names a CA the nodes do not know,
# is warned about and the agents keep running.
# A definition alone is enough (put into etcd with etcdctl, no node asked for it): one of the
# nodes tagged web orders it, under the fleet's lock, and the other takes its version; a node
# tagged db asked for a name tagged web orders it (it was asked) and the web nodes take it.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/../acme/pebble.sh"
. "$(dirname "$0")/lib-fleet.sh"
. "$(dirname "$0")/lib-nodes.sh"

export PEBBLE_VA_ALWAYS_VALID=1
pebble_start || exit 1
etcd_start || exit 1
run 0 "$CTL" fleet keygen "$T/fleet.key"

node_config n1 "$PEBBLE_DIRECTORY" '{"tags": ["web"]}'
node_config n2 "$PEBBLE_DIRECTORY" '{"tags": ["web", "eu"]}'
node_config n3 "$PEBBLE_DIRECTORY" '{"tags": ["db"]}'
for n in n1 n2 n3; do
    node_start "$n" || finish
done
run 0 node_ctl n1 account register --ca pebble --agree-tos

# --tag without --shared is refused by certctl.
node_ctl n1 request t0 --dns t0.example.test --tag web >"$T/t0.out" 2>&1
check "--tag without --shared is refused" grep -q -- "--tag goes with --shared" "$T/t0.out"

run 0 node_ctl n1 request t1 --dns t1.example.test --shared --tag web
check "the definition of t1 is in etcd with its tag" sh -c \
    "$(declare -f etcdctl_); etcdctl_ get --print-value-only /certagent/prod/certs/t1/def | grep -q '\"tags\":\[\"web\"\]'"
t1_on_n2() { [ -n "$(serial_on n2 t1)" ] && [ "$(serial_on n2 t1)" = "$(serial_on n1 t1)" ]; }
check "n2 (tagged web) takes t1" wait_for 30 t1_on_n2
check "n3 (tagged db) says t1 is not for it" wait_for 30 grep -q "'t1' is defined in the fleet for other tags" "$T/n3.log"
# A name without tags is a barrier: once n3 has it, it has seen t1's record too.
run 0 node_ctl n1 request t2 --dns t2.example.test --shared
t2_on_n3() { [ -n "$(serial_on n3 t2)" ]; }
check "n3 takes t2 (no tags: every node)" wait_for 30 t2_on_n3
run 1 node_ctl n3 show t1
check "n3 does not hold t1" test -z "$(serial_on n3 t1)"

# Bad definitions: warned about, nothing else happens.
etcdctl_ put /certagent/prod/certs/bad1/def 'this is not JSON' >/dev/null
check "a definition that is not JSON is warned about" wait_for 20 grep -q "the definition of 'bad1' in etcd is not valid JSON" "$T/n2.log"
etcdctl_ put /certagent/prod/certs/bad2/def '{"names": ["b.example.test"], "ca": "nosuchca"}' >/dev/null
check "a definition naming an unknown CA is warned about" wait_for 20 grep -q "the definition of 'bad2' in etcd names CA 'nosuchca'" "$T/n2.log"
run 0 node_ctl n2 list

# A definition that no node requested: n1 or n2 (tagged web) orders it, exactly once.
for n in n2 n3; do
    run 0 node_ctl "$n" account register --ca pebble --agree-tos
done
issued_before=$(grep -c 'Issued certificate serial' "$PEBBLE_LOG")
etcdctl_ put /certagent/prod/certs/t3/def \
    '{"names": ["t3.example.test"], "ca": "pebble", "tags": ["web"]}' >/dev/null
t3_on_web() {
    [ -n "$(serial_on n1 t3)" ] && [ "$(serial_on n1 t3)" = "$(serial_on n2 t3)" ]
}
check "n1 and n2 (tagged web) hold t3 with one serial, ordered from its definition" \
    wait_for 60 t3_on_web
ordered=$(cat "$T/n1.log" "$T/n2.log" | grep -c "ordering 't3' from its definition")
check "one node ordered t3 from its definition (got $ordered)" test "$ordered" = 1
# Both hold the one serial: the node that did not order took the version and orders no more.
issued=$(($(grep -c 'Issued certificate serial' "$PEBBLE_LOG") - issued_before))
check "exactly one certificate for t3 issued by Pebble (got $issued)" test "$issued" = 1
for n in n1 n2; do
    node_ctl "$n" set t3 >"$T/$n-t3-settings.out" 2>&1
    check "t3 is shared on $n" grep -q "shared *yes" "$T/$n-t3-settings.out"
done
check "n3 (tagged db) does not hold t3" test -z "$(serial_on n3 t3)"
check "n3 did not order t3" sh -c "! grep -q \"ordering 't3'\" '$T/n3.log'"

# A definition with a name that is not a DNS name: one warning, no order.
etcdctl_ put /certagent/prod/certs/bad3/def '{"names": ["bad name!"], "tags": ["web"]}' >/dev/null
check "a definition with a bad name is warned about" wait_for 20 grep -q \
    "'bad3' is not ordered from its definition: .*'bad name!' is not a valid DNS name" "$T/n1.log"
check "bad3 is not ordered" sh -c "! grep -q \"ordering 'bad3'\" '$T/n1.log' '$T/n2.log'"

# n3 (tagged db) asked for a name tagged web: it orders it (it was asked), n1 and n2 take its
# version, nobody orders it again.
issued_before=$(grep -c 'Issued certificate serial' "$PEBBLE_LOG")
run 0 node_ctl n3 request t4 --dns t4.example.test --shared --tag web
t4_on_web() {
    [ -n "$(serial_on n3 t4)" ] && [ "$(serial_on n1 t4)" = "$(serial_on n3 t4)" ] &&
        [ "$(serial_on n2 t4)" = "$(serial_on n3 t4)" ]
}
check "n1 and n2 (tagged web) take t4 ordered by n3 (tagged db)" wait_for 30 t4_on_web
issued=$(($(grep -c 'Issued certificate serial' "$PEBBLE_LOG") - issued_before))
check "exactly one certificate for t4 issued by Pebble (got $issued)" test "$issued" = 1
# A definition whose lock a dead node holds (its lease, 8 s, is not kept alive): the web nodes
# find the lock busy, check again 30-40 s later, when the lease has expired, and one orders.
lease=$(etcdctl_ lease grant 8 | awk '{print $2}')
etcdctl_ put --lease="$lease" /certagent/prod/locks/t5 '{"node":"ghost","lease":1}' >/dev/null
issued_before=$(grep -c 'Issued certificate serial' "$PEBBLE_LOG")
etcdctl_ put /certagent/prod/certs/t5/def \
    '{"names": ["t5.example.test"], "ca": "pebble", "tags": ["web"]}' >/dev/null
check "the web nodes find t5's lock held by the dead node" wait_for 20 grep -q \
    "'t5' is not ordered from its definition now: .*ghost" "$T/n1.log" "$T/n2.log"
t5_on_web() {
    [ -n "$(serial_on n1 t5)" ] && [ "$(serial_on n1 t5)" = "$(serial_on n2 t5)" ]
}
check "once the dead node's lease expired, t5 is ordered and both web nodes hold it" \
    wait_for 70 t5_on_web
issued=$(($(grep -c 'Issued certificate serial' "$PEBBLE_LOG") - issued_before))
check "exactly one certificate for t5 issued by Pebble (got $issued)" test "$issued" = 1
for n in n1 n2 n3; do
    # shellcheck disable=SC2034 # verify_store reads STATE
    STATE=$T/$n-state
    check "$n: the store is whole" verify_store
done
finish
