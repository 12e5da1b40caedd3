#!/usr/bin/env bash
# btestkit build driver for a fresh Debian 12 machine.
#   ./build.sh demo   install what the app needs, build only btest, run a real btest on loopback
#   ./build.sh test   install what is missing, build everything, run every test (ctest)
#   ./build.sh build  build everything
# Environment: BUILD_DIR (default build), CXX (default g++), JOBS (default: cores).
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

# Debian packages the btest app needs (the demo), and what the tests, fuzzers and benchmarks add
# (systemd: systemd-analyze checks the unit files; groff-base: the man page check; prometheus:
# promtool checks the metrics the probe writes; postgresql-15: btest-server-pro's tests start
# throwaway clusters of their own — the package's default cluster is not used; chromium,
# libjs-chart.js, python3: btest-server-pro's dashboard, tested in headless Chromium).
APP_PACKAGES=(build-essential cmake ninja-build pkg-config ccache
              libbotan-2-dev libboost1.81-dev librange-v3-dev libcli11-dev libfmt-dev
              libcpp-httplib-dev libtoml11-dev)
PACKAGES=("${APP_PACKAGES[@]}" catch2 libbenchmark-dev
          clang libclang-rt-14-dev iproute2 procps systemd groff-base prometheus
          libsqlite3-dev libpq-dev postgresql-15 chromium libjs-chart.js python3)

install_deps() {
    local missing=() wanted=("${PACKAGES[@]}")
    [ "${1:-}" = app ] && wanted=("${APP_PACKAGES[@]}")
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "build.sh: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# configure_and_build [app]: everything, or (app) only the btest binary: the tests, fuzzers,
# benchmarks and examples are switched off for the demo and on again by the other commands.
configure_and_build() {
    local launcher=() parts=ON target=()
    command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    if [ "${1:-}" = app ]; then parts=OFF; target=(--target btest); fi
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
        -DBTEST_BUILD_TESTS=$parts -DBTEST_BUILD_FUZZERS=$parts -DBTEST_BUILD_BENCHMARKS=$parts \
        -DBTEST_BUILD_EXAMPLES=$parts -DBTEST_BUILD_PRO=$parts \
        ${CXX:+-DCMAKE_CXX_COMPILER="$CXX"} "${launcher[@]}" ${CMAKE_ARGS:-} >/dev/null
    cmake --build "$BUILD_DIR" -j "$JOBS" "${target[@]}"
}

# A real btest on loopback: a server, then a client running TCP in both directions for 5 s and a
# short UDP test, each printing its per-second lines and summary. DEMO_PORT picks the TCP port.
run_demo() {
    local bin="$BUILD_DIR/apps/btest" port=${DEMO_PORT:-12000} log
    log=$(mktemp)
    "$bin" -s -P "$port" --listen 127.0.0.1 --listen6 none --udp-port-start $((port + 1)) 2>"$log" &
    local srv=$!
    trap 'kill -TERM '"$srv"' 2>/dev/null || true; rm -f '"$log" EXIT
    for _ in $(seq 100); do
        grep -q "listening on" "$log" && break
        kill -0 "$srv" 2>/dev/null || { cat "$log" >&2; exit 2; }
        sleep 0.05
    done
    cat "$log" >&2
    echo
    echo "=== btest -c 127.0.0.1 -t -r -d 5      (TCP, both directions, 5 s, unlimited)"
    "$bin" -c 127.0.0.1 -P "$port" -t -r -d 5
    echo
    echo "=== btest -c 127.0.0.1 -u -t -r -b 200M -d 3      (UDP, both directions, 200 Mbit/s each way)"
    "$bin" -c 127.0.0.1 -P "$port" -u -t -r -b 200M -d 3
    kill -TERM "$srv"
    wait "$srv"
}

case "${1:-demo}" in
    demo)
        install_deps app
        configure_and_build app
        run_demo
        ;;
    test)
        install_deps
        configure_and_build
        ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" --timeout 600
        ;;
    build)
        install_deps
        configure_and_build
        ;;
    deps)
        install_deps
        ;;
    *)
        echo "usage: $0 demo|test|build|deps" >&2
        exit 1
        ;;
esac
