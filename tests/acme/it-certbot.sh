#!/bin/bash
# Migration from certbot: lineages made by Debian's certbot against a real Pebble (an EC one
# with two names, an RSA 3072 one) are taken over by `certctl import --from-certbot`: the
# certificate, chain and key, the names, the CA (matched by its directory URL), the key type
# and certbot's account; certagent then renews them with that account and keeps the
# certbot-style live/NAME/ files current, while archive/ and the renewal files stay as
# certbot left them; a second run skips what was taken over; a broken lineage is reported
# without stopping the others.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

command -v certbot >/dev/null || { fail "certbot is not installed (packaging/install-deps.sh)"; finish; }
PEBBLE_WFE_NONCEREJECT=0 pebble_start || finish
CB=$T/letsencrypt
certbot_cmd() {
    REQUESTS_CA_BUNDLE=$PEBBLE_TRUST certbot --config-dir "$CB" --work-dir "$T/cb-work" \
        --logs-dir "$T/cb-logs" --server "$PEBBLE_DIRECTORY" --non-interactive "$@"
}
certbot_cmd register --agree-tos --register-unsafely-without-email >"$T/certbot.log" 2>&1 ||
    { fail "certbot register: $(tail -5 "$T/certbot.log")"; finish; }
certbot_cmd certonly --standalone --http-01-address 127.0.0.1 \
    --http-01-port "$PEBBLE_HTTP01_PORT" --cert-name web -d web.example.test \
    -d www.example.test >>"$T/certbot.log" 2>&1 || { fail "certbot web: $(tail -5 "$T/certbot.log")"; finish; }
certbot_cmd certonly --standalone --http-01-address 127.0.0.1 \
    --http-01-port "$PEBBLE_HTTP01_PORT" --cert-name rsa --key-type rsa --rsa-key-size 3072 \
    -d rsa.example.test >>"$T/certbot.log" 2>&1 || { fail "certbot rsa: $(tail -5 "$T/certbot.log")"; finish; }
acct_uri=$(python3 -c "import json,glob; print(json.load(open(glob.glob('$CB/accounts/*/*/*/regr.json')[0]))['uri'])")
sums() { (cd "$CB" && find archive renewal accounts -type f | sort | xargs sha256sum); }
before=$(sums)

pebble_agent_config
start_agent
run 0 ctl ca add pebble --directory "$PEBBLE_DIRECTORY" --trust "$PEBBLE_TRUST"

run 0 ctl import --from-certbot "$CB"
has "imported 'web' version 1 from certbot: CA 'pebble', key ec256, http-01"
has "imported 'rsa' version 1 from certbot: CA 'pebble', key rsa3072, http-01"
has "account: $acct_uri"
has "keeps $CB/live/web/ current"
has "2 lineage(s) imported, 0 failed."
has "systemctl disable --now certbot.timer"
run 0 ctl --json show web
json "j['source'] == 'acme' and sorted(j['dns']) == ['web.example.test', 'www.example.test']"
check "web: the certificate is certbot's" cmp -s "$STATE/live/web/cert.pem" "$CB/archive/web/cert1.pem"
check "web: the key is certbot's" cmp -s "$STATE/live/web/privkey.pem" "$CB/archive/web/privkey1.pem"
check "rsa: key matches" key_matches "$STATE/live/rsa/cert.pem" "$STATE/live/rsa/privkey.pem"
check "the account file has certbot's account URL" \
    python3 -c "import json,sys; sys.exit(0 if json.load(open('$STATE/acme/accounts/pebble.json'))['url'] == '$acct_uri' else 1)"
check "the account key is 0600" test "$(mode_of "$STATE/acme/accounts/pebble.key")" = 600
# The imported key signs for the account at the CA.
run 0 ctl account show --ca pebble
has "$acct_uri"
check "live/web is kept current (deployed once)" wait_log "'web' version 1 deployed to 1 target(s)" 20
check "live/web/cert.pem has the same certificate" cmp -s "$CB/live/web/cert.pem" "$CB/archive/web/cert1.pem"

# certagent renews with certbot's account; certbot's live/ files follow.
run 0 ctl renew web --force
has "renewed 'web' version 2 from CA 'pebble'"
check "renewed with the imported account (no new one)" \
    python3 -c "import json,sys; sys.exit(0 if json.load(open('$STATE/acme/accounts/pebble.json'))['url'] == '$acct_uri' else 1)"
check "live/web/cert.pem is version 2" wait_for 20 cmp -s "$CB/live/web/cert.pem" "$STATE/certs/web/v2/cert.pem"
check "live/web: key matches the new certificate" key_matches "$CB/live/web/cert.pem" "$CB/live/web/privkey.pem"
check "live/web/privkey.pem is 0600" test "$(mode_of "$CB/live/web/privkey.pem")" = 600
check "archive/, renewal/ and accounts/ are as certbot left them" test "$(sums)" = "$before"

# A second run takes over nothing twice.
run 0 ctl import --from-certbot "$CB"
has "skipped 'web': certagent has it already"
has "0 lineage(s) imported, 0 failed."
run 0 ctl --json show web
json "j['version'] == 2"

# A broken lineage is reported; the others still come over.
CB2=$T/le2
mkdir -p "$CB2/renewal"
cp "$CB/renewal/rsa.conf" "$CB2/renewal/other.conf"
sed "s#$CB/live/rsa/privkey.pem#$T/missing.pem#" "$CB/renewal/rsa.conf" >"$CB2/renewal/broken.conf"
run 1 ctl import --from-certbot "$CB2" --no-deploy
has "NOT imported 'broken': cannot"
has "missing.pem"
has "imported 'other' version 1 from certbot"
has "1 lineage(s) imported, 1 failed."
run 2 ctl import --from-certbot "$CB2" --bogus
run 2 ctl import --from-certbot "$T/nowhere"
has "no certbot lineages in $T/nowhere/renewal"
finish
