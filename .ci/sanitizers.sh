#!/usr/bin/env bash
# Sanitizer jobs (issue 6):
#   1. the whole test suite (unit, sim, standalone checks, fuzz corpus/regression replays) built
#      with clang, AddressSanitizer + UndefinedBehaviorSanitizer, run by ctest — except the
#      real-socket tests (tests/transport, the CLI), which get job 2 (the allocation-counting
#      tests are not built with sanitizers: tests/CMakeLists.txt);
#   2. the real-socket tests (ctest -R "^(transport|cli|probe): ") built with ThreadSanitizer. When the
#      build defines no such test yet, the job says so and passes.
# Zero reports: every sanitizer stops the process at its first report, which fails the test.
# Suppressions are for third-party code only, each with its reason (.ci/tsan.supp, if any).
#
# Environment: JOBS (default 2), ASAN_BUILD_DIR (build-asan-clang), TSAN_BUILD_DIR
# (build-tsan), CMAKE_ARGS (extra configure arguments), SANITIZERS (default "asan tsan").
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=${JOBS:-2}
ASAN_DIR=${ASAN_BUILD_DIR:-build-asan-clang}
TSAN_DIR=${TSAN_BUILD_DIR:-build-tsan}
SANITIZERS=${SANITIZERS:-asan tsan}
start=$(date +%s)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
socket_tests='^(transport|cli): '
# Also under TSan: the probe's tests (HTTP threads, the probe's slots); they run under ASan too.
tsan_tests='^(transport|cli|probe): '

configure() {  # dir, sanitizers, extra args...
    local dir=$1 san=$2
    shift 2
    cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        "${launcher[@]}" -DBTEST_SANITIZE="$san" -DBTEST_BUILD_TESTS=ON -DBTEST_BUILD_BENCHMARKS=OFF \
        "$@" ${CMAKE_ARGS:-} >/dev/null
}

if [[ " $SANITIZERS " == *" asan "* ]]; then
    echo "=== sanitizers.sh: ASan + UBSan build ($(( $(date +%s) - start ))s)"
    configure "$ASAN_DIR" address,undefined -DBTEST_BUILD_FUZZERS=ON
    cmake --build "$ASAN_DIR" -j "$JOBS"
    echo "=== sanitizers.sh: ASan + UBSan tests, real-socket tests excluded ($(( $(date +%s) - start ))s)"
    ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$ASAN_DIR" --output-on-failure -j "$JOBS" --timeout 900 -E "$socket_tests"
fi

if [[ " $SANITIZERS " == *" tsan "* ]]; then
    echo "=== sanitizers.sh: TSan build ($(( $(date +%s) - start ))s)"
    configure "$TSAN_DIR" thread -DBTEST_BUILD_FUZZERS=OFF -DBTEST_BUILD_EXAMPLES=OFF
    # Only what the real-socket tests need (the test executables pull in the apps they spawn):
    # the rest of the suite ran under ASan, and the allocation-counting tests replace operator
    # new, which TSan's runtime also defines.
    socket_targets=()
    available=$(cmake --build "$TSAN_DIR" --target help)
    for t in btest_transport_tests btest_cli_tests btest_probe_tests; do
        grep -q "^$t: " <<<"$available" && socket_targets+=("$t")
    done
    if [ ${#socket_targets[@]} -ne 0 ]; then
        cmake --build "$TSAN_DIR" -j "$JOBS" --target "${socket_targets[@]}"
    fi
    n=$(ctest --test-dir "$TSAN_DIR" -N -R "$tsan_tests" | sed -n 's/^Total Tests: *//p')
    if [ "${n:-0}" -eq 0 ]; then
        echo "=== sanitizers.sh: no real-socket tests (ctest -R \"$tsan_tests\") in this build yet: TSan job skipped"
    else
        echo "=== sanitizers.sh: TSan, $n real-socket tests ($(( $(date +%s) - start ))s)"
        tsan_opts="halt_on_error=1:second_deadlock_stack=1"
        [ -f .ci/tsan.supp ] && tsan_opts="$tsan_opts:suppressions=$PWD/.ci/tsan.supp"
        # Clang 14's TSan cannot map its shadow under the high-entropy ASLR of recent kernels
        # ("unexpected memory mapping"); run without address randomisation where possible.
        norand=()
        if setarch "$(uname -m)" -R true 2>/dev/null; then norand=(setarch "$(uname -m)" -R); fi
        TSAN_OPTIONS="$tsan_opts" "${norand[@]}" \
            ctest --test-dir "$TSAN_DIR" --output-on-failure -j 1 --timeout 900 -R "$tsan_tests"
    fi
fi
echo "=== sanitizers.sh: done in $(( $(date +%s) - start ))s"
