#!/bin/bash
# Definitions and tags (issue 18, item 2): certctl request NAME --shared --tag web puts the
# certificate's definition in etcd; the nodes tagged web take its versions, a node tagged db
# does not. A definition in etcd that is not JSON, or that names a CA the nodes do not know,
# is warned about and the agents keep running.
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
for n in n1 n2 n3; do
    # shellcheck disable=SC2034 # verify_store reads STATE
    STATE=$T/$n-state
    check "$n: the store is whole" verify_store
done
finish
