#!/bin/bash
# Trust store upkeep (add, list, show, remove, restart), the system store
# through a test directory and a recording command (the real one is never
# touched), and verify: AIA fetching over HTTP from loopback, and every kind
# of bad link named.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-probe.sh"

P=$T/pki
mkdir -p "$T/aia" "$T/sysdir"
http_server "$T/aia" || exit 1
make_pki "$P" "http://127.0.0.1:$HTTP_PORT/int.der" || { fail "test PKI"; exit 1; }
cp "$P/int.der" "$T/aia/int.der"
# The PKCS#7 form of the intermediate, as some CAs serve it.
openssl crl2pkcs7 -nocrl -certfile "$P/int.pem" -outform DER -out "$T/aia/int.p7c"

# A stand-in for update-ca-certificates: records each run and what the directory held.
cat >"$T/update-ca" <<EOS
#!/bin/sh
echo "run \$*: \$(ls '$T/sysdir' | tr '\n' ' ')" >>'$T/update-ca.log'
exit \${UPDATE_EXIT:-0}
EOS
chmod +x "$T/update-ca"
cat >"$CONFIG" <<EOS
{"trust_system_dir": "$T/sysdir", "trust_system_command": "$T/update-ca --fresh",
 "trust_system_roots": false}
EOS
start_agent

# Empty at first.
run 0 ctl trust list
has "is empty"
run 0 ctl --json trust list
json "j['count'] == 0 and j['entries'] == []"

# A leaf a CA issued is refused (its issuer is what to trust); an intermediate needs
# --intermediate; a root refuses it.
run 1 ctl trust add "$P/leaf.pem"
has "is not a CA certificate"
has "not self-signed: trust its issuer instead"
has "E_BAD_INPUT"
run 1 ctl trust add "$P/int.pem"
has "is not a self-signed root"
has "add it with --intermediate"
run 1 ctl trust add --intermediate "$P/root.pem"
has "is a self-signed root: add it without --intermediate"
run 2 ctl trust add "$T/nothing.pem"
has "cannot read"
run 2 ctl trust add
has "trust add needs a FILE"
run 2 ctl trust frobnicate
has "unknown subcommand"
check "nothing reached the system dir" test -z "$(ls "$T/sysdir")"

# Root: file in STATE/trust/roots, copy in the system dir, command run after the copy.
run 0 ctl trust add "$P/root.pem"
has "added root"
has "Certagent Test Root"
has "system store $T/sysdir updated"
ROOT_FP=$(openssl x509 -in "$P/root.pem" -noout -fingerprint -sha256 | sed 's/.*=//')
ROOT_ID=$(echo "$ROOT_FP" | tr -d :)
check "root file in the trust dir" test -f "$STATE/trust/roots/$ROOT_ID.pem"
check "root file is the certificate" \
    sh -c "openssl x509 -in '$STATE/trust/roots/$ROOT_ID.pem' -noout -fingerprint -sha256 | grep -q '$ROOT_FP'"
check "root copy in the system dir" test -f "$T/sysdir/certagent-$(echo "$ROOT_ID" | cut -c1-16).crt"
check "command ran with its argument after the copy" grep -q "run --fresh: certagent-" "$T/update-ca.log"
# Adding it again succeeds and changes nothing (re-runnable provisioning): no new file, no
# command run (the count below), "already trusted", in JSON too.
run 0 ctl trust add "$P/root.pem"
has "already trusted: O=certagent tests,CN=Certagent Test Root"
lacks "added"
run 0 ctl --json trust add "$P/root.pem"
json "j['added'] == [] and j['skipped'] == ['O=certagent tests,CN=Certagent Test Root'] and not j['system']['changed']"

# Intermediate: kept for chain building, not in the system store.
run 0 ctl --json trust add --intermediate "$P/int.pem"
json "j['added'][0]['kind'] == 'intermediate' and j['system']['changed'] == False"
check "one file in the system dir" test "$(ls "$T/sysdir" | wc -l)" -eq 1
check "command ran once" test "$(wc -l <"$T/update-ca.log")" -eq 1

run 0 ctl --json trust list
json "j['count'] == 2 and sorted(e['kind'] for e in j['entries']) == ['intermediate', 'root'] and all(len(e['fingerprint']) == 95 for e in j['entries'])"
run 0 ctl trust list
has "root"
has "intermediate"
run 0 ctl trust show
has "1 root(s), 0 self-signed certificate(s) trusted for themselves; 1 intermediate(s)"
has "$T/sysdir, then $T/update-ca --fresh"
has "exited with status 0"
run 0 ctl trust show "${ROOT_ID:0:12}"
has "BEGIN CERTIFICATE"
has "Certagent Test Root"
run 0 ctl --json trust show "$ROOT_FP"
json "j['entry']['kind'] == 'root' and j['entry']['pem'].startswith('-----BEGIN CERTIFICATE')"
run 1 ctl trust show 1234
has "at least 8 hex digits"
run 1 ctl trust show ZZZZZZZZZZ
has "is not a SHA-256 fingerprint"

# Survives a restart; adding again after it is still "already trusted".
stop_agent
start_agent
run 0 ctl --json trust list
json "j['count'] == 2"
run 0 ctl trust add "$P/root.pem"
has "already trusted: O=certagent tests,CN=Certagent Test Root"
run 0 ctl trust add --intermediate "$P/int.pem"
has "already trusted: O=certagent tests,CN=Certagent Test Intermediate"
check "the command did not run for them" test "$(wc -l <"$T/update-ca.log")" -eq 1

# verify: the stored intermediate completes the chain.
run 0 ctl verify --cert "$P/leaf.pem" --host localhost
has "result:      trusted"
has "trust store (anchor)"
run 0 ctl --json verify --cert "$P/leaf.pem" --host 127.0.0.1
json "j['verify']['trusted'] and j['verify']['host_match'] and len(j['verify']['chain']) == 3 and j['verify']['chain'][1]['source'] == 'trust store'"
INT_ID=$(openssl x509 -in "$P/int.pem" -noout -fingerprint -sha256 | sed 's/.*=//' | tr -d :)

# Removing the intermediate: now it must come from AIA over HTTP.
run 0 ctl trust remove "${INT_ID:0:16}"
has "removed intermediate"
check "intermediate file gone" test ! -f "$STATE/trust/intermediates/$INT_ID.pem"
run 0 ctl --json verify --cert "$P/leaf.pem" --host localhost
json "j['verify']['trusted'] and j['verify']['chain'][1]['source'] == 'fetched from http://127.0.0.1:$HTTP_PORT/int.der' and j['aia_fetch']"
check "the agent fetched int.der" grep -q "GET /int.der" "$T/http.out"

# PKCS#7 at the AIA URL.
mv "$T/aia/int.der" "$T/aia/int.der.bak"
cp "$T/aia/int.p7c" "$T/aia/int.der"
run 0 ctl --json verify --cert "$P/leaf.pem"
json "j['verify']['trusted'] and j['verify']['chain'][1]['source'].startswith('fetched from')"

# Nothing at the URL: the missing link is named with the URL and the HTTP status.
rm "$T/aia/int.der"
run 4 ctl verify --cert "$P/leaf.pem" --host localhost
has "chain incomplete: missing Certagent Test Intermediate (issuer of 'localhost'; fetching http://127.0.0.1:$HTTP_PORT/int.der failed: HTTP status 404)"
has "NOT TRUSTED"
mv "$T/aia/int.der.bak" "$T/aia/int.der"

# The bounds of a fetch.  aia_leaf NAME URL: a leaf of the intermediate whose AIA caIssuers
# is URL.
aia_leaf() {
    printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:localhost\nauthorityInfoAccess=caIssuers;URI:%s\n' \
        "$2" >"$T/$1.ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/$1.key" \
        -subj "/CN=localhost" -out "$T/$1.csr" 2>/dev/null &&
        openssl x509 -req -in "$T/$1.csr" -CA "$P/int.pem" -CAkey "$P/int.key" -CAcreateserial \
            -days 30 -sha256 -extfile "$T/$1.ext" -out "$T/$1.pem" 2>/dev/null
}
# A redirect (to the right file) is not followed.
py_server redirect -c "import http.server
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(302)
        self.send_header('Location', 'http://127.0.0.1:$HTTP_PORT/int.der')
        self.end_headers()
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print('READY %d' % s.server_address[1], flush=True)
s.serve_forever()" && REDIRECT=$PORT
aia_leaf redirected "http://127.0.0.1:$REDIRECT/int.der" || fail "redirected leaf"
run 4 ctl verify --cert "$T/redirected.pem"
has "fetching http://127.0.0.1:$REDIRECT/int.der failed: HTTP status 302 (redirects are not followed)"
# Only http:// is fetched.
aia_leaf https "https://127.0.0.1:$HTTP_PORT/int.der" || fail "https leaf"
run 4 ctl verify --cert "$T/https.pem"
has "its AIA caIssuers URL https://127.0.0.1:$HTTP_PORT/int.der is not fetched: only http:// URLs are"
# A reply larger than 64 KiB is cut off.
head -c 70000 /dev/zero >"$T/aia/big.der"
aia_leaf big "http://127.0.0.1:$HTTP_PORT/big.der" || fail "big leaf"
run 4 ctl verify --cert "$T/big.pem"
has "fetching http://127.0.0.1:$HTTP_PORT/big.der failed: the reply is larger than 64 KiB"

# Fetching off: the URL is named, nothing is fetched.
cat >"$CONFIG" <<EOS
{"trust_system_dir": "$T/sysdir", "trust_system_command": "$T/update-ca --fresh",
 "trust_system_roots": false, "trust_aia_fetch": false}
EOS
kill -HUP "$AGENT_PID"
wait_line "$LOG" "configuration reloaded"
run 4 ctl --json verify --cert "$P/leaf.pem"
json "not j['verify']['trusted'] and j['verify']['missing'] == 'Certagent Test Intermediate' and not j['aia_fetch'] and 'its AIA caIssuers URL is http://127.0.0.1:$HTTP_PORT/int.der' in j['verify']['problems'][0]"

# The bad links, each named.
run 4 ctl verify --cert "$P/oldleaf-full.pem" --host localhost
has "'Certagent Expired Intermediate' expired on 2021-01-01 00:00 UTC"
run 4 ctl verify --cert "$P/future-full.pem"
has "'localhost' is not yet valid (valid from 2040-01-01 00:00 UTC)"
run 4 ctl verify --cert "$P/notca-full.pem"
has "'Certagent Not A CA' is not a CA (no basicConstraints CA:TRUE) but issued 'localhost'"
run 4 ctl verify --cert "$P/weak-full.pem"
has "'localhost' signed with ecdsa-with-SHA1, a weak algorithm"
run 4 ctl verify --cert "$P/wrong.pem" --host localhost
has "'wrong.example' is not valid for the host name localhost"
has "DOES NOT MATCH"
run 4 ctl verify --cert "$P/leaf-full.pem" --purpose client
has "may not be used as a TLS client"
run 0 ctl verify --cert "$P/leaf-full.pem" --purpose server
run 2 ctl verify --cert "$P/leaf-full.pem" --purpose both
has "--purpose is server or client"
run 2 ctl verify
has "give either NAME or --cert FILE"

# A certificate in the store, by name.
run 0 ctl import web --cert "$P/leaf-full.pem" --key "$P/leaf.key"
run 0 ctl verify web --host localhost
has "result:      trusted"
run 1 ctl verify nosuch
has "no certificate named 'nosuch'"

# Removing the root: the chain ends at an untrusted root; system copy gone, command ran.
run 0 ctl --json trust remove "$ROOT_FP"
json "j['removed']['kind'] == 'root' and j['system']['ran'] and j['system']['exit_status'] == 0"
check "system copy removed" test -z "$(ls "$T/sysdir")"
check "command ran again" test "$(wc -l <"$T/update-ca.log")" -eq 2
run 4 ctl verify --cert "$P/leaf-full.pem"
has "chain incomplete: missing Certagent Test Root (issuer of 'Certagent Test Intermediate'"
cat "$P/leaf-full.pem" "$P/root.pem" >"$T/with-root.pem"
run 4 ctl verify --cert "$T/with-root.pem"
has "the chain ends at 'Certagent Test Root', a root that is not trusted"
run 1 ctl trust remove "$ROOT_ID"
has "E_NOT_FOUND"

# A failing command is reported (the files are still written), and so is a missing one.
stop_agent
UPDATE_EXIT=3 start_agent
run 0 ctl trust add "$P/root.pem"
has "exited with status 3"
cat >"$CONFIG" <<EOS
{"trust_system_dir": "$T/sysdir", "trust_system_command": "$T/no-such-command"}
EOS
kill -HUP "$AGENT_PID"
wait_line "$LOG" "configuration reloaded" 
run 0 ctl trust remove "$ROOT_ID"
has "cannot run $T/no-such-command"
run 0 ctl ping
stop_agent

# A fresh store without a system store for the rest.
rm -rf "$STATE/trust"
echo '{"trust_system_roots": false}' >"$CONFIG"
start_agent

# verify of a self-signed certificate says how to trust it, and following the advice works:
# trust add takes a self-signed leaf as an explicit anchor for itself (a browser's exception).
run 0 ctl selfsigned selfie --dns selfie.test
run 4 ctl verify selfie --host selfie.test
has "'selfie.test' is self-signed and not trusted: to trust it, add it with 'certctl trust add FILE'"
run 0 ctl export selfie --format pem --no-key --out "$T/selfie.pem"
run 1 ctl trust add --intermediate "$T/selfie.pem"
has "is a self-signed certificate: add it without --intermediate"
run 0 ctl trust add "$T/selfie.pem"
has "added leaf CN=selfie.test"
has "'CN=selfie.test' is a self-signed certificate, not a CA: it is trusted as an explicit anchor for itself only"
run 0 ctl verify selfie --host selfie.test
has "result:      trusted"
run 0 ctl --json trust list
json "[e['kind'] for e in j['entries']] == ['leaf']"
run 0 ctl --json trust show
json "(j['roots'], j['leaves'], j['intermediates']) == (0, 1, 0)"
# It vouches for itself only: a certificate it signed is not trusted.
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/child.key" \
    -subj "/CN=child.test" -out "$T/child.csr" 2>/dev/null
ctl export selfie --format pem --out "$T/selfie-key.pem" >/dev/null
openssl x509 -req -in "$T/child.csr" -CA "$T/selfie.pem" -CAkey "$T/selfie-key.pem" \
    -CAcreateserial -days 30 -out "$T/child.pem" 2>/dev/null || fail "child certificate"
run 4 ctl verify --cert "$T/child.pem"
has "NOT TRUSTED"

# A trust store change is checked again at once: status never shows the verdict of the old
# store as current.  bare's stored chain lacks the intermediate.
status_until() { # PYTHON-EXPR on the --json status, polled until true
    for _ in $(seq 300); do
        ctl --json status >"$T/status.json" 2>/dev/null
        python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if ($1) else 1)" \
            "$T/status.json" && return 0
        sleep 0.05
    done
    fail "status never had: $1"
}
incomplete="[w for c in j['certificates'] if c['name'] == 'bare' for w in c['warnings'] if w['code'] == 'chain_incomplete']"
run 0 ctl trust add "$P/root.pem"
run 0 ctl import bare --cert "$P/leaf.pem" --key "$P/leaf.key"
status_until "j['certs_unchecked'] == 0 and $incomplete"
run 0 ctl trust add --intermediate "$P/int.pem"
run 0 ctl status
check "no unmarked stale chain_incomplete after trust add" \
    bash -c '! grep "stored chain is incomplete" "$1" | grep -v "(checking again: the trust store changed)"' _ "$T/.out"
run 0 ctl --json status
json "all(w['checking'] == 1 for w in $incomplete)"
status_until "j['certs_unchecked'] == 0 and not $incomplete"
run 0 ctl status
lacks "stored chain is incomplete"
stop_agent

finish
