#!/bin/bash
# Alerts by e-mail and webhooks against real servers on loopback: an aiosmtpd SMTP server
# with STARTTLS and AUTH, webhook receivers in Python (plain, TLS, one answering 500 at
# first, one that never answers).  Bad notify configs are refused naming the key; test
# messages print the server's reply; a critical certificate and its recovery arrive by
# e-mail (both MIME parts) and webhook (the documented JSON body, the headers file);
# spool files are 0600 and secrets reach no log; ack; a server without STARTTLS and a
# wrong password are refused with clear words (notify_failing); the mail server down and
# the agent killed with messages spooled: every message arrives once after the restart.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-notify.sh"

make_tls
PASSWORD='pa55-w0rd-never-logged'
TOKEN='tok-3f9a-never-logged'
printf '%s\n' "$PASSWORD" >"$T/smtp-pass"
chmod 600 "$T/smtp-pass"
printf '# the receiver wants a token\nAuthorization: Bearer %s\n' "$TOKEN" >"$T/hook-headers"
chmod 600 "$T/hook-headers"

serve smtp smtpd.py "$T/mail" --cert "$T/tls/srv.pem" --key "$T/tls/srv.key" \
    --user certagent --password "$PASSWORD"
SMTP_PORT=$PORT
serve plainsmtp smtpd.py "$T/mail-plain"
PLAIN_PORT=$PORT
serve garbage smtpd.py "$T/mail-garbage" --garbage
GARBAGE_PORT=$PORT
serve hook hookd.py "$T/hook"
HOOK_PORT=$PORT
serve hooktls hookd.py "$T/hooktls" --cert "$T/tls/srv.pem" --key "$T/tls/srv.key"
HOOKTLS_PORT=$PORT
serve hookflaky hookd.py "$T/hookflaky" --fail-first 2
FLAKY_PORT=$PORT
serve hookhang hookd.py "$T/hookhang" --hang
HANG_PORT=$PORT

# config SMTP-PORT PASSWORD-FILE [EXTRA]: writes the config.
config() {
    cat >"$CONFIG" <<JSON
{"notify": {
  "email": {"smtp_url": "smtp://127.0.0.1:$1", "from": "certagent@example.test",
            "to": ["ops@example.test", "oncall@example.test"], "username": "certagent",
            "password_file": "$2", "trust": "$T/tls/srv.pem"},
  "webhooks": [
    {"url": "http://127.0.0.1:$HOOK_PORT/certs", "headers_file": "$T/hook-headers"},
    {"url": "https://127.0.0.1:$HOOKTLS_PORT/slack", "format": "slack",
     "trust": "$T/tls/srv.pem"},
    {"url": "http://127.0.0.1:$FLAKY_PORT/flaky"},
    {"url": "http://127.0.0.1:$HANG_PORT/hang", "format": "teams"}],
  "coalesce_seconds": ${COALESCE:-1}, "retry_seconds": 1, "timeout": 4, "failing_minutes": 0
  ${3:-}
}}
JSON
}

# Bad input: refused at load, naming the key.
bad_config() {
    printf '%s' "$1" >"$T/bad.json"
    run 1 timeout 20 "$AGENT" --foreground --config "$T/bad.json" --socket "$T/bad.sock" \
        --state-dir "$T/bad-state"
    has "$2"
}
bad_config '{"notify": {"email": {"smtp_url": "smtp://h", "from": "a@b.test", "to": ["ops"]}}}' \
    "notify.email.to[0]: 'ops' is not an e-mail address"
bad_config '{"notify": {"webhooks": [{"url": "ftp://h/x"}]}}' \
    "notify.webhooks[0].url: 'ftp://h/x' is not an http:// or https:// URL"
bad_config '{"notify": {"email": {"smtp_url": "smtp://h", "from": "a@b.test", "to": ["o@b.test"], "tls": "maybe"}}}' \
    "notify.email.tls: 'maybe' is not starttls, implicit or none"
bad_config '{"notify": {"report": "hourly"}}' "notify.report: 'hourly' is not"
bad_config '{"notify": {"emial": {}}}' "notify.emial: unknown key"

config "$SMTP_PORT" "$T/smtp-pass"
start_agent

# A test message: the server's reply is printed; the message arrived over TLS with AUTH.
run 0 ctl notify test --channel email
has "email: delivered; the server said: 250 2.0.0 Ok: queued"
check "the test e-mail arrived" mail_count "$T/mail" 1
check "the test e-mail went over STARTTLS with AUTH" \
    grep -q '"tls": true, "auth": true' "$T/mail/001.env"
run 1 ctl notify test --channel webhook --json
json "len(j['results']) == 4 and j['failed'] == 2"
json "[r['ok'] for r in j['results']] == [True, True, False, False] or sorted(r['channel'] for r in j['results'] if not r['ok']) == sorted(['http://127.0.0.1:$FLAKY_PORT/flaky', 'http://127.0.0.1:$HANG_PORT/hang'])"
json "any('timed out' in (r['error'] or '').lower() or 'timeout' in (r['error'] or '').lower() for r in j['results'])"

# A critical certificate: one e-mail with both parts, one POST per webhook.
run 0 ctl trust add "$DATA/root.pem"
run 0 ctl import web --cert "$DATA/expired.pem" --key "$DATA/expired.key"
check "the critical e-mail arrived" wait_for 30 mail_with "$T/mail" "[certagent]"
wait_for 30 mail_with "$T/mail" "web" >/dev/null
MSG=$(mail_with "$T/mail" "expired")
check "the alert names the certificate and says it expired" test -n "$MSG"
run 0 "$PY" - "$MSG" <<'PY'
import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
assert "CRITICAL" in m["Subject"] and "web" in m["Subject"], m["Subject"]
assert m["To"].addresses[1].addr_spec == "oncall@example.test"
assert m.get_content_type() == "multipart/alternative"
plain = m.get_body(("plain",)).get_content()
html = m.get_body(("html",)).get_content()
assert "web" in plain and "expired" in plain, plain
assert "<table" in html and "web" in html, html
print("parts ok")
PY
has "parts ok"
check "the JSON webhook got the event" wait_for 30 hook_with "$T/hook" '"certificate":"web"'
F=$(hook_with "$T/hook" '"certificate":"web"')
OUT=$(cat "$F")
JOUT=$OUT
json "j['event'] == 'warning' and j['level'] == 'critical' and j['code'] == 'expiring' and j['host'] and j['time'].endswith('Z') and 'days_left' in j['data']"
check "the headers file's token was sent" grep -q "Authorization: Bearer $TOKEN" "${F%.json}.headers"
check "the Slack webhook (TLS) got a text" wait_for 30 hook_with "$T/hooktls" '"text":"[certagent]'
check "the receiver that answered 500 got it on a retry" wait_for 30 hook_with "$T/hookflaky" '"certificate":"web"'
check "the hanging receiver's message stays spooled" wait_log "delivery to http://127.0.0.1:$HANG_PORT/hang failed"
SPOOLED=$(find "$STATE/notify" -name 'msg-*.json' | head -n 1)
check "a spooled message exists" test -n "$SPOOLED"
check "spool files are 0600" test "$(mode_of "$SPOOLED")" = 600
check "the state file is 0600" test "$(mode_of "$STATE/notify/state.json")" = 600
check "the password is in no log line" bash -c "! grep -qF '$PASSWORD' '$LOG'"
check "the token is in no log line" bash -c "! grep -qF '$TOKEN' '$LOG'"
check "no secret in the spool" bash -c "! grep -rqF -e '$PASSWORD' -e '$TOKEN' '$STATE/notify'"

# ack: the reminders stop; notify status shows it.
run 1 ctl ack nosuch
has "nosuch has no open problem"
run 0 ctl ack web expiring
run 0 ctl status
has "acknowledged: web (expiring)"
run 0 ctl status --json
json "[c['acknowledged'] for c in j['certificates'] if c['name'] == 'web'] == ['expiring']"
run 0 ctl notify status --json
json "j['acknowledged'][0]['name'] == 'web' and 'expiring' in j['acknowledged'][0]['codes']"
json "any(c['channel'] == 'email' and c['last_ok'] > 0 for c in j['channels'])"

# Recovery: a valid version clears the warning; the recovery arrives once.
run 0 ctl import web --cert "$DATA/fullchain.pem" --key "$DATA/leaf.key"
check "the recovery e-mail arrived" wait_for 30 mail_with "$T/mail" "recovered"
check "the recovery webhook event arrived" wait_for 30 hook_with "$T/hook" '"event":"recovered"'
run 0 ctl notify status --json
json "j['acknowledged'] == []"

# Reminders: an open critical problem is sent again after repeat_hours (the last time is
# moved back in state.json while the agent is stopped) until it is acknowledged.
run 0 ctl import old --cert "$DATA/expired.pem" --key "$DATA/expired.key"
check "the critical alert for old arrived" wait_for 30 mail_with "$T/mail" "old: warning"
stop_agent
backdate() {
    "$PY" - "$STATE/notify/state.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
j["certificates"]["old"]["last_sent"] = 0
json.dump(j, open(sys.argv[1], "w"))
PY
}
backdate
start_agent
check "the reminder arrived" wait_for 30 mail_with "$T/mail" "old: still critical"
run 0 ctl ack old
stop_agent
backdate
start_agent
run 0 ctl selfsigned marker --dns marker.test
check "a later alert arrived" wait_for 30 mail_with "$T/mail" "marker"
check "no reminder after the ack" test "$(mails_body_with "$T/mail" "old: still critical")" = 1
run 0 ctl remove old

# A burst within coalesce_seconds is one e-mail that lists every certificate.
COALESCE=5 config "$SMTP_PORT" "$T/smtp-pass"
kill -HUP "$AGENT_PID"
wait_for 20 bash -c "[ \$(grep -c 'configuration reloaded' '$LOG') -ge 1 ]"
run 0 ctl selfsigned burst1 --dns burst1.test
run 0 ctl selfsigned burst2 --dns burst2.test
run 0 ctl selfsigned burst3 --dns burst3.test
check "the burst's e-mail arrived" wait_for 30 mail_with "$T/mail" "burst3"
BURST=$(mail_with "$T/mail" "burst3")
B1=$(mail_with "$T/mail" burst1)
B2=$(mail_with "$T/mail" burst2)
check "one e-mail lists the whole burst ($B1 $B2 $BURST)" test "$B1" = "$BURST" -a "$B2" = "$BURST"
check "its subject counts the alerts" grep -q "^Subject: .*3 alerts" "$BURST"
config "$SMTP_PORT" "$T/smtp-pass"
kill -HUP "$AGENT_PID"
wait_for 20 bash -c "[ \$(grep -c 'configuration reloaded' '$LOG') -ge 2 ]"

# The status report by e-mail now (report --send): text and HTML parts.
run 0 ctl report --send --json
json "j['spooled'] and j['subject'].startswith('[certagent] ')"
SUBJECT=$(printf '%s' "$JOUT" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["subject"])')
check "the status report arrived" wait_for 30 mail_with "$T/mail" "$SUBJECT"
REPORT=$(mail_with "$T/mail" "$SUBJECT")
run 0 "$PY" - "$REPORT" <<'PY'
import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
plain = m.get_body(("plain",)).get_content()
html = m.get_body(("html",)).get_content()
assert "web" in plain and "web" in html and "<html" in html.lower(), (plain, html)
print("report parts ok")
PY
has "report parts ok"

# The mail server down, the agent killed with messages spooled: after the restart every
# message arrives once.
BEFORE=$(mails "$T/mail")
unserve smtp
run 0 ctl selfsigned down1 --dns down1.test
run 0 ctl selfsigned down2 --dns down2.test
check "delivery failed while the server was down" wait_log "delivery to the SMTP server failed"
kill_agent
# A message to the receiver that never answers, spooled 8 days ago: dropped with a log line.
OLD_MSG=$(grep -l "/hang" "$STATE"/notify/msg-*.json | head -n 1)
check "a message to the hanging receiver is spooled" test -n "$OLD_MSG"
"$PY" - "$OLD_MSG" <<'PY'
import json, sys, time
j = json.load(open(sys.argv[1]))
j["created"] = int(time.time()) - 8 * 86400
json.dump(j, open(sys.argv[1], "w"))
PY
serve smtp smtpd.py "$T/mail" --cert "$T/tls/srv.pem" --key "$T/tls/srv.key" \
    --user certagent --password "$PASSWORD" --port "$SMTP_PORT"
start_agent
check "a message older than 7 days is dropped with a log line" \
    wait_log "after 7 days of failed delivery"
check "its file is gone" test ! -e "$OLD_MSG"
check "the spooled alerts arrived after the restart" wait_for 40 mail_with "$T/mail" "down2"
run 0 ctl selfsigned after --dns after.test
check "a new alert after the restart arrived" wait_for 30 mail_with "$T/mail" "after"
N1=$("$PY" -c "import sys,glob,email,email.policy
n=0
for f in glob.glob('$T/mail/*.eml'):
    m=email.message_from_binary_file(open(f,'rb'),policy=email.policy.default)
    b=m.get_body(('plain',)).get_content()
    n+=b.count('down1: ')>0
print(n)")
check "down1's alert arrived exactly once (got $N1)" test "$N1" = 1
check "web's recovery was not sent again after the restarts" test "$(mails_with "$T/mail" recovered)" = 1
check "more mail arrived than before the outage" test "$(mails "$T/mail")" -gt "$BEFORE"

# A server without STARTTLS is refused; a wrong password is a clear error and notify_failing.
config "$PLAIN_PORT" "$T/smtp-pass"
kill -HUP "$AGENT_PID"
wait_for 20 bash -c "[ \$(grep -c 'configuration reloaded' '$LOG') -ge 3 ]"
run 1 ctl notify test --channel email
has "SSL"
lacks "$PASSWORD"
# A server that answers garbage: a clear failure, the agent keeps serving.
config "$GARBAGE_PORT" "$T/smtp-pass"
kill -HUP "$AGENT_PID"
wait_for 20 bash -c "[ \$(grep -c 'configuration reloaded' '$LOG') -ge 4 ]"
run 1 ctl notify test --channel email
has "email: FAILED"
has "this is not an SMTP server"
run 0 ctl ping
printf 'wrong\n' >"$T/wrong-pass"
chmod 600 "$T/wrong-pass"
config "$SMTP_PORT" "$T/wrong-pass"
kill -HUP "$AGENT_PID"
wait_for 20 bash -c "[ \$(grep -c 'configuration reloaded' '$LOG') -ge 5 ]"
run 1 ctl notify test --channel email
has "email: FAILED"
has "535"
run 0 ctl selfsigned denied --dns denied.test
email_failing_535() {
    ctl notify status --json | "$PY" -c "import json,sys; j=json.load(sys.stdin); sys.exit(0 if any(c['channel'] == 'email' and c['failing'] and '535' in (c['last_error'] or '') for c in j['channels']) else 1)"
}
check "the spooled alert failed with the server's 535 and the channel is failing" \
    wait_for 30 email_failing_535
run 0 ctl notify status
has "FAILING"
run 0 ctl status --json
json "any(w['code'] == 'notify_failing' and w['channel'] == 'email' and '535' in w['message'] for w in j['agent_warnings']) and j['health'] != 'ok'"
run 1 ctl status --check
has "alerts to the SMTP server have not been delivered"
# A password file others can read is refused with words naming the key.
chmod 644 "$T/wrong-pass"
run 1 ctl notify test --channel email
has "password_file"
has "chmod 600"
check "the wrong password is in no log line" bash -c "! grep -qF 'wrong' '$T/agent.log' || ! grep -q 'wrong\$' '$LOG'"
stop_agent
finish
