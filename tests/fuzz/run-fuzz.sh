#!/bin/bash
# Runs every libFuzzer target of a CERTAGENT_FUZZ build for a fixed budget.
#   tests/fuzz/run-fuzz.sh BUILD_DIR SECONDS [JOBS] [TARGET...]
# JOBS targets run at a time (default 2).  Each starts from its seeds
# (tests/fuzz/corpus/TARGET, read-only here) and its reproducers
# (tests/fuzz/regressions/TARGET); what it finds goes to a scratch corpus in
# BUILD_DIR/fuzz-work/TARGET.  A crash, leak, UBSan report, timeout (-timeout)
# or memory blow-up (-rss_limit_mb) leaves its input in
# BUILD_DIR/fuzz-work/artifacts/TARGET/ and fails the run, as does a target
# that executed no input at all.  Prints one line per target: runs, exec/s,
# cov and ft (libFuzzer's coverage and feature counts).  FUZZ_TIMEOUT: seconds
# one input may take (default 10); FUZZ_NICE: niceness of the fuzzers.
set -u
if [ $# -lt 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS [JOBS] [TARGET...]" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
secs=$2
jobs=${3:-2}
shift $(($# >= 3 ? 3 : 2))
here=$(cd "$(dirname "$0")" && pwd)
bin=$build/tests/fuzz
work=$build/fuzz-work
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    for f in "$bin"/fuzz_*; do
        case $f in *_regress | *.a) continue ;; esac
        [ -x "$f" ] && targets+=("$(basename "$f")")
    done
fi
if [ ${#targets[@]} -eq 0 ]; then
    echo "run-fuzz: no fuzz_* targets in $bin (configure with -DCERTAGENT_FUZZ=ON" \
        "-DCMAKE_C_COMPILER=clang, build --target fuzz)" >&2
    exit 1
fi
mkdir -p "$work"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
    local t=$1 log=$work/$1.log dict=$here/dict/$1.dict
    # A fixed seed (FUZZ_SEED, default 1): a CI run can be replayed exactly.
    local args=(-seed="${FUZZ_SEED:-1}" -max_total_time="$secs" -rss_limit_mb=2048
        -timeout="${FUZZ_TIMEOUT:-10}" -max_len=65536
        -print_final_stats=1 -artifact_prefix="$work/artifacts/$t/")
    local dirs=("$work/$t" "$here/corpus/$t")
    mkdir -p "$work/$t" "$work/artifacts/$t"
    [ -d "$here/regressions/$t" ] && dirs+=("$here/regressions/$t")
    [ -f "$dict" ] && args+=(-dict="$dict")
    nice -n "${FUZZ_NICE:-0}" "$bin/$t" "${args[@]}" "${dirs[@]}" >"$log" 2>&1
    echo $? >"$work/$t.rc"
}

start=$(date +%s)
running=0
for t in "${targets[@]}"; do
    rm -f "$work/$t.rc" "$work/$t.log"
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait
fail=0
printf '%-22s %12s %10s %8s %8s  %s\n' target runs exec/s cov ft result
for t in "${targets[@]}"; do
    log=$work/$t.log
    rc=$(cat "$work/$t.rc" 2>/dev/null || echo 99)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
    eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    result=ok
    if [ "$rc" != 0 ]; then
        result="FAILED (exit $rc; see $log and $work/artifacts/$t/)"
    elif [ -z "$runs" ] || [ "$runs" -eq 0 ]; then
        result="FAILED (no input executed; see $log)"
    fi
    if [ "$result" != ok ]; then
        fail=1
        grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|SUMMARY:' \
            "$log" | head -n 5 | sed 's/^/    /'
    fi
    printf '%-22s %12s %10s %8s %8s  %s\n' "$t" "${runs:-0}" "${eps:-0}" "${cov:-?}" \
        "${ft:-?}" "$result"
done
echo "run-fuzz: ${#targets[@]} target(s), ${secs} s each, $jobs at a time," \
    "$(($(date +%s) - start)) s wall"
exit $fail
