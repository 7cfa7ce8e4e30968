# shellcheck shell=bash
# Shared by the security tests (tests/security/sec-*.sh): each performs an
# attack as a second local user and asserts that it fails harmlessly.
# Usage: . lib-sec.sh "$@"  (the arguments of tests/integration/lib.sh).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh" "$@"

# The attacks need a second user, which needs root: as another user the test
# says what it did not run and passes nothing it did not check.
need_root() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "SKIP: $(basename "$0"): the attacks run as a second user and need root"
        exit 0
    fi
}

# The attacker: nobody, with no supplementary groups.
# shellcheck disable=SC2034 # for the tests that source this file
NOBODY_UID=$(id -u nobody)
as_nobody() {
    setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
}
# certctl as nobody against this test's agent.
ctl_nobody() {
    as_nobody "$CTL" --socket "$SOCK" "$@"
}
# Lets other users reach $T (the socket), without listing it.
open_test_dir() {
    chmod 0711 "$T"
}
