#!/bin/bash
# Fleet benchmark (issue 18): a real three-member etcd cluster (tests/fleet/lib-fleet.sh), one
# Pebble (every challenge valid), three agents in one fleet, N shared names (default 100)
# requested with --shared on the three nodes in turn, all at once. Prints the wall time until
# all 3*N deploys are done (each node's deploy_hook appends a line per new version), the
# certificates Pebble issued, the requests the etcd members served (their gRPC counters, the
# gateway's included; the harness's own etcdctl calls are a handful), then the idle cost: etcd
# requests per node per minute with N shared names and nothing due; the status writes of the
# fleet's view and the time of certctl fleet status. Asserts nothing.
# usage: bench-fleet.sh CERTAGENT CERTCTL AGENT-UP [N] [IDLE-SECONDS]
N=${4:-100}
IDLE=${5:-60}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../integration/lib.sh" "$1" "$2" "$3" "$HERE/../data" ""
. "$HERE/../acme/pebble.sh"
. "$HERE/../fleet/lib-fleet.sh"
export PEBBLE_VA_ALWAYS_VALID=1
pebble_start >/dev/null || exit 1
etcd_start || exit 1
"$CTL" fleet keygen "$T/fleet.key" >/dev/null

NODES="n1 n2 n3"
for n in $NODES; do
    # shellcheck disable=SC2016 # the hook expands it
    printf '#!/bin/sh\necho "$CERTAGENT_NAME" >>%s\n' "$T/deploys-$n" >"$T/hook-$n.sh"
    chmod 755 "$T/hook-$n.sh"
    /usr/bin/python3 - "$T/$n.json" "$n" "$T" <<PY
import json, socket, sys
path, node, t = sys.argv[1:]
ports = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    ports.append(s.getsockname()[1])
    s.close()
cfg = {"log_level": "info", "http01_listen": ["127.0.0.1:%d" % ports[0]],
       "tls_alpn01_listen": ["127.0.0.1:%d" % ports[1]],
       "acme_cas": {"pebble": {"directory": "$PEBBLE_DIRECTORY", "trust": "$PEBBLE_TRUST"}},
       "default_ca": "pebble", "deploy_hook": t + "/hook-" + node + ".sh",
       "cluster": {"etcd": $ETCD_ENDPOINTS_JSON, "trust": "$ETCD_CA",
                   "client_cert_file": "$ETCD_CLIENT_CERT", "client_key_file": "$ETCD_CLIENT_KEY",
                   "fleet": "bench", "fleet_key_file": t + "/fleet.key", "node": node}}
json.dump(cfg, open(path, "w"))
PY
    pid=$("$AGENT_UP" "$T/$n.log" "$AGENT" --foreground --config "$T/$n.json" \
        --socket "$T/$n.sock" --state-dir "$T/$n-state") || { echo "agent $n did not start"; exit 1; }
    HELD_PIDS="$HELD_PIDS $pid"
    wait_for 30 grep -q "node '$n' joined" "$T/$n.log"
    "$CTL" --socket "$T/$n.sock" account register --ca pebble --agree-tos >/dev/null
    : >"$T/deploys-$n"
done
deploys() { cat "$T"/deploys-n* | wc -l; }
all_deployed() { [ "$(deploys)" -ge $((3 * N)) ]; }
issued0=$(grep -c 'Issued certificate serial' "$PEBBLE_LOG")
req0=$(etcd_requests)
read -r -a node_list <<<"$NODES"
start=$(date +%s%N)
pids=
for i in $(seq 1 "$N"); do
    n=${node_list[$(((i - 1) % 3))]}
    "$CTL" --socket "$T/$n.sock" request "f$i" --dns "f$i.example.test" --shared >/dev/null 2>&1 &
    pids="$pids $!"
done
wait_for 240 all_deployed || echo "only $(deploys) of $((3 * N)) deploys"
ms=$((($(date +%s%N) - start) / 1000000))
for p in $pids; do
    wait "$p"
done
req1=$(etcd_requests)
echo "fleet: $N shared names, 3 agents: $((3 * N)) deploys in $ms ms"
echo "fleet: certificates issued by Pebble: $(($(grep -c 'Issued certificate serial' "$PEBBLE_LOG") - issued0))"
echo "fleet: etcd requests during the run: $((req1 - req0))"
sleep "$IDLE"
req2=$(etcd_requests)
echo "fleet: idle: $(((req2 - req1) * 60 / IDLE / 3)) etcd requests per node per minute (over ${IDLE} s, $N shared names, nothing due)"
# The fleet's view: how often each node wrote its status (status/NODE's version counts the
# writes), during the run and while idle, and how long certctl fleet status takes.
status_writes() {
    local n total=0 v
    for n in $NODES; do
        v=$(etcdctl_ get "/certagent/bench/status/$n" -w json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
kvs = json.load(sys.stdin).get("kvs") or [{}]
print(kvs[0].get("version", 0))')
        total=$((total + v))
    done
    echo "$total"
}
sw=$(status_writes)
sleep 30
echo "fleet: status writes: $sw in all (3 nodes, run and idle), $(($(status_writes) - sw)) in 30 more idle seconds"
start=$(date +%s%N)
"$CTL" --socket "$T/n1.sock" --json fleet status >"$T/fleet-status.json"
echo "fleet: certctl fleet status: $((($(date +%s%N) - start) / 1000000)) ms, $(wc -c <"$T/fleet-status.json") bytes of JSON"
finish >/dev/null
