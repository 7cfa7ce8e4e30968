#!/bin/bash
# Imports of PEM, DER and PKCS#12, and every refusal naming its problem.
. "$(dirname "$0")/lib.sh" "$@"
D=$DATA
start_agent

# PEM certificate + key + chain: chain ordered and linked, key 0600.
run 0 ctl import web --cert "$D/leaf.pem" --key "$D/leaf.key" --chain "$D/intermediate.pem"
has "imported 'web' version 1"
has "www.example.test"
live=$STATE/live/web
check "key matches" key_matches "$live/cert.pem" "$live/privkey.pem"
check "fullchain verifies to the root" \
    openssl verify -CAfile "$D/root.pem" -untrusted "$live/chain.pem" "$live/cert.pem"
check "fullchain = cert + chain" sh -c "cat '$live/cert.pem' '$live/chain.pem' | cmp -s - '$live/fullchain.pem'"
check "privkey 0600" test "$(mode_of "$(readlink -f "$live/privkey.pem")")" = 600
run 0 ctl --json show web
json "j['source'] == 'import' and len(j['chain']) == 1 and j['chain'][0]['is_ca'] and not j['self_signed'] and j['dns'] == ['www.example.test']"

# Chain in any order, root included: reordered.
cat "$D/root.pem" "$D/intermediate.pem" >"$T/chain-reversed.pem"
run 0 ctl import web --cert "$D/leaf.pem" --key "$D/leaf.key" --chain "$T/chain-reversed.pem"
has "version 2"
run 0 ctl --json show web
json "len(j['chain']) == 2 and j['chain'][0]['subject'] != j['chain'][1]['subject'] and j['chain'][1]['subject'] == j['chain'][1]['issuer']"

# A fullchain PEM as --cert: the extra certificates are the chain.
run 0 ctl import full --cert "$D/fullchain.pem" --key "$D/leaf.key"
run 0 ctl --json show full
json "len(j['chain']) >= 1"

# DER certificate.
run 0 ctl import der --cert "$D/leaf.der" --key "$D/leaf.key"
has "imported 'der' version 1"

# A combined PEM (certificate and key in one file).
cat "$D/leaf.pem" "$D/leaf.key" >"$T/combined.pem"
run 0 ctl import combined --cert "$T/combined.pem"
run 0 ctl --json show combined
json "j['has_key']"

# Encrypted key: right password works; none or a wrong one are refused.
printf 'correct horse\n' >"$T/pw"
printf 'wrong horse\n' >"$T/badpw"
run 0 ctl import enc --cert "$D/leaf.pem" --key "$D/leaf-enc.key" --password-file "$T/pw"
run 1 ctl import enc2 --cert "$D/leaf.pem" --key "$D/leaf-enc.key"
has "password"
run 1 ctl import enc2 --cert "$D/leaf.pem" --key "$D/leaf-enc.key" --password-file "$T/badpw"
has "password"
lacks "wrong horse"

# PFX with password, with an empty password; wrong password refused.
run 0 ctl import pfx --pfx "$D/leaf.pfx" --password-file "$T/pw"
has "imported 'pfx' version 1"
check "pfx key matches" key_matches "$STATE/live/pfx/cert.pem" "$STATE/live/pfx/privkey.pem"
run 0 ctl --json show pfx
json "len(j['chain']) >= 1"
run 0 ctl import pfx-nopass --pfx "$D/leaf-nopass.pfx"
run 1 ctl import pfx-bad --pfx "$D/leaf.pfx" --password-file "$T/badpw"
has "wrong password for the PFX file"
has "E_BAD_INPUT"
lacks "wrong horse"
run 1 ctl import pfx-bad --pfx "$D/leaf.pfx"
has "password"

# Mismatched key.
run 1 ctl import bad --cert "$D/leaf.pem" --key "$D/other.key"
has "private key does not match the certificate"
# A chain certificate that does not belong.
run 1 ctl import bad --cert "$D/leaf.pem" --key "$D/leaf.key" --chain "$D/expired.pem"
has "chain"
# Garbage, truncated PEM, a PFX given as --cert, a key given as a certificate.
run 1 ctl import bad --cert "$D/garbage.bin"
has "E_BAD_INPUT"
run 1 ctl import bad --cert "$D/truncated.pem"
has "E_BAD_INPUT"
run 1 ctl import bad --cert "$D/leaf.pfx"
has "PKCS#12"
run 1 ctl import bad --pfx "$D/garbage.bin"
has "not a PKCS#12 file"
run 1 ctl import bad --cert "$D/leaf.key"
has "E_BAD_INPUT"
check "nothing stored for refused imports" test ! -e "$STATE/certs/bad"

# Expired: imported, with a warning.
run 0 ctl import old --cert "$D/expired.pem" --key "$D/expired.key"
has "warning: the certificate expired on"
run 0 ctl --json show old
json "j['days_left'] < 0"
run 0 ctl status
has "1 EXPIRED"

# A certificate without a key: stored with a warning.
run 0 ctl import nokey --cert "$D/leaf.pem"
has "warning: no private key was imported"

# Files too large are refused before anything is sent.
head -c 400000 /dev/zero >"$T/huge.bin"
run 2 ctl import huge --cert "$T/huge.bin"
has "larger than"

# The agent is still healthy and the earlier versions are intact.
run 0 ctl --json list
json "j['count'] == 9"
check "passwords never logged" sh -c "! grep -q 'horse' '$LOG'"
stop_agent
finish
