#!/bin/bash
# tls-alpn-01 behind a load balancer (issue 18): what a handshake costs when the node the CA
# reaches does not serve the name and looks it up in etcd. A real three-member etcd cluster
# (tests/fleet/lib-fleet.sh), one agent in a fleet with its tls-alpn-01 responder listening;
# K answers put straight into etcd under challenges/alpn/SNI, as an ordering node puts them.
# A client then makes N handshakes (SNI one of the K names, ALPN acme-tls/1) one after the
# other and N for names etcd does not have (refused after the lookup), and prints the
# median, 95th percentile and mean of each in ms, and the etcd requests they made. Asserts
# nothing.
# usage: bench-alpn-fleet.sh CERTAGENT CERTCTL AGENT-UP [N=500] [K=20]
N=${4:-500}
K=${5:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../integration/lib.sh" "$1" "$2" "$3" "$HERE/../data" ""
. "$HERE/../fleet/lib-fleet.sh"
etcd_start || exit 1
"$CTL" fleet keygen "$T/fleet.key" >/dev/null

port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$T/n1.json" <<JSON
{"log_level": "info", "challenge_listen_always": true,
 "tls_alpn01_listen": ["127.0.0.1:$port"], "http01_listen": ["127.0.0.1:$((port + 1))"],
 "cluster": {"etcd": $ETCD_ENDPOINTS_JSON, "trust": "$ETCD_CA",
             "client_cert_file": "$ETCD_CLIENT_CERT", "client_key_file": "$ETCD_CLIENT_KEY",
             "fleet": "bench", "fleet_key_file": "$T/fleet.key", "node": "n1"}}
JSON
pid=$("$AGENT_UP" "$T/n1.log" "$AGENT" --foreground --config "$T/n1.json" \
    --socket "$T/n1.sock" --state-dir "$T/n1-state") || { echo "the agent did not start"; exit 1; }
HELD_PIDS="$HELD_PIDS $pid"
wait_for 30 grep -q "node 'n1' joined" "$T/n1.log" || { echo "n1 did not join"; exit 1; }
for i in $(seq 1 "$K"); do
    etcdctl_ put "/certagent/bench/challenges/alpn/a$i.example.test" \
        "a$i.example.test tok$i.thumbprint" >/dev/null
done
req0=$(etcd_requests)
/usr/bin/python3 - "$port" "$N" "$K" <<'PY'
import socket, ssl, statistics, sys, time
port, n, k = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["acme-tls/1"])

def handshake(name):
    t = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        try:
            with ctx.wrap_socket(s, server_hostname=name) as tls:
                ok = tls.selected_alpn_protocol() == "acme-tls/1" and tls.getpeercert(True)
        except (ssl.SSLError, OSError):
            ok = False
    return (time.perf_counter() - t) * 1000, bool(ok)

def report(what, runs):
    ms = sorted(r[0] for r in runs)
    ok = sum(1 for r in runs if r[1])
    print("alpn-fleet: %s: %d handshakes, %d answered; median %.2f ms, p95 %.2f ms, mean %.2f ms"
          % (what, len(runs), ok, statistics.median(ms), ms[int(len(ms) * 0.95) - 1],
             statistics.fmean(ms)))

report("looked up in etcd", [handshake("a%d.example.test" % (i % k + 1)) for i in range(n)])
report("unknown to etcd (refused)", [handshake("u%d.example.test" % i) for i in range(n)])
PY
req1=$(etcd_requests)
echo "alpn-fleet: etcd requests during the $((2 * N)) handshakes: $((req1 - req0)) (the lease's keep-alive included)"
finish >/dev/null
