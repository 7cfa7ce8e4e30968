#!/bin/bash
# certagent-upgrade-check as the installers run it: decisions, exit codes,
# and the installed version read from a real agent's state directory.
. "$(dirname "$0")/lib.sh" "$@"

run 3 "$UPGRADE_CHECK" --installed 23.1.1 --new 26.1.0
has "Upgrade to 23.1.2 first"
run 0 "$UPGRADE_CHECK" --installed 23.1.2 --new 26.1.0
has "upgrading certagent 23.1.2 to 26.1.0"
run 0 "$UPGRADE_CHECK" --installed 23.1.10 --new 26.1.0
run 4 "$UPGRADE_CHECK" --installed 26.2.0 --new 26.1.0
has "refusing to downgrade"
run 0 "$UPGRADE_CHECK" --installed 26.2.0 --new 26.1.0 --force
run 2 "$UPGRADE_CHECK" --installed 26.x
has "invalid"
run 2 "$UPGRADE_CHECK" --bogus
# No state yet: a fresh install.
run 0 "$UPGRADE_CHECK" --state-dir "$STATE"
has "fresh install"
# After the agent ran on the state directory, it is the installed version.
start_agent
stop_agent
run 0 "$UPGRADE_CHECK" --state-dir "$STATE"
has "26.1.0 is already installed"
run 4 "$UPGRADE_CHECK" --state-dir "$STATE" --new 25.1.0

# --backup: an allowed upgrade copies the state directory beside it first.
run 0 "$UPGRADE_CHECK" --state-dir "$T/none" --installed 23.1.2 --backup
has "nothing to back up"
start_agent
run 0 ctl selfsigned web --dns www.example.test
stop_agent
run 0 "$UPGRADE_CHECK" --state-dir "$STATE" --installed 23.1.2 --new 26.1.0 --backup
has "backed up $STATE to $STATE.bak-23.1.2-"
BAK=$(ls -d "$STATE".bak-23.1.2-* 2>/dev/null | head -n 1)
check "the backup is a directory" test -d "$BAK"
check "the backup has everything but the lock" diff -r --no-dereference -x .lock "$STATE" "$BAK"
check "the lock is not copied" test ! -e "$BAK/.lock"
check "keys stay 0600 in the backup" test "$(mode_of "$BAK/live/web/privkey.pem")" = 600
check "version directories stay 0700" test "$(mode_of "$BAK/certs/web/v1")" = 700
check "live/web is still a link" test -L "$BAK/live/web"
check "the link shows the same version" test "$(readlink "$BAK/live/web")" = "$(readlink "$STATE/live/web")"
check "no partial copy is left" test -z "$(ls -d "$STATE".bak-*.partial 2>/dev/null)"
# Refusals, reinstalls and plain checks copy nothing.
run 3 "$UPGRADE_CHECK" --state-dir "$STATE" --installed 23.1.1 --backup
run 4 "$UPGRADE_CHECK" --state-dir "$STATE" --installed 27.1.0 --backup
run 0 "$UPGRADE_CHECK" --state-dir "$STATE" --backup
has "already installed"
check "only one backup" test "$(ls -d "$STATE".bak-* | wc -l)" = 1
# A forced downgrade is backed up too.
run 0 "$UPGRADE_CHECK" --state-dir "$STATE" --installed 27.1.0 --force --backup
has "backed up"
check "the forced downgrade's backup" test -d "$(ls -d "$STATE".bak-27.1.0-* | head -n 1)"
finish
