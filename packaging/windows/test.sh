#!/bin/bash
# Runs the Windows tests under Wine after packaging/windows/build.sh: the unit
# tests and integration.ipc (test_ipc.exe against the real certagent.exe on a
# named pipe of its own) through ctest (CMAKE_CROSSCOMPILING_EMULATOR=wine),
# then the real certagent.exe on a named pipe driven by the real certctl.exe.
# Exits non-zero when anything fails.
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

log "unit tests and integration.ipc"
# --timeout is for tests without their own; integration.ipc has 300 s (about 5 s under Wine).
if ctest --test-dir "$OUT" --output-on-failure --timeout 120; then pass; else fail "ctest under Wine"; fi

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
lacks_text() { if printf '%s' "$OUT_TEXT" | grep -qF -- "$1"; then fail "unexpected '$1' in: $OUT_TEXT"; else pass; fi; }
# jget EXPR: a value of the last JSON output (j), e.g. "j['windows_store']['MY']".
jget() { printf '%s' "$OUT_TEXT" | python3 -c "import json,sys; j=json.load(sys.stdin); print($1)" 2>/dev/null; }
same() { if [ -n "$2" ] && [ "$2" = "$3" ]; then pass; else fail "$1: '$2' vs '$3'"; fi; }
differ() { if [ -n "$2" ] && [ -n "$3" ] && [ "$2" != "$3" ]; then pass; else fail "$1: '$2' vs '$3'"; fi; }
sha1_of() { openssl x509 -in "$1" -noout -fingerprint -sha1 | cut -d= -f2 | tr -d ':'; }
SC=$OUT/tests/store-check.exe

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
# certctl checks the account of the pipe's server before it sends anything (ctl/win/endpoint.c:
# LocalSystem, an elevated administrator, its own user or CERTAGENT_AGENT_USER).  Wine 8 runs
# every process under one administrator's token, and its GetNamedPipeServerProcessId answers
# pid 0, so only the accepting side runs here (the refusal is checked on real Windows only):
# the agent is accepted, also when CERTAGENT_AGENT_USER names no account.
run 0 ctl ping
has "certagent answers"
run 0 env CERTAGENT_AGENT_USER=no-such-account-$$ wine "$CTL" --socket "$PIPE" ping
has "certagent answers"
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

# The Windows certificate store as a per-certificate deploy target, with RSA keys (Wine
# 8's PFX import refuses EC keys, which real Windows accepts).
log "the Windows certificate store"
ST=st-$$
run 0 ctl selfsigned "$ST" --dns st.example.test --key rsa2048 --days 30
# Adding a target deploys the current version before the reply.
run 0 ctl set "$ST" --deploy-store MY --store-exportable
has "deploy store LocalMachine\\MY (replaces the previous version, key exportable)"
has "in store     LocalMachine\\MY, thumbprint"
run 0 ctl --json show "$ST"
T1=$(jget "j['windows_store']['MY']")
FP1=$(jget "j['fingerprint']")
same "the recorded thumbprint is the certificate's" "$T1" "$(sha1_of "$T/state/live/$ST/cert.pem")"
run 0 wine "$SC" MY "certagent $ST"
has "1 certificate(s) named 'certagent $ST' in LocalMachine\\MY"
has "$T1"
# import --from-store: the certificate and its (exportable) key back, under another name.
run 0 ctl import "$ST-copy" --from-store "$T1" --store MY
has "imported '$ST-copy' version 1"
run 0 ctl --json show "$ST-copy"
same "import --from-store: the fingerprint" "$(jget "j['fingerprint']")" "$FP1"
same "import --from-store: the key" \
    "$(openssl pkey -in "$T/state/live/$ST-copy/privkey.pem" -pubout 2>/dev/null | sha256sum)" \
    "$(openssl pkey -in "$T/state/live/$ST/privkey.pem" -pubout 2>/dev/null | sha256sum)"
run 1 ctl import nothing --from-store 00112233445566778899AABBCCDDEEFF00112233
has "no certificate with thumbprint 00112233445566778899AABBCCDDEEFF00112233 in LocalMachine\\MY"
run 1 ctl import nothing --from-store 0011
has "'0011' is not a certificate thumbprint"
# Without --store-exportable the key stays in the store.
NX=nx-$$
run 0 ctl selfsigned "$NX" --dns nx.example.test --key rsa2048
run 0 ctl set "$NX" --deploy-store MY
has "key not exportable"
run 0 ctl --json show "$NX"
TNX=$(jget "j['windows_store']['MY']")
run 1 ctl import "$NX-copy" --from-store "$TNX"
has "the private key of the certificate $TNX in LocalMachine\\MY is not exportable"
run 1 ctl show "$NX-copy"
# The next version replaces the previous one (certctl deploy waits for the deploy the new
# version started, then deploys once more: the same thumbprint).
run 0 ctl selfsigned "$ST" --dns st.example.test --key rsa2048 --days 30
run 0 ctl deploy "$ST"
run 0 ctl --json show "$ST"
T2=$(jget "j['windows_store']['MY']")
differ "version 2: a new thumbprint" "$T1" "$T2"
same "version 2: the recorded thumbprint is the certificate's" "$T2" "$(sha1_of "$T/state/live/$ST/cert.pem")"
run 0 wine "$SC" --has MY "$T2"
run 1 wine "$SC" --has MY "$T1"
run 0 wine "$SC" MY "certagent $ST"
has "1 certificate(s)"
# A rollback puts version 1 back and takes version 2 out.
run 0 ctl rollback "$ST"
run 0 ctl deploy "$ST"
run 0 ctl --json show "$ST"
same "rollback: version 1's thumbprint again" "$(jget "j['windows_store']['MY']")" "$T1"
run 0 wine "$SC" --has MY "$T1"
run 1 wine "$SC" --has MY "$T2"
# keep_previous: the next version joins the previous one.
run 0 ctl set "$ST" --deploy-store MY --store-keep-previous --store-exportable
has "keeps the previous version"
run 0 ctl selfsigned "$ST" --dns st.example.test --key rsa2048 --days 30
run 0 ctl deploy "$ST"
run 0 ctl --json show "$ST"
T3=$(jget "j['windows_store']['MY']")
differ "keep_previous: a new thumbprint" "$T1" "$T3"
run 0 wine "$SC" --has MY "$T3"
run 0 wine "$SC" --has MY "$T1"
run 0 ctl --json status
same "status --json shows the thumbprint" \
    "$(jget "[c for c in j['certificates'] if c['name'] == '$ST'][0]['windows_store']['MY']")" "$T3"
# A certificate with a chain: the leaf and its key go to MY, the intermediate to CA, the
# root nowhere (an RSA chain made here: the fixed test files are EC).
CH=$T/chain
mkdir -p "$CH"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CH/root.key" -out "$CH/root.pem" -days 30 \
    -subj "/CN=wine chain root $$" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$CH/int.key" -out "$CH/int.csr" \
    -subj "/CN=wine chain intermediate $$" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n' >"$CH/int.ext"
openssl x509 -req -in "$CH/int.csr" -CA "$CH/root.pem" -CAkey "$CH/root.key" -CAcreateserial \
    -days 30 -extfile "$CH/int.ext" -out "$CH/int.pem" 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$CH/leaf.key" -out "$CH/leaf.csr" \
    -subj "/CN=chain.example.test" 2>/dev/null
printf 'subjectAltName=DNS:chain.example.test\n' >"$CH/leaf.ext"
openssl x509 -req -in "$CH/leaf.csr" -CA "$CH/int.pem" -CAkey "$CH/int.key" -CAcreateserial \
    -days 30 -extfile "$CH/leaf.ext" -out "$CH/leaf.pem" 2>/dev/null
CHN=chain-$$
run 0 ctl import "$CHN" --cert "$(winepath -w "$CH/leaf.pem")" --key "$(winepath -w "$CH/leaf.key")" \
    --chain "$(winepath -w "$CH/int.pem")" --deploy-store MY
run 0 ctl deploy "$CHN"
run 0 wine "$SC" --has MY "$(sha1_of "$CH/leaf.pem")"
run 0 wine "$SC" --has CA "$(sha1_of "$CH/int.pem")"
run 1 wine "$SC" --has CA "$(sha1_of "$CH/root.pem")"
run 1 wine "$SC" --has Root "$(sha1_of "$CH/root.pem")"

# Removing the target (store names compare without case) leaves the store alone.
run 0 ctl set "$ST" --remove-target my
lacks_text "deploy store"
run 0 ctl --json show "$ST"
same "the record stays after the target goes" "$(jget "j['windows_store']['MY']")" "$T3"

# The trust store's anchors go to LocalMachine\Root, intermediates to LocalMachine\CA, and
# leave them when removed.
log "trust anchors in LocalMachine\\Root and LocalMachine\\CA"
D=$ROOT/tests/data
ROOT_SHA1=$(sha1_of "$D/root.pem")
INT_SHA1=$(sha1_of "$D/intermediate.pem")
run 1 wine "$SC" --has Root "$ROOT_SHA1"
run 0 ctl trust add "$(winepath -w "$D/root.pem")"
lacks_text "not added"
run 0 wine "$SC" --has Root "$ROOT_SHA1"
run 0 ctl trust add "$(winepath -w "$D/intermediate.pem")" --intermediate
lacks_text "not added"
run 0 wine "$SC" --has CA "$INT_SHA1"
run 1 wine "$SC" --has Root "$INT_SHA1"
run 0 ctl trust remove "$(openssl x509 -in "$D/root.pem" -noout -fingerprint -sha256 | cut -d= -f2)"
lacks_text "not removed"
run 1 wine "$SC" --has Root "$ROOT_SHA1"
run 0 ctl trust remove "$(openssl x509 -in "$D/intermediate.pem" -noout -fingerprint -sha256 | cut -d= -f2)"
run 1 wine "$SC" --has CA "$INT_SHA1"

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
run 3 wine "$OUT/tests/eventlog-check.exe"
has "no event source"
run 0 wine "$AGENT" --install-service --config "$WT\\svc.json" --state-dir "$WT\\svc" \
    --socket "$SVC_PIPE"
has "installed"
# The event source: certagent.exe is its message file, and its message reads back as the line.
run 0 wine "$OUT/tests/eventlog-check.exe"
has "EventMessageFile: $(winepath -w "$AGENT")"
has "TypesSupported: 7"
has "message 1: eventlog-check line"
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
run 0 svc_ctl list
has "svc.example.test"
# The config's windows_store is the default store target: certctl deploy waits for the
# deploy the new version started.
run 0 svc_ctl deploy "$SVC"
run 0 svc_ctl --json show "$SVC"
TS=$(jget "j['windows_store']['MY']")
run 0 wine "$SC" MY "certagent $SVC"
has "1 certificate(s) named 'certagent $SVC'"
has "$TS"
run 0 svc_ctl export "$SVC" --format pfx --out "$WT\\svc.pfx"
if openssl pkcs12 -in "$T/svc.pfx" -passin pass: -nodes -out /dev/null 2>/dev/null; then pass; else fail "service export unreadable"; fi
run 0 wine sc stop certagent
# The stop is awaited (jobs in flight finish first; each sc query under Wine takes a while
# on a loaded machine): up to a minute, leaving as soon as the service says STOPPED.
for _ in $(seq 1 600); do
    wine sc query certagent 2>/dev/null | tr -d '\r' | grep -q STOPPED && break
    sleep 0.1
done
run 0 wine sc query certagent
has "STOPPED"
has "WIN32_EXIT_CODE    : 0"
run 0 wine "$AGENT" --uninstall-service
has "removed"
run 1 wine sc query certagent
run 3 wine "$OUT/tests/eventlog-check.exe"
has "no event source"

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
