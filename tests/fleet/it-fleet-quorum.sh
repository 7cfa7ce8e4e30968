#!/bin/bash
# A fleet node when etcd fails, is set up wrong, or is left: stop the etcd leader (the node
# goes on with the two others), then a second member (no quorum): fleet_unreachable after
# fleet_grace on the fleet's certificate and on the agent, the local files and certctl still
# there, no order of a shared name without the lock; quorum back: the warning goes and a new
# version is taken.  A wrong etcd CA, an expired client certificate and unreachable
# endpoints: a log line naming the problem, fleet_unreachable, the agent up with its local
# certificates.  Leaving: --no-shared keeps the
# local copy; the cluster key removed: every certificate kept, said once in the log.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-fleet.sh"
. "$(dirname "$0")/lib-view.sh"

etcd_start || finish
run 0 "$CTL" fleet keygen "$T/fleet.key"

mkcert web 30
put_record web 1 "$T/web.pem" "$T/web.key"
cluster_config "$T/n1.json" n1 ', "fleet_grace": 10'
node_start n1 || finish
check "n1 takes web from the fleet" wait_for 30 has_serial web "$T/web.pem" "$T/n1.sock"
run 0 node_ctl n1 selfsigned loc --dns loc.example.test
run 0 node_ctl n1 set loc --shared
check "n1 publishes loc" wait_for 30 etcdctl_ get /certagent/prod/certs/loc/current --print-value-only

# The leader stops: two members are a quorum, the node carries on.
leader=$(etcd_leader)
check "an etcd leader is known ($leader)" test -n "$leader"
etcd_stop "$leader"
mkcert web2 60
# Version 2 says how it was ordered (as a node that ordered it writes it): n1 may renew web.
put_record web 2 "$T/web2.pem" "$T/web2.key" \
    --acme '{"ca": "letsencrypt", "key_type": "ec256", "challenge": "http-01"}'
check "without the leader, n1 takes web version 2" wait_for 40 has_serial web "$T/web2.pem" "$T/n1.sock"
run 0 node_ctl n1 fleet nodes
has "n1"

# A second member stops: no quorum.
for m in $ETCD_MEMBERS; do
    [ "$m" = "$leader" ] && continue
    second=$m
    break
done
etcd_stop "$second"
check "no quorum: n1 warns fleet_unreachable on web" wait_for 60 warns n1 web fleet_unreachable
run 0 node_ctl n1 --json status
json "any(w['code'] == 'fleet_unreachable' and w['since'] > 0 for w in j['agent_warnings'])"
json "[w for c in j['certificates'] if c['name'] == 'web' for w in c['warnings'] if w['code'] == 'fleet_unreachable'][0]['error'] != ''"
check "the local files are still there" key_matches "$T/n1-state/live/web/cert.pem" "$T/n1-state/live/web/privkey.pem"
check "live/web is still version 2" cmp -s "$T/n1-state/live/web/cert.pem" "$T/web2.pem"
run 0 node_ctl n1 show web
has "web2.example.test"
run 1 node_ctl n1 fleet status
has "no etcd member answered"
grep -q "fleet: etcd of fleet 'prod' unreachable" "$T/n1.log" || fail "n1 did not log fleet_unreachable"
# No split-brain: a shared name is not ordered while the fleet's lock cannot be taken.
node_ctl n1 renew web --force >"$T/renew.out" 2>&1
check "no quorum: renew --force of the shared web is refused" test $? -ne 0
check "the refusal says why: no lock without etcd" \
    grep -qF "a shared name is not ordered without the fleet's lock" "$T/renew.out"
check "n1 still serves web version 2" cmp -s "$T/n1-state/live/web/cert.pem" "$T/web2.pem"

# Quorum returns: the warning goes, a new version is taken.
etcd_resume "$leader"
etcd_resume "$second"
check "etcd is healthy again" wait_for 30 _etcd_healthy
not_warns() { ! warns n1 web fleet_unreachable; }
check "n1's fleet_unreachable goes" wait_for 60 not_warns
mkcert web3 90
put_record web 3 "$T/web3.pem" "$T/web3.key"
check "n1 takes web version 3" wait_for 40 has_serial web "$T/web3.pem" "$T/n1.sock"
grep -q "fleet: etcd of fleet 'prod' is reachable again" "$T/n1.log" || fail "n1 did not log the recovery"

# Bad settings: each agent keeps running with its local certificate and says what is wrong.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=another CA" -keyout "$T/other-ca.key" -out "$T/other-ca.pem" 2>/dev/null
/usr/bin/python3 "$HERE/mkcert-expired.py" "$ETCD_CA" "$ETCD_DIR/ca.key" "$T/expired.pem" \
    "$T/expired.key" || fail "mkcert-expired.py failed"
chmod 600 "$T/expired.key"
cluster_config "$T/badca.json" badca ', "fleet_grace": 10'
sed -i "s|\"trust\": \"$ETCD_CA\"|\"trust\": \"$T/other-ca.pem\"|" "$T/badca.json"
cluster_config "$T/expired.json" expired ', "fleet_grace": 10'
sed -i -e "s|$ETCD_CLIENT_CERT|$T/expired.pem|" -e "s|$ETCD_CLIENT_KEY|$T/expired.key|" "$T/expired.json"
read -r closed <<<"$(_etcd_free_ports 1)"
sed -e "s|\"etcd\": \[[^]]*\]|\"etcd\": [\"https://127.0.0.1:$closed\"]|" "$T/badca.json" |
    sed "s|$T/other-ca.pem|$ETCD_CA|" >"$T/noetcd.json"
sed -i 's/"node": "badca"/"node": "noetcd"/' "$T/noetcd.json"
for n in badca expired noetcd; do
    node_start "$n" || finish
    run 0 node_ctl "$n" selfsigned "own-$n" --dns "own.example.test"
done
agent_unreachable() {
    node_ctl "$1" --json status | /usr/bin/python3 -c '
import json, sys
j = json.load(sys.stdin)
sys.exit(0 if any(w["code"] == "fleet_unreachable" for w in j["agent_warnings"]) else 1)'
}
for n in badca expired noetcd; do
    check "$n: fleet_unreachable" wait_for 40 agent_unreachable "$n"
    run 0 node_ctl "$n" show "own-$n"
    check "$n keeps its local certificate" test -s "$T/$n-state/live/own-$n/fullchain.pem"
    check "$n still runs" kill -0 "$(node_pid "$n")"
done
grep -q "certificate problem" "$T/badca.log" || fail "badca: no log line names the certificate problem"
check "badca says it cannot join once as a warning, not at every retry" \
    test "$(grep -c '\[warn\]: fleet: cannot join' "$T/badca.log")" = 1
grep -q "the etcd client certificate $T/expired.pem has expired" "$T/expired.log" ||
    fail "expired: the expired client certificate is not named"
grep -q "127.0.0.1:$closed.*Couldn't connect" "$T/noetcd.log" ||
    fail "noetcd: the unreachable endpoint is not named"
run 0 node_ctl badca --json status
json "'certificate' in [w for w in j['agent_warnings'] if w['code'] == 'fleet_unreachable'][0]['message']"

# Leaving: --no-shared keeps the local copy; without the cluster key every certificate stays.
run 0 node_ctl n1 set loc --no-shared
run 0 node_ctl n1 --json show loc
json "j['source'] == 'selfsigned'"
# On a node that takes web from the fleet: --no-shared keeps its copy, the next version is
# not taken.
run 0 node_ctl n1 set web --no-shared
run 0 node_ctl n1 set web
has "shared       no (left the fleet"
mkcert web4 120
put_record web 4 "$T/web4.pem" "$T/web4.key"
check "n1 says it does not take web version 4" wait_for 20 \
    grep -q "'web' left the fleet on this node, so its fleet version 4 is not taken" "$T/n1.log"
check "web stays at version 3's serial" has_serial web "$T/web3.pem" "$T/n1.sock"
kill -TERM "$(node_pid n1)"
wait_gone "$(node_pid n1)"
echo '{}' >"$T/n1-left.json"
node_start n1 "$T/n1-left.json" || finish
run 0 node_ctl n1 list
has "web"
has "loc"
run 0 node_ctl n1 --json show web
json "j['source'] == 'fleet'"
check "web's files stay" cmp -s "$T/n1-state/live/web/cert.pem" "$T/web3.pem"
check "n1 says once that it left" test "$(grep -c "not in a fleet (the config has no cluster key): 1 certificate taken from a fleet" "$T/n1.log")" = 1
grep -q "('web')" "$T/n1.log" || fail "the leave line does not name web"
finish
