#!/bin/bash
# ACME issuance benchmark (issue 3): one Pebble with real http-01 validation
# (PEBBLE_VA_NOSLEEP=1, pebble-challtestsrv answering every name with 127.0.0.1), and
#   (a) one certificate with 2 names, after a warm-up issuance,
#   (b) N certificates (default 50) with 2 names each,
# through Debian's certbot, lego and uacme (run sequentially, as their users run them), then
# through certagent (N concurrent `certctl request`).  Prints every wall time, the ratios,
# and Pebble's own CPU seconds (utime+stime) during each (b).  Asserts nothing.
#
# usage: bench-acme.sh CERTAGENT CERTCTL AGENT-UP [N]
#        BENCH_CLIENTS="certbot lego uacme certagent" (default: all) picks the clients.
# Needs root for uacme only (it has no CA-file option: it sees Pebble's listener CA through a
# private mount namespace, `unshare -m` + a bind mount over the system CA bundle).
HERE=$(cd "$(dirname "$0")" && pwd)
N=${4:-50}
. "$HERE/../integration/lib.sh" "$1" "$2" "$3" "" ""
. "$HERE/../acme/pebble.sh"
CLIENTS=${BENCH_CLIENTS:-certbot lego uacme certagent}

now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$PEBBLE_PID/stat"; }
hz=$(getconf CLK_TCK)
declare -A A B CPU FAILS

export PEBBLE_VA_NOSLEEP=1
pebble_start || { echo "bench-acme: Pebble did not start"; exit 1; }
echo "Pebble $(dpkg-query -W -f '${Version}' pebble 2>/dev/null) at $PEBBLE_DIRECTORY;" \
    "http-01 on 127.0.0.1:$PEBBLE_HTTP01_PORT; $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"

# measure CLIENT: runs issue_CLIENT for the warm-up, (a) and (b) and records the figures.
# issue_CLIENT TAG NAME1 NAME2 issues one certificate (exit status = success).
measure() {
    local c=$1 t0 t1 c0 i fails=0
    issue_"$c" w "w1.$c.bench.test" "w2.$c.bench.test" >>"$T/$c.log" 2>&1 ||
        { echo "$c: warm-up issuance failed (log: $T/$c.log)"; FAILURES=1; return 1; }
    t0=$(now)
    issue_"$c" a "a1.$c.bench.test" "a2.$c.bench.test" >>"$T/$c.log" 2>&1 || fails=1
    t1=$(now)
    A[$c]=$(secs "$t0" "$t1")
    echo "$c (a) 1 certificate, 2 names: ${A[$c]} s$([ $fails = 0 ] || echo ' (FAILED)')"
    fails=0
    c0=$(ticks)
    t0=$(now)
    for i in $(seq 1 "$N"); do
        issue_"$c" "b$i" "b$i-1.$c.bench.test" "b$i-2.$c.bench.test" >>"$T/$c.log" 2>&1 ||
            fails=$((fails + 1))
    done
    t1=$(now)
    B[$c]=$(secs "$t0" "$t1")
    CPU[$c]=$(awk -v a="$c0" -v b="$(ticks)" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
    FAILS[$c]=$fails
    echo "$c (b) $N certificates, sequential: ${B[$c]} s, $(awk -v b="${B[$c]}" -v n="$N" \
        'BEGIN { printf "%.2f", b / n }') s each, Pebble CPU ${CPU[$c]} s, $fails failed"
}

# --- certbot: standalone http-01 --------------------------------------------------------------
CB=$T/certbot
certbot_cmd() {
    REQUESTS_CA_BUNDLE=$PEBBLE_TRUST certbot --config-dir "$CB/config" --work-dir "$CB/work" \
        --logs-dir "$CB/logs" --server "$PEBBLE_DIRECTORY" --non-interactive "$@"
}
issue_certbot() {
    certbot_cmd certonly --standalone --http-01-address 127.0.0.1 \
        --http-01-port "$PEBBLE_HTTP01_PORT" --cert-name "$1" -d "$2" -d "$3"
}
setup_certbot() {
    command -v certbot >/dev/null || { echo "certbot: not installed"; return 1; }
    certbot_cmd register --agree-tos --register-unsafely-without-email >"$T/certbot.log" 2>&1
}

# --- lego: its own http-01 server ---------------------------------------------------------------
issue_lego() {
    LEGO_CA_CERTIFICATES=$PEBBLE_TRUST lego --server "$PEBBLE_DIRECTORY" \
        --email bench@example.test --accept-tos --path "$T/lego" \
        --http --http.port "127.0.0.1:$PEBBLE_HTTP01_PORT" -d "$2" -d "$3" run
}
setup_lego() { command -v lego >/dev/null || { echo "lego: not installed"; return 1; }; }

# --- uacme: hook + the bench's http-01 responder, CA through a private mount namespace -----------
UA=$T/uacme
uacme_cmd() {
    unshare -m --propagation private sh -c \
        'mount --bind "$0" /etc/ssl/certs/ca-certificates.crt && exec "$@"' "$PEBBLE_TRUST" \
        uacme -a "$PEBBLE_DIRECTORY" -c "$UA" -t EC -o -y -h "$HERE/uacme-hook.sh" "$@"
}
issue_uacme() { uacme_cmd issue "$2" "$3"; }
RESPONDER_PID=
setup_uacme() {
    command -v uacme >/dev/null || { echo "uacme: not installed"; return 1; }
    [ "$(id -u)" = 0 ] || { echo "uacme: needs root for its private mount namespace"; return 1; }
    mkdir -p "$UA" "$T/webroot"
    export UACME_WEBROOT=$T/webroot
    "$ACME_PYTHON" "$HERE/http01-responder.py" "$PEBBLE_HTTP01_PORT" "$T/webroot" \
        >"$T/responder.log" 2>&1 &
    RESPONDER_PID=$!
    _pebble_wait_log "$T/responder.log" "$RESPONDER_PID" 'ready' ||
        { echo "uacme: the http-01 responder did not start"; return 1; }
    uacme_cmd new >"$T/uacme.log" 2>&1
}
stop_uacme() {
    [ -n "$RESPONDER_PID" ] && kill "$RESPONDER_PID" && wait "$RESPONDER_PID" 2>/dev/null
    RESPONDER_PID=
}

for c in certbot lego uacme; do
    case " $CLIENTS " in *" $c "*) ;; *) continue ;; esac
    if setup_"$c"; then
        measure "$c"
    else
        echo "$c: setup failed (log: $T/$c.log)"
        FAILURES=1
    fi
    [ "$c" = uacme ] && stop_uacme
done

# --- certagent: a warm agent, its own concurrency ----------------------------------------------
case " $CLIENTS " in *" certagent "*) want_agent=1 ;; *) want_agent= ;; esac
if [ -n "$want_agent" ] && ! "$CTL" help request >/dev/null 2>&1; then
    echo "certagent: not built yet ('certctl help request' does not exist)"
elif [ -n "$want_agent" ]; then
    pebble_agent_config '{"log_level": "warn"}'
    # Not lib.sh's start_agent: that one logs at debug level.
    # shellcheck disable=SC2034 # AGENT_PID: lib.sh's cleanup kills it
    AGENT_PID=$("$AGENT_UP" "$LOG" "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" \
        --state-dir "$STATE" --log-level warn) || { echo "certagent: the agent did not start"; exit 1; }
    ctl ca add pebble --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST" >/dev/null &&
        ctl account register --ca pebble --agree-tos >/dev/null &&
        ctl request w --dns w1.certagent.bench.test --dns w2.certagent.bench.test --ca pebble \
            >"$T/certagent.log" 2>&1 || { echo "certagent: warm-up failed"; FAILURES=1; }
    t0=$(now)
    ctl request a --dns a1.certagent.bench.test --dns a2.certagent.bench.test --ca pebble \
        >>"$T/certagent.log" 2>&1 || echo "certagent (a) FAILED"
    A[certagent]=$(secs "$t0" "$(now)")
    echo "certagent (a) 1 certificate, 2 names: ${A[certagent]} s"
    c0=$(ticks)
    t0=$(now)
    pids=
    for i in $(seq 1 "$N"); do
        ctl request "b$i" --dns "b$i-1.certagent.bench.test" --dns "b$i-2.certagent.bench.test" \
            --ca pebble >>"$T/certagent-b.log" 2>&1 &
        pids="$pids $!"
    done
    fails=0
    for p in $pids; do wait "$p" || fails=$((fails + 1)); done
    B[certagent]=$(secs "$t0" "$(now)")
    CPU[certagent]=$(awk -v a="$c0" -v b="$(ticks)" -v hz="$hz" 'BEGIN { printf "%.2f", (b - a) / hz }')
    FAILS[certagent]=$fails
    echo "certagent (b) $N certificates, concurrent: ${B[certagent]} s," \
        "Pebble CPU ${CPU[certagent]} s, $fails failed"
fi

# --- summary ----------------------------------------------------------------------------------
echo
echo "summary (wall seconds; ratio = time / fastest of certbot, lego, uacme)"
printf '%-10s %8s %8s %10s %8s %14s %7s\n' client "(a)" "ratio" "(b) x$N" "ratio" \
    "Pebble CPU (b)" failed
ratio() { awk -v x="${1:-0}" -v f="${2:-0}" 'BEGIN { if (f > 0 && x > 0) printf "%.2f", x / f; else print "-" }'; }
fa=$(for c in certbot lego uacme; do [ -n "${A[$c]:-}" ] && echo "${A[$c]}"; done | sort -g | head -n1)
fb=$(for c in certbot lego uacme; do [ -n "${B[$c]:-}" ] && echo "${B[$c]}"; done | sort -g | head -n1)
for c in certbot lego uacme certagent; do
    [ -n "${A[$c]:-}" ] || continue
    printf '%-10s %8s %8s %10s %8s %14s %7s\n' "$c" "${A[$c]}" "$(ratio "${A[$c]}" "$fa")" \
        "${B[$c]:--}" "$(ratio "${B[$c]:-}" "$fb")" "${CPU[$c]:--}" "${FAILS[$c]:--}"
done
if [ -n "${A[certagent]:-}" ] && [ -n "$fa" ]; then
    awk -v f="$fa" -v x="${A[certagent]}" -v fb="$fb" -v xb="${B[certagent]:-0}" 'BEGIN {
        printf "certagent: (a) %.1fx the fastest other client (goal: under 0.3 s)\n", f / x
        if (xb > 0) printf "certagent: (b) %.1fx the fastest other client (goal: >= 10x)\n", fb / xb }'
fi
[ "$FAILURES" -eq 0 ] || echo "some runs failed: logs kept in $T"
