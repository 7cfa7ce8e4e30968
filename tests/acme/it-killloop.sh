#!/bin/bash
# kill -9 at random instants during ACME issuance and renewal against a real Pebble: after
# each restart the store is whole (every current version complete, its key matching), every
# order the CA had created resumes and ends (no order left in flight), and no version was
# stored twice from one order (every stored serial is distinct).  ROUNDS (default 12) sets
# the length; the long run is ROUNDS=1000.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"
ROUNDS=${ROUNDS:-12}

PEBBLE_WFE_NONCEREJECT=0 pebble_start || finish
pebble_agent_config
start_agent
run 0 ctl ca add pebble --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl account register --ca pebble --agree-tos
kills=0
for round in $(seq 1 "$ROUNDS"); do
    n=k$((round % 4))
    if [ -d "$STATE/certs/$n" ]; then
        ctl renew "$n" --force >/dev/null 2>&1 &
    else
        ctl request "$n" --dns "$n.example.test" --ca pebble >/dev/null 2>&1 &
    fi
    job=$!
    # The random instant: 0 to 800 ms into the order (key, newOrder, challenge, finalize,
    # download, store).
    sleep "0.$(printf '%03d' $((RANDOM % 800)))"
    kill_agent
    kills=$((kills + 1))
    wait "$job"
    start_agent
    if out=$(verify_store); then
        pass
    else
        fail "round $round: store damaged after kill -9:"
        echo "$out"
        break
    fi
    # Resumed orders end (stored, or failed with words); none stays in flight.
    idle() { ctl --json status | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["acme_orders"] == 0 else 1)'; }
    check "round $round: no order left in flight" wait_for 120 idle
    # The order's files are removed by the thread pool after it ended: a moment later.
    check "round $round: no orders/ file left behind" \
        wait_for 10 sh -c "[ -z \"\$(ls '$STATE/acme/orders' 2>/dev/null)\" ]"
    check_no_temp_leftovers "round $round: temporary files of cut-short writes left" "$STATE"
done
check "the store is whole at the end" verify_store
resumed=$(grep -c "resuming the ACME order" "$LOG")
check "no serial stored twice" python3 - "$STATE" <<'PY'
import json, os, sys
state = sys.argv[1]
serials = []
for name in os.listdir(os.path.join(state, "certs")):
    lin = json.load(open(os.path.join(state, "certs", name, "lineage.json")))
    serials += [v["serial"] for v in lin["versions"]]
sys.exit(0 if len(serials) == len(set(serials)) else 1)
PY
echo "killloop: $ROUNDS rounds, $kills kills, $resumed orders resumed after a restart," \
    "$(cat "$STATE"/certs/*/lineage.json | grep -c '"serial"') versions stored"
stop_agent
finish
