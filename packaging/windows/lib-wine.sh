# shellcheck shell=bash
# The harness the Windows test scripts share (test.sh, test-fleet.sh, ../msi/test-msi.sh).
# Set ROOT (the source tree) and WINE_TEST (the name log lines start with) before sourcing.
# Gives OUT (build-win), WINEPREFIX, the counters FAILURES and CHECKS, and:
#   log TEXT; fail TEXT; pass
#   run RC CMD...        CMD must exit RC; its output (without CRs) is kept in OUT_TEXT
#   has TEXT             OUT_TEXT contains TEXT
#   check WHAT CMD...    CMD must succeed (WHAT names the failure)
#   wait_for SECONDS CMD...  until CMD succeeds (bounded; 1 when it never did)
OUT=$ROOT/build-win
export WINEPREFIX=${WINEPREFIX:-$OUT/wineprefix}
export WINEDEBUG=-all
FAILURES=0
CHECKS=0
log() { echo "$WINE_TEST: $*"; }
fail() { FAILURES=$((FAILURES + 1)); echo "FAIL: $*"; }
pass() { CHECKS=$((CHECKS + 1)); }
run() {
    want=$1
    shift
    OUT_TEXT=$("$@" 2>&1 | tr -d '\r')
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne "$want" ]; then fail "'$*' exited $rc, expected $want: $OUT_TEXT"; else pass; fi
}
has() { if printf '%s' "$OUT_TEXT" | grep -qF -- "$1"; then pass; else fail "expected '$1' in: $OUT_TEXT"; fi; }
check() {
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then pass; else fail "$what"; fi
}
wait_for() {
    local limit=$1 end
    shift
    end=$(($(date +%s%N) + limit * 1000000000))
    while ! "$@" >/dev/null 2>&1; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.1
    done
}
