#!/bin/bash
# The dashboard (agent/web/): bad dashboard_* keys refused at start; HTTPS with the
# self-signed certificate made at first start; the page in a real browser (Debian's
# chromium, headless, with and without scripts) over a store with ok, warning and critical
# certificates, and its screenshots kept as artifacts (ARTIFACTS/dashboard.png and
# dashboard-noscript.png);
# /status.json; 404, 405, 431; a slow client cut by the deadline; 1,000 connections while
# certctl status keeps working; the token on a non-loopback listener (0.0.0.0: the code
# requires it for any address outside 127.0.0.0/8 and ::1, whoever connects).
# usage: it-dashboard.sh CERTAGENT CERTCTL AGENT-UP DATA UPGRADE-CHECK ARTIFACTS
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-web.sh"
ART=${6:-$T/artifacts}
CLIENT="$(dirname "$0")/webclient.py"
mkdir -p "$ART" "$T/home"

refused() { # refused CONFIG-JSON WORDS
    echo "$1" >"$CONFIG"
    "$AGENT" --foreground --config "$CONFIG" --socket "$SOCK" --state-dir "$STATE" \
        >"$T/refused.log" 2>&1
    RC=$?
    check "refused: $1" [ "$RC" -ne 0 ]
    check "the refusal says: $2" grep -qF -- "$2" "$T/refused.log"
}
refused '{"dashboard_listen": "localhost:8443"}' "dashboard_listen: 'localhost:8443' is not ADDR:PORT"
refused '{"dashboard_listen": "0.0.0.0:0"}' "is not a loopback address, so the dashboard needs a token"
refused "{\"dashboard_listen\": \"127.0.0.1:0\", \"dashboard_token_file\": \"$T/nosuch\"}" \
    "dashboard_token_file: cannot read $T/nosuch"
echo short >"$T/short-token"
refused "{\"dashboard_listen\": \"127.0.0.1:0\", \"dashboard_token_file\": \"$T/short-token\"}" \
    "must be 16 to 1024 characters"
refused '{"dashboard_listen": "127.0.0.1:0", "dashboard_certificate": "nosuch"}' \
    "dashboard_certificate: the store has no certificate named 'nosuch'"
refused '{"dashboard_listen": "127.0.0.1:0", "dashboard_plain_http": "yes"}' "dashboard_plain_http"

# HTTPS on loopback with the self-signed certificate; short deadlines for the slow client.
cat >"$CONFIG" <<JSON
{"dashboard_listen": "127.0.0.1:0", "dashboard_refresh": 30,
 "responder_first_byte_timeout": 2, "responder_request_timeout": 6}
JSON
start_agent
wait_log "dashboard: serving certificate 'certagent-dashboard' version 1"
PORT=$(sed -n 's/.*dashboard: serving https:.*(port \([0-9]*\)).*/\1/p' "$LOG" | head -1)
check "the dashboard reports its port" [ -n "$PORT" ]
URL=https://127.0.0.1:$PORT
make_levels
# Its own self-signed certificate is not a warning (self-signed on purpose).
run 0 ctl --json status
json "[c for c in j['certificates'] if c['name'] == 'certagent-dashboard'][0]['warnings'] == []"
json "[c for c in j['certificates'] if c['name'] == 'certagent-dashboard'][0]['auto_renew']"

run 0 curl -sk -D "$T/h" -o "$T/page.html" "$URL/"
check "GET / is 200" grep -q "^HTTP/1.1 200" "$T/h"
check "no script may run (CSP)" grep -qi "^Content-Security-Policy: default-src 'none'" "$T/h"
check "the page has no script" bash -c "! grep -qi '<script' '$T/page.html'"
check "the page fetches nothing (no src=, no http link)" \
    bash -c "! grep -qiE 'src=|https?://' '$T/page.html'"
check "the page refreshes itself" grep -q '<meta http-equiv="refresh" content="30">' "$T/page.html"
run 0 curl -sk "$URL/status.json"
json "j['health'] == 'critical' and len(j['certificates']) == 5"
run 0 curl -sk -o /dev/null -w "%{http_code}" "$URL/nope"
has 404
run 0 curl -sk -o /dev/null -w "%{http_code}" -X POST "$URL/"
has 405
OUT=$(curl -s -o /dev/null -w "%{http_code}" "http://127.0.0.1:$PORT/" 2>/dev/null)
check "plain HTTP to the HTTPS listener gets no page ($OUT)" [ "$OUT" != 200 ]

# The page in a real browser, scripts off, then on.
browse() { # browse OUT-FILE [CHROMIUM-OPTIONS...]
    local out=$1
    shift
    HOME=$T/home timeout 120 chromium --headless --no-sandbox --disable-gpu \
        --user-data-dir="$T/chromium" --ignore-certificate-errors --window-size=1400,1000 \
        "$@" "$URL/" >"$out" 2>"$T/chromium.err"
}
if command -v chromium >/dev/null; then
    browse "$T/dom.html" --dump-dom
    browse /dev/null --screenshot="$ART/dashboard.png"
    # Scripts off: --blink-settings=scriptEnabled=false leaves headless chromium's --dump-dom
    # empty, so the DevTools protocol over a pipe turns scripts off and reads the DOM.
    HOME=$T/home timeout 120 /usr/bin/python3 "$(dirname "$0")/cdp.py" "$URL/" \
        "$T/dom-noscript.html" "$ART/dashboard-noscript.png" "$T/chromium-cdp" noscript
    for f in "$T/dom-noscript.html" "$T/dom.html"; do
        check "$f: the health at the top" grep -q '<header class="critical"><h1>CRITICAL</h1>' "$f"
        check "$f: critical row" grep -q '<tr class="critical"><td class="lv critical">CRITICAL</td><td><b>verysoon</b>' "$f"
        check "$f: warning rows" grep -q '<td class="lv warning">WARNING</td><td><b>soon</b>' "$f"
        check "$f: self-signed warning" grep -q '<td class="lv warning">WARNING</td><td><b>selfie</b>' "$f"
        check "$f: ok row" grep -q '<td class="lv ok">OK</td><td><b>good</b>' "$f"
        check "$f: the warning's sentence" grep -q 'verysoon expires in [0-9]* days' "$f"
        check "$f: a name with markup is text" grep -qF '&lt;b&gt;&amp;quotes.example.test' "$f"
        check "$f: lifetime bars" grep -q 'class="bar"' "$f"
        check "$f: recent renewals" grep -q 'v1 20[0-9-]* [0-9:]* UTC (import)' "$f"
        check "$f: next renewals" grep -q 'certagent-dashboard</b> (lifetime)' "$f"
    done
    check "the screenshot is a PNG" bash -c "file '$ART/dashboard.png' | grep -q 'PNG image'"
    check "the screenshot without scripts is a PNG" \
        bash -c "file '$ART/dashboard-noscript.png' | grep -q 'PNG image'"
    echo "screenshots: $ART/dashboard.png $ART/dashboard-noscript.png"
else
    fail "chromium is missing (packaging/install-deps.sh installs it)"
fi

# A request head over 8 KiB: 431.
run 0 python3 "$CLIENT" bighead "$PORT"
check "8 KiB+ head over plain TCP is no HTTP page" [ "$OUT" != "HTTP/1.1 200 OK" ]
# (over TLS: the same head through openssl s_client)
head -c 9300 /dev/zero | tr '\0' a | sed 's/^/GET \/ HTTP\/1.1\r\nX-Filler: /' >"$T/big.req"
printf '\r\n\r\n' >>"$T/big.req"
timeout 30 openssl s_client -quiet -connect "127.0.0.1:$PORT" <"$T/big.req" >"$T/big.out" 2>/dev/null
check "8 KiB+ head over TLS: 431" grep -q "^HTTP/1.1 431" "$T/big.out"

# A slow client is cut by the deadline; certctl status answers meanwhile.
python3 "$CLIENT" slow "$PORT" >"$T/slow.out" &
SLOW=$!
run 0 ctl status
wait "$SLOW"
check "the slow client was cut" grep -q closed "$T/slow.out"

# 1,000 connections that send nothing: the agent keeps answering.
rm -f "$T/flood.done"
python3 "$CLIENT" flood "$PORT" 1000 "$T/flood.done" >"$T/flood.out" &
FLOOD=$!
wait_for 60 grep -q "^open 1000" "$T/flood.out"
check "1,000 connections opened" grep -q "^open 1000" "$T/flood.out"
run 0 ctl status
has "health CRITICAL"
run 0 curl -sk -o /dev/null -w "%{http_code}" "$URL/"
has 200
touch "$T/flood.done"
wait "$FLOOD"
check "the agent closed idle ones to stay under its limit" grep -q "closing the oldest idle" "$LOG"
run 0 ctl status
run 0 curl -sk -o /dev/null -w "%{http_code}" "$URL/"
has 200
stop_agent

# A certificate of the store (dashboard_certificate), and its next version once stored.
cat >"$CONFIG" <<JSON
{"dashboard_listen": "[::1]:0", "dashboard_certificate": "good"}
JSON
if python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    HOST6='[::1]'
else
    sed -i 's/\[::1\]:0/127.0.0.1:0/' "$CONFIG"
    HOST6=127.0.0.1
fi
start_agent
wait_log "dashboard: serving certificate 'good' version 1"
PORT=$(sed -n 's/.*dashboard: serving https:.*(port \([0-9]*\)).*/\1/p' "$LOG" | tail -1)
served() { # the serial of the certificate the dashboard serves
    timeout 30 openssl s_client -connect "$HOST6:$PORT" </dev/null 2>/dev/null |
        openssl x509 -noout -serial
}
check "it serves 'good'" [ "$(served)" = "$(openssl x509 -noout -serial -in "$W/good.pem")" ]
issue good2 "-1 day" "+200 days" DNS:good.example.test
run 0 ctl import good --cert "$W/good2.pem" --key "$W/good2.key" --chain "$W/ca.pem"
wait_log "dashboard: serving certificate 'good' version 2"
check "it serves the new version" [ "$(served)" = "$(openssl x509 -noout -serial -in "$W/good2.pem")" ]
stop_agent

# Not loopback: the token is required (plain HTTP here, on purpose).
TOKEN=0123456789abcdef0123456789abcdef
printf '%s\n' "$TOKEN" >"$T/token"
chmod 600 "$T/token"
cat >"$CONFIG" <<JSON
{"dashboard_listen": "0.0.0.0:0", "dashboard_plain_http": true,
 "dashboard_token_file": "$T/token"}
JSON
start_agent
wait_log "dashboard: serving http://0.0.0.0:0/"
PORT=$(sed -n 's/.*dashboard: serving http:.*(port \([0-9]*\)).*/\1/p' "$LOG" | tail -1)
URL=http://127.0.0.1:$PORT
run 0 curl -s -o /dev/null -w "%{http_code}" "$URL/"
has 401
run 0 curl -s -o /dev/null -w "%{http_code}" "$URL/status.json"
has 401
run 0 curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer wrong-token-wrong-token" "$URL/"
has 401
run 0 curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $TOKEN" "$URL/"
has 200
run 0 curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $TOKEN" "$URL/status.json"
has 200
run 0 curl -s -D - -o /dev/null "$URL/?token=$TOKEN"
has "HTTP/1.1 303"
has "Set-Cookie: certagent_dashboard=$TOKEN; Path=/; HttpOnly; SameSite=Strict"
has "Location: /"
run 0 curl -s -D - -o /dev/null "$URL//evil.example/?token=$TOKEN"
lacks "evil"
run 0 curl -s -o /dev/null -w "%{http_code}" -b "certagent_dashboard=$TOKEN" "$URL/"
has 200
run 0 curl -s -o /dev/null -w "%{http_code}" "$URL/?token=wrong-token-wrong-token"
has 401
check "the token is in no log line" bash -c "! grep -qF '$TOKEN' '$LOG'"
finish
