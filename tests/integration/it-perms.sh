#!/bin/bash
# Authorization: a user who may connect but is neither root, the agent's
# user nor in the socket's group has the read right only: no operate (logs,
# metrics, probe, verify, trust and CA listings), no change, no export.
# (tests/security/sec-rights.sh has the attacks and operate_group.)
# Runs as root (as CI does); as another user it checks what it can.
. "$(dirname "$0")/lib.sh" "$@"

if [ "$(id -u)" -ne 0 ]; then
    start_agent
    # The agent's own user may change the store.
    run 0 ctl selfsigned mine --dns mine.test
    stop_agent
    echo "it-perms: not root: the other-user checks need root and were not run"
    finish
fi

chmod 0711 "$T"
# World-connectable socket, so that 'nobody' reaches the agent at all.
echo '{"socket_mode": "0666"}' >"$CONFIG"
start_agent
check "socket mode from config" test "$(mode_of "$SOCK")" = 666
run 0 ctl selfsigned shared --dns shared.test
as_nobody() {
    runuser -u nobody -- "$CTL" --socket "$SOCK" "$@"
}
run 0 as_nobody list
has "shared"
run 0 as_nobody show shared
run 0 as_nobody status
run 0 as_nobody version
for args in "logs" "metrics" "trust list" "ca list"; do
    # shellcheck disable=SC2086
    run 1 as_nobody $args
    has "needs the operate right"
    has "E_DENIED"
done
run 1 as_nobody selfsigned evil --dns evil.test
has "E_DENIED"
has "permission denied: 'selfsigned' needs the change right: root"
run 1 as_nobody remove shared
has "E_DENIED"
run 1 as_nobody export shared --out "$T/stolen.pem"
has "E_DENIED"
check "nothing exported" test ! -e "$T/stolen.pem"
check "refusal logged with the user" grep -q "refused 'remove' from nobody" "$LOG"
check "operate refusal logged" grep -q "refused 'logs' from nobody (uid [0-9]*, pid [0-9]*): it needs the operate right" "$LOG"
run 0 ctl show shared
run 0 ctl logs --lines 5
stop_agent

# Default mode 0660: 'nobody' cannot even connect (exit 3).
echo '{}' >"$CONFIG"
start_agent
check "default socket mode 0660" test "$(mode_of "$SOCK")" = 660
run 3 as_nobody list
# Keys are 0600 and owned by the agent's user.
key=$(readlink -f "$STATE/live/shared/privkey.pem")
check "key 0600" test "$(mode_of "$key")" = 600
check "key owned by root" test "$(stat -c %u "$key")" = 0
run 1 runuser -u nobody -- cat "$key"
stop_agent

# Socket 0660 root:GROUP (a temporary group, as the package's certagent group): a user that is
# neither root nor in GROUP cannot connect at all, so cannot change anything; a member can.
grp=certagent-it-$$
if ! groupadd "$grp" 2>"$T/groupadd.err"; then
    echo "SKIP: cannot create a temporary group: $(cat "$T/groupadd.err")"
    finish
fi
gid=$(getent group "$grp" | cut -d: -f3)
trap 'groupdel "$grp" 2>/dev/null; cleanup' EXIT
printf '{"socket_group": "%s", "socket_mode": "0660"}\n' "$grp" >"$CONFIG"
start_agent
check "socket mode 0660" test "$(mode_of "$SOCK")" = 660
check "socket group $grp" test "$(stat -c %G "$SOCK")" = "$grp"
check "socket owned by root" test "$(stat -c %U "$SOCK")" = root
run 0 ctl import imp --cert "$DATA/leaf.pem" --key "$DATA/leaf.key" --chain "$DATA/intermediate.pem"
run 0 ctl selfsigned s1 --dns s1.test
run 0 ctl selfsigned s1 --dns s1.test --key rsa2048
# names_versions: the names and current versions in the last `--json list`.
names_versions() {
    printf '%s' "$JOUT" | python3 -c '
import json, sys
j = json.load(sys.stdin)
items = j if isinstance(j, list) else j.get("items", j.get("certificates", []))
print(sorted((c.get("name"), c.get("version"), c.get("not_after")) for c in items))'
}
run 0 ctl --json list
before=$(names_versions)
check "list shows imp and s1 v2: $before" sh -c "printf '%s' \"\$1\" | grep -q \"'imp'\" && printf '%s' \"\$1\" | grep -q \"'s1', 2\"" _ "$before"
for args in "list" "selfsigned evil --dns evil.test" "remove s1" "rollback s1" \
    "import imp --cert $DATA/leaf.pem --key $DATA/leaf.key" "export s1 --format pem --out $T/stolen.pem"; do
    # shellcheck disable=SC2086
    run 3 as_nobody $args
    has "cannot reach certagent"
done
check "nothing exported" test ! -e "$T/stolen.pem"
run 0 ctl --json list
check "the store is unchanged" test "$before" = "$(names_versions)"
# A member of the group ('nobody' with it as its group) may connect and change.
as_member() {
    setpriv --reuid=nobody --regid="$gid" --clear-groups -- "$CTL" --socket "$SOCK" "$@"
}
run 0 as_member list
run 0 as_member selfsigned member --dns member.test
# Rights are cumulative: the socket's group may operate too.
run 0 as_member logs --lines 5
run 0 as_member trust list
# Every private key in the store (every version) is 0600 and owned by the agent's user.
nkeys=0
while IFS= read -r k; do
    nkeys=$((nkeys + 1))
    check "$k is 0600" test "$(mode_of "$k")" = 600
    check "$k owned by root" test "$(stat -c %u "$k")" = 0
done < <(find "$STATE" -name privkey.pem -type f)
check "keys found ($nkeys)" test "$nkeys" -ge 5
check "the private keys are not readable by others" runuser -u nobody -- sh -c \
    "! cat $STATE/live/member/privkey.pem >/dev/null 2>&1"
stop_agent
groupdel "$grp"
finish
