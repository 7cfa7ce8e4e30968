#!/bin/bash
# A Windows node in a fleet (issue 18), run by packaging/windows/test.sh (which builds the
# Windows tree, sets WINEPREFIX and keeps a wineserver up): a real three-member etcd cluster
# on loopback (tests/fleet/lib-fleet.sh: TLS, client certificates required), certagent.exe
# under Wine joining fleet "prod" through the same etcd JSON gateway the Linux agents use.
# The shared certificate's records are written the way a Linux node writes them
# (tests/fleet/fleet-record.py, the record format of agent/fleet/record.c): the Windows node
# takes the first one at start (catch-up), deploys it to its own files target, takes the next
# version through the watch within seconds and deploys it too, refuses a record under another
# fleet key and keeps its store, announces itself under nodes/, publishes its status, and
# shows itself in certctl fleet status.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WINE_TEST=windows/test-fleet.sh
# shellcheck source=packaging/windows/lib-wine.sh
. "$ROOT/packaging/windows/lib-wine.sh"

T=$(mktemp -d /tmp/certagent-wine-fleet-XXXXXX)
WT=$(winepath -w "$T" 2>/dev/null)
agent=''
cleanup() {
    [ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
# lib-fleet.sh chains its own cleanup (the etcd members) in front of ours.
# shellcheck source=tests/fleet/lib-fleet.sh
. "$ROOT/tests/fleet/lib-fleet.sh"

AGENT=$OUT/agent/certagent.exe
CTL=$OUT/ctl/certctl.exe
PIPE="\\\\.\\pipe\\certagent-fleet-$$"
ctl() { wine "$CTL" --socket "$PIPE" "$@"; }
win() { winepath -w "$1" 2>/dev/null; }

log "a three-member etcd cluster"
etcd_start || exit 1

# The fleet key, written by certctl.exe itself (0600: the agent refuses a key others read).
run 0 wine "$CTL" fleet keygen "$(win "$T/fleet.key")"
check "the fleet key is 32 bytes" test "$(stat -c %s "$T/fleet.key")" = 32

# mkcert NAME DAYS: a self-signed certificate and key in $T/NAME.pem, $T/NAME.key.
mkcert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days "$2" \
        -subj "/CN=$1.example.test" -addext "subjectAltName=DNS:$1.example.test" \
        -keyout "$T/$1.key" -out "$T/$1.pem" 2>/dev/null
}
# put_record NAME VERSION CERT KEY [KEYFILE]: the record a Linux node would write.
put_record() {
    /usr/bin/python3 "$ROOT/tests/fleet/fleet-record.py" "${5:-$T/fleet.key}" prod "$1" "$2" \
        "$3" "$4" >"$T/record.json" || { fail "fleet-record.py failed"; return 1; }
    etcdctl_ put "/certagent/prod/certs/$1/current" <"$T/record.json" >/dev/null ||
        fail "etcdctl put of $1 failed"
}
serial_hex() { openssl x509 -noout -serial -in "$1" | sed 's/serial=//; s/^0*//' | tr a-f A-F; }
# shown_serial NAME: the serial certctl.exe shows for NAME's current version.
shown_serial() {
    ctl --json show "$1" 2>/dev/null | tr -d '\r' | /usr/bin/python3 -c '
import json, sys
print((json.load(sys.stdin).get("serial") or "").replace(":", "").lstrip("0").upper())'
}
has_serial() { [ "$(shown_serial "$1")" = "$(serial_hex "$2")" ]; }
deployed() { cmp -s <(openssl x509 -in "$T/deploy/cert.pem" -noout -serial) \
    <(openssl x509 -in "$1" -noout -serial); }

mkcert www 30
put_record www 1 "$T/www.pem" "$T/www.key"

# The config, with Windows paths (json.dumps escapes their backslashes).
/usr/bin/python3 - "$T/certagent.json" "$ETCD_ENDPOINTS" "$(win "$ETCD_CA")" \
    "$(win "$ETCD_CLIENT_CERT")" "$(win "$ETCD_CLIENT_KEY")" "$(win "$T/fleet.key")" <<'PY'
import json, sys
path, endpoints, ca, cert, key, fleet_key = sys.argv[1:]
json.dump({"cluster": {"etcd": endpoints.split(","), "trust": ca,
                       "client_cert_file": cert, "client_key_file": key,
                       "fleet": "prod", "fleet_key_file": fleet_key, "node": "winnode"}},
          open(path, "w"))
PY

log "certagent.exe joins fleet 'prod' on $PIPE"
wine "$AGENT" --foreground --config "$WT\\certagent.json" --state-dir "$WT\\state" \
    --socket "$PIPE" --log-level debug >"$T/agent.log" 2>&1 &
agent=$!
joined() { tr -d '\r' <"$T/agent.log" | grep -qF "node 'winnode' joined fleet 'prod'"; }
check "the Windows node joined the fleet" wait_for 60 joined
check "the Windows node announced itself under nodes/" \
    etcdctl_ get /certagent/prod/nodes/winnode --print-value-only
check "catch-up: www stored from the fleet with the record's serial" wait_for 30 \
    has_serial www "$T/www.pem"
run 0 ctl --json show www
has '"fleet"'

# Its own deploy target: adding it deploys the current version at once.
mkdir -p "$T/deploy"
run 0 ctl set www --deploy-files "$(win "$T/deploy")"
check "the fleet's version deployed to the Windows node's files" wait_for 30 deployed "$T/www.pem"

# The next version through the watch, deployed to the same target.
mkcert www2 60
put_record www 2 "$T/www2.pem" "$T/www2.key"
check "version 2 taken through the watch" wait_for 30 has_serial www "$T/www2.pem"
check "version 2 deployed" wait_for 30 deployed "$T/www2.pem"
check "the deployed key matches the certificate" test \
    "$(openssl x509 -in "$T/deploy/cert.pem" -noout -pubkey)" = \
    "$(openssl pkey -in "$T/deploy/privkey.pem" -pubout 2>/dev/null)"

# The fleet view from the Windows node: it publishes its status, fleet status lists it.
published() { etcdctl_ get /certagent/prod/status/winnode --print-value-only | grep -q '"www"'; }
check "the Windows node published its status with www" wait_for 30 published
run 0 ctl fleet status
has "fleet prod, seen from node winnode"
has "winnode  up"

# A record under another fleet key: refused with a log line, nothing changes.
mkcert bad 90
openssl rand 32 >"$T/wrong.key"
put_record www 3 "$T/bad.pem" "$T/bad.key" "$T/wrong.key"
refused() { tr -d '\r' <"$T/agent.log" | grep -qF "refused the record of 'www': the fleet key does not open"; }
check "a record under another fleet key is refused" wait_for 30 refused
check "www keeps version 2" has_serial www "$T/www2.pem"
check "the target keeps version 2" deployed "$T/www2.pem"
no_key_in_log() { ! tr -d '\r' <"$T/agent.log" | grep -q "PRIVATE KEY"; }
check "no key material in the log" no_key_in_log

if [ "$FAILURES" -ne 0 ]; then
    echo "--- certagent.exe log"
    tr -d '\r' <"$T/agent.log" | tail -n 40
fi
echo "windows/test-fleet.sh: $CHECKS passed, $FAILURES failed"
[ "$FAILURES" -eq 0 ]
