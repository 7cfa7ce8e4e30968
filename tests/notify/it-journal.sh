#!/bin/bash
# Alerts in the journal (native protocol, no libsystemd): every warning and recovery is one
# entry with CERTAGENT_CODE=, CERTAGENT_EVENT=, CERTAGENT_CERT= and a priority, also without
# any notify channel configured.  The journal's socket is a stand-in here
# (CERTAGENT_JOURNAL_SOCKET), read by journald.py.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-notify.sh"

serve journal journald.py "$T/journal.sock" "$T/journal.txt"
export CERTAGENT_JOURNAL_SOCKET=$T/journal.sock
start_agent

# entry FIELDS...: an entry of the journal holds every FIELD line.
entry() {
    "$PY" - "$T/journal.txt" "$@" <<'PY'
import sys
entries = open(sys.argv[1]).read().split("\n\n")
want = sys.argv[2:]
sys.exit(0 if any(all(w in e.split("\n") for w in want) for e in entries) else 1)
PY
}

run 0 ctl trust add "$DATA/root.pem"
run 0 ctl import web --cert "$DATA/expired.pem" --key "$DATA/expired.key"
check "a critical journal entry with CERTAGENT_CODE=expiring" wait_for 30 entry \
    CERTAGENT_CODE=expiring CERTAGENT_EVENT=warning CERTAGENT_CERT=web PRIORITY=2 \
    SYSLOG_IDENTIFIER=certagent
check "its MESSAGE says it expired" grep -q '^MESSAGE=web expired' "$T/journal.txt"
run 0 ctl import web --cert "$DATA/fullchain.pem" --key "$DATA/leaf.key"
check "a recovery entry" wait_for 30 entry CERTAGENT_EVENT=recovered CERTAGENT_CERT=web PRIORITY=5
# A failed deploy (its hook fails) is one entry too, with the deploy's words.
run 0 ctl set web --deploy-hook "echo hook-broke >&2; exit 3"
ctl deploy web >/dev/null 2>&1
check "a deploy_failed entry" wait_for 30 entry CERTAGENT_EVENT=deploy_failed CERTAGENT_CERT=web \
    CERTAGENT_CODE=deploy_failing PRIORITY=4
stop_agent
finish
