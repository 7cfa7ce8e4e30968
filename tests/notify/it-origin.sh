#!/bin/bash
# The origin story as one test: an ACME certificate from a real Pebble, behind the fault
# proxy, whose CA starts failing finalize; the renewal attempts fail, and the warning e-mail
# (to a real SMTP server on loopback, STARTTLS and AUTH) arrives with the CA's own words long
# before the certificate expires, once however many attempts fail; the CA recovers, the
# renewal succeeds, and the recovery e-mail arrives.  The dashboard (plain HTTP on loopback)
# shows the certificate's row in the warning colour with the CA's words while renewal fails,
# and all green once it recovered.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/../acme/pebble.sh"
. "$(dirname "$0")/lib-notify.sh"

make_tls
printf 'origin-pass\n' >"$T/smtp-pass"
chmod 600 "$T/smtp-pass"
serve smtp smtpd.py "$T/mail" --cert "$T/tls/srv.pem" --key "$T/tls/srv.key" \
    --user certagent --password origin-pass
SMTP_PORT=$PORT
PEBBLE_WFE_NONCEREJECT=0 pebble_start --validity 90 || finish
acmeproxy_start '{}' || finish
pebble_agent_config "{\"renew_retry_min\": 1, \"renew_retry_max\": 4,
  \"notify\": {\"email\": {\"smtp_url\": \"smtp://127.0.0.1:$SMTP_PORT\",
    \"from\": \"certagent@example.test\", \"to\": [\"archive-admin@example.test\"],
    \"username\": \"certagent\", \"password_file\": \"$T/smtp-pass\",
    \"trust\": \"$T/tls/srv.pem\"}, \"coalesce_seconds\": 1, \"retry_seconds\": 1},
  \"dashboard_listen\": \"127.0.0.1:0\", \"dashboard_plain_http\": true}"
start_agent
DASH_PORT=$(sed -n 's/.*dashboard: serving http:.*(port \([0-9]*\)).*/\1/p' "$LOG" | head -1)
check "the dashboard reports its port" [ -n "$DASH_PORT" ]
# page FILE: the dashboard's page, as a browser gets it.
page() { curl -sf -o "$1" "http://127.0.0.1:$DASH_PORT/"; }

run 0 ctl trust add "$PEBBLE_ROOT"
run 0 ctl ca add pebble --directory "$ACMEPROXY_DIRECTORY" --trust "$PEBBLE_TRUST"
run 0 ctl request archive --dns archive.example.test --ca pebble --agree-tos
has "issued 'archive' version 1"
NOT_AFTER=$(date -d "$(openssl x509 -in "$STATE/live/archive/cert.pem" -noout -enddate |
    cut -d= -f2)" +%s)

# The CA starts failing finalize, in its own words.
acmeproxy_rules '[{"kind": "finalize", "action": "status", "status": 403,
  "type": "urn:ietf:params:acme:error:unauthorized",
  "detail": "Fail to finalize order: the archive CA is unwell", "times": -1}]'
check "the warning e-mail arrived" wait_for 80 mail_with "$T/mail" "renewal failed"
WARN=$(mail_with "$T/mail" "renewal failed")
check "it arrived before the certificate expired" test "$(date +%s)" -lt "$NOT_AFTER"
check "it carries the CA's own words" mail_with "$T/mail" "the archive CA is unwell"
run 0 "$PY" - "$WARN" <<'PY'
import email, email.policy, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
plain = m.get_body(("plain",)).get_content()
assert "archive" in m["Subject"] and "renewal failed" in m["Subject"], m["Subject"]
assert "attempt" in plain and "next attempt" in plain, plain
assert "the archive CA is unwell" in m.get_body(("html",)).get_content()
print("warning ok")
PY
has "warning ok"
run 0 page "$T/page-failing.html"
check "the dashboard shows the failing renewal in colour" \
    grep -Eq '<tr class="(warning|critical)"><td class="lv (warning|critical)">[A-Z]*</td><td><b>archive</b>' \
    "$T/page-failing.html"
check "the dashboard carries the CA's words" grep -q 'the archive CA is unwell' "$T/page-failing.html"
lacks_ok_header() { ! grep -q '<header class="ok">' "$1"; }
check "the dashboard's health is not OK" lacks_ok_header "$T/page-failing.html"
# More attempts fail (back-off 1, 2, 4 s): still one warning.
check "several attempts failed" wait_log "renewal of 'archive' failed (3 in a row)" 60

# The CA recovers: the renewal succeeds and the recovery e-mail arrives.
acmeproxy_rules '[]'
check "the renewal succeeded" wait_log "issued by ACME 'archive' version 2" 60
check "the recovery e-mail arrived" wait_for 30 mail_with "$T/mail" "renewal recovered"
check "the recovery names the failed attempts" mail_with "$T/mail" "renewed successfully after"
# page_ok: the dashboard is green again (the status report is rebuilt after the renewal).
page_ok() { page "$T/page-ok.html" && grep -q '<header class="ok">' "$T/page-ok.html"; }
check "the dashboard is green again" wait_for 30 page_ok
check "the dashboard's row is ok" grep -q '<tr class="ok"><td class="lv ok">[A-Z]*</td><td><b>archive</b>' \
    "$T/page-ok.html"
check "the failure was announced once" test "$(mails_with "$T/mail" "renewal failed")" = 1
stop_agent
finish
