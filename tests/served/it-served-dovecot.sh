#!/bin/bash
# The served check against a real Dovecot (dovecot-imapd) on free loopback ports, IMAPS and
# IMAP with STARTTLS, serving a self-signed certificate from its deploy target: a hook that
# reloads Dovecot (doveadm reload) makes both match; one that forgets to gives served_stale
# after the grace, naming both serials, until certctl deploy with a correct hook; Dovecot
# stopped gives served_unreachable.  Dovecot runs as root with its own config, base_dir, state
# and log in a directory of its own (its login processes run as dovenull and must reach it).
. "$(dirname "$0")/../integration/lib.sh" "$@"
. "$(dirname "$0")/lib-served.sh"

DOVECOT=/usr/sbin/dovecot
DOVEADM=/usr/bin/doveadm
[ -x "$DOVECOT" ] && [ -x "$DOVEADM" ] || { echo "SKIP: dovecot-imapd is not installed"; exit 0; }
[ "$(id -u)" -eq 0 ] || { echo "SKIP: Dovecot's master needs root (its login processes drop to dovenull)"; exit 0; }
DC=$(mktemp -d /tmp/certagent-it-dovecot-XXXXXX)
chmod 0755 "$DC"
mkdir -p "$DC/run" "$DC/state"
DOVECOT_PID=
stop_dovecot() {
    if [ -n "$DOVECOT_PID" ] && kill -0 "$DOVECOT_PID" 2>/dev/null; then
        kill -TERM "$DOVECOT_PID"
        wait "$DOVECOT_PID" 2>/dev/null
    fi
    DOVECOT_PID=
}
finish_dovecot() {
    stop_dovecot
    [ "$FAILURES" -ne 0 ] && tail -n 20 "$DC/dovecot.log" 2>/dev/null
    rm -rf "$DC"
}
trap 'finish_dovecot; cleanup' EXIT

RELOAD="$DOVEADM -c $DC/dovecot.conf reload"
FORGET="true"
echo '{"served_grace": 4, "trust_system_roots": false}' >"$CONFIG"
start_agent
run 0 ctl selfsigned m --dns m.test --deploy-files "$T/deploy/m" --deploy-hook "$FORGET"

start_dovecot() {
    for _ in 1 2 3 4 5; do
        free_port
        IMAP=$FREE_PORT
        free_port
        IMAPS=$FREE_PORT
        cat >"$DC/dovecot.conf" <<CONF
base_dir = $DC/run
state_dir = $DC/state
log_path = $DC/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$T/deploy/m/fullchain.pem
ssl_key = <$T/deploy/m/privkey.pem
passdb {
  driver = static
  args = nopassword=y
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
service imap-login {
  chroot =
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS
    ssl = yes
  }
}
service anvil {
  chroot =
}
CONF
        "$DOVECOT" -F -c "$DC/dovecot.conf" >"$DC/stdout" 2>&1 </dev/null &
        DOVECOT_PID=$!
        if wait_for 10 openssl s_client -connect "127.0.0.1:$IMAPS" </dev/null &&
            wait_for 5 openssl s_client -starttls imap -connect "127.0.0.1:$IMAP" </dev/null; then
            return 0
        fi
        stop_dovecot
    done
    fail "dovecot did not start: $(tail -n 5 "$DC/dovecot.log" "$DC/stdout")"
    exit 1
}
start_dovecot
S1="imaps://127.0.0.1:$IMAPS"
S2="imap+starttls://127.0.0.1:$IMAP"
run 0 ctl set m --deploy-hook "$RELOAD" --check-served "$S1" --served-sni m.test --check-served "$S2"
check "IMAPS matches" wait_for 30 served_is m "$S1" match 1
check "IMAP STARTTLS matches" wait_for 30 served_is m "$S2" match 1

# A renewal whose hook reloads Dovecot.
run 0 ctl selfsigned m --dns m.test
check "IMAPS serves version 2" wait_for 30 served_is m "$S1" match 2
check "STARTTLS serves version 2" wait_for 30 served_is m "$S2" match 2

# A hook that forgets: stale after the grace, both endpoints, naming both serials.
OLD=$(serial_of m)
run 0 ctl set m --deploy-hook "$FORGET"
run 0 ctl selfsigned m --dns m.test
NEW=$(serial_of m)
check "IMAPS stale" wait_for 30 served_is m "$S1" stale 3
check "STARTTLS stale" wait_for 30 served_is m "$S2" stale 3
if warning_of m served_stale; then
    OUT=$WARNING
    has "serves serial $OLD"
    has "not the current version 3 (serial $NEW)"
else
    fail "no served_stale warning for m"
fi
run 0 ctl set m --deploy-hook "$RELOAD"
run 0 ctl deploy m --wait-served
has "served by $S1 (serial $NEW)"
has "served by $S2 (serial $NEW)"
check "served_stale cleared" no_warning m served_stale

# Dovecot stopped: unreachable, with the reason.
run 0 ctl set m --deploy-hook "$FORGET"
stop_dovecot
run 1 ctl deploy m --wait-served
has "$S1 is unreachable"
has "$S2 is unreachable"
check "IMAPS unreachable" served_is m "$S1" unreachable 3
if warning_of m served_unreachable; then
    OUT=$WARNING
    has "connection refused"
else
    fail "no served_unreachable warning for m"
fi
finish
