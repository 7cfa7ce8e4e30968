#!/bin/bash
# Runs the Windows tests under Wine after packaging/windows/build.sh: the unit
# tests through ctest (CMAKE_CROSSCOMPILING_EMULATOR=wine), then the real
# certagent.exe on a named pipe driven by the real certctl.exe.  Exits
# non-zero when anything fails.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/build-win
export WINEPREFIX=${WINEPREFIX:-$OUT/wineprefix}
export WINEDEBUG=-all
FAILURES=0
CHECKS=0

log() { echo "windows/test.sh: $*"; }
fail() { FAILURES=$((FAILURES + 1)); echo "FAIL: $*"; }
pass() { CHECKS=$((CHECKS + 1)); }

if [ ! -d "$WINEPREFIX" ]; then
    log "creating the Wine prefix"
    wineboot -u >/dev/null 2>&1
fi
# Keep one wineserver for the whole run (Wine ends services and stray
# processes shortly after the last client exits otherwise).
wineserver -p
trap 'wineserver -k 2>/dev/null' EXIT
# The first Wine process starts Wine's own background services; start them
# here, away from ctest's output pipes, which they would otherwise hold open.
wine cmd /c exit >/dev/null 2>&1 </dev/null

log "unit tests"
if ctest --test-dir "$OUT" --output-on-failure --timeout 120; then pass; else fail "unit tests under Wine"; fi

AGENT=$OUT/agent/certagent.exe
CTL=$OUT/ctl/certctl.exe
PIPE="\\\\.\\pipe\\certagent-test-$$"
T=$(mktemp -d /tmp/certagent-wine-XXXXXX)
WT=$(winepath -w "$T" 2>/dev/null)
echo '{}' >"$T/certagent.json"
ctl() { wine "$CTL" --socket "$PIPE" "$@"; }
run() {
    want=$1
    shift
    OUT_TEXT=$("$@" 2>&1 | tr -d '\r')
    rc=${PIPESTATUS[0]}
    if [ "$rc" -ne "$want" ]; then fail "'$*' exited $rc, expected $want: $OUT_TEXT"; else pass; fi
}
has() { if printf '%s' "$OUT_TEXT" | grep -qF -- "$1"; then pass; else fail "expected '$1' in: $OUT_TEXT"; fi; }

log "certagent.exe on $PIPE"
wine "$AGENT" --foreground --config "$WT\\certagent.json" --state-dir "$WT\\state" \
    --socket "$PIPE" --log-level debug >"$T/agent.log" 2>&1 &
agent=$!
# Wine has no readiness channel for a console process: ask until it answers (bounded).
for _ in $(seq 1 100); do
    ctl ping >/dev/null 2>&1 && break
    kill -0 "$agent" 2>/dev/null || break
    sleep 0.1
done
run 0 ctl version
has "certagent 26.1.0"
# The pipe admits SYSTEM, Administrators and the agent's account, and no remote client.
run 0 wine "$OUT/tests/acl-check.exe" --deny-network "$PIPE"
has "(D;;GA;;;NU)"
run 0 ctl selfsigned web --dns www.example.test --key rsa2048 --days 30
has "created self-signed 'web' version 1"
run 0 ctl selfsigned web --dns www.example.test --key ec256
has "version 2"
run 0 ctl list
has "web"
run 0 ctl --json show web
has '"version":	2'
run 0 ctl rollback web
has "now at version 1"
run 0 ctl export web --format pfx --out "$WT\\web.pfx"
if openssl pkcs12 -in "$T/web.pfx" -passin pass: -nodes -out /dev/null 2>/dev/null; then pass; else fail "exported PFX unreadable"; fi
run 0 ctl import web2 --pfx "$WT\\web.pfx"
has "imported 'web2' version 1"
run 1 ctl show nothing
has "E_NOT_FOUND"
run 0 ctl remove web2
# Key folders: SYSTEM, Administrators and the agent's account only.
run 0 wine "$OUT/tests/acl-check.exe" "$WT\\state\\certs"
has "(A;OICI;FA;;;SY)"
check_live=$(ls "$T/state/live/web" 2>/dev/null | tr '\n' ' ')
case "$check_live" in *privkey.pem*) pass ;; *) fail "live/web lacks privkey.pem: $check_live" ;; esac
# A second agent on the same pipe is refused.
run 1 wine "$AGENT" --foreground --config "$WT\\certagent.json" --state-dir "$WT\\state2" \
    --socket "$PIPE"
has "already listening"
kill "$agent" 2>/dev/null
wait "$agent" 2>/dev/null

# The service: registered with the SCM, started, used over its pipe, stopped cleanly, removed.
log "certagent.exe as a service"
SVC_PIPE="\\\\.\\pipe\\certagent-svc-$$"
svc_ctl() { wine "$CTL" --socket "$SVC_PIPE" "$@"; }
wine "$AGENT" --uninstall-service >/dev/null 2>&1
# This agent also deploys every new version to LocalMachine\MY.
echo '{"windows_store": "MY"}' >"$T/svc.json"
run 0 wine "$AGENT" --install-service --config "$WT\\svc.json" --state-dir "$WT\\svc" \
    --socket "$SVC_PIPE"
has "installed"
run 0 wine sc start certagent
for _ in $(seq 1 100); do
    svc_ctl ping >/dev/null 2>&1 && break
    sleep 0.1
done
run 0 wine sc query certagent
has "RUNNING"
run 0 svc_ctl version
has "certagent 26.1.0"
SVC=svc-$$
run 0 svc_ctl selfsigned "$SVC" --dns svc.example.test --key rsa2048
has "created self-signed '$SVC' version 1"
lacks_text() { if printf '%s' "$OUT_TEXT" | grep -qF -- "$1"; then fail "unexpected '$1' in: $OUT_TEXT"; else pass; fi; }
lacks_text "not deployed"
run 0 svc_ctl list
has "svc.example.test"
# The Windows certificate store got it under its friendly name (RSA: Wine 8's PFX
# import refuses EC keys, which real Windows accepts).  Replacing it with the next
# version is not checked here: Wine 8 does not persist that change (see README).
run 0 wine "$OUT/tests/store-check.exe" MY "certagent $SVC"
has "1 certificate(s) named 'certagent $SVC'"
run 0 svc_ctl export "$SVC" --format pfx --out "$WT\\svc.pfx"
if openssl pkcs12 -in "$T/svc.pfx" -passin pass: -nodes -out /dev/null 2>/dev/null; then pass; else fail "service export unreadable"; fi
run 0 wine sc stop certagent
for _ in $(seq 1 100); do
    wine sc query certagent 2>/dev/null | tr -d '\r' | grep -q STOPPED && break
    sleep 0.1
done
run 0 wine sc query certagent
has "STOPPED"
has "WIN32_EXIT_CODE    : 0"
run 0 wine "$AGENT" --uninstall-service
has "removed"
run 1 wine sc query certagent

# The MSI (packaging/msi/test-msi.sh): its tables, then installs, upgrades and
# refusals under Wine's msiexec, in this Wine prefix and wineserver.
log "the MSI (packaging/msi/test-msi.sh)"
if bash "$ROOT/packaging/msi/test-msi.sh"; then pass; else fail "the MSI tests"; fi
if [ "$FAILURES" -ne 0 ]; then
    echo "--- agent log"
    tr -d '\r' <"$T/agent.log" | tail -n 40
fi
rm -rf "$T"
echo "$CHECKS passed, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
