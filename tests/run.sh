#!/bin/sh
# Runs every test: a normal build and an AddressSanitizer/UBSan build, each
# with the whole ctest suite (unit, integration), then the fuzz targets for a
# short budget (clang, build-fuzz), then the Windows build
# (mingw-w64) with its tests under Wine (skip it with CERTAGENT_SKIP_WINDOWS=1).
# Benchmarks are not run here (tests/bench/README.md).  Exits non-zero when
# anything fails.
set -eu
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

run_suite() {
    dir=$1
    shift
    echo "== configure $dir $*"
    cmake -S . -B "$dir" -DCERTAGENT_WERROR=ON "$@" >/dev/null
    echo "== build $dir"
    cmake --build "$dir" -j"$jobs" >/dev/null
    echo "== test $dir"
    ctest --test-dir "$dir" --output-on-failure -j"$jobs"
}

run_suite build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan -DCMAKE_BUILD_TYPE=Debug -DCERTAGENT_SANITIZE=ON
# Fuzzing: the libFuzzer targets (clang, ASan+UBSan) for a short fixed budget each,
# two at a time (tests/fuzz/README.md); the table of runs and coverage is printed.
fuzz_secs=${CERTAGENT_FUZZ_SECONDS:-20}
echo "== configure build-fuzz (clang, libFuzzer)"
cmake -S . -B build-fuzz -DCERTAGENT_WERROR=ON -DCERTAGENT_FUZZ=ON -DCMAKE_C_COMPILER=clang \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
echo "== build build-fuzz"
cmake --build build-fuzz -j"$jobs" --target fuzz >/dev/null
echo "== fuzz build-fuzz: tests/fuzz/run-fuzz.sh, $fuzz_secs s per target"
tests/fuzz/run-fuzz.sh build-fuzz "$fuzz_secs" 2
# Windows: cross-build with mingw-w64 and run the Windows tests under Wine.
if [ -z "${CERTAGENT_SKIP_WINDOWS:-}" ]; then
    echo "== windows: build (packaging/windows/build.sh)"
    packaging/windows/build.sh >build-win.log 2>&1 || { tail -n 40 build-win.log; exit 1; }
    echo "== windows: test under Wine (packaging/windows/test.sh)"
    packaging/windows/test.sh
fi
echo "tests/run.sh: all suites passed"
