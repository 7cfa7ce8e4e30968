#!/bin/bash
# Tests of the DEB (ctest package.deb-*).
#
#   test-deb.sh lintian SRC VERSION CERTAGENT CERTCTL UPGRADE-CHECK
#     builds the package, checks its contents and runs lintian (no error, no
#     warning that is not overridden with a reason).
#   test-deb.sh install SRC VERSION CERTAGENT CERTCTL UPGRADE-CHECK
#     installs it with `dpkg --root` into a throwaway root, a copy-on-write
#     view of this machine (overlayfs over / in a private mount namespace, so
#     nothing reaches the machine itself or tests running beside this one),
#     and runs the upgrade scenarios against fake old packages built here:
#     fresh install, remove and reinstall, purge, upgrade from 23.1.1
#     (refused, state untouched), from 23.1.2 (allowed, state backed up, then
#     migrated by the new agent's first start), downgrade (refused).
# Exits 77 (skipped) when it cannot make the throwaway root (not root, no
# overlayfs).
set -u
MODE=$1
SRC=$2
VERSION=$3
AGENT=$4
CTL=$5
CHECK=$6
ARCH=$(dpkg --print-architecture)
FAILURES=0
CHECKS=0

if [ "$MODE" = install ] && [ -z "${CERTAGENT_DEB_NS:-}" ]; then
    # Everything below runs in a private mount namespace: its mounts vanish
    # with it, whatever happens.
    if [ "$(id -u)" -ne 0 ] || ! unshare --mount --propagation private true 2>/dev/null; then
        echo "test-deb.sh: skipped: needs root and mount namespaces for the throwaway root"
        exit 77
    fi
    CERTAGENT_DEB_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

T=$(mktemp -d /tmp/certagent-deb-XXXXXX)
cleanup() {
    if [ -n "${AGENT_PID:-}" ]; then
        kill -KILL "$AGENT_PID" 2>/dev/null
    fi
    if [ -n "${R:-}" ]; then
        umount -R "$R" 2>/dev/null
    fi
    if [ "$FAILURES" -ne 0 ] || [ -n "${KEEP_TEST_DIR:-}" ]; then
        echo "--- kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT

fail() {
    FAILURES=$((FAILURES + 1))
    echo "FAIL: $*"
}
pass() { CHECKS=$((CHECKS + 1)); }
# run EXPECTED-EXIT CMD...: output in $OUT.
run() {
    want=$1
    shift
    OUT=$("$@" 2>&1)
    RC=$?
    if [ "$RC" -ne "$want" ]; then
        fail "'$*' exited $RC, expected $want; output: $OUT"
    else
        pass
    fi
}
run_fails() {
    OUT=$("$@" 2>&1)
    RC=$?
    if [ "$RC" -eq 0 ]; then fail "'$*' succeeded, expected a failure: $OUT"; else pass; fi
}
has() {
    if printf '%s' "$OUT" | grep -qF -- "$1"; then pass; else fail "expected '$1' in: $OUT"; fi
}
check() {
    desc=$1
    shift
    if "$@" >/dev/null 2>&1; then pass; else fail "$desc"; fi
}
finish() {
    echo "$CHECKS passed, $FAILURES failed"
    [ "$FAILURES" -eq 0 ]
    exit $?
}

# The package under test, built from the binaries ctest was given.
mkdir -p "$T/out"
if ! sh "$SRC/packaging/deb/build-deb.sh" "$T/out" "$SRC" "$VERSION" "$AGENT" "$CTL" "$CHECK" \
    >"$T/build.log" 2>&1; then
    cat "$T/build.log"
    fail "build-deb.sh failed"
    finish
fi
DEB=$T/out/certagent_${VERSION}_${ARCH}.deb
check "the package is named certagent_VERSION_ARCH.deb" test -s "$DEB"

if [ "$MODE" = lintian ]; then
    run 0 dpkg-deb -c "$DEB"
    LIST=$OUT
    for f in ./usr/sbin/certagent ./usr/bin/certctl \
        ./usr/libexec/certagent/certagent-upgrade-check ./etc/certagent/certagent.json \
        ./lib/systemd/system/certagent.service ./usr/share/doc/certagent/copyright \
        ./usr/share/doc/certagent/changelog.gz ./usr/share/man/man1/certctl.1.gz \
        ./usr/share/man/man5/certagent.json.5.gz ./usr/share/man/man8/certagent.8.gz; do
        if printf '%s\n' "$LIST" | grep -q " $f\$"; then pass; else fail "$f not in the package"; fi
    done
    if printf '%s\n' "$LIST" | grep -q '^-rwxr-xr-x root/root .* ./usr/sbin/certagent$'; then
        pass
    else
        fail "certagent is not root-owned 0755"
    fi
    run 0 dpkg-deb -f "$DEB" Package Version Architecture Depends
    has "Version: $VERSION"
    has "libssl3"
    has "adduser"
    mkdir -p "$T/ctrl"
    dpkg-deb -e "$DEB" "$T/ctrl"
    check "conffiles lists the configuration" grep -qx /etc/certagent/certagent.json "$T/ctrl/conffiles"
    check "the control area carries the upgrade check" test -x "$T/ctrl/certagent-upgrade-check"
    dpkg-deb -x "$DEB" "$T/x"
    UNIT=$T/x/lib/systemd/system/certagent.service
    for line in Type=notify User=certagent RuntimeDirectory=certagent StateDirectory=certagent \
        ProtectSystem=strict ProtectHome=yes NoNewPrivileges=yes PrivateTmp=yes \
        CapabilityBoundingSet=CAP_NET_BIND_SERVICE ReadWritePaths=-/etc/ssl/certagent; do
        check "the unit has $line" grep -qx "$line" "$UNIT"
    done
    check "man pages are gzipped man pages" sh -c "zcat '$T/x/usr/share/man/man8/certagent.8.gz' | grep -q '^\\.TH'"
    if command -v systemd-analyze >/dev/null; then
        # The unit's syntax: no message but the one about the binary, which
        # systemd-analyze looks for on this machine, where it is not installed.
        OUT=$(systemd-analyze verify --man=no "$UNIT" 2>&1 |
            grep -v 'Command /usr/sbin/certagent is not executable')
        if [ -z "$OUT" ]; then pass; else fail "systemd-analyze verify: $OUT"; fi
    fi
    if ! command -v lintian >/dev/null; then
        fail "lintian is missing (packaging/install-deps.sh installs it)"
        finish
    fi
    OUT=$(lintian --fail-on none "$DEB" 2>&1 | grep -v 'running with root privileges')
    if printf '%s\n' "$OUT" | grep -qE '^[EW]: '; then
        fail "lintian reports errors or warnings: $OUT"
    else
        pass
    fi
    echo "lintian: ${OUT:-clean}"
    finish
fi

# --- install: the throwaway root -------------------------------------------
mkdir -p "$T/upper" "$T/work" "$T/root"
if ! mount -t overlay overlay -o "lowerdir=/,upperdir=$T/upper,workdir=$T/work" "$T/root" \
    2>"$T/mount.err"; then
    echo "test-deb.sh: skipped: no overlayfs here: $(cat "$T/mount.err")"
    rm -rf "$T"
    exit 77
fi
R=$T/root
# A private /proc, /dev, /run (no systemd running in there, as in a container)
# and /tmp.
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/run"
mount -t tmpfs tmpfs "$R/tmp"
host_group=$(getent group certagent || true)
host_passwd=$(getent passwd certagent || true)

inroot() { chroot "$R" "$@"; }
dpkgr() { dpkg --root="$R" "$@"; }
# The store's files with modes, owners and contents, to see that nothing moved.
snapshot() {
    (cd "$1" && find . -printf '%p %m %u %y %l\n' | sort && find . -type f -print0 | sort -z |
        xargs -0 sha256sum)
}

# fake_package VERSION: a certagent package of another version, as an old
# (or newer) release would have been, with a stub certagent.
fake_package() {
    d=$T/fake-$1
    mkdir -p "$d/DEBIAN" "$d/usr/sbin"
    printf '#!/bin/sh\necho "certagent %s (fake)"\n' "$1" >"$d/usr/sbin/certagent"
    chmod 0755 "$d/usr/sbin/certagent"
    cat >"$d/DEBIAN/control" <<EOF
Package: certagent
Version: $1
Architecture: $ARCH
Maintainer: certagent tests <tests@example.org>
Description: fake certagent $1 for the upgrade tests
EOF
    dpkg-deb --root-owner-group --build "$d" "$T/certagent_$1_$ARCH.deb" >/dev/null
    echo "$T/certagent_$1_$ARCH.deb"
}

# start_installed: the installed agent as the unit runs it (user certagent,
# the shipped configuration), detached; returns once it listens.
start_installed() {
    # What RuntimeDirectory= and StateDirectory= do under systemd.
    mkdir -p "$R/run/certagent" "$R/var/lib/certagent"
    inroot chown certagent:certagent /run/certagent
    inroot chown -R certagent:certagent /var/lib/certagent
    if inroot setpriv --reuid=certagent --regid=certagent --init-groups \
        /usr/sbin/certagent --daemon --pid-file /run/certagent/test.pid \
        --config /etc/certagent/certagent.json >"$T/agent.out" 2>&1; then
        AGENT_PID=$(cat "$R/run/certagent/test.pid")
        pass
    else
        fail "the installed agent did not start: $(cat "$T/agent.out")"
        AGENT_PID=
    fi
}
stop_installed() {
    if [ -n "$AGENT_PID" ]; then
        kill -TERM "$AGENT_PID"
        tail --pid="$AGENT_PID" -f /dev/null
        AGENT_PID=
    fi
}

# A store as certagent before 26.1 left it (schema 0: no state.json, no
# schema in lineage.json), made by the real agent and taken back to that
# layout.
echo '{}' >"$T/empty.json"
mkdir -p "$T/legacy-run"
if "$AGENT" --daemon --pid-file "$T/legacy-run/pid" --config "$T/empty.json" \
    --state-dir "$T/legacy" --socket "$T/legacy-run/sock" >"$T/legacy-run/out" 2>&1; then
    "$CTL" --socket "$T/legacy-run/sock" selfsigned web --dns www.example.test >/dev/null ||
        fail "legacy store: selfsigned failed"
    pid=$(cat "$T/legacy-run/pid")
    kill -TERM "$pid"
    tail --pid="$pid" -f /dev/null
else
    fail "legacy store: the agent did not start: $(cat "$T/legacy-run/out")"
fi
rm -f "$T/legacy/state.json" "$T/legacy/.lock"
python3 - "$T/legacy/certs/web/lineage.json" <<'EOF'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
del d["schema"]
open(p, "w").write(json.dumps(d, indent="\t"))
EOF
check "legacy lineage.json has no schema" sh -c "! grep -q schema '$T/legacy/certs/web/lineage.json'"
put_legacy_state() {
    rm -rf "$R/var/lib/certagent"
    cp -a "$T/legacy" "$R/var/lib/certagent"
}

# Nothing of certagent in the root to begin with, whatever this machine has: a
# package installed here, the store and configuration a development agent made
# (the README's quick start leaves /var/lib/certagent), the certagent user and
# group.  The overlay shows all of it through, and each would change a verdict
# below (a purge that "left" the machine's /var/lib/certagent, a user the
# postinst did not have to create).  Removing them here only hides them in the
# throwaway root (whiteouts in the upper layer).
dpkgr --purge certagent >/dev/null 2>&1
rm -rf "$R/var/lib/certagent" "$R"/var/lib/certagent.bak-* "$R/etc/certagent" \
    "$R/etc/ssl/certagent" "$R"/etc/systemd/system/*.wants/certagent.service \
    "$R"/var/lib/systemd/deb-systemd-helper-*/*certagent*
for db in passwd group shadow gshadow; do
    [ -f "$R/etc/$db" ] || continue
    # Its entry, and (group, gshadow) its name in other groups' member lists.
    case $db in
    group | gshadow) members='s/\([:,]\)certagent\(,\|$\)/\1/; s/,$//' ;;
    *) members= ;;
    esac
    sed -e '/^certagent:/d' -e "$members" "$R/etc/$db" >"$T/$db.clean"
    cat "$T/$db.clean" >"$R/etc/$db"
done
check "no certagent user in the throwaway root" sh -c "! chroot '$R' getent passwd certagent"
check "no certagent group in the throwaway root" sh -c "! chroot '$R' getent group certagent"
check "no store in the throwaway root" test ! -e "$R/var/lib/certagent"

echo "== fresh install"
run 0 dpkgr -i "$DEB"
run 0 dpkgr -s certagent
has "Status: install ok installed"
has "Version: $VERSION"
has "/etc/certagent/certagent.json"
check "certagent installed" test -x "$R/usr/sbin/certagent"
check "certctl installed" test -x "$R/usr/bin/certctl"
check "the upgrade check installed" test -x "$R/usr/libexec/certagent/certagent-upgrade-check"
run 0 inroot getent passwd certagent
has ":/var/lib/certagent:/usr/sbin/nologin"
uid=$(printf '%s' "$OUT" | cut -d: -f3)
check "certagent is a system user" test "$uid" -lt 1000
run 0 inroot getent group certagent
check "the store belongs to certagent" test "$(inroot stat -c %U /var/lib/certagent)" = certagent
check "the unit is enabled for boot" test -L "$R/etc/systemd/system/multi-user.target.wants/certagent.service"
check "nothing was started (no systemd here)" test ! -e "$R/run/certagent"
start_installed
run 0 inroot certctl selfsigned web --dns www.example.test
has "created self-signed 'web' version 1"
run 0 inroot certctl status
has "certagent $VERSION"
run 0 inroot stat -c '%a %U' /var/lib/certagent/live/web/privkey.pem
has "600 certagent"
run 0 inroot stat -c '%G %a' /run/certagent/certagent.sock
has "certagent 660"
stop_installed
run 0 cat "$R/var/lib/certagent/state.json"
has "\"written_by\": \"$VERSION\""

echo "== remove keeps the store, reinstall finds it"
run 0 dpkgr -r certagent
check "remove took the binary" test ! -e "$R/usr/sbin/certagent"
check "remove kept the store" test -f "$R/var/lib/certagent/live/web/privkey.pem"
check "remove kept the conffile" test -f "$R/etc/certagent/certagent.json"
run 0 dpkgr -i "$DEB"
has "$VERSION is already installed"
check "a reinstall makes no backup" test -z "$(ls -d "$R"/var/lib/certagent.bak-* 2>/dev/null)"

echo "== purge removes the store"
run 0 dpkgr --purge certagent
check "purge removed the store" test ! -e "$R/var/lib/certagent"
check "purge removed the configuration" test ! -e "$R/etc/certagent"
check "purge removed the unit's links" test ! -e "$R/etc/systemd/system/multi-user.target.wants/certagent.service"
run 1 dpkgr -s certagent
# In the upper layer, a removed file of the machine's is a whiteout (a character
# device 0:0), which is an absence, not a leftover.
left=$(cd "$T/upper" && find . -path ./tmp -prune -o -path ./run -prune -o -path ./proc -prune \
    -o -name '*certagent*' ! -type c -print | grep -v '^\./tmp$')
if [ -z "$left" ]; then pass; else fail "purge left files behind: $left"; fi

echo "== a fresh install beside certbot shows the migration command, touches nothing"
mkdir -p "$R/etc/letsencrypt/renewal" "$R/etc/letsencrypt/live/web"
printf 'cert = /etc/letsencrypt/live/web/cert.pem\n' >"$R/etc/letsencrypt/renewal/web.conf"
printf 'certbot-made\n' >"$R/etc/letsencrypt/live/web/cert.pem"
le_before=$(cd "$R/etc/letsencrypt" && find . -type f | sort | xargs sha256sum)
run 0 dpkgr -i "$DEB"
has "certctl import --from-certbot /etc/letsencrypt"
has "systemctl disable --now certbot.timer"
check "certbot's files are untouched" \
    test "$(cd "$R/etc/letsencrypt" && find . -type f | sort | xargs sha256sum)" = "$le_before"
run 0 dpkgr -i "$DEB"
if printf '%s' "$OUT" | grep -q "from-certbot"; then
    fail "a reinstall/upgrade repeated the certbot hint"
else
    pass
fi
run 0 dpkgr --purge certagent
rm -rf "$R/etc/letsencrypt"

echo "== upgrade from 23.1.1: refused, state untouched"
FAKE1=$(fake_package 23.1.1)
run 0 dpkgr -i "$FAKE1"
put_legacy_state
snapshot "$R/var/lib/certagent" >"$T/before"
run_fails dpkgr -i "$DEB"
has "refusing to upgrade certagent 23.1.1 to $VERSION"
has "Upgrade to 23.1.2 first"
run 0 dpkgr -s certagent
has "Status: install ok installed"
has "Version: 23.1.1"
run 0 inroot /usr/sbin/certagent
has "certagent 23.1.1 (fake)"
snapshot "$R/var/lib/certagent" >"$T/after"
check "the refused upgrade left the state untouched" cmp "$T/before" "$T/after"
check "no backup for a refused upgrade" test -z "$(ls -d "$R"/var/lib/certagent.bak-* 2>/dev/null)"
dpkgr --purge certagent >/dev/null 2>&1

echo "== upgrade from 23.1.2: allowed, backed up, migrated"
FAKE2=$(fake_package 23.1.2)
run 0 dpkgr -i "$FAKE2"
put_legacy_state
snapshot "$R/var/lib/certagent" >"$T/before"
run 0 dpkgr -i "$DEB"
has "upgrading certagent 23.1.2 to $VERSION"
has "backed up /var/lib/certagent to /var/lib/certagent.bak-23.1.2-"
run 0 dpkgr -s certagent
has "Version: $VERSION"
BAK=$(ls -d "$R"/var/lib/certagent.bak-23.1.2-* 2>/dev/null | head -n 1)
check "the backup exists" test -d "$BAK"
snapshot "$BAK" >"$T/backup"
check "the backup is the old state, modes and owners included" cmp "$T/before" "$T/backup"
check "keys stay 0600 in the backup" test "$(stat -c %a "$BAK/certs/web/v1/privkey.pem")" = 600
start_installed
run 0 inroot certctl list
has "web"
run 0 inroot certctl show web
has "www.example.test"
stop_installed
run 0 cat "$R/var/lib/certagent/state.json"
has "{\"schema\": 1, \"written_by\": \"$VERSION\"}"
check "lineage.json migrated to schema 1" grep -q '"schema"' "$R/var/lib/certagent/certs/web/lineage.json"
check "the backup kept the old lineage.json" sh -c "! grep -q schema '$BAK/certs/web/lineage.json'"
run 0 inroot /usr/libexec/certagent/certagent-upgrade-check
has "$VERSION is already installed"

echo "== downgrade: refused"
dpkgr --purge certagent >/dev/null 2>&1
FAKE3=$(fake_package 27.1.0)
run 0 dpkgr -i "$FAKE3"
put_legacy_state
printf '{"schema": 1, "written_by": "27.1.0"}\n' >"$R/var/lib/certagent/state.json"
snapshot "$R/var/lib/certagent" >"$T/before"
run_fails dpkgr -i "$DEB"
has "refusing to downgrade certagent 27.1.0 to $VERSION"
run 0 dpkgr -s certagent
has "Version: 27.1.0"
has "Status: install ok installed"
snapshot "$R/var/lib/certagent" >"$T/after"
check "the refused downgrade left the state untouched" cmp "$T/before" "$T/after"
# The administrator's override: a backup first, then the downgrade.
run 0 env CERTAGENT_FORCE_DOWNGRADE=1 dpkg --root="$R" -i "$DEB"
has "because --force was given"
has "backed up /var/lib/certagent to /var/lib/certagent.bak-27.1.0-"
run 0 dpkgr -s certagent
has "Version: $VERSION"
dpkgr --purge certagent >/dev/null 2>&1

# The machine itself never saw any of it.
check "the machine's certagent group is as it was" test "$(getent group certagent || true)" = "$host_group"
check "the machine's certagent user is as it was" test "$(getent passwd certagent || true)" = "$host_passwd"
finish
