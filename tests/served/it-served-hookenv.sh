#!/bin/bash
# The deploy hooks' environment for Windows-style tools: CERTAGENT_THUMBPRINT (SHA-1,
# upper-case hex), CERTAGENT_SHA256, CERTAGENT_PREVIOUS_THUMBPRINT (the version deployed
# before), CERTAGENT_PFX (with a PFX target); CERTAGENT_STORE only with a Windows store
# target, so never here.  Each value is checked against openssl's own digest of the file.
. "$(dirname "$0")/../integration/lib.sh" "$@"

start_agent
HOOK="env | grep '^CERTAGENT_' | sort >$T/env.\$CERTAGENT_VERSION"
run 0 ctl selfsigned h --dns h.test --deploy-files "$T/deploy" --deploy-pfx "$T/h.pfx" \
    --deploy-hook "$HOOK"
check "first deploy's hook ran" wait_for 30 test -s "$T/env.1"
digest() {
    openssl x509 -in "$1" -noout -fingerprint "-$2" | sed 's/.*=//; s/://g'
}
cp "$T/deploy/cert.pem" "$T/v1.pem"
run 0 ctl selfsigned h --dns h.test
check "second deploy's hook ran" wait_for 30 test -s "$T/env.2"
OUT=$(cat "$T/env.1")
has "CERTAGENT_THUMBPRINT=$(digest "$T/v1.pem" sha1)"
has "CERTAGENT_SHA256=$(digest "$T/v1.pem" sha256)"
has "CERTAGENT_PFX=$T/h.pfx"
lacks "CERTAGENT_PREVIOUS_THUMBPRINT"
lacks "CERTAGENT_STORE"
OUT=$(cat "$T/env.2")
has "CERTAGENT_THUMBPRINT=$(digest "$T/deploy/cert.pem" sha1)"
has "CERTAGENT_SHA256=$(digest "$T/deploy/cert.pem" sha256)"
has "CERTAGENT_PREVIOUS_THUMBPRINT=$(digest "$T/v1.pem" sha1)"
has "CERTAGENT_PFX=$T/h.pfx"
lacks "CERTAGENT_STORE"
check "thumbprints are 40 upper-case hex digits" grep -qE '^CERTAGENT_THUMBPRINT=[0-9A-F]{40}$' "$T/env.2"
# A rollback: the previous thumbprint is the version deployed before (2), not one below 1.
cp "$T/deploy/cert.pem" "$T/v2.pem"
run 0 ctl rollback h --to 1
check "rollback's hook ran" wait_for 30 grep -q PREVIOUS "$T/env.1"
OUT=$(cat "$T/env.1")
has "CERTAGENT_THUMBPRINT=$(digest "$T/v1.pem" sha1)"
has "CERTAGENT_PREVIOUS_THUMBPRINT=$(digest "$T/v2.pem" sha1)"
finish
