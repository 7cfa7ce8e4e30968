#!/bin/bash
# The status report: health and warnings (expiring, self-signed, weak key and
# signature, incomplete chain), status --check exit codes, certctl metrics and
# the loopback /metrics listener, certctl logs (with --name and --follow), and
# STATE/status.json.  Certificates are made at run time with the openssl CLI.
. "$(dirname "$0")/lib.sh" "$@"
D=$DATA
W=$T/pki
mkdir -p "$W/newcerts"
: >"$W/index.txt"
echo 01 >"$W/serial"

# The agent is not running yet: --check says UNKNOWN with 3.
run 3 ctl status --check
has "CERTAGENT UNKNOWN"

# A metrics listener on a non-loopback address is refused at start.
echo '{"metrics_listen": "0.0.0.0:9464"}' >"$CONFIG"
"$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE" >"$T/refused.log" 2>&1
RC=$?
check "non-loopback metrics_listen: the agent exits with an error" [ "$RC" -ne 0 ]
check "the refusal says why" grep -q "0.0.0.0 is not a loopback address" "$T/refused.log"
echo '{"metrics_listen": "localhost-ish:80"}' >"$CONFIG"
"$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE" >"$T/refused.log" 2>&1
check "a bad metrics_listen is named" grep -q "is not ADDR:PORT" "$T/refused.log"

echo '{"metrics_listen": "127.0.0.1:0", "log_ring_lines": 500}' >"$CONFIG"
start_agent
PORT=$(sed -n 's/.*metrics: serving .*(port \([0-9]*\)).*/\1/p' "$LOG" | head -1)
check "the metrics listener reports its port" [ -n "$PORT" ]

# Empty store: OK, exit 0, and the status file exists and is JSON.
run 0 ctl status --check
has "CERTAGENT OK - 0 certificates"
wait_for 10 test -s "$STATE/status.json"
check "status.json is valid JSON" python3 -m json.tool "$STATE/status.json"
check "status.json is 0644" [ "$(mode_of "$STATE/status.json")" = "644" ]
check "status.json says ok" python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j['health'] == 'ok' and j['certificates'] == [] else 1)" "$STATE/status.json"

# A self-signed certificate of 1 day: self_signed_in_use makes WARNING (1); a
# fresh 1-day lifetime is not yet expiring (its quarter is 6 hours).
run 0 ctl selfsigned short --dns short.example.test --days 1
run 1 ctl status --check
has "CERTAGENT WARNING - 1 certificate, 1 warning: short is self-signed"
run 0 ctl --json status
json "j['health'] == 'warning' and j['health_code'] == 1 and j['certs_warning'] == 1"
json "[w['code'] for w in j['certificates'][0]['warnings']] == ['self_signed_in_use']"
json "j['certificates'][0]['lifetime_days'] == 1 and j['certificates'][0]['source'] == 'selfsigned'"
# The status file follows the store.
wait_for 10 python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if [c['name'] for c in j['certificates']] == ['short'] else 1)" "$STATE/status.json"
check "status.json changed after the change" [ $? -eq 0 ]

# A CA of our own, and certificates with chosen dates (openssl ca).
cat >"$W/ca.cnf" <<EOF
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
EOF
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/ca.key" -out "$W/ca.pem" -days 3650 \
    -subj "/CN=Status Test CA" 2>/dev/null
# issue NAME START END [KEYOPTS...] [-- CAOPTS...]
issue() {
    local name=$1 start=$2 end=$3
    shift 3
    openssl req -new -nodes "$@" -keyout "$W/$name.key" -out "$W/$name.csr" \
        -subj "/CN=$name.example.test" -addext "subjectAltName=DNS:$name.example.test" 2>/dev/null
    openssl ca -batch -config "$W/ca.cnf" -cert "$W/ca.pem" -keyfile "$W/ca.key" -notext \
        -in "$W/$name.csr" -out "$W/$name.pem" -md "${MD:-sha256}" \
        -startdate "$(date -u -d "$start" +%Y%m%d%H%M%SZ)" \
        -enddate "$(date -u -d "$end" +%Y%m%d%H%M%SZ)" 2>/dev/null
}
EC="-newkey ec -pkeyopt ec_paramgen_curve:P-256"
# 12-day lifetime with 2 days left: under a quarter (3 days), over a tenth: WARNING.
issue soon "-10 days" "+2 days" $EC
# 100-day lifetime with 5 days left: under critical_days (7) and a tenth: CRITICAL.
issue verysoon "-95 days" "+5 days" $EC
# A healthy one with a complete chain (ends in the CA, self-signed).
issue good "-1 day" "+300 days" $EC
# RSA 1024 signed with SHA-1.
MD=sha1 issue weak "-1 day" "+300 days" -newkey rsa:1024
check "the test CA made the certificates" test -s "$W/soon.pem" -a -s "$W/verysoon.pem" -a -s "$W/good.pem" -a -s "$W/weak.pem"

run 0 ctl import soon --cert "$W/soon.pem" --key "$W/soon.key" --chain "$W/ca.pem"
run 0 ctl import good --cert "$W/good.pem" --key "$W/good.key" --chain "$W/ca.pem"
run 0 ctl import weak --cert "$W/weak.pem" --key "$W/weak.key" --chain "$W/ca.pem"
# The test data's leaf without its intermediate: the chain is incomplete.
run 0 ctl import nochain --cert "$D/leaf.pem" --key "$D/leaf.key"
# With the intermediate but no root known: still incomplete (no anchor).
run 0 ctl import halfchain --cert "$D/leaf.pem" --key "$D/leaf.key" --chain "$D/intermediate.pem"

# The PEM checks run in the pool; wait until every version is checked.
unchecked_is_zero() {
    ctl --json status >"$T/st.json" 2>/dev/null &&
        python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))['certs_unchecked'] == 0 else 1)" "$T/st.json"
}
wait_for 30 unchecked_is_zero
check "every version was checked" unchecked_is_zero
run 1 ctl status --check
has "CERTAGENT WARNING"
run 0 ctl --json status
codes() { echo "{c['name']: sorted(w['code'] for w in c['warnings']) for c in j['certificates']}['$1']"; }
json "$(codes soon) == ['expiring']"
json "[w for w in [c for c in j['certificates'] if c['name'] == 'soon'][0]['warnings']][0]['level'] == 'warning'"
# Whole days left, rounded down from the report's own time (2 when it is made in the same
# second as the 2-day certificate, else 1).
json "[(w['days_left'] == (w['not_after'] - j['generated']) // 86400 and w['days_left'] in (1, 2)) for w in [c for c in j['certificates'] if c['name'] == 'soon'][0]['warnings']][0]"
json "$(codes good) == []"
json "$(codes weak) == ['weak_key', 'weak_signature']"
json "[w for w in [c for c in j['certificates'] if c['name'] == 'weak'][0]['warnings'] if w['code'] == 'weak_key'][0]['bits'] == 1024"
json "[w for w in [c for c in j['certificates'] if c['name'] == 'weak'][0]['warnings'] if w['code'] == 'weak_signature'][0]['algorithm'] == 'sha1WithRSAEncryption'"
json "$(codes nochain) == ['chain_incomplete']"
json "$(codes halfchain) == ['chain_incomplete']"
json "'certagent Test Intermediate' in [w for w in [c for c in j['certificates'] if c['name'] == 'nochain'][0]['warnings']][0]['missing']"
json "all(set(w) >= {'code', 'level', 'message'} for c in j['certificates'] for w in c['warnings'])"
json "[c['health'] for c in j['certificates'] if c['name'] == 'good'] == ['ok']"

# The dashboard: header, a row per certificate, the sentences below.
run 0 ctl status
has "health WARNING"
has "NEXT RENEWAL"
has "weak_key,weak_signature"
has "WARNING  weak has a weak RSA key of 1024 bits"
has "WARNING  soon expires in"
has "store:        $STATE"

# Trusting the root completes halfchain's chain (the trust store changed).
run 0 ctl trust add "$D/root.pem"
wait_for 30 unchecked_is_zero
run 0 ctl --json status
json "$(codes halfchain) == []"
json "$(codes nochain) == ['chain_incomplete']"

# CRITICAL: 5 days left of 100, and an expired import.
run 0 ctl import verysoon --cert "$W/verysoon.pem" --key "$W/verysoon.key" --chain "$W/ca.pem"
run 2 ctl status --check
has "CERTAGENT CRITICAL"
has "verysoon expires in 4 days"
run 0 ctl import old --cert "$D/expired.pem" --key "$D/expired.key"
run 2 ctl status --check
has "old expired"
run 0 ctl --json status
json "j['health'] == 'critical' and j['certs_critical'] == 2 and j['expired'] == 1"
json "[w['level'] for c in j['certificates'] if c['name'] == 'old' for w in c['warnings'] if w['code'] == 'expiring'] == ['critical']"

# Metrics: every line is a comment or a sample of the exposition grammar.
run 0 ctl metrics
printf '%s\n' "$JOUT" >"$T/metrics.txt"
check "metrics parse" python3 - "$T/metrics.txt" "$T/st.json" <<'EOF'
import re, sys, json
text = open(sys.argv[1]).read()
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\\n])*"(,[a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\\n])*")*)?\})? (-?[0-9.e+]+|NaN|[+-]Inf)$')
typed = {}
values = {}
for line in text.splitlines():
    if not line:
        continue
    if line.startswith('# TYPE '):
        _, _, name, kind = line.split(' ', 3)
        assert kind in ('gauge', 'counter'), line
        assert name not in typed, 'family twice: ' + name
        typed[name] = kind
        continue
    if line.startswith('# HELP '):
        continue
    m = sample.match(line)
    assert m, 'bad sample line: ' + line
    assert m.group(1) in typed, 'sample before its TYPE: ' + line
    values[(m.group(1), m.group(2) or '')] = float(m.group(7))
for need in ('certagent_up', 'certagent_info', 'certagent_health',
             'certagent_certificate_not_after_seconds', 'certagent_certificate_warnings'):
    assert need in typed, need
assert values[('certagent_up', '')] == 1
assert values[('certagent_health', '')] == 2
status = json.load(open(sys.argv[2]))
good = [c for c in status['certificates'] if c['name'] == 'good'][0]
key = ('certagent_certificate_not_after_seconds', '{name="good",source="import",ca=""}')
assert values[key] == good['not_after'], (values.get(key), good['not_after'])
assert values[('certagent_certificate_warnings', '{name="weak",code="weak_key",level="warning"}')] == 1
EOF

# The listener serves the same text; other paths 404, other methods 405.
check "curl GET /metrics" curl -sf -o "$T/http.txt" "http://127.0.0.1:$PORT/metrics"
run 0 ctl metrics
printf '%s\n' "$JOUT" >"$T/metrics2.txt"
check "GET /metrics equals certctl metrics" cmp "$T/http.txt" "$T/metrics2.txt"
check "404 for another path" [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/other")" = 404 ]
check "405 for POST" [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$PORT/metrics")" = 405 ]
check "Content-Type of the exposition format" sh -c "curl -sI 'http://127.0.0.1:$PORT/metrics' | grep -qi '^content-type: text/plain; version=0.0.4'"

# Logs: the import lines, --name, --level, --lines.
run 0 ctl logs
has "imported 'soon' version 1"
run 0 ctl logs --name weak
has "imported 'weak' version 1"
lacks "imported 'soon'"
run 0 ctl logs --level warn
lacks "[debug]"
lacks " info "
run 0 ctl logs --lines 2
check "--lines 2 prints 2 lines" [ "$(printf '%s\n' "$JOUT" | wc -l)" -eq 2 ]
run 0 ctl --json logs --name weak --lines 1
json "len(j['lines']) == 1 and j['lines'][0]['level'] in ('info', 'warn') and 'weak' in j['lines'][0]['text'] and j['lines'][0]['seq'] > 0"
run 2 ctl logs --level loud
has "unknown level 'loud'"

# --follow: a line logged after it started reaches it.  The last old line
# arrives in the same step that registers the follower: once it is there, a new
# line must follow.
ctl logs --follow --lines 1 >"$T/follow.out" 2>"$T/follow.err" &
FOLLOW=$!
wait_for 20 test -s "$T/follow.out"
check "--follow printed the last old line" test -s "$T/follow.out"
run 0 ctl selfsigned later --dns later.example.test
wait_for 20 grep -q "created self-signed 'later'" "$T/follow.out"
check "--follow received a new line" grep -q "created self-signed 'later'" "$T/follow.out"
kill "$FOLLOW" 2>/dev/null
wait "$FOLLOW" 2>/dev/null
run 0 ctl ping

# A follower that does not read is dropped (1 MiB waiting for it), the agent stays up.
check "a follower that does not read is disconnected" python3 "$(dirname "$0")/slow-follower.py" "$SOCK" 40000
check "the agent says why" grep -q "it follows the log but does not read it" "$LOG"
run 0 ctl ping

# The status file follows the store.
wait_for 10 python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if 'later' in [c['name'] for c in j['certificates']] and j['health'] == 'critical' else 1)" "$STATE/status.json"
check "status.json has the new certificate" [ $? -eq 0 ]

# A reload takes new thresholds: with warn_days and critical_days 1, 'soon' (2
# days left) and 'verysoon' (5 days left) are fine: min() caps both at 1 day.
echo '{"metrics_listen": "127.0.0.1:0", "warn_days": 1, "critical_days": 1}' >"$CONFIG"
kill -HUP "$AGENT_PID"
wait_log "configuration reloaded"
run 0 ctl --json status
json "$(codes soon) == []"
json "[w['level'] for c in j['certificates'] if c['name'] == 'verysoon' for w in c['warnings']] == []"

stop_agent
finish
