#!/bin/bash
# tests/acme/dns01-hook.sh against a real pebble-challtestsrv: records appear in its DNS and
# go away, a name shared by example.test and *.example.test keeps the other value, bad input
# and an unreachable API fail clearly; then Debian's lego issues a wildcard certificate with
# real dns-01 validation by Pebble through this hook.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/pebble.sh"

command -v lego >/dev/null || { fail "lego is not installed (packaging/install-deps.sh)"; finish; }
pebble_start || finish

# txt NAME: the TXT values challtestsrv's DNS answers for NAME, sorted, one per line.
txt() {
    "$ACME_PYTHON" - "$CHALLTEST_DNS" "$1" <<'PY'
import random, socket, struct, sys
host, port = sys.argv[1].rsplit(":", 1)
name = sys.argv[2]
qid = random.randrange(65536)
q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"
q += struct.pack(">HH", 16, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
s.sendto(q, (host, int(port)))
d = s.recv(65535)
assert struct.unpack(">H", d[:2])[0] == qid
an = struct.unpack(">H", d[6:8])[0]
i = len(q)
vals = []
for _ in range(an):
    if d[i] & 0xC0 == 0xC0:
        i += 2
    else:
        while d[i]:
            i += d[i] + 1
        i += 1
    rtype, _, _, rdlen = struct.unpack(">HHIH", d[i:i + 10])
    i += 10
    if rtype == 16:
        j, end, parts = i, i + rdlen, []
        while j < end:
            parts.append(d[j + 1:j + 1 + d[j]].decode())
            j += 1 + d[j]
        vals.append("".join(parts))
    i += rdlen
print("\n".join(sorted(vals)))
PY
}

hook() {
    local op=$1 name=$2 value=$3 domain=$4
    CERTAGENT_DNS01_NAME=$name CERTAGENT_DNS01_VALUE=$value CERTAGENT_DNS01_DOMAIN=$domain \
        "$ACME_DNS01_HOOK" "$op"
}

N=_acme-challenge.h.example.test.
run 0 hook add "$N" valueA h.example.test
run 0 txt "$N"
check "one TXT value published" test "$JOUT" = valueA
run 0 hook add "$N" valueB h.example.test
run 0 hook add "$N" valueB h.example.test
run 0 txt "$N"
check "both values, the repeated add kept once" test "$JOUT" = $'valueA\nvalueB'
run 0 hook remove "$N" valueA h.example.test
run 0 txt "$N"
check "removing A keeps B" test "$JOUT" = valueB
run 0 hook remove "$N" valueB h.example.test
run 0 txt "$N"
check "no value left" test -z "$JOUT"
run 0 hook remove "$N" valueB h.example.test

run 2 hook add _acme-challenge.h.example.test valueA h.example.test
has "no trailing dot"
run 2 hook add _acme-challenge.other.test. valueA h.example.test
has "does not belong to CERTAGENT_DNS01_DOMAIN"
run 2 hook add "$N" 'bad"value' h.example.test
has "not base64url"
run 2 hook add www.h.example.test. valueA h.example.test
has "does not start with _acme-challenge."
run 2 hook frobnicate "$N" valueA h.example.test
has "unknown operation 'frobnicate'"
run 2 env -u CHALLTEST_MGMT CERTAGENT_DNS01_NAME="$N" CERTAGENT_DNS01_VALUE=v "$ACME_DNS01_HOOK" add
has "CHALLTEST_MGMT is not set"
run 2 env -u CERTAGENT_DNS01_VALUE CERTAGENT_DNS01_NAME="$N" "$ACME_DNS01_HOOK" add
has "CERTAGENT_DNS01_VALUE is not set"
# challtestsrv's API not answering: exit 1 and the reason.
closed_port
run 1 env CHALLTEST_MGMT="http://127.0.0.1:$CLOSED_PORT" CERTAGENT_DNS01_NAME="$N" \
    CERTAGENT_DNS01_VALUE=v "$ACME_DNS01_HOOK" add
has "challtestsrv /clear-txt for $N failed"
has "(at http://127.0.0.1:$CLOSED_PORT)"

# Concurrent adds on one name (as an agent with several authorizations would call it).
# (wait for these jobs by pid: a bare 'wait' would wait for Pebble too)
pids=
for v in c1 c2 c3 c4 c5 c6; do
    hook add "$N" "$v" h.example.test &
    pids="$pids $!"
done
wait $pids
run 0 txt "$N"
check "six concurrent adds all published" test "$JOUT" = $'c1\nc2\nc3\nc4\nc5\nc6'
pids=
for v in c1 c2 c3 c4 c5; do
    hook remove "$N" "$v" h.example.test &
    pids="$pids $!"
done
wait $pids
run 0 txt "$N"
check "five concurrent removes leave the sixth" test "$JOUT" = c6
hook remove "$N" c6 h.example.test

# --- real dns-01 issuance: lego's exec provider calls this hook (through a 5-line adapter
# from lego's "present|cleanup FQDN VALUE" to the agent's interface) -----------------------
cat >"$T/lego-exec" <<'EOF'
#!/bin/bash
case $1 in present) op=add ;; cleanup) op=remove ;; *) exit 0 ;; esac
d=${2#_acme-challenge.}
CERTAGENT_DNS01_NAME=$2 CERTAGENT_DNS01_VALUE=$3 CERTAGENT_DNS01_DOMAIN=${d%.} \
    exec "$ACME_DNS01_HOOK" "$op"
EOF
chmod +x "$T/lego-exec"
# lego waits EXEC_SEQUENCE_INTERVAL (60 s) between the two challenges that share one record.
t0=$(date +%s%N)
run 0 env EXEC_PATH="$T/lego-exec" EXEC_SEQUENCE_INTERVAL=1 EXEC_POLLING_INTERVAL=1 LEGO_CA_CERTIFICATES="$PEBBLE_TRUST" \
    lego --server "$PEBBLE_DIRECTORY" --email test@example.test --accept-tos --path "$T/lego" \
    --domains w.example.test --domains '*.w.example.test' \
    --dns exec --dns.disable-cp --dns.resolvers "$CHALLTEST_DNS" run
echo "lego dns-01 issuance: $(( ($(date +%s%N) - t0) / 1000000 )) ms"
crt=$T/lego/certificates/w.example.test.crt
check "the dns-01 certificate verifies against Pebble's root" pebble_verify "$crt"
check "it names the wildcard and the base name" bash -c \
    'openssl x509 -in "$1" -noout -ext subjectAltName | grep -q "DNS:\*.w.example.test"' _ "$crt"
check "challtestsrv saw the hook's records" grep -q 'Added DNS-01 TXT challenge for Host "_acme-challenge.w.example.test."' "$CHALLTEST_LOG"
check "Pebble looked the record up over DNS" grep -q "DNS-01 TXT" "$CHALLTEST_LOG"
run 0 txt _acme-challenge.w.example.test.
check "lego's cleanup removed every record through the hook" test -z "$JOUT"
finish
