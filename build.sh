#!/usr/bin/env bash
# btestkit build driver for a fresh Debian 12 machine.
#   ./build.sh demo   install what is missing, build, run a real btest on loopback
#   ./build.sh test   install what is missing, build, run every test (ctest)
#   ./build.sh build  build only
# Environment: BUILD_DIR (default build), CXX (default g++), JOBS (default: cores).
set -euo pipefail
cd "$(dirname "$0")"

BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

# Debian packages the build, the tests and the benchmarks need.
PACKAGES=(build-essential cmake ninja-build pkg-config ccache
          libbotan-2-dev libboost1.81-dev catch2 libbenchmark-dev
          clang libclang-rt-14-dev iproute2 procps libsqlite3-dev libcli11-dev libfmt-dev libpq-dev)

install_deps() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "build.sh: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

configure_and_build() {
    local launcher=()
    command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-RelWithDebInfo}" \
        ${CXX:+-DCMAKE_CXX_COMPILER="$CXX"} "${launcher[@]}" ${CMAKE_ARGS:-} >/dev/null
    cmake --build "$BUILD_DIR" -j "$JOBS"
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
        install_deps
        configure_and_build
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
