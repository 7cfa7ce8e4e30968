# The dependency recipe of packaging/windows/build.sh (sourced by it).  The
# prefix it builds is stamped with this file's hash, so editing this file
# rebuilds the dependencies and editing build.sh does not.

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

# build_deps STAMP: builds every dependency into $DEPS from scratch.
build_deps() {
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
    echo "$1" >"$DEPS/.complete"
    log "dependencies built in $((SECONDS - t0)) s"
}

