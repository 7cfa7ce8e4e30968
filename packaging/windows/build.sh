#!/bin/bash
# Builds certagent for Windows x86_64 on Debian 12: installs the mingw-w64
# toolchain, Wine and msitools from Debian's packages, cross-builds the
# dependencies (OpenSSL, libuv, cJSON, msgpack-c, libcurl) as static
# libraries from Debian's source packages into a prefix, then builds the
# project.  The .exe files end up in build-win/ at the top of the tree.
#
# CERTAGENT_WIN_DEPS: the dependency prefix (default build-win/deps).  A
# prefix that already holds every dependency is reused as it is; a cache must
# be restored at the same absolute path (.pc files embed it).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$ROOT/build-win
export CERTAGENT_WIN_DEPS=${CERTAGENT_WIN_DEPS:-$OUT/deps}
DEPS=$CERTAGENT_WIN_DEPS
SRC=$OUT/src
HOST=x86_64-w64-mingw32
JOBS=$(nproc 2>/dev/null || echo 2)
TOOLCHAIN=$ROOT/packaging/windows/mingw64.cmake
export DEBIAN_FRONTEND=noninteractive

log() { echo "windows/build.sh: $*"; }

if ! command -v "$HOST-gcc" >/dev/null || ! command -v wine >/dev/null ||
    ! command -v wixl >/dev/null || ! command -v dpkg-source >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        log "run as root once (or install: gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64"
        log "mingw-w64-tools wine64 wine wixl msitools dpkg-dev)"
        exit 1
    fi
    log "installing the toolchain"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64 \
        mingw-w64-tools wine64 wine wixl msitools dpkg-dev cmake make pkg-config perl xz-utils \
        ca-certificates >/dev/null
fi

mkdir -p "$OUT" "$SRC" "$DEPS"

# The prefix is reused only if the recipe in deps.sh built it as it is now.
. "$ROOT/packaging/windows/deps.sh"
STAMP=$(sha256sum "$ROOT/packaging/windows/deps.sh" | cut -c1-16)
if [ "$(cat "$DEPS/.complete" 2>/dev/null)" != "$STAMP" ]; then
    build_deps "$STAMP"
fi

log "certagent"
export PKG_CONFIG_LIBDIR=$DEPS/lib/pkgconfig:$DEPS/share/pkgconfig
export PKG_CONFIG_PATH=
cmake -S "$ROOT" -B "$OUT" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOPENSSL_ROOT_DIR="$DEPS" -DOPENSSL_USE_STATIC_LIBS=ON -DCERTAGENT_WERROR=ON >/dev/null
cmake --build "$OUT" -j"$JOBS"
ls "$OUT"/agent/*.exe "$OUT"/ctl/*.exe
