#!/bin/sh
# Builds certagent_VERSION_ARCH.deb from built binaries with dpkg-deb (no
# debian/ source tree needed): stages the files, strips the binaries, gzips
# the man pages and the changelog, computes Depends with dpkg-shlibdeps and
# packs with root ownership.  Run by `cmake --build BUILD --target deb`.
#
# usage: build-deb.sh OUTDIR SRCDIR VERSION CERTAGENT CERTCTL UPGRADE-CHECK
set -eu
OUTDIR=$1
SRC=$2
VERSION=$3
AGENT=$4
CTL=$5
CHECK=$6
HERE=$SRC/packaging/deb
ARCH=$(dpkg --print-architecture)
WORK=$OUTDIR/deb-staging
ROOT=$WORK/root
DEB=$OUTDIR/certagent_${VERSION}_${ARCH}.deb

for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null || {
        echo "build-deb.sh: $tool is missing (packaging/install-deps.sh installs dpkg-dev)" >&2
        exit 1
    }
done
rm -rf "$WORK"
umask 022
mkdir -p "$ROOT/DEBIAN" "$ROOT/usr/sbin" "$ROOT/usr/bin" "$ROOT/usr/libexec/certagent" \
    "$ROOT/etc/certagent" "$ROOT/lib/systemd/system" "$ROOT/usr/share/doc/certagent" \
    "$ROOT/usr/share/man/man1" "$ROOT/usr/share/man/man5" "$ROOT/usr/share/man/man8" \
    "$ROOT/usr/share/lintian/overrides" "$ROOT/usr/share/doc/certagent/docs" \
    "$ROOT/usr/share/bash-completion/completions"

# Binaries, stripped (the build keeps its debug information).
install -m 0755 "$AGENT" "$ROOT/usr/sbin/certagent"
install -m 0755 "$CTL" "$ROOT/usr/bin/certctl"
install -m 0755 "$CHECK" "$ROOT/usr/libexec/certagent/certagent-upgrade-check"
for b in usr/sbin/certagent usr/bin/certctl usr/libexec/certagent/certagent-upgrade-check; do
    strip --strip-unneeded --remove-section=.comment --remove-section=.note "$ROOT/$b"
done

install -m 0644 "$HERE/certagent.json" "$ROOT/etc/certagent/certagent.json"
install -m 0644 "$HERE/certagent.service" "$ROOT/lib/systemd/system/certagent.service"
install -m 0644 "$HERE/copyright" "$ROOT/usr/share/doc/certagent/copyright"
if [ -s "$HERE/lintian-overrides" ]; then
    install -m 0644 "$HERE/lintian-overrides" "$ROOT/usr/share/lintian/overrides/certagent"
else
    rmdir "$ROOT/usr/share/lintian/overrides" "$ROOT/usr/share/lintian"
fi
top=$(sed -n '1s/^certagent (\([^)]*\)).*/\1/p' "$HERE/changelog")
if [ "$top" != "$VERSION" ]; then
    echo "build-deb.sh: packaging/deb/changelog's newest entry is '$top', the build is $VERSION:" \
        "add an entry" >&2
    exit 1
fi
gzip -9n <"$HERE/changelog" >"$ROOT/usr/share/doc/certagent/changelog.gz"
chmod 0644 "$ROOT/usr/share/doc/certagent/changelog.gz"
# The guides, where certctl --help and the man pages point: README.md and docs/ as they are
# (uncompressed, so that their links to each other keep working; lintian accepts them), and
# CHANGELOG.md gzipped under its own name: this native package's changelog.gz is
# packaging/deb/changelog, which dpkg reads.
install -m 0644 "$SRC/README.md" "$ROOT/usr/share/doc/certagent/README.md"
install -m 0644 "$SRC"/docs/*.md "$ROOT/usr/share/doc/certagent/docs/"
gzip -9n <"$SRC/CHANGELOG.md" >"$ROOT/usr/share/doc/certagent/CHANGELOG.md.gz"
chmod 0644 "$ROOT/usr/share/doc/certagent/CHANGELOG.md.gz"
# The bash completion of certctl (bash-completion loads it on demand).
install -m 0644 "$SRC/packaging/bash-completion/certctl" \
    "$ROOT/usr/share/bash-completion/completions/certctl"
for page in certctl.1 certagent.json.5 certagent.8; do
    section=${page##*.}
    gzip -9n <"$SRC/packaging/man/$page" >"$ROOT/usr/share/man/man$section/$page.gz"
    chmod 0644 "$ROOT/usr/share/man/man$section/$page.gz"
done

# Maintainer scripts, with the version substituted.
for script in preinst postinst prerm postrm; do
    sed "s/@VERSION@/$VERSION/g" "$HERE/$script" >"$ROOT/DEBIAN/$script"
    chmod 0755 "$ROOT/DEBIAN/$script"
done
install -m 0644 "$HERE/conffiles" "$ROOT/DEBIAN/conffiles"
# The preinst runs the check of this version before anything is unpacked.
install -m 0755 "$ROOT/usr/libexec/certagent/certagent-upgrade-check" \
    "$ROOT/DEBIAN/certagent-upgrade-check"

# Shared-library dependencies (dpkg-shlibdeps wants a debian/control beside it).
mkdir -p "$WORK/debian"
printf 'Source: certagent\n\nPackage: certagent\nArchitecture: any\n' >"$WORK/debian/control"
shlibs=$(cd "$WORK" && dpkg-shlibdeps -O -xcertagent root/usr/sbin/certagent root/usr/bin/certctl \
    root/usr/libexec/certagent/certagent-upgrade-check 2>/dev/null |
    sed -n 's/^shlibs:Depends=//p')
[ -n "$shlibs" ] || { echo "build-deb.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -k -s --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/g" -e "s/@ARCH@/$ARCH/g" -e "s/@SHLIBS@/$shlibs/g" \
    -e "s/@SIZE@/$size/g" "$HERE/control.in" >"$ROOT/DEBIAN/control"
(cd "$ROOT" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort |
    xargs md5sum) >"$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "build-deb.sh: $DEB"
