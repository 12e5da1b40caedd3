#!/usr/bin/env bash
# Fuzz job (issue 6): builds every libFuzzer target with clang (ASan + UBSan) and runs each for
# a short fixed time, starting from its checked-in corpus and regressions. Any finding — a
# sanitizer report, a violated invariant (abort), a timeout, a leak or an out-of-memory — fails
# the job; the input is copied to $BUILD_DIR/fuzz-findings/<target>--<kind>-<sha1> and printed
# in hex, so the CI log alone is enough to reproduce it:
#   fuzz_<target> <file>                 (libFuzzer build)
#   fuzz_<target>_replay <file>          (any compiler; FUZZ_TRACE=1 prints session operations)
# The checked-in corpora are never modified here (new units go to a scratch directory).
#
# Environment: FUZZ_SECONDS (per target, default 30), FUZZ_TARGETS (space-separated subset),
# BUILD_DIR (default build-fuzz), JOBS (default 2), CMAKE_ARGS (extra configure arguments).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=${BUILD_DIR:-build-fuzz}
SECS=${FUZZ_SECONDS:-30}
JOBS=${JOBS:-2}
start=$(date +%s)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "${launcher[@]}" -DBTEST_BUILD_FUZZERS=ON -DBTEST_BUILD_TESTS=OFF -DBTEST_BUILD_APPS=OFF \
    -DBTEST_BUILD_BENCHMARKS=OFF -DBTEST_BUILD_EXAMPLES=OFF ${CMAKE_ARGS:-} >/dev/null
if [ -n "${FUZZ_TARGETS:-}" ]; then
    fuzz_build_targets=()
    for t in $FUZZ_TARGETS; do fuzz_build_targets+=("fuzz_$t"); done
    cmake --build "$BUILD_DIR" -j "$JOBS" --target "${fuzz_build_targets[@]}"
else
    cmake --build "$BUILD_DIR" -j "$JOBS" --target btest_fuzzers
fi
echo "fuzz.sh: built in $(( $(date +%s) - start ))s"

if [ -n "${FUZZ_TARGETS:-}" ]; then
    read -r -a targets <<<"$FUZZ_TARGETS"
else
    targets=()
    for f in fuzz/targets/*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi

work="$BUILD_DIR/fuzz-run"
findings="$BUILD_DIR/fuzz-findings"
rm -rf "$work" "$findings"
mkdir -p "$work" "$findings"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

failed=()
printf '\n%-16s %10s %8s %8s  %s\n' target execs cov ft result
for t in "${targets[@]}"; do
    bin="$BUILD_DIR/fuzz/fuzz_$t"
    mkdir -p "$work/$t/new" "$work/$t/artifacts"
    log="$work/$t/log.txt"
    rc=0
    # One process, one worker: the machine's other core is left to whatever else runs.
    "$bin" -max_total_time="$SECS" -timeout=25 -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$work/$t/artifacts/" "$work/$t/new" "fuzz/corpus/$t" "fuzz/regressions/$t" \
        >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    covline=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$covline")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$covline")
    shopt -s nullglob
    artifacts=("$work/$t/artifacts"/*)
    shopt -u nullglob
    if [ "$rc" -ne 0 ] || [ ${#artifacts[@]} -ne 0 ]; then
        printf '%-16s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "FINDING (exit $rc)"
        failed+=("$t")
        echo "----- $t: last lines of the libFuzzer log -----"
        tail -n 60 "$log"
        for a in "${artifacts[@]}"; do
            dest="$findings/$t--$(basename "$a")"
            cp "$a" "$dest"
            echo "----- $t: input saved as $dest ($(stat -c %s "$a") bytes) -----"
            od -An -tx1 -v "$a" | head -n 40
        done
        echo "-----"
    else
        printf '%-16s %10s %8s %8s  %s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" ok
    fi
done

echo "fuzz.sh: done in $(( $(date +%s) - start ))s"
if [ ${#failed[@]} -ne 0 ]; then
    echo "fuzz.sh: FINDINGS in: ${failed[*]} (inputs under $findings/; minimise with" \
         "'fuzz_<target> -minimize_crash=1 -runs=100000 <file>' and add to fuzz/regressions/<target>/)" >&2
    exit 1
fi
