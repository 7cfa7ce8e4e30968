#!/bin/bash
# kill -9 at random instants during repeated imports, self-signed creations,
# rollbacks and removals; after each restart the store must be intact: every
# current version complete, every key present and matching its certificate,
# no leftovers; every deploy target holds the current version, its files whole and matching
# (a deploy cut short is done again at the next start).  ROUNDS (default 30) sets the length.
. "$(dirname "$0")/lib.sh" "$@"
ROUNDS=${ROUNDS:-30}

# Import material made here: a key and a self-signed certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=imported.test -addext subjectAltName=DNS:imported.test \
    -keyout "$T/imp.key" -out "$T/imp.pem" 2>/dev/null || { fail "openssl req"; finish; }

workload() {
    i=0
    while :; do
        i=$((i + 1))
        n=$((i % 4))
        case $((i % 5)) in
        0 | 1) "$CTL" --socket "$SOCK" selfsigned "s$n" --dns "s$n.test" --key ec256 ;;
        2) "$CTL" --socket "$SOCK" import "i$n" --cert "$T/imp.pem" --key "$T/imp.key" ;;
        3) "$CTL" --socket "$SOCK" rollback "s$n" ;;
        4) [ $((i % 15)) -eq 4 ] && "$CTL" --socket "$SOCK" remove "i$n" ;;
        esac >/dev/null 2>&1
        # Exit 3: the agent is gone (killed); stop this round.
        [ $? -eq 3 ] && return
    done
}

start_agent
# s0..s3 deploy their files to $T/deploy/sN after every new version.
for n in 0 1 2 3; do
    run 0 ctl selfsigned "s$n" --dns "s$n.test" --key ec256 --deploy-files "$T/deploy/s$n"
done
deployed() {
    for n in 0 1 2 3; do
        cmp -s "$T/deploy/s$n/cert.pem" "$STATE/live/s$n/cert.pem" || return 1
        cmp -s "$T/deploy/s$n/privkey.pem" "$STATE/live/s$n/privkey.pem" || return 1
        cmp -s "$T/deploy/s$n/fullchain.pem" "$STATE/live/s$n/fullchain.pem" || return 1
    done
}
for round in $(seq 1 "$ROUNDS"); do
    workload &
    wl=$!
    # The random instant: between 20 and 400 ms into the workload.
    sleep "0.$(printf '%03d' $((RANDOM % 380 + 20)))"
    kill_agent
    wait "$wl"
    start_agent
    if out=$(verify_store); then
        pass
    else
        fail "round $round: store damaged after kill -9:"
        echo "$out"
        break
    fi
    # Every certificate must still be usable through the agent.
    run 0 ctl --json list
    check "round $round: deploy targets hold the current versions" wait_for 20 deployed
    check_no_temp_leftovers "round $round: temporary files of cut-short writes left" \
        "$STATE" "$T/deploy"
done
echo "$out" | tail -n 1
echo "killloop: $ROUNDS rounds; $(grep -c 'was not completely deployed' "$LOG") deploys done again" \
    "after a restart"
stop_agent
finish
