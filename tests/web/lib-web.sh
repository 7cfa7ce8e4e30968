# shellcheck shell=bash
# Shared by the tests of the status report and the dashboard: a store with
# one certificate per level, made at run time with the openssl CLI.
#   good      imported, chain to its own CA, 300 days left          -> ok
#   selfie    self-signed, 29 days (fewer than warn_days 30 in any second) -> warning (self_signed_in_use)
#   soon      imported, 2 days left of 12                           -> warning (expiring)
#   verysoon  imported, 4 days left of 100, a name <b>&quotes    -> critical (expiring)
# Needs lib.sh sourced first (ctl, run, $T).

W=$T/pki
mkdir -p "$W/newcerts"
: >"$W/index.txt"
echo 01 >"$W/serial"
cat >"$W/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $W/index.txt
new_certs_dir = $W/newcerts
serial = $W/serial
policy = p
default_md = sha256
copy_extensions = copy
unique_subject = no
[p]
commonName = supplied
CNF
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/ca.key" \
    -out "$W/ca.pem" -days 3650 -subj "/CN=Report Test CA" 2>/dev/null

# issue NAME START END [SAN]
issue() {
    local name=$1 start=$2 end=$3 san=${4:-DNS:$1.example.test}
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$W/$name.key" \
        -out "$W/$name.csr" -subj "/CN=$name.example.test" -addext "subjectAltName=$san" \
        2>/dev/null
    openssl ca -batch -config "$W/ca.cnf" -cert "$W/ca.pem" -keyfile "$W/ca.key" -notext \
        -in "$W/$name.csr" -out "$W/$name.pem" -startdate "$(date -u -d "$start" +%Y%m%d%H%M%SZ)" \
        -enddate "$(date -u -d "$end" +%Y%m%d%H%M%SZ)" 2>/dev/null
}

# make_levels: imports the four certificates into the running agent and waits for
# their checks (certs_unchecked 0).
make_levels() {
    issue good "-1 day" "+300 days"
    issue soon "-10 days" "+2 days"
    issue verysoon "-96 days" "+4 days" 'DNS:verysoon.example.test,DNS:<b>&quotes.example.test'
    run 0 ctl import good --cert "$W/good.pem" --key "$W/good.key" --chain "$W/ca.pem"
    run 0 ctl import soon --cert "$W/soon.pem" --key "$W/soon.key" --chain "$W/ca.pem"
    run 0 ctl import verysoon --cert "$W/verysoon.pem" --key "$W/verysoon.key" --chain "$W/ca.pem"
    run 0 ctl selfsigned selfie --dns selfie.example.test --days 29
    wait_for 20 unchecked_zero
}

unchecked_zero() {
    ctl --json status >"$T/uz.json" 2>/dev/null
    python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))['certs_unchecked'] == 0 else 1)" "$T/uz.json"
}
