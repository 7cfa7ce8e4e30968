#!/bin/bash
# The fleet's view through a real three-member etcd cluster: three agents publish their
# status (status/NODE); certctl fleet status / fleet nodes on any node show every node and
# every fleet certificate by node, --json as one object; a burst of new versions makes few
# status writes; a node killed with -9 shows as gone once its lease expired; a node whose
# deploy of the fleet's version keeps failing gets fleet_behind after a minute (its status,
# the fleet's table on another node), the others do not.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-fleet.sh"
. "$(dirname "$0")/lib-view.sh"

etcd_start || finish
run 0 "$CTL" fleet keygen "$T/fleet.key"

mkcert web 30
put_record web 1 "$T/web.pem" "$T/web.key"
for n in n1 n2 n3; do
    cluster_config "$T/$n.json" "$n"
    node_start "$n" || finish
done
for n in n1 n2 n3; do
    check "$n takes web from the fleet" wait_for 30 has_serial web "$T/web.pem" "$T/$n.sock"
done

# Each node's status in etcd: host, version, the fleet's certificate with its serial.
status_has() {
    etcdctl_ get "/certagent/prod/status/$1" --print-value-only | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
c = [c for c in s["certificates"] if c["name"] == sys.argv[1]]
sys.exit(0 if s["host"] and s["version"] and c and c[0].get("fleet_version") == int(sys.argv[2])
         else 1)' "$2" "$3"
}
for n in n1 n2 n3; do
    check "$n publishes its status with web version 1" wait_for 30 status_has "$n" web 1
done

run 0 node_ctl n2 fleet nodes
has "fleet prod, seen from node n2: 3 nodes up, 0 gone"
for n in n1 n2 n3; do has "$n"; done
run 0 node_ctl n1 --json fleet status
json "j['fleet'] == 'prod' and j['nodes_up'] == 3 and j['nodes_gone'] == 0"
json "sorted(n['node'] for n in j['nodes']) == ['n1', 'n2', 'n3']"
json "all(n['state'] == 'up' and n['health'] in ('ok', 'warning') for n in j['nodes'])"
json "[c['name'] for c in j['certificates']] == ['web'] and j['certificates'][0]['fleet_version'] == 1"
json "all(c['state'] == 'current' for c in j['certificates'][0]['nodes'].values())"
run 0 node_ctl n1 fleet status
has "CERTIFICATE"
has "web"
has "v1"

# n3 cannot deploy: its deploy target is under a file.  n2 is killed with -9.
touch "$T/afile"
run 1 node_ctl n3 set web --deploy-files "$T/afile/sub"
has "deploying the current version failed"
mkcert web2 60
put_record web 2 "$T/web2.pem" "$T/web2.key"
for n in n1 n2 n3; do
    check "$n takes web version 2" wait_for 30 has_serial web "$T/web2.pem" "$T/$n.sock"
done
kill -KILL "$(node_pid n2)"
wait_gone "$(node_pid n2)"
# A burst of ten new certificates makes a few status writes, not one per change.
writes() {
    etcdctl_ get /certagent/prod/status/n1 -w json | /usr/bin/python3 -c '
import json, sys
print(json.load(sys.stdin)["kvs"][0]["version"])'
}
before=$(writes)
for i in 0 1 2 3 4 5 6 7 8 9; do
    mkcert "b$i" 30
    put_record "b$i" 1 "$T/b$i.pem" "$T/b$i.key"
done
lists_all() {
    etcdctl_ get /certagent/prod/status/n1 --print-value-only | /usr/bin/python3 -c '
import json, sys
sys.exit(0 if len(json.load(sys.stdin)["certificates"]) == 11 else 1)'
}
check "n1's status lists the 11 certificates" wait_for 40 lists_all
after=$(writes)
check "the burst made at most 3 status writes ($before -> $after)" test $((after - before)) -le 3

gone_n2() {
    node_ctl n1 --json fleet nodes | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
n = [n for n in j["nodes"] if n["node"] == "n2"]
sys.exit(0 if n and n[0]["state"] == "gone" and j["nodes_gone"] == 1 else 1)'
}
check "n2 shows as gone once its lease expired" wait_for 40 gone_n2
run 0 node_ctl n3 fleet nodes
has "1 gone"
has "gone"

# fleet_behind: n3's deploy of the fleet's version keeps failing for more than a minute.
check "n3 warns fleet_behind on web" wait_for 80 warns n3 web fleet_behind
if warns n1 web fleet_behind; then fail "n1 warns fleet_behind on web"; else pass; fi
run 0 node_ctl n3 --json status
json "[w for c in j['certificates'] if c['name'] == 'web' for w in c['warnings'] if w['code'] == 'fleet_behind'][0]['fleet_version'] == 2"
behind_in_table() {
    node_ctl n1 --json fleet status | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
c = [c for c in j["certificates"] if c["name"] == "web"][0]
sys.exit(0 if c["nodes"]["n3"]["state"] == "behind" and c["nodes"]["n1"]["state"] == "current"
         and c["nodes"]["n2"]["gone"] else 1)'
}
check "n1's fleet status shows n3 behind on web, n2 gone" wait_for 30 behind_in_table
run 0 node_ctl n1 --json fleet status
json "[c['name'] for c in j['certificates']] == sorted(['web'] + ['b%d' % i for i in range(10)])"
run 0 node_ctl n1 fleet status
printf '%s\n' "$OUT"
has "BEHIND"
has "(gone)"
grep -q "is behind the fleet's version 2" "$T/n3.log" || fail "n3 did not log that it is behind"

# certctl fleet forget: only a node that is gone, never this node or one that is up.
run 1 node_ctl n1 fleet forget n3
has "node 'n3' is up"
run 1 node_ctl n1 fleet forget n1
has "'n1' is this node"
run 1 node_ctl n1 fleet forget nosuchnode
has "the fleet has no node 'nosuchnode'"
run 1 node_ctl n1 fleet forget 'bad/name'
has "is not a node name"
run 0 node_ctl n1 fleet forget n2
has "forgot node n2"
check "n2's status is gone from etcd" test -z "$(etcdctl_ get --keys-only /certagent/prod/status/n2)"
run 0 node_ctl n3 --json fleet nodes
json "[n['node'] for n in j['nodes']] == ['n1', 'n3'] and j['nodes_gone'] == 0"
run 1 node_ctl n1 fleet forget n2
has "the fleet has no node 'n2'"

# Not in a fleet: fleet status says so.
start_agent
run 1 ctl fleet status
has "not in a fleet"
finish
