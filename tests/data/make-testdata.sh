#!/bin/sh
# Regenerates the fixed test files in this directory with the openssl command
# line.  Everything is valid for 100 years except expired.pem.  The files are
# committed; run this only to change them.
set -eu
cd "$(dirname "$0")"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
days=36500

cat >"$T/ext.cnf" <<'CNF'
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:www.example.test
subjectKeyIdentifier = hash
CNF

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days $days \
    -subj "/O=certagent tests/CN=certagent Test Root" -keyout "$T/root.key" -out root.pem \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/O=certagent tests/CN=certagent Test Intermediate" -keyout "$T/int.key" \
    -out "$T/int.csr" 2>/dev/null
openssl x509 -req -in "$T/int.csr" -CA root.pem -CAkey "$T/root.key" -CAcreateserial -CAserial "$T/srl" \
    -days $days -extfile "$T/ext.cnf" -extensions ca -out intermediate.pem 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=www.example.test" -keyout leaf.key -out "$T/leaf.csr" 2>/dev/null
openssl x509 -req -in "$T/leaf.csr" -CA intermediate.pem -CAkey "$T/int.key" \
    -CAcreateserial -CAserial "$T/srl" -days $days -extfile "$T/ext.cnf" -extensions leaf -out leaf.pem 2>/dev/null
openssl x509 -in leaf.pem -outform DER -out leaf.der
cat leaf.pem intermediate.pem >fullchain.pem
openssl pkcs8 -topk8 -in leaf.key -v2 aes-256-cbc -passout pass:'correct horse' -out leaf-enc.key
openssl pkcs12 -export -in leaf.pem -inkey leaf.key -certfile intermediate.pem \
    -name www.example.test -passout pass:'correct horse' \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256 -out leaf.pfx
openssl pkcs12 -export -in leaf.pem -inkey leaf.key -certfile intermediate.pem \
    -name www.example.test -passout pass: -out leaf-nopass.pfx
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.key

# An expired self-signed certificate: openssl ca accepts explicit dates.
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

head -c 2048 /dev/urandom >garbage.bin
head -c 300 leaf.pem >truncated.pem
echo "make-testdata: done"
