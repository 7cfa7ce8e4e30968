#!/bin/bash
# dns-01 hook for certagent's tests: publishes the challenge TXT record in
# pebble-challtestsrv's DNS through its management API.
#
#   dns01-hook.sh add|remove
#
# Environment (set by the agent for each call):
#   CERTAGENT_DNS01_NAME    record name with the trailing dot, _acme-challenge.example.test.
#   CERTAGENT_DNS01_VALUE   the TXT value
#   CERTAGENT_DNS01_DOMAIN  the identifier, without "*."
# and from the test's environment (the agent passes its environment through):
#   CHALLTEST_MGMT          http://127.0.0.1:PORT, challtestsrv's management API
#   DNS01_HOOK_STATE        optional: directory where the hook remembers the values it
#                           published (default: a directory per CHALLTEST_MGMT under /tmp)
#
# challtestsrv holds a list of TXT values per name but can only clear a name as a whole, and
# a name can carry several values at once (example.test and *.example.test share
# _acme-challenge.example.test.), so the hook keeps the wanted values per name in a state
# file and after each add or remove clears the name and publishes them again.  Calls may run concurrently: a lock per state directory orders them.
# Exit 0 on success; non-zero with a message on stderr otherwise.
set -u
me=dns01-hook

die() {
    echo "$me: $1" >&2
    exit "${2:-1}"
}

[ $# -eq 1 ] || die "usage: $me add|remove (got $# arguments)" 2
op=$1
case $op in
add | remove) ;;
*) die "unknown operation '$op' (expected add or remove)" 2 ;;
esac
name=${CERTAGENT_DNS01_NAME:-}
value=${CERTAGENT_DNS01_VALUE:-}
domain=${CERTAGENT_DNS01_DOMAIN:-}
mgmt=${CHALLTEST_MGMT:-}
[ -n "$mgmt" ] || die "CHALLTEST_MGMT is not set (challtestsrv's management URL)" 2
[ -n "$name" ] || die "CERTAGENT_DNS01_NAME is not set" 2
[ -n "$value" ] || die "CERTAGENT_DNS01_VALUE is not set" 2
case $name in
*.) ;;
*) die "CERTAGENT_DNS01_NAME '$name' has no trailing dot" 2 ;;
esac
case $name in
_acme-challenge.*) ;;
*) die "CERTAGENT_DNS01_NAME '$name' does not start with _acme-challenge." 2 ;;
esac
if [ -n "$domain" ] && [ "_acme-challenge.${domain%.}." != "$name" ]; then
    die "CERTAGENT_DNS01_NAME '$name' does not belong to CERTAGENT_DNS01_DOMAIN '$domain'" 2
fi
# Names and values are DNS labels and base64url: nothing else may reach the JSON we build.
[[ $name =~ ^[A-Za-z0-9_.*-]+$ ]] || die "CERTAGENT_DNS01_NAME '$name' has characters a DNS name cannot have" 2
[[ $value =~ ^[A-Za-z0-9_=-]+$ ]] || die "CERTAGENT_DNS01_VALUE is not base64url" 2

state=${DNS01_HOOK_STATE:-/tmp/certagent-dns01-hook-$(printf '%s' "$mgmt" | sha256sum | cut -c1-16)}
mkdir -p "$state" || die "cannot create the state directory $state"
exec 9>"$state/.lock" || die "cannot open $state/.lock"
flock -w 30 9 || die "timed out waiting for the lock $state/.lock"
file="$state/${name}txt"

call() {
    local out
    out=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST -d "$2" "$mgmt$1" 2>&1)
    [ "$out" = 200 ] && return 0
    die "challtestsrv $1 for $name failed: ${out:-no answer} (at $mgmt)"
}

# The new list of values goes to a side file, is published, and replaces the state file only
# once challtestsrv took it: a failed call leaves the state as it was.
new=$file.new
trap 'rm -f "$new"' EXIT
touch "$file"
grep -vxF -- "$value" "$file" >"$new"
[ "$op" = add ] && printf '%s\n' "$value" >>"$new"
# Publish exactly the values wanted for the name (so a repeated add is not published twice).
call /clear-txt "{\"host\":\"$name\"}"
while IFS= read -r v; do
    call /set-txt "{\"host\":\"$name\",\"value\":\"$v\"}"
done <"$new"
if [ -s "$new" ]; then
    mv "$new" "$file"
else
    rm -f "$file" "$new"
fi
exit 0
