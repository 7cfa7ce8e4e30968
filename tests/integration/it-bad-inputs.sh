#!/bin/bash
# Every entry of tests/data/bad/MANIFEST.tsv fed through the real certctl to one
# real agent (configs: to certagent itself).  For each: the documented exit
# code, the message naming the problem, the password of the protected files
# never shown, and the agent still answering.  At the end: no password in the
# agent's log, the store holds exactly the good and the accepted entries, and
# a certificate imported before the onslaught still exports whole.  Then a
# SIGHUP with each bad config keeps the running configuration.
. "$(dirname "$0")/lib.sh" "$@"
BAD=$DATA/bad
PASSWORD=$(head -n 1 "$BAD/password.txt")
printf 'not the password\n' >"$T/wrongpass"
# A reloadable value that shows: it must survive the bad reloads at the end.
printf '{"selfsigned_days": 7}\n' >"$CONFIG"
start_agent

# A good certificate first: it must survive everything below.
run 0 ctl import good --cert "$DATA/leaf.pem" --key "$DATA/leaf.key" --chain "$DATA/intermediate.pem"
run 0 ctl export good --format pem --out "$T/good-before.pem"
expected_count=1

# feed FEED FILE NAME: the certctl command line for a manifest entry.
feed_args() {
    local feed=$1 file=$2 name=$3 kind rest opt
    kind=${feed%%,*}
    rest=${feed#"$kind"}
    ARGS=()
    case $kind in
    name) ARGS=(import "$(cat "$BAD/$file")" --cert "$DATA/leaf.pem" --key "$DATA/leaf.key") ;;
    cert) ARGS=(import "$name" --cert "$BAD/$file") ;;
    key) ARGS=(import "$name" --key "$BAD/$file") ;;
    chain) ARGS=(import "$name" --chain "$BAD/$file") ;;
    pfx) ARGS=(import "$name" --pfx "$BAD/$file") ;;
    *) fail "unknown feed '$feed'"; return 1 ;;
    esac
    IFS=, read -ra opts <<<"${rest#,}"
    for opt in "${opts[@]}"; do
        case $opt in
        "") ;;
        key=*) ARGS+=(--key "$BAD/${opt#key=}") ;;
        cert=*) ARGS+=(--cert "$BAD/${opt#cert=}") ;;
        pass) ARGS+=(--password-file "$BAD/password.txt") ;;
        wrongpass) ARGS+=(--password-file "$T/wrongpass") ;;
        *) fail "unknown feed option '$opt'"; return 1 ;;
        esac
    done
}

# A config entry: certagent must refuse to start naming the key, or start with the warning.
feed_config() {
    local file=$1 expect=$2 code=$3 text=$4 dir=$T/cfg-${1%.json} pid rc
    mkdir -p "$dir"
    if [ "$expect" = rejected ]; then
        timeout 60 "$AGENT" --foreground --config "$BAD/$file" --socket "$dir/s" \
            --state-dir "$dir/state" >"$dir/out" 2>&1
        rc=$?
        OUT=$(cat "$dir/out")
        if [ "$rc" -eq "$code" ]; then pass; else fail "$file: certagent exited $rc, expected $code: $OUT"; fi
        has "$text"
        has "$file" # the message names the file too
    else
        if pid=$("$AGENT_UP" "$dir/log" "$AGENT" --foreground --config "$BAD/$file" \
            --socket "$dir/s" --state-dir "$dir/state"); then
            pass
            OUT=$(cat "$dir/log")
            has "$text"
            run 0 "$CTL" --socket "$dir/s" ping
            kill -TERM "$pid"
            wait_gone "$pid"
        else
            fail "$file: the agent did not start: $(cat "$dir/log")"
        fi
    fi
}

n=0
entries=0
while IFS=$'\t' read -r file feed expect code text; do
    case $file in '#'* | '') continue ;; esac
    n=$((n + 1))
    entries=$((entries + 1))
    if [ "$feed" = config ]; then
        feed_config "$file" "$expect" "$code" "$text"
        continue
    fi
    name=bad$n
    feed_args "$feed" "$file" "$name" || continue
    run "$code" ctl "${ARGS[@]}"
    has "$text"
    lacks "$PASSWORD"
    if [ "$expect" = accepted-with-warning ]; then
        has "warning:"
        expected_count=$((expected_count + 1))
    elif [ "$expect" != rejected ]; then
        fail "$file: unknown expectation '$expect'"
    fi
    # Names with control characters must not reach the terminal as they are.
    case $file in *.name) lacks $'\033' ;; esac
    run 0 ctl ping
done <"$BAD/MANIFEST.tsv"
[ "$entries" -ge 50 ] && pass || fail "only $entries manifest entries"

# The agent kept no secret and lost nothing.
check "the agent is still running" kill -0 "$AGENT_PID"
if grep -qF -- "$PASSWORD" "$LOG"; then fail "the PFX password is in the agent's log"; else pass; fi
run 0 ctl --json list
json "j['count'] == $expected_count and len(j['certificates']) == $expected_count"
run 0 ctl export good --format pem --out "$T/good-after.pem"
check "the good certificate exports as before" cmp -s "$T/good-before.pem" "$T/good-after.pem"
check "its key still matches" key_matches "$STATE/live/good/cert.pem" "$STATE/live/good/privkey.pem"

# SIGHUP with a bad config: the reload fails, naming the problem; the running config stays.
reloads=0
for file in config-wrong-type.json config-duplicate-key.json config-nul.json config-deep.json \
    config-invalid-utf8.json; do
    reloads=$((reloads + 1))
    cp "$BAD/$file" "$CONFIG"
    kill -HUP "$AGENT_PID"
    wait_for 30 sh -c "test \$(grep -c 'reload failed, keeping the running configuration' '$LOG') -ge $reloads" &&
        pass || fail "no refused reload logged for $file"
    run 0 ctl ping
done
grep 'reload failed' "$LOG" >"$T/reloads"
OUT=$(cat "$T/reloads")
has "\$.log_level: expected a string"
has "\$.log_level: duplicate key"
has "a NUL byte"
has "nested deeper than"
has "not valid UTF-8"
# The running configuration is still the one from the start: 7-day self-signed certificates.
run 0 ctl --json selfsigned kept --dns kept.example.test
json "j['days_left'] in (6, 7)"
# A good config is taken again.
echo '{}' >"$CONFIG"
kill -HUP "$AGENT_PID"
wait_log "configuration reloaded from"
run 0 ctl ping
finish
