#!/bin/bash
# Self-signed certificates of every key type, the store's files and modes,
# show, list, rollback and remove; --days within selfsigned_days' range (1..3650); renew
# says what will happen to a certificate the agent does not renew by itself, and --force
# renews a self-signed one whatever auto-renew says; --auto-renew yes is refused for an
# imported certificate (no CA to renew it with).
. "$(dirname "$0")/lib.sh" "$@"
start_agent

for key in ec256 ec384 rsa2048 rsa3072 rsa4096 ed25519; do
    run 0 ctl selfsigned "k-$key" --dns "$key.example.test" --key "$key" --days 30
    has "created self-signed 'k-$key' version 1"
    live=$STATE/live/k-$key
    check "$key: live cert exists" test -s "$live/cert.pem"
    check "$key: key matches certificate" key_matches "$live/cert.pem" "$live/privkey.pem"
    check "$key: certificate verifies with its own key" \
        openssl verify -CAfile "$live/cert.pem" -partial_chain "$live/cert.pem"
    check "$key: SAN present" sh -c "openssl x509 -in '$live/cert.pem' -noout -ext subjectAltName | grep -q 'DNS:$key.example.test'"
done
run 0 ctl show k-rsa3072
has "RSA 3072"
run 0 ctl show k-ed25519
has "Ed25519"
run 0 ctl show k-ec384
has "EC P-384"

# Several names and addresses; the first DNS name is the common name.
run 0 ctl selfsigned web --dns www.example.test --dns example.test --ip 192.0.2.7 --ip 2001:db8::1
run 0 ctl show web
has "subject:      CN=www.example.test"
has "DNS names:    www.example.test, example.test"
has "192.0.2.7"
has "2001:DB8:0:0:0:0:0:1"
has "(self-signed)"
has "days left:    36"
run 0 ctl --json show web
json "j['dns'] == ['www.example.test', 'example.test'] and j['version'] == 1 and j['source'] == 'selfsigned' and j['has_key'] and j['key'] == 'EC P-256' and j['self_signed'] and len(j['fingerprint']) == 95 and j['days_left'] in (364, 365) and j['not_after'] - j['not_before'] == 365 * 86400 + 300"

# Modes: keys 0600, certificates 0644, directories 0700.
v1=$STATE/certs/web/v1
check "privkey 0600" test "$(mode_of "$v1/privkey.pem")" = 600
check "cert 0644" test "$(mode_of "$v1/cert.pem")" = 644
check "fullchain 0644" test "$(mode_of "$v1/fullchain.pem")" = 644
check "version dir 0700" test "$(mode_of "$v1")" = 700
check "certs dir 0700" test "$(mode_of "$STATE/certs")" = 700

# A second version; live/ follows; history lists both; rollback; then forward again.
fp1=$(openssl x509 -in "$STATE/live/web/cert.pem" -noout -fingerprint -sha256)
run 0 ctl selfsigned web --dns www.example.test --key rsa2048 --days 10
has "version 2"
fp2=$(openssl x509 -in "$STATE/live/web/cert.pem" -noout -fingerprint -sha256)
check "live changed to version 2" test "$fp1" != "$fp2"
check "v2 key matches" key_matches "$STATE/live/web/cert.pem" "$STATE/live/web/privkey.pem"
run 0 ctl --json show web
json "j['version'] == 2 and [h['version'] for h in j['history']] == [2, 1] and j['history'][0]['current']"
run 0 ctl show web --version 1
has "version:      1"
run 0 ctl rollback web
has "'web' is now at version 1 (was 2)"
check "live back at version 1" test "$(openssl x509 -in "$STATE/live/web/cert.pem" -noout -fingerprint -sha256)" = "$fp1"
run 1 ctl rollback web
has "E_"
run 0 ctl rollback web --to 2
check "live at version 2 again" test "$(openssl x509 -in "$STATE/live/web/cert.pem" -noout -fingerprint -sha256)" = "$fp2"
run 1 ctl rollback web --to 7
has "E_NOT_FOUND"

# list and status show every certificate with days left.
run 0 ctl list
has "k-ed25519"
has "www.example.test"
run 0 ctl --json list
json "j['count'] == 7 and sorted(c['name'] for c in j['certificates'])[0] == 'k-ec256' and all('days_left' in c for c in j['certificates'])"
run 0 ctl status
has "certificates: 7"
has "DAYS"

# Refusals name the problem.
run 1 ctl selfsigned web --dns www.example.test --key dsa1024
has "dsa1024"
run 1 ctl selfsigned bad --ip 999.1.1.1
has "999.1.1.1"
run 1 ctl selfsigned 'bad/name' --dns x.test
has "E_BAD_INPUT"

# --days has the range of the config's selfsigned_days: 1 to 3650.
run 2 ctl selfsigned long --dns long.example.test --days 4000
has "--days takes 1 to 3650"
run 2 ctl selfsigned long --dns long.example.test --days 0
has "--days takes 1 to 3650"
check "nothing was made" test ! -e "$STATE/certs/long"
run 0 ctl selfsigned long --dns long.example.test --days 3650
has "created self-signed 'long' version 1"

# renew of a self-signed certificate that is not set to auto-renew: without --force it says
# that the agent never renews it and how to change that; --force renews it (asked by name).
run 1 ctl renew long
has "'long' is not renewed automatically (selfsigned, auto-renew off)"
has "certctl renew long --force"
has "certctl set long --auto-renew yes"
lacks "not due for renewal"
run 0 ctl renew long --force
has "renewed 'long' version 2"
run 0 ctl --json show long
json "j['version'] == 2 and j['source'] == 'selfsigned' and j['not_after'] - j['not_before'] == 3650 * 86400 + 300"
# Set to auto-renew and not due: when the agent will renew it.
run 0 ctl set long --auto-renew yes
run 1 ctl renew long
has "'long' is not due for renewal: the agent renews it at"
# renew --all renews only what the agent renews by itself (and only when due).
run 0 ctl --json renew --all --force
json "[r['name'] for r in j['renewed']] == ['long']"

# An imported certificate has no CA to renew it with: --auto-renew yes is refused, whether
# given with import or with set, and says what to do instead.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/imp.key" \
    -out "$T/imp.pem" -subj /CN=imp.example.test -days 30 2>/dev/null
run 2 ctl import imp --cert "$T/imp.pem" --key "$T/imp.key" --auto-renew yes
has "--auto-renew yes cannot act on an imported certificate"
has "certctl request"
check "nothing was imported" test ! -e "$STATE/certs/imp"
run 0 ctl import imp --cert "$T/imp.pem" --key "$T/imp.key"
run 1 ctl set imp --auto-renew yes
has "'imp' was imported: certagent has no CA to renew it with"
has "certctl request imp"
run 0 ctl --json set imp
json "'auto_renew' not in j['settings']"
run 0 ctl set imp --auto-renew no
run 1 ctl renew imp
has "'imp' was imported; certagent cannot renew it"
run 0 ctl remove imp
run 0 ctl remove long

# The store survives a restart as it was.
stop_agent
start_agent
run 0 ctl --json show web
json "j['version'] == 2 and len(j['history']) == 2"

# remove deletes the lineage and its live view.
run 0 ctl remove web
has "removed 'web'"
check "live link gone" test ! -e "$STATE/live/web"
check "certs dir gone" test ! -e "$STATE/certs/web"
run 1 ctl show web
has "E_NOT_FOUND"

# Every change was logged with who asked.
check "changes logged with the peer" grep -q "uid $(id -u), pid" "$LOG"
check "removal logged" grep -q "removed 'web'" "$LOG"
stop_agent
finish
