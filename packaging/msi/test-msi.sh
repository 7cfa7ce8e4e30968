#!/bin/bash
# Tests of the MSI under Wine, run by packaging/windows/test.sh (which builds
# the Windows tree, sets WINEPREFIX and keeps a wineserver up): builds it with
# `cmake --build build-win --target msi`, checks the File, Component,
# ServiceInstall, ServiceControl, Upgrade, LaunchCondition and CustomAction
# tables with msiinfo, then with `wine msiexec /qn`: a fresh install (files,
# service registered and running, certctl over the default pipe, state under
# ProgramData, event source registered), uninstall (service and event source
# gone, store kept), and against fake
# releases built here from the same .wxs: an upgrade from 23.1.1 (refused by
# the launch condition, or by the custom action when Wine lost the UpgradeCode
# registration; old product and state untouched), from 23.1.2
# (allowed, state backed up by the custom action), a downgrade (refused).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WINE_TEST=msi/test-msi.sh
# shellcheck source=packaging/windows/lib-wine.sh
. "$ROOT/packaging/windows/lib-wine.sh"
run_fails() {
    OUT_TEXT=$("$@" 2>&1 | tr -d '\r')
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then pass; else fail "'$*' succeeded, expected a refusal"; fi
}
T=$(mktemp -d /tmp/certagent-msi-XXXXXX)
WT=$(winepath -w "$T" 2>/dev/null)
trap 'rm -rf "$T"' EXIT

VERSION=$(sed -n 's/^project(certagent VERSION \([0-9.]*\).*/\1/p' "$ROOT/CMakeLists.txt")
MSI=$OUT/certagent-$VERSION-x64.msi
run 0 cmake --build "$OUT" --target msi
if [ -s "$MSI" ]; then pass; else fail "cmake --build --target msi left no $MSI"; fi
table() { msiinfo export "$1" "$2" 2>/dev/null | tail -n +4; }
OUT_TEXT=$(table "$MSI" File)
has "certagent.exe	Agent	certagent.exe"
has "certctl.exe	Ctl	certctl.exe"
has "certagent-upgrade-check.exe"
OUT_TEXT=$(table "$MSI" Component)
has "Agent	{6A8E2F14-3C57-4B9D-A1E0-7F4C2B8D5E63}	INSTALLDIR"
has "Ctl	{C47D1B92-5E08-4F3A-8D6C-2A9B7E1F0D45}	INSTALLDIR"
has "DataDir	{F19A4C63-2D7E-4B58-9E01-5C8B3D6A7F24}	DATADIR"
OUT_TEXT=$(table "$MSI" ServiceInstall)
# Own process (16), automatic start (2), normal error control (1), LocalSystem, --service.
has "CertagentService	certagent	certagent certificate agent	16	2	1			LocalSystem		--service --state-dir \"[CommonAppDataFolder]certagent\\state\"	Agent"
OUT_TEXT=$(table "$MSI" ServiceControl)
# Start on install (1), stop on install and uninstall (2|32), remove on uninstall (128).
has "CertagentServiceControl	certagent	163		1	Agent"
UPGRADE_CODE='{3E0F7C52-8A41-4D6B-9B1E-6C2A5D9F4E17}'
OUT_TEXT=$(table "$MSI" Upgrade)
has "$UPGRADE_CODE	23.1.2	$VERSION		256		CERTAGENT_UPGRADE"
has "$UPGRADE_CODE	0.0.0	23.1.2		258		CERTAGENT_TOO_OLD"
has "$UPGRADE_CODE	$VERSION	127.255.65535		2		CERTAGENT_NEWER"
OUT_TEXT=$(table "$MSI" LaunchCondition)
has "NOT CERTAGENT_TOO_OLD OR Installed	certagent-upgrade-check: refusing to upgrade"
has "Upgrade to 23.1.2 first"
has "NOT CERTAGENT_NEWER OR Installed	certagent-upgrade-check: refusing to downgrade"
OUT_TEXT=$(table "$MSI" CustomAction)
# An EXE from an installed file (18), deferred (1024), as SYSTEM (2048).
has "CertagentUpgradeCheck	3090	certagent_upgrade_check.exe	--new $VERSION --backup --state-dir \"[CommonAppDataFolder]certagent\\state\""
OUT_TEXT=$(table "$MSI" Property)
has "UpgradeCode	$UPGRADE_CODE"
has "ProductVersion	$VERSION"
# The event source, in the Agent component (removed with it).
OUT_TEXT=$(table "$MSI" Registry)
has "SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\certagent\\	EventMessageFile	[INSTALLDIR]certagent.exe	Agent"
has "SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\certagent\\	TypesSupported	#7	Agent"

# Fake releases from the same .wxs, as older and newer versions would be.
for v in 23.1.1 23.1.2 27.1.0; do
    code=$(python3 -c 'import sys, uuid; print(str(uuid.uuid5(uuid.UUID(sys.argv[1]), "certagent " + sys.argv[2])).upper())' "${UPGRADE_CODE:1:36}" "$v")
    (cd "$OUT" && wixl -a x64 -D Version=$v -D ProductCode="$code" -D BinDir=. -o "$T/certagent-$v.msi" \
        "$ROOT/packaging/msi/certagent.wxs") || fail "wixl for the fake $v"
done
# The data folder: the installer passes it to the service and to the check.
PD=$WINEPREFIX/drive_c/ProgramData/certagent
PF="$WINEPREFIX/drive_c/Program Files/certagent"
product_code() { table "$1" Property | sed -n 's/^ProductCode\t//p' | tr -d '\r'; }
# registered VERSION MSI: the product of MSI is installed with DisplayVersion VERSION.
registered() {
    wine reg query "HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Uninstall\\$(product_code "$2")" \
        /v DisplayVersion 2>/dev/null | tr -d '\r' | grep -q "REG_SZ[[:space:]]*$1\$"
}
msi() { wine msiexec "$@" /qn /l*v "$WT\\msi.log"; }
# Wine's msiexec logs no launch-condition text under /qn, but the
# properties and the action's result.
msi_log() { tr -d '\r' <"$T/msi.log"; }
wait_state() {
    for _ in $(seq 1 100); do
        wine sc query certagent 2>/dev/null | tr -d '\r' | grep -q "$1" && return 0
        sleep 0.1
    done
    return 1
}
# fake_old VERSION: installs the fake release, then marks the store as written by it.
fake_old() {
    run 0 msi /i "$(winepath -w "$T/certagent-$1.msi")"
    wait_state RUNNING
    run 0 wine sc stop certagent
    wait_state STOPPED
    printf '{"schema": 1, "written_by": "%s"}\n' "$1" >"$PD/state/state.json"
}
# Every product named certagent goes, whatever MSI installed it, and the store.
clean_machine() {
    for code in $(wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s \
        2>/dev/null | tr -d '\r' | awk '/^HKEY/ { key = $0 } /DisplayName.*REG_SZ +certagent$/ { print key }' |
        sed 's/.*\\//'); do
        wine msiexec /x "$code" /qn >/dev/null 2>&1
    done
    rm -rf "$PD"
}
clean_machine

log "MSI: fresh install"
run 0 msi /i "$(winepath -w "$MSI")"
has "fresh install of certagent $VERSION"
for f in certagent.exe certctl.exe certagent-upgrade-check.exe; do
    if [ -f "$PF/$f" ]; then pass; else fail "$f not under Program Files"; fi
done
if registered "$VERSION" "$MSI"; then pass; else fail "the product is not registered as $VERSION"; fi
wait_state RUNNING
run 0 wine sc query certagent
has "RUNNING"
for _ in $(seq 1 100); do wine "$PF/certctl.exe" ping >/dev/null 2>&1 && break; sleep 0.1; done
run 0 wine "$PF/certctl.exe" version
has "certagent $VERSION"
run 0 wine "$PF/certctl.exe" --json status
state_dir=$(printf '%s' "$OUT_TEXT" | python3 -c 'import json, sys; print(json.load(sys.stdin)["state_dir"])')
if [ "$state_dir" = 'C:\ProgramData\certagent\state' ]; then pass; else fail "the service's store is $state_dir"; fi
run 0 wine "$PF/certctl.exe" selfsigned msi --dns msi.example.test --key rsa2048
has "created self-signed 'msi' version 1"
if grep -q "\"written_by\": \"$VERSION\"" "$PD/state/state.json" 2>/dev/null; then pass; else fail "no state under ProgramData"; fi
# The data folder and the store: wixl has no LockPermissions or PermissionEx, so the
# service gives both their protected DACL (SYSTEM, Administrators) at every start.
run 0 wine "$OUT/tests/acl-check.exe" --private 'C:\ProgramData\certagent'
run 0 wine "$OUT/tests/acl-check.exe" --private 'C:\ProgramData\certagent\state'
# The event source points at the installed certagent.exe, whose message table reads back.
run 0 wine "$OUT/tests/eventlog-check.exe"
has "EventMessageFile: C:\\Program Files\\certagent\\certagent.exe"
has "message 1: eventlog-check line"
log "MSI: uninstall keeps the store"
run 0 msi /x "$(winepath -w "$MSI")"
run 1 wine sc query certagent
if [ ! -e "$PF/certagent.exe" ]; then pass; else fail "uninstall left certagent.exe"; fi
run 3 wine "$OUT/tests/eventlog-check.exe"
has "no event source"
if [ -d "$PD/state/certs/msi" ]; then pass; else fail "uninstall removed the store"; fi
clean_machine

# Wine 8 sometimes loses the UpgradeCode registration of a product installed
# right after another one with the same UpgradeCode was removed (seen once in
# six runs); FindRelatedProducts then sees nothing.  A refusal must hold either
# way: by the launch condition when FindRelatedProducts found the old product,
# else by the custom action, which reads the store.  Which one applies is read
# from msiexec's own log (the registry key is no sure sign: deleting it by hand
# left FindRelatedProducts finding the product).
# refused_by PROPERTY MSI-OF-THE-INSTALLED-ONE TEXT: after run_fails msi /i, the
# launch condition refused (PROPERTY set to that product), or the custom action
# said TEXT; else what msiexec logged is shown.
refused_by() {
    local cmd=$OUT_TEXT
    OUT_TEXT=$(msi_log)
    if printf '%s' "$OUT_TEXT" | grep -qF "$1 = $(product_code "$2")"; then
        has "LaunchConditions. Return value 0"
    elif printf '%s' "$cmd" | grep -qF "$3"; then
        log "FindRelatedProducts saw no $1 product (Wine lost the UpgradeCode registration); the custom action refused"
        pass
    else
        fail "neither the launch condition ($1) nor the custom action ('$3') refused; msiexec said: $cmd; its log ends: $(printf '%s' "$OUT_TEXT" | grep -E 'Action|Return value|rror' | tail -n 15)"
    fi
}
log "MSI: upgrade from 23.1.1 refused"
fake_old 23.1.1
before=$(cd "$PD" && find . -type f | sort | xargs sha256sum)
run_fails msi /i "$(winepath -w "$MSI")"
refused_by CERTAGENT_TOO_OLD "$T/certagent-23.1.1.msi" \
    "refusing to upgrade certagent 23.1.1 to $VERSION directly"
if registered 23.1.1 "$T/certagent-23.1.1.msi"; then pass; else fail "23.1.1 is no longer installed"; fi
if ! registered "$VERSION" "$MSI"; then pass; else fail "$VERSION got registered"; fi
after=$(cd "$PD" && find . -type f | sort | xargs sha256sum)
if [ "$before" = "$after" ]; then pass; else fail "the refused upgrade changed the state"; fi
if [ -z "$(ls -d "$PD"/state.bak-* 2>/dev/null)" ]; then pass; else fail "a refused upgrade made a backup"; fi
clean_machine

log "MSI: upgrade from 23.1.2 allowed, state backed up"
fake_old 23.1.2
run 0 msi /i "$(winepath -w "$MSI")"
OUT_TEXT=$(msi_log)
has "CERTAGENT_UPGRADE = $(product_code "$T/certagent-23.1.2.msi")"
has "CertagentUpgradeCheck. Return value 1"
if registered "$VERSION" "$MSI"; then pass; else fail "$VERSION is not registered after the upgrade"; fi
if ! registered 23.1.2 "$T/certagent-23.1.2.msi"; then pass; else fail "23.1.2 is still registered"; fi
BAK=$(ls -d "$PD"/state.bak-23.1.2-* 2>/dev/null | head -n 1)
if [ -n "$BAK" ] && grep -q '"written_by": "23.1.2"' "$BAK/state.json"; then pass; else fail "no backup of the 23.1.2 state"; fi
wait_state RUNNING
run 0 wine sc query certagent
has "RUNNING"
for _ in $(seq 1 100); do wine "$PF/certctl.exe" ping >/dev/null 2>&1 && break; sleep 0.1; done
run 0 wine "$PF/certctl.exe" version
has "certagent $VERSION"
if grep -q "\"written_by\": \"$VERSION\"" "$PD/state/state.json"; then pass; else fail "the new agent did not take the store over"; fi

log "MSI: downgrade refused"
# From a fresh 27.1.0: Wine 8 drops the whole UpgradeCode registration when
# a major upgrade removes the old product (23.1.2 above), so a product
# installed that way is invisible to the next FindRelatedProducts; Windows
# removes only the old product's entry.
clean_machine
run 0 msi /i "$(winepath -w "$T/certagent-27.1.0.msi")"
if registered 27.1.0 "$T/certagent-27.1.0.msi"; then pass; else fail "27.1.0 did not install"; fi
# As fake_old does: the store is marked as written by 27.1.0 (a real 27.1.0
# agent would have written that at its start).
wait_state RUNNING
run 0 wine sc stop certagent
wait_state STOPPED
printf '{"schema": 1, "written_by": "27.1.0"}\n' >"$PD/state/state.json"
# Refused by the launch condition, or by the custom action (refused_by, above).
run_fails msi /i "$(winepath -w "$MSI")"
refused_by CERTAGENT_NEWER "$T/certagent-27.1.0.msi" \
    "refusing to downgrade certagent 27.1.0 to $VERSION"
if registered 27.1.0 "$T/certagent-27.1.0.msi"; then pass; else fail "27.1.0 is no longer installed"; fi

log "MSI: a store written by a newer version, no product registered: the check refuses"
clean_machine
mkdir -p "$PD/state"
printf '{"schema": 1, "written_by": "27.1.0"}\n' >"$PD/state/state.json"
run_fails msi /i "$(winepath -w "$MSI")"
# The custom action's own words (Wine passes its console through).
has "refusing to downgrade certagent 27.1.0 to $VERSION"
if ! registered "$VERSION" "$MSI"; then pass; else fail "$VERSION registered after the check refused"; fi
if [ ! -e "$PF/certagent.exe" ]; then pass; else fail "the refused install left certagent.exe"; fi
if grep -q '"written_by": "27.1.0"' "$PD/state/state.json"; then pass; else fail "the refused install changed the store"; fi
run 1 wine sc query certagent
clean_machine
run 1 wine sc query certagent
echo "$CHECKS passed, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
