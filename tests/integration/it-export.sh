#!/bin/bash
# Exports: PEM bundle and PFX, read back with openssl; versions; --no-key.
. "$(dirname "$0")/lib.sh" "$@"
D=$DATA
start_agent
run 0 ctl import web --cert "$D/leaf.pem" --key "$D/leaf.key" --chain "$D/intermediate.pem"
run 0 ctl selfsigned web --dns www.example.test

# PEM: certificate, chain and key in one file, 0600.
run 0 ctl export web --format pem --out "$T/web.pem"
has "with the private key, mode 0600"
check "pem export 0600" test "$(mode_of "$T/web.pem")" = 600
check "pem export holds the key" key_matches "$T/web.pem" "$T/web.pem"
check "pem export is the current version" sh -c "openssl x509 -in '$T/web.pem' -noout -subject | grep -q www.example.test"

# Version 1 with its chain.
run 0 ctl export web --version 1 --format pem --out "$T/web-v1.pem"
check "v1 has 2 certificates" test "$(grep -c 'BEGIN CERTIFICATE' "$T/web-v1.pem")" = 2

# PFX with a password: openssl reads it back with that password only.
printf 'export pass\n' >"$T/pw"
run 0 ctl export web --version 1 --format pfx --out "$T/web.pfx" --password-file "$T/pw"
check "pfx export 0600" test "$(mode_of "$T/web.pfx")" = 600
check "pfx opens with the password" \
    openssl pkcs12 -in "$T/web.pfx" -passin pass:'export pass' -nodes -out "$T/pfx-out.pem"
check "pfx holds key and certificate that match" key_matches "$T/pfx-out.pem" "$T/pfx-out.pem"
check "pfx holds the chain" test "$(grep -c 'BEGIN CERTIFICATE' "$T/pfx-out.pem")" = 2
check "pfx refuses a wrong password" sh -c "! openssl pkcs12 -in '$T/web.pfx' -passin pass:nope -nodes -out /dev/null 2>/dev/null"

# The exported PFX imports back.
run 0 ctl import roundtrip --pfx "$T/web.pfx" --password-file "$T/pw"
run 0 ctl --json show roundtrip
json "j['dns'] == ['www.example.test'] and j['has_key']"

# Without a password: warned; without the key: 0644 and no key inside.
run 0 ctl export web --format pfx --out "$T/nopw.pfx"
has "empty password"
run 0 ctl export web --format pem --no-key --out "$T/pub.pem"
check "no-key export 0644" test "$(mode_of "$T/pub.pem")" = 644
check "no key inside" sh -c "! grep -q 'PRIVATE KEY' '$T/pub.pem'"
run 0 ctl --json export web --no-key --out "$T/pub2.pem"
json "j['has_key'] == False and j['version'] == 2 and j['bytes'] > 100"

run 1 ctl export missing --out "$T/x.pem"
has "E_NOT_FOUND"
run 1 ctl export web --version 9 --out "$T/x.pem"
has "E_NOT_FOUND"
run 2 ctl export web --format der --out "$T/x.der"
check "export logged" grep -q "exported 'web'" "$LOG"
check "export password never logged" sh -c "! grep -q 'export pass' '$LOG'"
stop_agent
finish
