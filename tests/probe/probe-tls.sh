#!/bin/bash
# certctl probe against real openssl s_server instances on loopback: TLS 1.0/1.1
# only, TLS 1.3 only, TLS 1.2 under a 1.3 policy, an incomplete chain (also when
# the trust store completes it: the chain as sent is judged apart), an
# expired intermediate, a wrong host name (and SNI choosing the right one),
# OCSP stapling, a server that never answers, a refused port, and bad URLs.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-probe.sh"

P=$T/pki
make_pki "$P" "http://127.0.0.1:9/int.der" || { fail "test PKI"; exit 1; }
L="-cert $P/leaf.pem -key $P/leaf.key -cert_chain $P/int.pem"
OLD="-cipher DEFAULT@SECLEVEL=0"

# shellcheck disable=SC2086
{
s_server modern $L -status_file "$P/ocsp.der" && MODERN=$PORT
s_server old $L $OLD -min_protocol TLSv1 -max_protocol TLSv1.1 && OLDP=$PORT
s_server tls13 $L -tls1_3 && TLS13=$PORT
s_server tls12 $L -no_tls1_3 && TLS12=$PORT
s_server tls10 $L $OLD -tls1 && TLS10=$PORT
s_server incomplete -cert "$P/leaf.pem" -key "$P/leaf.key" && INCOMPLETE=$PORT
s_server expired -cert "$P/oldleaf.pem" -key "$P/oldleaf.key" -cert_chain "$P/oldint.pem" \
    && EXPIRED=$PORT
s_server sni -cert "$P/wrong.pem" -key "$P/wrong.key" -cert_chain "$P/int.pem" \
    -servername localhost -cert2 "$P/leaf.pem" -key2 "$P/leaf.key" && SNI=$PORT
}
py_server hang "$PROBE_DIR/hang-server.py" && HANG=$PORT
py_server plain "$PROBE_DIR/starttls-server.py" imap "$P/leaf.pem" "$P/leaf.key" && PLAIN=$PORT
# A port that refuses connections: bound, never listening, and held for the whole test (a port
# only found free and let go was taken by a concurrent test's server before the probe).
py_server closed -c 'import socket, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
print("READY %d" % s.getsockname()[1], flush=True)
time.sleep(3600)' && CLOSED=$PORT

echo '{"trust_system_roots": false}' >"$CONFIG"
start_agent
run 0 ctl trust add "$P/root.pem"

# A modern server: trusted, host name matches, stapled, nothing old accepted.
run 0 ctl probe "https://localhost:$MODERN"
has "TLSv1.3"
has "trusted"
has "SNI:        localhost"
has "OCSP:       stapled"
has "chain as sent (2)"
has "2 complete"
has "1 probed, 1 ok, 0 with problems (policy: TLS 1.2 or newer)"
lacks "warnings:"
run 0 ctl --json probe "https://localhost:$MODERN"
json "j['count'] == 1 and j['ok'] == 1 and j['min_tls'] == '1.2'"
json "(r := j['results'][0]) and r['ok'] and r['version'] == 'TLSv1.3' and r['trusted'] and r['host_match'] and r['ocsp_stapled'] and r['policy_ok'] and r['legacy_checked'] and r['legacy_accepted'] == [] and r['sni'] == 'localhost' and r['chain_sent'] == 2 and r['server_chain_incomplete'] == False and r['server_chain_missing'] is None and r['days_left'] > 800 and r['error'] is None"
json "(r := j['results'][0]) and [c['subject'] for c in r['sent_chain']] == ['CN=localhost', 'O=certagent tests,CN=Certagent Test Intermediate'] and r['verify']['chain'][1]['source'] == 'sent by the server' and r['verify']['chain'][2]['source'] == 'trust store (anchor)'"

# TLS 1.0/1.1 only: tried at security level 0 and flagged.
run 4 ctl probe "imaps://127.0.0.1:$OLDP"
has "imaps://127.0.0.1:$OLDP offers TLS 1.1"
has "imaps://127.0.0.1:$OLDP offers TLS 1.0"
has "offers only TLS 1.1; the policy asks for TLS 1.2 or newer"
has "VIOLATED"
run 4 ctl --json probe "imaps://127.0.0.1:$OLDP"
json "(r := j['results'][0]) and r['version'] == 'TLSv1.1' and r['legacy_accepted'] == ['TLSv1.1', 'TLSv1.0'] and not r['policy_ok'] and r['trusted'] and r['sni'] is None and r['host_match']"
run 4 ctl --json probe "tls://127.0.0.1:$TLS10"
json "(r := j['results'][0]) and r['version'] == 'TLSv1.0' and r['legacy_accepted'] == ['TLSv1.0']"
# A policy of 1.0 accepts it.
run 0 ctl --json probe --min-tls 1.0 "tls://127.0.0.1:$TLS10"
json "(r := j['results'][0]) and r['ok'] and r['policy_ok'] and r['version'] == 'TLSv1.0' and j['min_tls'] == '1.0'"

# TLS 1.3 only: fine under a 1.3 policy; a 1.2 server is not.
run 0 ctl --json probe --min-tls 1.3 "tls://localhost:$TLS13"
json "(r := j['results'][0]) and r['ok'] and r['legacy_accepted'] == [] and r['legacy_checked']"
run 4 ctl --json probe --min-tls 1.3 "tls://localhost:$TLS12"
json "(r := j['results'][0]) and r['version'] == 'TLSv1.2' and r['legacy_accepted'] == ['TLSv1.2'] and not r['policy_ok']"
run 4 ctl probe --min-tls 1.3 "tls://localhost:$TLS12"
has "offers only TLS 1.2; the policy asks for TLS 1.3 or newer"
run 0 ctl --json probe "tls://localhost:$TLS12"
json "j['results'][0]['ok'] and j['results'][0]['version'] == 'TLSv1.2'"

# Incomplete chain, expired intermediate.
run 4 ctl probe "tls://localhost:$INCOMPLETE"
has "incomplete"
has "tls://localhost:$INCOMPLETE: chain incomplete: missing Certagent Test Intermediate"
run 4 ctl --json probe "tls://localhost:$INCOMPLETE"
json "(r := j['results'][0]) and not r['trusted'] and r['missing'] == 'Certagent Test Intermediate' and r['chain_sent'] == 1 and r['server_chain_incomplete'] is None"
run 4 ctl probe "tls://localhost:$EXPIRED"
has "'Certagent Expired Intermediate' expired on 2021-01-01 00:00 UTC"

# The trust store now holds the intermediate: the chain is trusted, but the server still
# sends only its leaf, which breaks every client without the intermediate: the chain as
# sent is judged apart from the chain as completed, whatever the agent's store holds.
run 0 ctl trust add --intermediate "$P/int.pem"
run 4 ctl probe "tls://localhost:$INCOMPLETE"
has "1 INCOMPLETE"
has "tls://localhost:$INCOMPLETE: server chain incomplete: sends 1 certificate; clients without 'Certagent Test Intermediate' cannot build a chain"
has "chain as sent (1): INCOMPLETE, clients without 'Certagent Test Intermediate' cannot build a chain"
has "1 probed, 0 ok, 1 with problems"
run 4 ctl --json probe "tls://localhost:$INCOMPLETE"
json "(r := j['results'][0]) and r['trusted'] and not r['ok'] and r['chain_sent'] == 1 and r['server_chain_incomplete'] and r['server_chain_missing'] == 'Certagent Test Intermediate' and r['verify']['chain'][1]['source'] == 'trust store'"
# The same server sending leaf and intermediate is complete, with the intermediate in the store.
run 0 ctl --json probe "tls://localhost:$MODERN"
json "(r := j['results'][0]) and r['ok'] and r['server_chain_incomplete'] == False"

# Wrong host name without SNI; with SNI the server picks the right certificate
# (s_server sends no chain with -cert2: the trust store's intermediate completes it, and the
# chain as sent is incomplete).
run 4 ctl probe "tls://127.0.0.1:$SNI"
has "MISMATCH"
has "'wrong.example' is not valid for the host name 127.0.0.1"
run 4 ctl --json probe "tls://localhost:$SNI"
json "(r := j['results'][0]) and r['trusted'] and r['host_match'] and r['sni'] == 'localhost' and r['verify']['chain'][1]['source'] == 'trust store' and r['server_chain_incomplete'] and not r['ok']"

# Failures say what happened.
run 4 ctl --json probe --timeout 1 "tls://127.0.0.1:$HANG"
json "(r := j['results'][0]) and r['error'] == 'timed out after 1000 ms during the TLS handshake' and not r['ok']"
run 4 ctl probe "tls://127.0.0.1:$CLOSED"
has "cannot connect to 127.0.0.1 port $CLOSED: connection refused"
run 4 ctl probe "imaps://127.0.0.1:$PLAIN"
has "TLS handshake failed"
run 4 ctl probe "tls://no-such-host.invalid:443"
has "cannot resolve no-such-host.invalid"

# Bad URLs and options are refused before anything is probed.
run 1 ctl probe "ftp://localhost:21"
has "unknown scheme 'ftp'"
run 1 ctl probe "tls://localhost"
has "tls:// needs a port"
run 1 ctl probe "imaps://:993"
has "no host name"
run 1 ctl probe "imaps://localhost:99999"
has "the port must be a number from 1 to 65535"
run 2 ctl probe --min-tls 1.4 "imaps://localhost"
has "--min-tls is 1.0, 1.1, 1.2 or 1.3"
run 2 ctl probe
has "give at least one URL"

# Many at once, in the order given, a few connections at a time, with progress on a
# terminal (the incomplete chain is now completed by the trust store's intermediate, and
# still counts as a problem: the server does not send it).
urls=""
for _ in $(seq 10); do
    urls="$urls tls://localhost:$MODERN tls://127.0.0.1:$OLDP tls://localhost:$INCOMPLETE"
done
printf '# a comment\n\ntls://localhost:%s\n' "$TLS13" >"$T/urls.txt"
# shellcheck disable=SC2086
run 4 ctl --json probe --concurrency 4 --urls-from "$T/urls.txt" $urls
json "j['count'] == 31 and j['ok'] == 11 and j['failed'] == 20 and [r['server_chain_incomplete'] for r in j['results'][2:30:3]] == [True] * 10 and [r['index'] for r in j['results']] == list(range(31)) and j['results'][30]['url'] == 'tls://localhost:$TLS13' and j['results'][1]['legacy_accepted'] == ['TLSv1.1', 'TLSv1.0']"
run 4 script -qec "'$CTL' --socket '$SOCK' probe tls://localhost:$MODERN tls://127.0.0.1:$OLDP tls://localhost:$TLS13" /dev/null
has "certctl: tls://localhost:$MODERN: TLSv1.3, ok"
has "(3/3)"
has "problems found (see warnings)"

# The loop stays free while a probe waits, and stopping the agent cuts a long probe short
# (under the sanitizer build this shows any leak in the agent's log, which finish checks).
# Orders of events, not times: the probe waits up to 60 s on a server that never answers.
"$CTL" --socket "$SOCK" probe --timeout 60 "tls://127.0.0.1:$HANG" "tls://localhost:$MODERN" \
    >"$T/long-probe.out" 2>&1 &
bg=$!
wait_line "$LOG" "probing 2 URL\\(s\\)" >/dev/null
run 0 ctl ping
check "ping answered while the probe waits" kill -0 "$bg"
stop_agent
# (gone, or a zombie its parent has not reaped yet)
check "the agent stopped during the probe" bash -c 'case $(ps -o stat= -p "$1") in "" | Z*) ;; *) exit 1 ;; esac' _ "$AGENT_PID"
wait "$bg"
check "certctl did not report success" test $? -ne 0
check "the probe was cut short, not timed out" grep -q "closed the connection" "$T/long-probe.out"

finish
