#!/bin/bash
# The served check against a real nginx (nginx-light) on a free loopback port, serving two
# self-signed certificates by SNI from their deploy targets: a deploy hook that reloads nginx
# makes every check match; one that forgets to reload gives served_stale after the grace,
# naming both serials, until certctl deploy with a correct hook; nginx stopped gives
# served_unreachable; the results survive a restart of the agent.
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-served.sh"

NGINX=/usr/sbin/nginx
[ -x "$NGINX" ] || { echo "SKIP: $NGINX is not installed (nginx-light)"; exit 0; }
N=$T/nginx
mkdir -p "$N/logs" "$N/tmp"
NGINX_PID=
stop_nginx() {
    if [ -n "$NGINX_PID" ] && kill -0 "$NGINX_PID" 2>/dev/null; then
        kill -QUIT "$NGINX_PID"
        wait "$NGINX_PID" 2>/dev/null
    fi
    NGINX_PID=
}
trap 'stop_nginx; cleanup' EXIT

# The hook that reloads this nginx (its own config and pid file), and one that forgets to.
RELOAD="$NGINX -c $N/nginx.conf -p $N/ -e $N/logs/error.log -s reload"
FORGET="true"

echo '{"served_grace": 4, "trust_system_roots": false}' >"$CONFIG"
start_agent
for n in a b; do
    run 0 ctl selfsigned "$n" --dns "$n.test" --deploy-files "$T/deploy/$n" --deploy-hook "$FORGET"
done

# nginx on a free port: a.test is the default server, b.test is chosen by SNI.
start_nginx() {
    for _ in 1 2 3 4 5; do
        free_port
        PORT=$FREE_PORT
        cat >"$N/nginx.conf" <<CONF
worker_processes 1;
pid $N/nginx.pid;
error_log $N/logs/error.log;
events { worker_connections 64; }
http {
    access_log off;
    client_body_temp_path $N/tmp/body;
    proxy_temp_path $N/tmp/proxy;
    fastcgi_temp_path $N/tmp/fastcgi;
    uwsgi_temp_path $N/tmp/uwsgi;
    scgi_temp_path $N/tmp/scgi;
    server {
        listen 127.0.0.1:$PORT ssl default_server;
        server_name a.test;
        ssl_certificate $T/deploy/a/fullchain.pem;
        ssl_certificate_key $T/deploy/a/privkey.pem;
        return 200 "a\n";
    }
    server {
        listen 127.0.0.1:$PORT ssl;
        server_name b.test;
        ssl_certificate $T/deploy/b/fullchain.pem;
        ssl_certificate_key $T/deploy/b/privkey.pem;
        return 200 "b\n";
    }
}
CONF
        "$NGINX" -c "$N/nginx.conf" -p "$N/" -e "$N/logs/error.log" -g 'daemon off;' \
            >"$N/stdout" 2>&1 </dev/null &
        NGINX_PID=$!
        if wait_for 10 test -s "$N/nginx.pid" && wait_for 5 openssl s_client -connect \
            "127.0.0.1:$PORT" -servername b.test </dev/null; then
            return 0
        fi
        stop_nginx
    done
    fail "nginx did not start: $(tail -n 5 "$N/logs/error.log" "$N/stdout")"
    exit 1
}
start_nginx
URL="https://127.0.0.1:$PORT"
for n in a b; do
    run 0 ctl set "$n" --deploy-hook "$RELOAD"
done

# SNI: two certificates on one address, each checked with its own server name.
run 0 ctl set a --check-served "$URL" --served-sni a.test
has "check served $URL (server name a.test)"
run 0 ctl set b --check-served "$URL" --served-sni b.test
check "a: served matches" wait_for 30 served_is a "$URL" match 1
check "b: served matches through its SNI" wait_for 30 served_is b "$URL" match 1
run 0 ctl --json show b
json "j['served'][0]['sni'] == 'b.test' and j['served'][0]['served_serial'] == j['serial'] and j['served'][0]['served_version'] == 1"
run 0 ctl show a
has "served:       $URL (SNI a.test): match"
run 0 ctl metrics
has "certagent_served_matches{name=\"a\",url=\"$URL\"} 1"
has "certagent_served_matches{name=\"b\",url=\"$URL\"} 1"
# Without the server name, b's address serves a's certificate: stale (no grace: a new URL).
run 0 ctl set b --check-served "https://localhost:$PORT"
check "b: the default server's certificate is stale for b" \
    wait_for 30 served_is b "https://localhost:$PORT" stale
run 0 ctl set b --no-check-served "https://localhost:$PORT"
lacks "localhost:$PORT"

# A renewal whose hook reloads nginx: the new version is served.
run 0 ctl selfsigned a --dns a.test
check "a: version 2 is served after the reload" wait_for 30 served_is a "$URL" match 2
check "no served warning" no_warning a served_stale

# A hook that forgets to reload: served_stale after the grace, naming both serials.
OLD=$(serial_of a)
run 0 ctl set a --deploy-hook "$FORGET"
run 0 ctl selfsigned a --dns a.test
NEW=$(serial_of a)
check "a: stale after the grace" wait_for 30 served_is a "$URL" stale 3
if warning_of a served_stale; then
    OUT=$WARNING
    has "$URL (server name a.test) serves serial $OLD"
    has "version 2"
    has "not the current version 3 (serial $NEW)"
    has "certctl deploy a --wait-served"
else
    fail "no served_stale warning for a"
fi
run 0 ctl metrics
has "certagent_served_matches{name=\"a\",url=\"$URL\"} 0"
run 0 ctl --json status
json "[w for c in j['certificates'] if c['name'] == 'a' for w in c['warnings'] if w['code'] == 'served_stale' and w['level'] == 'warning' and w['served_serial'] == '$OLD' and w['current_serial'] == '$NEW']"
# deploy --wait-served with the same hook: not served, exit 1 with the reason.
run 1 ctl deploy a --wait-served
has "deployed, but not served"
has "serves serial $OLD"
# A correct hook and certctl deploy: cleared.
run 0 ctl set a --deploy-hook "$RELOAD"
run 0 ctl deploy a --wait-served
has "deployed 'a' version 3"
has "served by $URL (serial $NEW)"
check "a: matches again" served_is a "$URL" match 3
check "served_stale cleared" no_warning a served_stale

# nginx stopped: served_unreachable with the reason.
run 0 ctl set a --deploy-hook "$FORGET"
stop_nginx
run 1 ctl deploy a --wait-served
has "$URL is unreachable"
check "a: unreachable" served_is a "$URL" unreachable 3
if warning_of a served_unreachable; then
    OUT=$WARNING
    has "cannot check what $URL (server name a.test) serves"
    has "connect"
else
    fail "no served_unreachable warning for a"
fi

# The results are kept across a restart (they are not checked again before the interval).
stop_agent
check "served.json written" test -s "$STATE/served.json"
start_agent
check "a: still unreachable after a restart" served_is a "$URL" unreachable 3
check "b: still matching after a restart" served_is b "$URL" match 1
run 0 ctl ping
finish
