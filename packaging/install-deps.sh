#!/bin/sh
# Installs what certagent needs to build and to run its tests, from Debian's
# packages.  Run as root (or through sudo) on Debian 12.
set -eu
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    build-essential cmake pkg-config \
    libuv1-dev libmsgpack-dev libcjson-dev libssl-dev libcurl4-openssl-dev libcmocka-dev \
    openssl ca-certificates procps util-linux python3 clang-format shellcheck >/dev/null
# The security tests (tests/security): ss to count connections, groupadd for a temporary group.
apt-get install -y -qq --no-install-recommends iproute2 passwd >/dev/null
# ACME tests (tests/acme): Pebble and its challenge test server, curl for the helpers and
# tests/integration/it-challenge.sh, lego and python3-acme (certbot's protocol library) as
# reference clients for the fault-injecting proxy and dns-01 hook tests, and certbot for the
# lineages that `certctl import --from-certbot` takes over (tests/acme/it-certbot.sh).
apt-get install -y -qq --no-install-recommends pebble curl lego python3-acme certbot >/dev/null
# Packaging and its tests (packaging/deb): dpkg-deb, dpkg-shlibdeps, lintian, and what the
# package itself needs to install (adduser for its user, deb-systemd-helper).
apt-get install -y -qq --no-install-recommends dpkg-dev lintian adduser init-system-helpers >/dev/null
# The scheduler's clock-change test (tests/integration/it-clock.sh) moves the agent's clock
# with libfaketime (LD_PRELOAD), never the machine's.
apt-get install -y -qq --no-install-recommends libfaketime >/dev/null
# The man pages' test (tests/docs/docs-man.sh): groff and man-db's `man --warnings`.
apt-get install -y -qq --no-install-recommends groff-base man-db bsdextrautils >/dev/null
# The second wave's real parts, started by the tests on loopback: a 3-member etcd cluster
# (tests/fleet), an SMTP server with STARTTLS and AUTH (python3-aiosmtpd, tests/notify),
# headless Chromium for the dashboard (tests/notify), nginx and Dovecot whose served
# certificate the agent checks (tests/served).  Their packaged services are not used.
apt-get install -y -qq --no-install-recommends etcd-server etcd-client python3-aiosmtpd \
    chromium nginx-light dovecot-imapd >/dev/null
# Fuzzing (tests/fuzz): clang with libFuzzer and the sanitizer runtimes.
apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev >/dev/null
echo "install-deps: build and test dependencies are installed"
