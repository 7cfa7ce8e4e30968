#!/bin/sh
# Writes the hostile and broken inputs of this directory (run once; the files
# and MANIFEST.tsv are committed).  Uses the openssl command line, python3,
# and for the one PKCS#12 layout the command line cannot make (two private
# keys) a few lines of C against libcrypto.  Valid certificates are good for
# 100 years; the expired ones expired on purpose in 2001.
#     sh tests/data/bad/make-bad.sh
set -eu
cd "$(dirname "$0")"
D=..
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
days=36500
# The password of every password-protected file here; the test checks that it
# never appears in certctl's output or the agent's log.
pass='Tr0ub4dor-bad-input'
printf '%s\n' "$pass" >password.txt
rm -f ./*.pem ./*.der ./*.key ./*.pfx ./*.json ./*.name ./*.bin ./*.p7b

selfsigned() { # KEYFILE OUT CN [extra openssl req args]
    k=$1 out=$2 cn=$3
    shift 3
    openssl req -x509 -new -key "$k" -days $days -subj "/CN=$cn" \
        -addext "subjectAltName=DNS:$cn" "$@" -out "$out" 2>/dev/null
}

# --- PEM and DER certificates -------------------------------------------------
head -c 400 $D/leaf.pem >truncated.pem                     # no END line
{ cat $D/leaf.pem; printf 'this is not PEM\n\001\002\377 trailing junk\n'; } >trailing-junk.pem
sed '3s/^..../!!!!/' $D/leaf.pem >bad-base64.pem           # invalid base64 characters
: >empty.pem
printf 'hello, I am not a certificate\n' >not-a-cert.pem
sed 's/CERTIFICATE/X509 CRL/' $D/leaf.pem >wrong-block.pem
printf -- '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n' >empty-block.pem
cat $D/leaf.key >key-as-cert.pem                            # --cert given a key only
openssl crl2pkcs7 -nocrl -certfile $D/leaf.pem -outform DER -out cert.p7b 2>/dev/null
python3 - <<'EOF'
import struct
der = open("../leaf.der", "rb").read()
assert der[0] == 0x30 and der[1] == 0x82
body = der[4:]
n = len(body)
def w(name, data):
    open(name, "wb").write(data)
w("der-too-long.der", b"\x30\x82" + struct.pack(">H", n + 100) + body)
w("der-too-short.der", b"\x30\x82" + struct.pack(">H", n - 100) + body)
w("der-indefinite.der", b"\x30\x80" + body + b"\x00\x00")
w("der-truncated.der", der[: len(der) // 2])
w("der-huge-length.der", b"\x30\x84\x7f\xff\xff\xff" + body)
w("der-trailing.der", der + b"\x05\x00junk")
w("der-zeros.der", b"\x00" * 512)
EOF

# Names and serials.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ec.key"
python3 - "$T/sans.cnf" <<'EOF'
import sys
with open(sys.argv[1], "w") as f:
    f.write("[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=@alt\n[alt]\n")
    for i in range(10000):
        f.write("DNS.%d = a%d.t\n" % (i + 1, i))
EOF
openssl req -x509 -new -key "$T/ec.key" -days $days -subj "/CN=a0.t" \
    -config "$T/sans.cnf" -extensions ext -out sans-10000.pem 2>/dev/null
cp "$T/ec.key" sans-10000.key
selfsigned "$T/ec.key" negative-serial.pem negative.example.test -set_serial -1234
cp "$T/ec.key" negative-serial.key
selfsigned "$T/ec.key" zero-serial.pem zero.example.test -set_serial 0
cp "$T/ec.key" zero-serial.key
# Zero-length serial: the DER of a certificate with serial 0 whose INTEGER is made empty.
python3 - <<'EOF'
import base64, re
pem = open("zero-serial.pem").read()
der = bytearray(base64.b64decode("".join(l for l in pem.splitlines() if "-----" not in l)))
# cert SEQ(82 LL LL) tbs SEQ(82 LL LL) [0] version (a0 03 02 01 02), serial 02 01 00
i = 4 + 4 + 5
assert der[i:i + 3] == b"\x02\x01\x00", der[i:i + 3]
def fix(off, delta):
    v = int.from_bytes(der[off + 2:off + 4], "big") + delta
    der[off + 2:off + 4] = v.to_bytes(2, "big")
del der[i + 2]
der[i + 1] = 0
fix(0, -1)
fix(4, -1)
open("zero-length-serial.der", "wb").write(bytes(der))
EOF
rm zero-serial.pem zero-serial.key

# Expired leaf (accepted with a warning) and a valid leaf under an expired intermediate.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/ca.key"
openssl req -x509 -new -key "$T/ca.key" -days $days -subj "/CN=bad-inputs Root" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -out "$T/root.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/int.key"
openssl req -new -key "$T/int.key" -subj "/CN=bad-inputs Expired Intermediate" \
    -out "$T/int.csr" 2>/dev/null
printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n' >"$T/ca.ext"
printf 'basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:expired-chain.example.test\n' \
    >"$T/leaf.ext"
# openssl ca sets any validity period (x509 -req only counts days from now).
: >"$T/index.txt"
echo 07 >"$T/serial"
cat >"$T/ca.cnf" <<EOF
[ca]
default_ca = d
[d]
database = $T/index.txt
new_certs_dir = $T
serial = $T/serial
default_md = sha256
policy = p
[p]
commonName = supplied
EOF
openssl ca -batch -notext -config "$T/ca.cnf" -cert "$T/root.pem" -keyfile "$T/ca.key" \
    -startdate 20000101000000Z -enddate 20010101000000Z -extfile "$T/ca.ext" \
    -in "$T/int.csr" -out expired-chain-int.pem 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out expired-chain.key
openssl req -new -key expired-chain.key -subj "/CN=expired-chain.example.test" \
    -out "$T/leaf.csr" 2>/dev/null
openssl x509 -req -in "$T/leaf.csr" -CA expired-chain-int.pem -CAkey "$T/int.key" \
    -set_serial 8 -days $days -extfile "$T/leaf.ext" -out expired-chain.pem 2>/dev/null
cp $D/expired.pem expired-leaf.pem
cp $D/expired.key expired-leaf.key
# Chain in the wrong order with a stranger in it: root, a stranger CA, intermediate.
openssl req -x509 -new -key "$T/ca.key" -days $days -subj "/CN=A Stranger CA" \
    -addext "basicConstraints=critical,CA:TRUE" -out "$T/stranger.pem" 2>/dev/null
cat $D/root.pem "$T/stranger.pem" $D/intermediate.pem >chain-stranger.pem
cp "$T/stranger.pem" chain-only-stranger.pem

# --- keys -------------------------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:512 -out rsa512.key 2>/dev/null
selfsigned rsa512.key rsa512.pem rsa512.example.test
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa1024.key 2>/dev/null
selfsigned rsa1024.key rsa1024.pem rsa1024.example.test
openssl genpkey -genparam -algorithm DSA -pkeyopt dsa_paramgen_bits:2048 \
    -out "$T/dsa.param" 2>/dev/null
openssl genpkey -paramfile "$T/dsa.param" -out dsa.key 2>/dev/null
selfsigned dsa.key dsa.pem dsa.example.test
openssl ecparam -name prime256v1 -param_enc explicit -genkey -noout -out explicit-curve.key
selfsigned explicit-curve.key explicit-curve.pem explicit.example.test
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:secp256k1 -out secp256k1.key
selfsigned secp256k1.key secp256k1.pem k1.example.test
# A PKCS#8 EC key whose curve OID is one no one knows (1.3.6.1.4.1.99999.1.1, same length
# as prime256v1's).
openssl pkcs8 -topk8 -nocrypt -in "$T/ec.key" -outform DER -out "$T/ec.der"
python3 - "$T/ec.der" <<'EOF'
import sys
der = open(sys.argv[1], "rb").read()
p256 = bytes.fromhex("06082a8648ce3d030107")
assert p256 in der
bogus = bytes.fromhex("0608") + bytes([0x2b, 0x06, 0x01, 0x04, 0x01, 0x86, 0x8d, 0x1f])
assert len(bogus) == len(p256)
open("unknown-curve.der", "wb").write(der.replace(p256, bogus))
EOF
openssl pkey -in $D/leaf.key -aes-256-cbc -passout pass:"$pass" -out encrypted.key
head -c 120 $D/leaf.key >truncated.key
: >empty.key
printf -- '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' >garbage-in-pem.key

# --- PKCS#12 --------------------------------------------------------------------------
openssl pkcs12 -export -in $D/leaf.pem -inkey $D/leaf.key -certfile $D/intermediate.pem \
    -passout pass:"$pass" -out "$T/good.pfx"
python3 - "$T/good.pfx" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
# The MAC value is near the end (MacData: digest, salt, iterations): flip a byte of it.
d[-40] ^= 0x55
open("wrong-mac.pfx", "wb").write(bytes(d))
open("truncated.pfx", "wb").write(bytes(d[: len(d) // 2]))
EOF
# 2^31-1 MAC iterations (the file's own choice): hours of PBKDF work if obeyed.
python3 - "$T/good.pfx" <<'EOF'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
assert d[-4:] == bytes.fromhex("02020800"), d[-4:].hex()  # iterations 2048, last in MacData
d[-4:] = bytes.fromhex("02047fffffff")
# MacData is the PFX's last element: fix its length byte and the outer length.
mac = len(d) - 2 - 0x43
assert d[mac] == 0x30 and d[mac + 1] == 0x41, d[mac:mac + 2].hex()
d[mac + 1] += 2
d[2:4] = (int.from_bytes(d[2:4], "big") + 2).to_bytes(2, "big")
open("mac-iterations.pfx", "wb").write(bytes(d))
EOF
openssl pkcs12 -export -nocerts -inkey $D/leaf.key -passout pass:"$pass" -out no-cert.pfx
openssl pkcs12 -export -nokeys -in $D/leaf.pem -passout pass:"$pass" -out cert-no-key.pfx
openssl pkcs12 -export -in rsa1024.pem -inkey rsa1024.key -passout pass:"$pass" \
    -out rsa1024.pfx
: >empty.pfx
cp $D/leaf.pem pem-as.pfx
cat >"$T/twokeys.c" <<'EOF'
/* Writes a PKCS#12 file holding one certificate and two private keys. */
#include <stdio.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
int main(int argc, char **argv)
{
    FILE *f;
    X509 *cert;
    EVP_PKEY *k1, *k2;
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    STACK_OF(PKCS7) *safes = NULL;
    PKCS12 *p12;
    if (argc != 6) return 2;
    f = fopen(argv[1], "r"); cert = PEM_read_X509(f, NULL, NULL, NULL); fclose(f);
    f = fopen(argv[2], "r"); k1 = PEM_read_PrivateKey(f, NULL, NULL, NULL); fclose(f);
    f = fopen(argv[3], "r"); k2 = PEM_read_PrivateKey(f, NULL, NULL, NULL); fclose(f);
    if (!cert || !k1 || !k2) return 1;
    if (!PKCS12_add_cert(&bags, cert) ||
        !PKCS12_add_key(&bags, k1, 0, PKCS12_DEFAULT_ITER, NID_aes_256_cbc, argv[4]) ||
        !PKCS12_add_key(&bags, k2, 0, PKCS12_DEFAULT_ITER, NID_aes_256_cbc, argv[4]) ||
        !PKCS12_add_safe(&safes, bags, -1, 0, NULL) ||
        (p12 = PKCS12_add_safes(safes, 0)) == NULL ||
        !PKCS12_set_mac(p12, argv[4], -1, NULL, 0, PKCS12_DEFAULT_ITER, NULL))
        return 1;
    f = fopen(argv[5], "wb");
    if (!f || i2d_PKCS12_fp(f, p12) != 1) return 1;
    return fclose(f) != 0;
}
EOF
cc -o "$T/twokeys" "$T/twokeys.c" -lcrypto
"$T/twokeys" $D/leaf.pem $D/leaf.key $D/other.key "$pass" two-keys.pfx

# --- sizes --------------------------------------------------------------------------------
# Over the 1 MiB frame limit.
python3 -c 'import sys; sys.stdout.write("-----BEGIN CERTIFICATE-----\n" + ("A" * 64 + "\n") * 17000 + "-----END CERTIFICATE-----\n")' >huge.pem
cp huge.pem huge.pfx

# --- configs ---------------------------------------------------------------------------------
printf '{"log_level": 3}\n' >config-wrong-type.json
printf '{"selfsigned_days": "90"}\n' >config-string-for-int.json
printf '{"probes": "https://www.example.test"}\n' >config-string-for-list.json
printf '{"log_levle": "debug"}\n' >config-unknown-key.json
printf '{"log_level": "warn", "log_level": "debug"}\n' >config-duplicate-key.json
python3 -c 'print("{\"x\": " + "[" * 5000 + "]" * 5000 + "}")' >config-deep.json
printf '{"log_level": "info",\000 "socket_mode": "0600"}\n' >config-nul.json
printf '{"socket_group": "caf\351"}\n' >config-invalid-utf8.json
printf '{"log_level": "info"\n' >config-truncated.json
printf '[]\n' >config-array.json
printf '{"selfsigned_days": -5}\n' >config-negative.json
printf '{"max_connections": 1e30}\n' >config-huge-number.json
printf '{"socket_mode": "0999"}\n' >config-bad-mode.json
printf '{"acme_cas": {"x": {"directory": 5}}}\n' >config-nested-wrong-type.json

# --- names ----------------------------------------------------------------------------------
printf '../../etc/passwd' >dotdot.name
printf 'a/b' >slash.name
printf 'red\033[31malert\007' >control.name
printf 'line\nbreak' >newline.name
python3 -c 'import sys; sys.stdout.write("n" * 65)' >too-long.name
printf '.hidden' >leading-dot.name
printf '%s' '-rf' >leading-dash.name
printf 'caf\303\251' >non-ascii.name
echo "make-bad: $(find . -mindepth 1 -maxdepth 1 ! -name '.*' ! -name make-bad.sh \
    ! -name MANIFEST.tsv ! -name README.md -printf x | wc -c) files"
