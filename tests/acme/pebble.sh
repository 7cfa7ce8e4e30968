# shellcheck shell=bash
# Pebble (Debian's pebble 2.4.0) and pebble-challtestsrv for certagent's ACME tests.
# Source it after tests/integration/lib.sh (which provides $T, fail, pass and the cleanup
# trap; this file chains its own cleanup in front of it):
#
#   . "$(dirname "$0")/../integration/lib.sh" "$@"
#   . "$(dirname "$0")/pebble.sh"
#   pebble_start [--eab] [--validity SECONDS] [--strict] [--blocklist NAME]...
#
# Everything listens on 127.0.0.1 on ports chosen at run time.  Environment knobs read by
# pebble_start and passed to Pebble: PEBBLE_VA_NOSLEEP (default 1; 0 keeps the VA's random
# sleeps), PEBBLE_VA_SLEEPTIME, PEBBLE_VA_ALWAYS_VALID, PEBBLE_WFE_NONCEREJECT (Pebble's
# default 5), PEBBLE_AUTHZREUSE (default 50), PEBBLE_ALTERNATE_ROOTS, PEBBLE_CHAIN_LENGTH,
# PEBBLE_WFE_ORDERS_PER_PAGE.  Exported after pebble_start:
#
#   PEBBLE_DIRECTORY        https://127.0.0.1:PORT/dir (the ACME directory)
#   PEBBLE_TRUST            PEM file of the CA of Pebble's listener certificate (give it to the
#                           client as the CA's trust; the proxy serves a certificate of it too)
#   PEBBLE_ROOT             PEM file of Pebble's issuing root (/roots/0)
#   PEBBLE_INTERMEDIATE     PEM file of its intermediate (/intermediates/0)
#   PEBBLE_ROOTS            PEM file of every issuing root (0 and the PEBBLE_ALTERNATE_ROOTS)
#   PEBBLE_ROOT_N           PEM file of root N (N = 0..PEBBLE_ALTERNATE_ROOTS)
#   PEBBLE_MGMT             https://127.0.0.1:MPORT (management interface, same trust)
#   CHALLTEST_MGMT          http://127.0.0.1:CPORT (pebble-challtestsrv management API)
#   CHALLTEST_DNS           127.0.0.1:DNSPORT (its DNS server; Pebble's -dnsserver)
#   PEBBLE_HTTP01_PORT      where Pebble's VA connects for http-01 (nothing listens there)
#   PEBBLE_TLSALPN01_PORT   where Pebble's VA connects for tls-alpn-01 (nothing listens)
#   PEBBLE_PID, CHALLTEST_PID, PEBBLE_LOG, CHALLTEST_LOG
#   PEBBLE_EAB_KID, PEBBLE_EAB_HMAC, PEBBLE_EAB_HMAC_FILE   (with --eab)
#   ACME_DNS01_HOOK         tests/acme/dns01-hook.sh; DNS01_HOOK_STATE its state directory
#   ACME_PYTHON             the python3 the helpers use (/usr/bin/python3 when present)
#
# Names resolve through challtestsrv: every A query is answered with 127.0.0.1 and AAAA
# queries get no answer, so any name (a1.example.test) validates against 127.0.0.1.

# Debian's interpreter when there is one (a pyenv shim costs a second per call).
ACME_PYTHON=${ACME_PYTHON:-$(command -v /usr/bin/python3 || command -v python3)}
export ACME_PYTHON
PEBBLE_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# A copy in the test's own directory: the agent runs a hook program only from directories that
# only root or its own user can change, which the checkout's parents need not be.
cp "$PEBBLE_LIB_DIR/dns01-hook.sh" "$T/dns01-hook.sh"
ACME_DNS01_HOOK=$T/dns01-hook.sh
ACME_PROXY=$PEBBLE_LIB_DIR/acmeproxy.py
PEBBLE_DIR=$T/pebble
PEBBLE_PID=
CHALLTEST_PID=
ACMEPROXY_PID=
PEBBLE_LOG=$PEBBLE_DIR/pebble.log
CHALLTEST_LOG=$PEBBLE_DIR/challtestsrv.log
ACMEPROXY_LOG=$PEBBLE_DIR/acmeproxy.log
DNS01_HOOK_STATE=$PEBBLE_DIR/dns01-state
export ACME_DNS01_HOOK DNS01_HOOK_STATE
mkdir -p "$PEBBLE_DIR" "$DNS01_HOOK_STATE"

# Chain our cleanup in front of the one already on EXIT (lib.sh's), keeping it.
eval "_pebble_prev_exit=$(trap -p EXIT | sed -e 's/^trap -- //' -e 's/ EXIT$//')"
_pebble_prev_exit=${_pebble_prev_exit:-:}
_pebble_cleanup() {
    local rc=$?
    if [ "${FAILURES:-0}" -ne 0 ] || [ -n "${KEEP_TEST_DIR:-}" ]; then
        local f
        for f in "$PEBBLE_LOG" "$CHALLTEST_LOG" "$ACMEPROXY_LOG"; do
            [ -s "$f" ] || continue
            echo "--- $(basename "$f") ($f) ---"
            tail -n 40 "$f"
        done
    fi
    acmeproxy_stop
    pebble_stop_all
    pebble_second_stop
    eval "$_pebble_prev_exit"
    return $rc
}
trap _pebble_cleanup EXIT

# _pebble_free_ports N: N distinct free loopback TCP ports; the first is also free for UDP
# (challtestsrv's DNS server binds both).  All are held open together, then released.
_pebble_free_ports() {
    "$ACME_PYTHON" - "$1" <<'PY'
import socket, sys
n = int(sys.argv[1])
held, ports = [], []
while len(ports) < n:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    if not ports:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", p))
        except OSError:
            s.close()
            continue
        held.append(u)
    held.append(s)
    ports.append(p)
print(" ".join(map(str, ports)))
PY
}

# _pebble_wait_log FILE PID REGEX [SECONDS]: returns 0 once a line of FILE matches REGEX
# (extended regex), 1 if PID exits or SECONDS (default 30) pass first.
_pebble_wait_log() {
    local file=$1 pid=$2 re=$3 secs=${4:-30} fd tpid line rc=1
    exec {fd}< <(exec timeout "$secs" tail -n +1 -F --pid="$pid" "$file" 2>/dev/null)
    tpid=$!
    while IFS= read -r -u "$fd" line; do
        if [[ $line =~ $re ]]; then
            rc=0
            break
        fi
    done
    kill "$tpid" 2>/dev/null
    exec {fd}<&-
    return $rc
}

# _pebble_until_up URL [CURL ARGS]: the log said it listens; the socket may lag the line by
# a moment (Go logs before it calls Listen), so a short bounded poll confirms it.
_pebble_until_up() {
    local url=$1 i
    shift
    for i in $(seq 1 100); do
        curl -sf -o /dev/null --max-time 2 "$@" "$url" && return 0
        sleep 0.02
    done
    return 1
}

# Listener CA and certificate for 127.0.0.1 and localhost (made once per test).
_pebble_listener_cert() {
    [ -s "$PEBBLE_DIR/listener.pem" ] && return 0
    local d=$PEBBLE_DIR
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=certagent test listener CA $$" -keyout "$d/listener-ca.key" \
        -out "$d/listener-ca.pem" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null &&
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$d/listener.key" -out "$d/listener.csr" 2>/dev/null &&
    openssl x509 -req -in "$d/listener.csr" -CA "$d/listener-ca.pem" \
        -CAkey "$d/listener-ca.key" -CAcreateserial -days 2 -out "$d/listener.pem" \
        -extfile <(printf '%s\n' 'subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost' \
            'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature' \
            'extendedKeyUsage=serverAuth') 2>/dev/null
}

# _pebble_write_config: Pebble's JSON config from the PEBBLE_* shell variables.
_pebble_write_config() {
    "$ACME_PYTHON" - "$PEBBLE_DIR/pebble-config.json" "$PEBBLE_DIR" "$_PEBBLE_PORT" "$_PEBBLE_MPORT" \
        "$PEBBLE_HTTP01_PORT" "$PEBBLE_TLSALPN01_PORT" "$_PEBBLE_EAB" "${PEBBLE_EAB_KID:-}" \
        "${PEBBLE_EAB_HMAC:-}" "$_PEBBLE_VALIDITY" "$_PEBBLE_BLOCKLIST" <<'PY'
import json, sys
out, d, port, mport, http01, tlsalpn01, eab, kid, hmac, validity, block = sys.argv[1:]
cfg = {
    "listenAddress": "127.0.0.1:" + port,
    "managementListenAddress": "127.0.0.1:" + mport,
    "certificate": d + "/listener.pem",
    "privateKey": d + "/listener.key",
    "httpPort": int(http01),
    "tlsPort": int(tlsalpn01),
    "ocspResponderURL": "",
    "externalAccountBindingRequired": eab == "1",
}
if eab == "1":
    cfg["externalAccountMACKeys"] = {kid: hmac}
if validity:
    cfg["certificateValidityPeriod"] = int(validity)
if block.split():
    cfg["domainBlocklist"] = block.split()
with open(out, "w") as f:
    json.dump({"pebble": cfg}, f, indent=2)
PY
}

_pebble_start_challtestsrv() {
    : >"$CHALLTEST_LOG"
    pebble-challtestsrv -defaultIPv4 127.0.0.1 -defaultIPv6 "" \
        -dns01 "127.0.0.1:$_CHALLTEST_DNSPORT" -http01 "" -https01 "" -tlsalpn01 "" \
        -management "127.0.0.1:$_CHALLTEST_MPORT" >>"$CHALLTEST_LOG" 2>&1 &
    CHALLTEST_PID=$!
    if ! _pebble_wait_log "$CHALLTEST_LOG" "$CHALLTEST_PID" 'Starting management server' ||
        ! _pebble_until_up "http://127.0.0.1:$_CHALLTEST_MPORT/clear-txt" -X POST \
            -d '{"host":"readiness.probe.invalid."}'; then
        kill "$CHALLTEST_PID" 2>/dev/null
        wait "$CHALLTEST_PID" 2>/dev/null
        CHALLTEST_PID=
        return 1
    fi
}

_pebble_start_pebble() {
    local nosleep=${PEBBLE_VA_NOSLEEP-1}
    : >"$PEBBLE_LOG"
    (
        if [ "$nosleep" = 0 ] || [ -z "$nosleep" ]; then
            unset PEBBLE_VA_NOSLEEP
        else
            export PEBBLE_VA_NOSLEEP=$nosleep
        fi
        for v in PEBBLE_VA_SLEEPTIME PEBBLE_VA_ALWAYS_VALID PEBBLE_WFE_NONCEREJECT \
            PEBBLE_AUTHZREUSE PEBBLE_ALTERNATE_ROOTS PEBBLE_CHAIN_LENGTH \
            PEBBLE_WFE_ORDERS_PER_PAGE; do
            [ -n "${!v:-}" ] && export "${v?}"
        done
        exec pebble -config "$PEBBLE_DIR/pebble-config.json" \
            -dnsserver "127.0.0.1:$_CHALLTEST_DNSPORT" $_PEBBLE_STRICT
    ) >>"$PEBBLE_LOG" 2>&1 &
    PEBBLE_PID=$!
    if ! _pebble_wait_log "$PEBBLE_LOG" "$PEBBLE_PID" 'ACME directory available at' ||
        ! _pebble_until_up "https://127.0.0.1:$_PEBBLE_PORT/dir" --cacert "$PEBBLE_TRUST" ||
        ! _pebble_until_up "https://127.0.0.1:$_PEBBLE_MPORT/roots/0" --cacert "$PEBBLE_TRUST"
    then
        kill "$PEBBLE_PID" 2>/dev/null
        wait "$PEBBLE_PID" 2>/dev/null
        PEBBLE_PID=
        return 1
    fi
    export PEBBLE_PID
}

# _pebble_fetch_roots: Pebble makes new roots at every start; fetch them all.
_pebble_fetch_roots() {
    local n=${PEBBLE_ALTERNATE_ROOTS:-0} i
    : >"$PEBBLE_DIR/roots.pem"
    for i in $(seq 0 "$n"); do
        curl -sf --cacert "$PEBBLE_TRUST" -o "$PEBBLE_DIR/root-$i.pem" \
            "$PEBBLE_MGMT/roots/$i" || return 1
        cat "$PEBBLE_DIR/root-$i.pem" >>"$PEBBLE_DIR/roots.pem"
        export "PEBBLE_ROOT_$i=$PEBBLE_DIR/root-$i.pem"
    done
    curl -sf --cacert "$PEBBLE_TRUST" -o "$PEBBLE_DIR/intermediate-0.pem" \
        "$PEBBLE_MGMT/intermediates/0" || return 1
    PEBBLE_ROOT=$PEBBLE_DIR/root-0.pem
    PEBBLE_ROOTS=$PEBBLE_DIR/roots.pem
    PEBBLE_INTERMEDIATE=$PEBBLE_DIR/intermediate-0.pem
    export PEBBLE_ROOT PEBBLE_ROOTS PEBBLE_INTERMEDIATE
}

# pebble_start [--eab] [--validity SECONDS] [--strict] [--blocklist NAME]...
#   --eab          externalAccountBindingRequired, one key: PEBBLE_EAB_KID with the
#                  base64url HMAC key PEBBLE_EAB_HMAC (also in the file PEBBLE_EAB_HMAC_FILE)
#   --validity S   certificateValidityPeriod: issued certificates live S seconds
#   --strict       Pebble's -strict mode
#   --blocklist N  domainBlocklist entry (Pebble refuses orders for N)
# Starts challtestsrv and Pebble, waits until both answer, fetches the issuing roots.
pebble_start() {
    _PEBBLE_EAB=0 _PEBBLE_VALIDITY='' _PEBBLE_STRICT='' _PEBBLE_BLOCKLIST=
    while [ $# -gt 0 ]; do
        case $1 in
        --eab) _PEBBLE_EAB=1 ;;
        --validity) _PEBBLE_VALIDITY=$2; shift ;;
        --strict) _PEBBLE_STRICT=-strict ;;
        --blocklist) _PEBBLE_BLOCKLIST="$_PEBBLE_BLOCKLIST $2"; shift ;;
        *) fail "pebble_start: unknown option $1"; return 1 ;;
        esac
        shift
    done
    _pebble_listener_cert || { fail "pebble_start: openssl could not make the listener certificate"; return 1; }
    PEBBLE_TRUST=$PEBBLE_DIR/listener-ca.pem
    export PEBBLE_TRUST
    if [ "$_PEBBLE_EAB" = 1 ]; then
        PEBBLE_EAB_KID=kid-$$-$RANDOM
        PEBBLE_EAB_HMAC=$(openssl rand 48 | base64 -w0 | tr '+/' '-_' | tr -d '=')
        PEBBLE_EAB_HMAC_FILE=$PEBBLE_DIR/eab-hmac
        printf '%s\n' "$PEBBLE_EAB_HMAC" >"$PEBBLE_EAB_HMAC_FILE"
        chmod 600 "$PEBBLE_EAB_HMAC_FILE"
        export PEBBLE_EAB_KID PEBBLE_EAB_HMAC PEBBLE_EAB_HMAC_FILE
    fi
    local attempt ports
    for attempt in 1 2 3 4 5; do
        # Another suite may take a port between our check and the bind: pick anew and retry.
        read -r _CHALLTEST_DNSPORT _CHALLTEST_MPORT _PEBBLE_PORT _PEBBLE_MPORT \
            PEBBLE_HTTP01_PORT PEBBLE_TLSALPN01_PORT <<<"$(_pebble_free_ports 6)"
        _pebble_write_config || { fail "pebble_start: could not write Pebble's config"; return 1; }
        _pebble_start_challtestsrv || continue
        if _pebble_start_pebble; then
            ports=ok
            break
        fi
        kill "$CHALLTEST_PID" 2>/dev/null
        wait "$CHALLTEST_PID" 2>/dev/null
        CHALLTEST_PID=
    done
    if [ -z "${ports:-}" ]; then
        fail "pebble_start: Pebble or pebble-challtestsrv did not start (logs in $PEBBLE_DIR)"
        tail -n 20 "$CHALLTEST_LOG" "$PEBBLE_LOG"
        return 1
    fi
    PEBBLE_DIRECTORY=https://127.0.0.1:$_PEBBLE_PORT/dir
    PEBBLE_MGMT=https://127.0.0.1:$_PEBBLE_MPORT
    CHALLTEST_MGMT=http://127.0.0.1:$_CHALLTEST_MPORT
    CHALLTEST_DNS=127.0.0.1:$_CHALLTEST_DNSPORT
    export PEBBLE_DIRECTORY PEBBLE_MGMT CHALLTEST_MGMT CHALLTEST_DNS PEBBLE_HTTP01_PORT \
        PEBBLE_TLSALPN01_PORT PEBBLE_LOG CHALLTEST_LOG CHALLTEST_PID
    _pebble_fetch_roots || { fail "pebble_start: could not fetch Pebble's roots"; return 1; }
}

# pebble_stop: stop Pebble only (an outage; challtestsrv and its DNS data stay).
pebble_stop() {
    [ -n "$PEBBLE_PID" ] || return 0
    kill -TERM "$PEBBLE_PID" 2>/dev/null
    wait "$PEBBLE_PID" 2>/dev/null
    PEBBLE_PID=
}

# pebble_restart: Pebble again on the same ports and config.  Pebble keeps nothing: accounts,
# orders and authorizations are gone and the issuing roots are new (PEBBLE_ROOT* re-fetched).
# To keep its state across an outage use pebble_pause/pebble_resume or the proxy instead.
pebble_restart() {
    local attempt
    pebble_stop
    for attempt in 1 2 3; do
        _pebble_start_pebble && break
        echo "pebble_restart: attempt $attempt failed: $(tail -n 1 "$PEBBLE_LOG")"
    done
    [ -n "$PEBBLE_PID" ] || { fail "pebble_restart: Pebble did not come back on port $_PEBBLE_PORT"; return 1; }
    _pebble_fetch_roots || { fail "pebble_restart: could not fetch Pebble's roots"; return 1; }
}

# pebble_pause / pebble_resume: SIGSTOP/SIGCONT, an outage that keeps Pebble's state
# (connections hang rather than being refused).
pebble_pause() { kill -STOP "$PEBBLE_PID"; }
pebble_resume() { kill -CONT "$PEBBLE_PID"; }

pebble_stop_all() {
    [ -n "$PEBBLE_PID" ] && kill -CONT "$PEBBLE_PID" 2>/dev/null
    pebble_stop
    if [ -n "$CHALLTEST_PID" ]; then
        kill -TERM "$CHALLTEST_PID" 2>/dev/null
        wait "$CHALLTEST_PID" 2>/dev/null
        CHALLTEST_PID=
    fi
}

# pebble_serial CERT-PEM-FILE: the serial as Pebble's management API spells it (lower-case
# hex, no leading zeros).
pebble_serial() {
    local s
    s=$(openssl x509 -in "$1" -noout -serial 2>/dev/null | cut -d= -f2 | tr 'A-F' 'a-f') || return 1
    s=$(printf '%s' "$s" | sed 's/^0*//')
    printf '%s\n' "${s:-0}"
}

# pebble_cert_status CERT-PEM-FILE|SERIAL: prints Pebble's status of that certificate
# ("Valid" or "Revoked"; with the revocation reason code after a space when revoked);
# returns 1 when Pebble does not know it.
pebble_cert_status() {
    local serial=$1 out
    [ -f "$1" ] && serial=$(pebble_serial "$1")
    out=$(curl -sf --cacert "$PEBBLE_TRUST" "$PEBBLE_MGMT/cert-status-by-serial/$serial") ||
        return 1
    printf '%s' "$out" | "$ACME_PYTHON" -c '
import json, sys
j = json.load(sys.stdin)
print(j["Status"] + ("" if j["Status"] != "Revoked" else " %s" % j.get("Reason", "")))'
}

# pebble_revoked CERT-PEM-FILE|SERIAL [REASON-CODE]: true when Pebble reports it revoked
# (with that reason code when one is given).
pebble_revoked() {
    local st
    st=$(pebble_cert_status "$1") || return 1
    case $st in
    "Revoked${2:+ $2}"*) return 0 ;;
    esac
    return 1
}

# pebble_verify FULLCHAIN-PEM [ROOT-PEM]: the first certificate verifies through the others
# to Pebble's root (PEBBLE_ROOT unless given), for TLS server use, at the current time.
pebble_verify() {
    local file=$1 root=${2:-$PEBBLE_ROOT} dir
    dir=$(mktemp -d "$PEBBLE_DIR/verify-XXXXXX")
    awk -v d="$dir" '/-----BEGIN CERTIFICATE-----/ {n++} n {print > (d "/c" n ".pem")}' "$file"
    [ -s "$dir/c1.pem" ] || { rm -rf "$dir"; return 1; }
    cat "$dir"/c[2-9]*.pem >"$dir/chain.pem" 2>/dev/null
    if [ -s "$dir/chain.pem" ]; then
        openssl verify -purpose sslserver -CAfile "$root" -untrusted "$dir/chain.pem" \
            "$dir/c1.pem" >/dev/null 2>&1
    else
        openssl verify -purpose sslserver -CAfile "$root" "$dir/c1.pem" >/dev/null 2>&1
    fi
    local rc=$?
    rm -rf "$dir"
    return $rc
}

# acme_cert_id CERT-PEM-FILE: the certificate's ACME Renewal Information CertID (RFC 9773):
# base64url(AKI keyIdentifier) "." base64url(serial DER value bytes), padding stripped.
acme_cert_id() {
    local aki serial
    aki=$(openssl x509 -in "$1" -noout -ext authorityKeyIdentifier 2>/dev/null |
        sed -n 's/^ *\(keyid:\)\{0,1\}\([0-9A-Fa-f:]\{2,\}\) *$/\2/p' | head -n1)
    serial=$(openssl x509 -in "$1" -noout -serial 2>/dev/null | cut -d= -f2)
    [ -n "$aki" ] && [ -n "$serial" ] || return 1
    "$ACME_PYTHON" -c '
import base64, sys
aki = bytes.fromhex(sys.argv[1].replace(":", ""))
n = int(sys.argv[2], 16)
serial = n.to_bytes(n.bit_length() // 8 + 1, "big")  # DER: a leading 0 keeps it positive
b = lambda x: base64.urlsafe_b64encode(x).decode().rstrip("=")
print(b(aki) + "." + b(serial))' "$aki" "$serial"
}

# challtest_post PATH JSON: one call to challtestsrv's management API.
challtest_post() {
    curl -sf -X POST --max-time 10 -d "$2" "$CHALLTEST_MGMT$1" >/dev/null
}

# challtest_a HOST IP / challtest_a_clear HOST: an A record other than the default 127.0.0.1.
challtest_a() { challtest_post /add-a "{\"host\":\"$1\",\"addresses\":[\"$2\"]}"; }
challtest_a_clear() { challtest_post /clear-a "{\"host\":\"$1\"}"; }

# pebble_agent_config [EXTRA-JSON-OBJECT]: merge the ACME listener and hook keys (and any
# extra keys given) into the agent's config file $CONFIG:
#   "http01_listen": ["127.0.0.1:$PEBBLE_HTTP01_PORT"],
#   "tls_alpn01_listen": ["127.0.0.1:$PEBBLE_TLSALPN01_PORT"],
#   "dns01_hook": "$ACME_DNS01_HOOK"
pebble_agent_config() {
    local extra=${1:-}
    [ -n "$extra" ] || extra='{}'
    "$ACME_PYTHON" - "$CONFIG" "$extra" <<PY
import json, sys
path, extra = sys.argv[1], json.loads(sys.argv[2])
try:
    with open(path) as f:
        cfg = json.load(f)
except (OSError, ValueError):
    cfg = {}
cfg["http01_listen"] = ["127.0.0.1:$PEBBLE_HTTP01_PORT"]
cfg["tls_alpn01_listen"] = ["127.0.0.1:$PEBBLE_TLSALPN01_PORT"]
cfg["dns01_hook"] = "$ACME_DNS01_HOOK"
cfg.update(extra)
with open(path + ".tmp", "w") as f:
    json.dump(cfg, f, indent=2)
PY
    mv "$CONFIG.tmp" "$CONFIG"
}

# pebble_agent_reload [EXTRA-JSON-OBJECT]: pebble_agent_config, then SIGHUP the agent and wait
# until its log says the configuration was reloaded.
pebble_agent_reload() {
    local before
    before=$(grep -c "configuration reloaded" "$LOG")
    pebble_agent_config "$1"
    kill -HUP "$AGENT_PID"
    wait_for 30 sh -c "[ \$(grep -c 'configuration reloaded' '$LOG') -gt $before ]" ||
        fail "the agent did not reload"
}

# --- the fault-injecting proxy (acmeproxy.py) ---------------------------------------------

# acmeproxy_start [CONFIG-JSON]: starts the proxy in front of Pebble with that configuration
# (JSON text; default none: a transparent proxy) and exports:
#   ACMEPROXY_DIRECTORY  https://127.0.0.1:PORT/dir (same TLS trust: PEBBLE_TRUST)
#   ACMEPROXY_CONTROL    http://127.0.0.1:CPORT (POST /rules, GET /log, ...)
#   ACMEPROXY_PID, ACMEPROXY_LOG
acmeproxy_start() {
    local cfg=$PEBBLE_DIR/acmeproxy-config.json line extra=${1:-}
    [ -n "$extra" ] || extra='{}'
    printf '%s\n' "$extra" >"$cfg"
    : >"$ACMEPROXY_LOG"
    "$ACME_PYTHON" "$ACME_PROXY" --upstream "${PEBBLE_DIRECTORY%/dir}" --upstream-ca "$PEBBLE_TRUST" \
        --mgmt "$PEBBLE_MGMT" --cert "$PEBBLE_DIR/listener.pem" --key "$PEBBLE_DIR/listener.key" \
        --config "$cfg" --port-file "$PEBBLE_DIR/acmeproxy.ports" --verbose \
        >>"$ACMEPROXY_LOG" 2>&1 &
    ACMEPROXY_PID=$!
    if ! _pebble_wait_log "$ACMEPROXY_LOG" "$ACMEPROXY_PID" '^acmeproxy: ready '; then
        fail "acmeproxy_start: the proxy did not start: $(tail -n 5 "$ACMEPROXY_LOG")"
        ACMEPROXY_PID=
        return 1
    fi
    line=$(grep -m1 '^acmeproxy: ready ' "$ACMEPROXY_LOG")
    set -- $line
    ACMEPROXY_DIRECTORY=$3/dir
    ACMEPROXY_CONTROL=$5
    export ACMEPROXY_DIRECTORY ACMEPROXY_CONTROL ACMEPROXY_PID ACMEPROXY_LOG
}

acmeproxy_stop() {
    [ -n "$ACMEPROXY_PID" ] || return 0
    kill -TERM "$ACMEPROXY_PID" 2>/dev/null
    wait "$ACMEPROXY_PID" 2>/dev/null
    ACMEPROXY_PID=
}

# acmeproxy_post PATH JSON: POST to the control endpoint (/rules, /config, /profiles,
# /renewal-info, /log/clear); fails (with the proxy's message) when it refuses.
acmeproxy_post() {
    local out
    out=$(curl -sS --max-time 10 -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d "$2" "$ACMEPROXY_CONTROL$1") || return 1
    [ "${out##*$'\n'}" = 200 ] && return 0
    printf 'acmeproxy: %s\n' "${out%$'\n'*}" >&2
    return 1
}

# acmeproxy_rules JSON-LIST: replace the rules (their counters restart).
acmeproxy_rules() { acmeproxy_post /rules "$1"; }

# acmeproxy_log: print the proxy's log (JSON: counts, injected, orders, renewal_info, rules).
acmeproxy_log() { curl -sf --max-time 10 "$ACMEPROXY_CONTROL/log"; }

# acmeproxy_count KIND: requests of that kind seen so far.
acmeproxy_count() {
    acmeproxy_log | "$ACME_PYTHON" -c 'import json,sys; print(json.load(sys.stdin)["counts"].get(sys.argv[1], 0))' "$1"
}

# acmeproxy_injected [ACTION]: how many injections (of that action) happened so far.
acmeproxy_injected() {
    acmeproxy_log | "$ACME_PYTHON" -c '
import json, sys
inj = json.load(sys.stdin)["injected"]
a = sys.argv[1] if len(sys.argv) > 1 else None
print(sum(1 for e in inj if a is None or e["action"] == a))' "$@"
}

# --- a second Pebble (another CA with its own roots: fallback CAs, canaries) ---------------

PEBBLE2_PID=
CHALLTEST2_PID=

# pebble_start_second [pebble_start OPTIONS]: starts another Pebble and challtestsrv under
# $T/pebble2 (their own listener CA and roots), leaving the first one's PEBBLE_* variables as
# they were, and exports the second's as PEBBLE2_DIRECTORY, PEBBLE2_TRUST, PEBBLE2_ROOT,
# PEBBLE2_MGMT, PEBBLE2_HTTP01_PORT, PEBBLE2_TLSALPN01_PORT, PEBBLE2_PID, PEBBLE2_LOG and
# PEBBLE2_DIR.  The cleanup stops it.
pebble_start_second() {
    local v rc saved=()
    local vars="PEBBLE_DIR PEBBLE_LOG CHALLTEST_LOG PEBBLE_PID CHALLTEST_PID PEBBLE_TRUST
        PEBBLE_DIRECTORY PEBBLE_MGMT CHALLTEST_MGMT CHALLTEST_DNS PEBBLE_HTTP01_PORT
        PEBBLE_TLSALPN01_PORT PEBBLE_ROOT PEBBLE_ROOTS PEBBLE_INTERMEDIATE PEBBLE_ROOT_0
        _PEBBLE_PORT _PEBBLE_MPORT _CHALLTEST_DNSPORT _CHALLTEST_MPORT"
    for v in $vars; do saved+=("${!v:-}"); done
    PEBBLE_DIR=$T/pebble2
    PEBBLE_LOG=$PEBBLE_DIR/pebble.log
    CHALLTEST_LOG=$PEBBLE_DIR/challtestsrv.log
    PEBBLE_PID=''
    CHALLTEST_PID=''
    mkdir -p "$PEBBLE_DIR"
    pebble_start "$@"
    rc=$?
    PEBBLE2_DIR=$PEBBLE_DIR PEBBLE2_LOG=$PEBBLE_LOG PEBBLE2_PID=$PEBBLE_PID
    CHALLTEST2_PID=$CHALLTEST_PID PEBBLE2_TRUST=${PEBBLE_TRUST:-}
    PEBBLE2_DIRECTORY=${PEBBLE_DIRECTORY:-} PEBBLE2_MGMT=${PEBBLE_MGMT:-}
    PEBBLE2_ROOT=${PEBBLE_ROOT:-} PEBBLE2_HTTP01_PORT=${PEBBLE_HTTP01_PORT:-}
    PEBBLE2_TLSALPN01_PORT=${PEBBLE_TLSALPN01_PORT:-}
    export PEBBLE2_DIR PEBBLE2_LOG PEBBLE2_PID PEBBLE2_TRUST PEBBLE2_DIRECTORY PEBBLE2_MGMT \
        PEBBLE2_ROOT PEBBLE2_HTTP01_PORT PEBBLE2_TLSALPN01_PORT
    local i=0
    for v in $vars; do
        printf -v "$v" '%s' "${saved[$i]}"
        export "${v?}"
        i=$((i + 1))
    done
    return $rc
}

# pebble_second_stop: stops the second Pebble and its challtestsrv (the cleanup calls it).
pebble_second_stop() {
    local p
    for p in "$PEBBLE2_PID" "$CHALLTEST2_PID"; do
        [ -n "$p" ] || continue
        kill -CONT "$p" 2>/dev/null
        kill -TERM "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    PEBBLE2_PID=''
    CHALLTEST2_PID=''
}
