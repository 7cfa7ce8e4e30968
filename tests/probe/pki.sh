# shellcheck shell=bash
# A three-level test PKI made at run time with openssl (nothing is committed,
# so nothing in the tree expires).  Source it, then: make_pki DIR AIA_URL
#   DIR/root.pem root.key          self-signed root CA
#   DIR/int.pem int.key int.der    intermediate CA signed by the root
#   DIR/leaf.pem leaf.key          localhost + 127.0.0.1, signed by the intermediate,
#                                  AIA caIssuers = AIA_URL (where int.der is served)
#   DIR/leaf-full.pem              leaf + intermediate
#   DIR/wrong.pem wrong.key        wrong.example, signed by the intermediate
#   DIR/oldint.pem                 an intermediate that expired in 2021 (same root)
#   DIR/oldleaf.pem oldleaf.key    localhost, signed by the expired intermediate
#   DIR/notca-full.pem             a leaf whose issuer lacks basicConstraints CA:TRUE
#   DIR/weak.pem                   a leaf signed with ecdsa-with-SHA1
#   DIR/future-full.pem            a leaf valid from 2040 (signed by the intermediate)
#   DIR/ocsp.der                   an OCSP response for leaf.pem, signed by the intermediate
make_pki() {
    d=$1
    aia=$2
    mkdir -p "$d"
    (
        cd "$d" || exit 1
        key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
        key root.key
        openssl req -x509 -new -key root.key -subj "/CN=Certagent Test Root/O=certagent tests" \
            -days 3650 -sha256 -out root.pem \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null || exit 1
        cat >ca.ext <<EOT
basicConstraints=critical,CA:TRUE,pathlen:0
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
EOT
        key int.key
        openssl req -new -key int.key -subj "/CN=Certagent Test Intermediate/O=certagent tests" \
            -out int.csr 2>/dev/null
        openssl x509 -req -in int.csr -CA root.pem -CAkey root.key -CAcreateserial -days 3000 \
            -sha256 -extfile ca.ext -out int.pem 2>/dev/null || exit 1
        openssl x509 -in int.pem -outform DER -out int.der
        leaf() { # NAME CN SAN ISSUER
            cat >"$1.ext" <<EOT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$3
authorityKeyIdentifier=keyid
authorityInfoAccess=caIssuers;URI:$aia
EOT
            key "$1.key"
            openssl req -new -key "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
            openssl x509 -req -in "$1.csr" -CA "$4.pem" -CAkey "$4.key" -CAcreateserial \
                -days 825 -sha256 -extfile "$1.ext" -out "$1.pem" 2>/dev/null || exit 1
        }
        leaf leaf localhost "DNS:localhost,IP:127.0.0.1" int
        cat leaf.pem int.pem >leaf-full.pem
        leaf wrong wrong.example "DNS:wrong.example" int
        # The expired intermediate: openssl ca takes explicit dates.
        key oldint.key
        openssl req -new -key oldint.key -subj "/CN=Certagent Expired Intermediate" \
            -out oldint.csr 2>/dev/null
        mkdir -p ca/new
        : >ca/index.txt
        echo 1000 >ca/serial
        cat >ca.cnf <<EOT
[ca]
default_ca = test
[test]
dir = ca
database = ca/index.txt
new_certs_dir = ca/new
serial = ca/serial
default_md = sha256
policy = any
copy_extensions = none
[any]
commonName = supplied
EOT
        openssl ca -batch -config ca.cnf -cert root.pem -keyfile root.key -in oldint.csr \
            -startdate 20200101000000Z -enddate 20210101000000Z -extfile ca.ext \
            -out oldint.pem -notext 2>/dev/null || exit 1
        leaf oldleaf localhost "DNS:localhost,IP:127.0.0.1" oldint
        cat oldleaf.pem oldint.pem >oldleaf-full.pem
        # An "intermediate" without basicConstraints, and a leaf it signed.
        key notca-int.key
        openssl req -new -key notca-int.key -subj "/CN=Certagent Not A CA" -out notca-int.csr \
            2>/dev/null
        printf 'subjectKeyIdentifier=hash\n' >plain.ext
        openssl x509 -req -in notca-int.csr -CA root.pem -CAkey root.key -CAcreateserial \
            -days 3000 -sha256 -extfile plain.ext -out notca-int.pem 2>/dev/null || exit 1
        leaf notca localhost "DNS:localhost" notca-int
        cat notca.pem notca-int.pem >notca-full.pem
        # SHA-1 signature.
        key weak.key
        openssl req -new -key weak.key -subj "/CN=localhost" -out weak.csr 2>/dev/null
        openssl x509 -req -in weak.csr -CA int.pem -CAkey int.key -CAcreateserial -days 825 \
            -sha1 -extfile leaf.ext -out weak.pem 2>/dev/null || exit 1
        cat weak.pem int.pem >weak-full.pem
        # Not yet valid.
        key future.key
        openssl req -new -key future.key -subj "/CN=localhost" -out future.csr 2>/dev/null
        openssl ca -batch -config ca.cnf -cert int.pem -keyfile int.key -in future.csr \
            -startdate 20400101000000Z -enddate 20410101000000Z -extfile leaf.ext \
            -out future.pem -notext 2>/dev/null || exit 1
        cat future.pem int.pem >future-full.pem
        # A good OCSP response for leaf.pem, for s_server -status_file.
        serial=$(openssl x509 -in leaf.pem -noout -serial | sed 's/serial=//')
        printf 'V\t351231235959Z\t\t%s\tunknown\t/CN=localhost\n' "$serial" >ocsp-index.txt
        openssl ocsp -issuer int.pem -cert leaf.pem -reqout ocsp-req.der 2>/dev/null
        openssl ocsp -index ocsp-index.txt -rsigner int.pem -rkey int.key -CA int.pem \
            -reqin ocsp-req.der -respout ocsp.der -ndays 7 2>/dev/null || exit 1
    )
}
