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

# Debian's source packages, through a deb-src copy of the machine's own sources.
fetch_sources() {
    local apt=$SRC/apt
    mkdir -p "$apt/lists/partial"
    if [ -f /etc/apt/sources.list.d/debian.sources ]; then
        sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources >"$apt/src.sources"
    else
        sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$apt/src.list"
    fi
    local opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt"
        -o "Dir::State::Lists=$apt/lists")
    apt-get -qq "${opts[@]}" update
    (cd "$SRC" && for p in libuv1 cjson msgpack-c openssl curl cmocka; do
        # The security mirror may lack a .dsc (seen for openssl); the orig tarball is what we use.
        apt-get -qq "${opts[@]}" source --download-only "$p" >/dev/null 2>&1 || true
        ls "$SRC"/"${p%1}"*orig.tar.* >/dev/null 2>&1 || { log "no source for $p"; exit 1; }
    done)
}

# unpack NAME: extracts NAME's orig tarball into $SRC/NAME and prints the directory.
unpack() {
    local name=$1 tarball dir
    tarball=$(ls "$SRC"/"$name"_*.orig.tar.* | head -n 1)
    dir=$SRC/$name
    rm -rf "$dir"
    mkdir -p "$dir"
    tar -xf "$tarball" -C "$dir" --strip-components=1
    echo "$dir"
}

cmake_dep() {
    local dir=$1
    shift
    cmake -S "$dir" -B "$dir/build" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$DEPS" -DBUILD_SHARED_LIBS=OFF \
        -DCMAKE_POSITION_INDEPENDENT_CODE=OFF "$@" >"$dir.log" 2>&1 &&
        cmake --build "$dir/build" -j"$JOBS" >>"$dir.log" 2>&1 &&
        cmake --install "$dir/build" >>"$dir.log" 2>&1 || { tail -n 30 "$dir.log"; exit 1; }
}

# The prefix is reused only if this script built it as it is now.
STAMP=$(sha256sum "$0" | cut -c1-16)
if [ "$(cat "$DEPS/.complete" 2>/dev/null)" != "$STAMP" ]; then
    rm -rf "$DEPS"
    mkdir -p "$DEPS"
    fetch_sources
    t0=$SECONDS
    log "OpenSSL"
    d=$(unpack openssl)
    (cd "$d" && ./Configure mingw64 --cross-compile-prefix="$HOST-" no-shared no-tests \
        --prefix="$DEPS" --libdir=lib "--openssldir=C:/ProgramData/certagent/ssl" >/dev/null &&
        make -j"$JOBS" build_sw >/dev/null 2>&1 && make install_sw >/dev/null)
    log "libuv"
    d=$(unpack libuv1)
    cmake_dep "$d" -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF
    log "cJSON"
    d=$(unpack cjson)
    cmake_dep "$d" -DENABLE_CUSTOM_COMPILER_FLAGS=OFF -DENABLE_CJSON_TEST=OFF \
        -DBUILD_SHARED_AND_STATIC_LIBS=OFF
    log "msgpack-c"
    d=$(unpack msgpack-c)
    cmake_dep "$d" -DMSGPACK_BUILD_TESTS=OFF -DMSGPACK_BUILD_EXAMPLES=OFF \
        -DMSGPACK_ENABLE_SHARED=OFF
    log "libcurl"
    d=$(unpack curl)
    cmake_dep "$d" -DCURL_USE_OPENSSL=ON -DOPENSSL_ROOT_DIR="$DEPS" -DCURL_CA_BUNDLE=none \
        -DCURL_CA_PATH=none -DBUILD_CURL_EXE=OFF -DBUILD_TESTING=OFF -DHTTP_ONLY=ON \
        -DCURL_USE_LIBSSH2=OFF -DCURL_USE_LIBPSL=OFF -DUSE_LIBIDN2=OFF -DCURL_ZLIB=OFF \
        -DCURL_BROTLI=OFF -DCURL_ZSTD=OFF -DUSE_NGHTTP2=OFF -DENABLE_UNIX_SOCKETS=OFF
    log "cmocka"
    d=$(unpack cmocka)
    cmake_dep "$d" -DWITH_STATIC_LIB=ON -DWITH_EXAMPLES=OFF -DUNIT_TESTING=OFF
    echo "$STAMP" >"$DEPS/.complete"
    log "dependencies built in $((SECONDS - t0)) s"
fi

log "certagent"
export PKG_CONFIG_LIBDIR=$DEPS/lib/pkgconfig:$DEPS/share/pkgconfig
export PKG_CONFIG_PATH=
cmake -S "$ROOT" -B "$OUT" -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOPENSSL_ROOT_DIR="$DEPS" -DOPENSSL_USE_STATIC_LIBS=ON -DCERTAGENT_WERROR=ON >/dev/null
cmake --build "$OUT" -j"$JOBS"
ls "$OUT"/agent/*.exe "$OUT"/ctl/*.exe
