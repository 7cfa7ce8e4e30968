#!/bin/bash
# Probes declared in the config run at start and every probe_interval; their
# results and warnings join certctl status (table and JSON); a reload takes a
# new list.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-probe.sh"

P=$T/pki
make_pki "$P" "http://127.0.0.1:9/int.der" || { fail "test PKI"; exit 1; }
L="-cert $P/leaf.pem -key $P/leaf.key -cert_chain $P/int.pem"
# shellcheck disable=SC2086
{
s_server old $L -cipher DEFAULT@SECLEVEL=0 -min_protocol TLSv1 -max_protocol TLSv1.1 && OLDP=$PORT
s_server good $L && GOOD=$PORT
s_server incomplete -cert "$P/leaf.pem" -key "$P/leaf.key" && INCOMPLETE=$PORT
}
mkdir -p "$STATE/trust/roots"
# A root placed in the trust directory before start is loaded with it.
ROOT_ID=$(openssl x509 -in "$P/root.pem" -noout -fingerprint -sha256 | sed 's/.*=//' | tr -d :)
cp "$P/root.pem" "$STATE/trust/roots/$ROOT_ID.pem"
cat >"$CONFIG" <<EOS
{"trust_system_roots": false, "probe_interval": 3600, "probe_timeout": 5,
 "probes": ["imaps://127.0.0.1:$OLDP", "https://localhost:$GOOD", "gopher://x"]}
EOS
start_agent
# The first run starts with the agent; the debug log says when each finished.
wait_line "$LOG" "probe: imaps://127.0.0.1:$OLDP offers TLS 1.0"
wait_line "$LOG" "probe https://localhost:$GOOD: TLSv1.3"
run 0 ctl status
has "probes:"
has "warning: imaps://127.0.0.1:$OLDP offers TLS 1.0"
has "warning: imaps://127.0.0.1:$OLDP offers TLS 1.1"
has "unknown scheme 'gopher'"
has "https://localhost:$GOOD"
run 0 ctl --json status
json "len(j['probes']) == 3 and {p['url'] for p in j['probes']} == {'imaps://127.0.0.1:$OLDP', 'https://localhost:$GOOD', 'gopher://x'}"
json "(p := [p for p in j['probes'] if p['url'] == 'imaps://127.0.0.1:$OLDP'][0]) and not p['ok'] and p['legacy_accepted'] == ['TLSv1.1', 'TLSv1.0'] and 'imaps://127.0.0.1:$OLDP offers TLS 1.0' in p['warnings'] and p['checked'] > 0"
json "(p := [p for p in j['probes'] if p['url'] == 'https://localhost:$GOOD'][0]) and p['ok'] and p['trusted'] and p['days_left'] > 800 and p['warnings'] == []"
json "(p := [p for p in j['probes'] if p['url'] == 'gopher://x'][0]) and not p['ok'] and 'unknown scheme' in p['error']"

# A reload with another list: the next status shows the new probe's warning.
cat >"$CONFIG" <<EOS
{"trust_system_roots": false, "probe_interval": 3600,
 "probes": ["tls://localhost:$INCOMPLETE"]}
EOS
kill -HUP "$AGENT_PID"
wait_line "$LOG" "probe: tls://localhost:$INCOMPLETE: chain incomplete: missing Certagent Test Intermediate"
for _ in $(seq 100); do
    ctl --json status >"$T/status.json" 2>/dev/null
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if len(j['probes']) == 1 else 1)" "$T/status.json" && break
    sleep 0.05
done
run 0 ctl status
has "warning: tls://localhost:$INCOMPLETE: chain incomplete: missing Certagent Test Intermediate"
lacks "gopher"
run 0 ctl --json status
json "len(j['probes']) == 1 and j['probes'][0]['missing'] == 'Certagent Test Intermediate'"

# No probes any more: nothing stale stays in status.
echo '{"trust_system_roots": false}' >"$CONFIG"
kill -HUP "$AGENT_PID"
for _ in $(seq 100); do
    ctl --json status >"$T/status.json" 2>/dev/null
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); sys.exit(0 if j['probes'] == [] else 1)" "$T/status.json" && break
    sleep 0.05
done
run 0 ctl --json status
json "j['probes'] == []"
run 0 ctl status
lacks "probes:"

# Bad probe settings are refused by the config walker with the JSON path.
stop_agent
echo '{"probes": "imaps://x"}' >"$CONFIG"
run 1 "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE"
has "\$.probes: expected an array of strings, got a string"
echo '{"probes": ["imaps://x", ""]}' >"$CONFIG"
run 1 "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE"
has "\$.probes[1]: expected a non-empty string, got an empty string"
echo '{"probe_min_tls": "1.4"}' >"$CONFIG"
run 1 "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE"
has "\$.probe_min_tls: '1.4' is not one of the allowed values"
echo '{"trust_aia_fetch": "yes"}' >"$CONFIG"
run 1 "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE"
has "\$.trust_aia_fetch: expected true or false, got a string"

finish
