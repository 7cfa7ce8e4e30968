#!/bin/bash
# STARTTLS dialogues (IMAP CAPABILITY/STARTTLS, POP3 CAPA/STLS, SMTP
# EHLO/STARTTLS) against a small Python front on loopback, and the clear
# errors when a server does not offer STARTTLS.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-probe.sh"

P=$T/pki
make_pki "$P" "http://127.0.0.1:9/int.der" || { fail "test PKI"; exit 1; }
S=$PROBE_DIR/starttls-server.py
for proto in imap pop3 smtp; do
    py_server "$proto" "$S" "$proto" "$P/leaf.pem" "$P/leaf.key" "$P/int.pem" || exit 1
    eval "${proto}_port=$PORT"
    py_server "$proto-no" "$S" "$proto" "$P/leaf.pem" "$P/leaf.key" --no-starttls || exit 1
    eval "${proto}_no=$PORT"
done

echo '{"trust_system_roots": false}' >"$CONFIG"
start_agent
run 0 ctl trust add "$P/root.pem"

# shellcheck disable=SC2154
for u in "imap+starttls://localhost:$imap_port" "pop3+starttls://localhost:$pop3_port" \
         "smtp+starttls://localhost:$smtp_port"; do
    run 0 ctl --json probe "$u"
    json "(r := j['results'][0]) and r['ok'] and r['starttls'] and r['version'] in ('TLSv1.2', 'TLSv1.3') and r['trusted'] and r['host_match'] and r['chain_sent'] == 2 and r['legacy_checked'] and r['legacy_accepted'] == []"
done
run 0 ctl probe "imap+starttls://localhost:$imap_port" "pop3+starttls://localhost:$pop3_port" \
    "smtp+starttls://localhost:$smtp_port"
has "3 probed, 3 ok, 0 with problems"

# shellcheck disable=SC2154
{
run 4 ctl probe "imap+starttls://localhost:$imap_no"
has "the IMAP server does not offer STARTTLS (CAPABILITY: IMAP4rev1 LOGINDISABLED); use imaps:// (port 993) if it speaks implicit TLS"
run 4 ctl probe "pop3+starttls://localhost:$pop3_no"
has "the POP3 server does not offer STLS (CAPA: USER UIDL); use pop3s:// (port 995)"
run 4 ctl probe "smtp+starttls://localhost:$smtp_no"
has "the SMTP server does not offer STARTTLS (EHLO: PIPELINING SIZE 10240000 8BITMIME); use smtps:// (port 465)"
# The wrong dialogue for the server says what it got.
run 4 ctl probe "smtp+starttls://localhost:$imap_port"
has "the SMTP server sent '* OK [CAPABILITY IMAP4rev1] test server ready', not a reply code"
run 4 ctl probe "pop3+starttls://localhost:$smtp_port"
has "the POP3 server greeted with '220-test.example ESMTP' instead of '+OK'"
# STARTTLS offered but implicit TLS asked for.
run 4 ctl probe "imaps://localhost:$imap_port"
has "TLS handshake failed"
}
run 0 ctl ping
stop_agent

finish
