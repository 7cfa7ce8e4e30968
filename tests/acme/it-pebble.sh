#!/bin/bash
# tests/acme/pebble.sh itself: Pebble and challtestsrv on free ports with the documented
# exports, the cleanup chained in front of lib.sh's, real http-01 issuance (lego) with a short
# validity, revocation seen through the management API, restart on the same ports with new
# roots, pause/resume, EAB with the right and a wrong key, alternate roots and longer chains.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

command -v lego >/dev/null || { fail "lego is not installed (packaging/install-deps.sh)"; finish; }
LIB=$(cd "$(dirname "$0")/.." && pwd)
not() { ! "$@"; }

# --- the cleanup chain: a child test leaves no process and no directory behind -------------
run 0 bash -c '
. "$1/integration/lib.sh" x x x x
. "$1/acme/pebble.sh"
pebble_start >/dev/null || exit 1
acmeproxy_start >/dev/null || exit 1
echo "$T $PEBBLE_PID $CHALLTEST_PID $ACMEPROXY_PID"' _ "$LIB"
read -r child_t p1 p2 p3 <<<"$JOUT"
check "child test had a temp dir" test -n "$child_t"
check "child's temp dir removed by lib.sh's cleanup" test ! -e "$child_t"
for p in $p1 $p2 $p3; do
    check "child's process $p is gone" bash -c '! kill -0 "$1" 2>/dev/null' _ "$p"
done

# --- start, exports ----------------------------------------------------------------------------
pebble_start --validity 90 || finish
for v in PEBBLE_DIRECTORY PEBBLE_TRUST PEBBLE_ROOT PEBBLE_ROOTS PEBBLE_INTERMEDIATE PEBBLE_MGMT \
    CHALLTEST_MGMT CHALLTEST_DNS PEBBLE_HTTP01_PORT PEBBLE_TLSALPN01_PORT PEBBLE_PID \
    PEBBLE_LOG ACME_DNS01_HOOK; do
    check "$v is set" test -n "${!v:-}"
done
check "directory over the listener CA" curl -sf --cacert "$PEBBLE_TRUST" "$PEBBLE_DIRECTORY"
check "intermediate verifies against the root" openssl verify -CAfile "$PEBBLE_ROOT" "$PEBBLE_INTERMEDIATE"
check "hook is executable" test -x "$ACME_DNS01_HOOK"
free() {
    "$ACME_PYTHON" -c 'import socket,sys; s=socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1])))' "$1"
}
check "nothing listens on the http-01 port yet" free "$PEBBLE_HTTP01_PORT"
check "nothing listens on the tls-alpn-01 port yet" free "$PEBBLE_TLSALPN01_PORT"
run 0 cat "$PEBBLE_DIR/pebble-config.json"
json "j['pebble']['httpPort'] == $PEBBLE_HTTP01_PORT and j['pebble']['tlsPort'] == $PEBBLE_TLSALPN01_PORT"
json "j['pebble']['certificateValidityPeriod'] == 90 and j['pebble']['ocspResponderURL'] == ''"
check "Pebble uses challtestsrv's DNS" grep -q "custom DNS resolver for ACME challenges: $CHALLTEST_DNS" "$PEBBLE_LOG"
check "VA sleeps are off by default" grep -q 'Disabling random VA sleeps' "$PEBBLE_LOG"

# --- the agent's config keys -------------------------------------------------------------------
echo '{"log_level": "debug"}' >"$CONFIG"
pebble_agent_config '{"selfsigned_days": 10}'
run 0 cat "$CONFIG"
json "j['http01_listen'] == ['127.0.0.1:$PEBBLE_HTTP01_PORT']"
json "j['tls_alpn01_listen'] == ['127.0.0.1:$PEBBLE_TLSALPN01_PORT']"
json "j['dns01_hook'] == '$ACME_DNS01_HOOK'"
json "j['log_level'] == 'debug' and j['selfsigned_days'] == 10"

# --- issuance, validity, revocation ------------------------------------------------------------
lego_cmd() {
    LEGO_CA_CERTIFICATES=$PEBBLE_TRUST lego --server "$PEBBLE_DIRECTORY" \
        --email test@example.test --accept-tos --path "$T/lego" "$@"
}
run 0 lego_cmd --domains v1.example.test --http --http.port "127.0.0.1:$PEBBLE_HTTP01_PORT" run
crt=$T/lego/certificates/v1.example.test.crt
check "chain verifies against PEBBLE_ROOT" pebble_verify "$crt"
check "but not against another root" not pebble_verify "$crt" "$PEBBLE_TRUST"
nb=$(date -u -d "$(openssl x509 -in "$crt" -noout -startdate | cut -d= -f2)" +%s)
na=$(date -u -d "$(openssl x509 -in "$crt" -noout -enddate | cut -d= -f2)" +%s)
check "certificateValidityPeriod 90 s honoured ($((na - nb)) s)" test $((na - nb)) -ge 89 -a $((na - nb)) -le 90
run 0 pebble_cert_status "$crt"
check "Pebble knows it as Valid" test "$JOUT" = Valid
check "pebble_revoked is false before revocation" not pebble_revoked "$crt"
cp "$crt" "$T/v1.pem"
crt=$T/v1.pem
run 0 lego_cmd --domains v1.example.test revoke --reason 4
check "revoked after lego revoke" pebble_revoked "$crt"
check "with reason superseded (4)" pebble_revoked "$crt" 4
check "not with another reason" not pebble_revoked "$crt" 1
check "by serial too" pebble_revoked "$(pebble_serial "$crt")"
run 1 pebble_cert_status 123456789abcdef
# An unreachable challenge: the CA's error names the refused connection.
run 1 lego_cmd --domains v2.example.test --http --http.port "127.0.0.1:$PEBBLE_TLSALPN01_PORT" run
has "onnection refused"

# --- restart: same ports, new roots; pause/resume keeps state ----------------------------------
dir=$PEBBLE_DIRECTORY
old_root=$(cat "$PEBBLE_ROOT")
old_pid=$PEBBLE_PID
pebble_restart || finish
check "same directory URL after restart" test "$PEBBLE_DIRECTORY" = "$dir"
check "a new process" test "$PEBBLE_PID" != "$old_pid"
check "a new root" test "$(cat "$PEBBLE_ROOT")" != "$old_root"
check "directory answers after restart" curl -sf --cacert "$PEBBLE_TRUST" "$PEBBLE_DIRECTORY"
pebble_pause
run 28 curl -sS --cacert "$PEBBLE_TRUST" --max-time 1 "$PEBBLE_DIRECTORY"
pebble_resume
check "directory answers after resume" curl -sf --max-time 10 --cacert "$PEBBLE_TRUST" "$PEBBLE_DIRECTORY"
pebble_stop
run 7 curl -sS --cacert "$PEBBLE_TRUST" --max-time 5 "$dir"
pebble_stop_all

# --- EAB ----------------------------------------------------------------------------------------
rm -rf "$T/lego"
pebble_start --eab || finish
check "EAB kid and HMAC file" test -n "$PEBBLE_EAB_KID" -a -s "$PEBBLE_EAB_HMAC_FILE"
check "HMAC file is 0600" test "$(stat -c %a "$PEBBLE_EAB_HMAC_FILE")" = 600
run 0 curl -sf --cacert "$PEBBLE_TRUST" "$PEBBLE_DIRECTORY"
json "j['meta']['externalAccountRequired'] is True"
run 1 lego_cmd --domains e1.example.test --http --http.port "127.0.0.1:$PEBBLE_HTTP01_PORT" run
has "External Account Binding"
wrong=$(openssl rand 48 | base64 -w0 | tr '+/' '-_' | tr -d '=')
run 1 lego_cmd --eab --kid "$PEBBLE_EAB_KID" --hmac "$wrong" --domains e1.example.test \
    --http --http.port "127.0.0.1:$PEBBLE_HTTP01_PORT" run
has "unauthorized"
rm -rf "$T/lego"
run 0 lego_cmd --eab --kid "$PEBBLE_EAB_KID" --hmac "$PEBBLE_EAB_HMAC" --domains e1.example.test \
    --http --http.port "127.0.0.1:$PEBBLE_HTTP01_PORT" run
check "EAB certificate verifies" pebble_verify "$T/lego/certificates/e1.example.test.crt"
pebble_stop_all

# --- alternate roots, longer chains --------------------------------------------------------------
rm -rf "$T/lego"
PEBBLE_ALTERNATE_ROOTS=2 PEBBLE_CHAIN_LENGTH=3 pebble_start || finish
check "three roots fetched" test -s "${PEBBLE_ROOT_1:-/nonexistent}" -a -s "${PEBBLE_ROOT_2:-/nonexistent}"
check "PEBBLE_ROOTS holds all three" test "$(grep -c 'BEGIN CERTIFICATE' "$PEBBLE_ROOTS")" = 3
check "roots differ" test "$(cat "$PEBBLE_ROOT_1")" != "$(cat "$PEBBLE_ROOT")"
run 0 lego_cmd --domains l1.example.test --http --http.port "127.0.0.1:$PEBBLE_HTTP01_PORT" run
crt=$T/lego/certificates/l1.example.test.crt
check "default chain: leaf and 3 intermediates" test "$(grep -c 'BEGIN CERTIFICATE' "$crt")" = 4
check "default chain verifies against root 0" pebble_verify "$crt" "$PEBBLE_ROOT_0"
cn1=$(openssl x509 -in "$PEBBLE_ROOT_1" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p')
run 0 lego_cmd --domains l2.example.test --http --http.port "127.0.0.1:$PEBBLE_HTTP01_PORT" \
    run --preferred-chain "$cn1"
crt=$T/lego/certificates/l2.example.test.crt
check "preferred chain ($cn1) verifies against root 1" pebble_verify "$crt" "$PEBBLE_ROOT_1"
check "and not against root 0" not pebble_verify "$crt" "$PEBBLE_ROOT_0"
finish
