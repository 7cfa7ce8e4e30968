#!/bin/sh
# Regenerates the fixed test files in this directory with the openssl command
# line (see README.md for the list).  Everything is valid for 100 years except
# expired.pem.  The files are committed; run this only to change them:
#     sh tests/data/make-testdata.sh
set -eu
cd "$(dirname "$0")"
umask 077
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
days=36500
pass='correct horse'

cat >"$T/ext.cnf" <<'CNF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = DNS:www.example.test
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF

# Root CA -> intermediate CA -> leaf for www.example.test, all EC P-256.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -subj "/O=certagent tests/CN=certagent Test Root" -keyout "$T/root.key" -out root.pem \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/O=certagent tests/CN=certagent Test Intermediate" -keyout "$T/int.key" \
    -out "$T/int.csr" 2>/dev/null
openssl x509 -req -in "$T/int.csr" -CA root.pem -CAkey "$T/root.key" -CAcreateserial \
    -CAserial "$T/srl" -days $days -extfile "$T/ext.cnf" -extensions ca \
    -out intermediate.pem 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=www.example.test" -keyout leaf.key -out "$T/leaf.csr" 2>/dev/null
openssl x509 -req -in "$T/leaf.csr" -CA intermediate.pem -CAkey "$T/int.key" \
    -CAcreateserial -CAserial "$T/srl" -days $days -extfile "$T/ext.cnf" -extensions leaf \
    -out leaf.pem 2>/dev/null
openssl verify -CAfile root.pem -untrusted intermediate.pem leaf.pem >/dev/null

# The same leaf in DER, with its chain, its key encrypted (PKCS#8, AES-256).
openssl x509 -in leaf.pem -outform DER -out leaf.der
cat leaf.pem intermediate.pem >fullchain.pem
openssl pkcs8 -topk8 -in leaf.key -v2 aes-256-cbc -v2prf hmacWithSHA256 \
    -passout pass:"$pass" -out leaf-enc.key

# PKCS#12: leaf + key + intermediate, AES-256-CBC/PBKDF2 and a SHA-256 MAC, with
# the password and with an empty one.
openssl pkcs12 -export -in leaf.pem -inkey leaf.key -certfile intermediate.pem \
    -name www.example.test -passout pass:"$pass" \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -out leaf.pfx
openssl pkcs12 -export -in leaf.pem -inkey leaf.key -certfile intermediate.pem \
    -name www.example.test -passout pass: \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -out leaf-nopass.pfx

# A key that belongs to nothing here.
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key

# An expired self-signed certificate, valid 2020-01-01 .. 2021-01-01.  OpenSSL
# 3.4 and later take explicit dates in req; 3.0 needs openssl ca for that.
if openssl req -help 2>&1 | grep -q -- '-not_before'; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=expired.example.test" -addext "subjectAltName=DNS:expired.example.test" \
        -not_before 20200101000000Z -not_after 20210101000000Z \
        -keyout expired.key -out expired.pem 2>/dev/null
else
    mkdir -p "$T/ca"
    : >"$T/ca/index.txt"
    echo 01 >"$T/ca/serial"
    cat >"$T/ca.cnf" <<CNF
[ca]
default_ca = test
[test]
dir = $T/ca
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
default_md = sha256
policy = any
unique_subject = no
copy_extensions = copy
[any]
commonName = supplied
CNF
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=expired.example.test" -addext "subjectAltName=DNS:expired.example.test" \
        -keyout expired.key -out "$T/exp.csr" 2>/dev/null
    openssl ca -batch -config "$T/ca.cnf" -selfsign -keyfile expired.key -in "$T/exp.csr" \
        -startdate 20200101000000Z -enddate 20210101000000Z -notext -out expired.pem 2>/dev/null
fi

# Broken inputs: random bytes, and a PEM certificate cut in the middle.
head -c 2048 /dev/urandom >garbage.bin
head -c 300 leaf.pem >truncated.pem

# Certificates are public: readable by all.
chmod 0644 root.pem intermediate.pem leaf.pem leaf.der fullchain.pem expired.pem \
    garbage.bin truncated.pem
echo "make-testdata: done"
