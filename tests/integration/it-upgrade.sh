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
finish
