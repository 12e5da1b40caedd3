#!/usr/bin/env bash
# The static btest for 64-bit ARM (Raspberry Pi, ARM routers and boxes), cross-compiled with
# Debian's toolchain and Botan from Debian's arm64 package, then smoke-tested under qemu-user:
# the arm64 binary as a client against the native server on loopback, one TCP and one UDP test.
# Run as root on Debian 12 (it adds the arm64 architecture to apt to download Botan's package;
# nothing of arm64 is installed). Build directory: build-aarch64/.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "=== aarch64.sh: $* ($(( $(date +%s) - start ))s)"; }
fail() { echo "aarch64.sh: FAILED: $*" >&2; exit 1; }
# expect PATTERN COMMAND...: runs COMMAND, shows its output, fails unless it exits 0 and prints PATTERN.
expect() {
    local pattern=$1 out rc=0
    shift
    out=$("$@" 2>&1) || rc=$?
    printf '%s\n' "$out"
    [ $rc -eq 0 ] || fail "$* exited with $rc"
    grep -q -- "$pattern" <<< "$out" || fail "$*: no '$pattern' in its output"
}
export DEBIAN_FRONTEND=noninteractive
PORT=${AARCH64_TEST_PORT:-12800}
B=build-aarch64
SYSROOT=$PWD/$B/sysroot

step "dependencies: cross toolchain, qemu-user, Botan's arm64 package"
./build.sh deps
dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64; apt-get update -qq; }
need=()
for p in g++-aarch64-linux-gnu qemu-user-static file; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq; apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi
# libbotan-2-dev is not co-installable across architectures, so its arm64 package is unpacked
# into a sysroot of our own instead of being installed.
if [ ! -f "$SYSROOT/usr/lib/aarch64-linux-gnu/libbotan-2.a" ]; then
    rm -rf "$SYSROOT" "$B/debs" && mkdir -p "$SYSROOT" "$B/debs"
    (cd "$B/debs" && apt-get download -qq libbotan-2-dev:arm64) || { apt-get update -qq; (cd "$B/debs" && apt-get download -qq libbotan-2-dev:arm64); }
    dpkg-deb -x "$B"/debs/libbotan-2-dev_*_arm64.deb "$SYSROOT"
fi
# Header-only libraries are the same for every architecture: linked from the host. range-v3's
# CMake files are copied, not linked, so that they point at the sysroot's include directory
# (through a link they resolve to the host's /usr/include, which a cross build must not see).
for h in boost CLI fmt range meta concepts std; do ln -sfn "/usr/include/$h" "$SYSROOT/usr/include/$h"; done
mkdir -p "$SYSROOT/usr/lib/cmake" && rm -rf "$SYSROOT/usr/lib/cmake/range-v3" && cp -r /usr/lib/cmake/range-v3 "$SYSROOT/usr/lib/cmake/"

step "cross-compile the static btest"
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake --no-warn-unused-cli -S . -B "$B" -G Ninja -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake \
    -DBTEST_CROSS_SYSROOT="$SYSROOT" -DCMAKE_BUILD_TYPE=Release -DBTEST_STATIC=ON -DBTEST_WERROR=ON \
    -DBTEST_BUILD_TESTS=OFF -DBTEST_BUILD_FUZZERS=OFF -DBTEST_BUILD_BENCHMARKS=OFF -DBTEST_BUILD_EXAMPLES=OFF \
    "${launcher[@]}" >/dev/null
cmake --build "$B" -j "$(nproc)" --target btest
aarch64-linux-gnu-strip -o "$B/btest-aarch64" "$B/apps/btest"
expect "ARM aarch64.*statically linked" file "$B/btest-aarch64"
expect "static, .* aarch64" qemu-aarch64-static "$B/btest-aarch64" --version

step "native server, arm64 client under qemu: one TCP and one UDP test on loopback"
server=${BTEST_NATIVE:-build/apps/btest}
if [ ! -x "$server" ]; then
    cmake -S . -B build-native-server -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBTEST_BUILD_TESTS=OFF \
        -DBTEST_BUILD_FUZZERS=OFF -DBTEST_BUILD_BENCHMARKS=OFF -DBTEST_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
    cmake --build build-native-server -j "$(nproc)" --target btest
    server=build-native-server/apps/btest
fi
log=$(mktemp)
"$server" -s -P "$PORT" --listen 127.0.0.1 --listen6 none --udp-port-start $((PORT + 1)) -a ops -p arm 2>"$log" &
srv=$!
trap 'kill -TERM $srv 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; kill -0 $srv 2>/dev/null || { cat "$log"; fail "server did not start"; }; sleep 0.05; done
client=(qemu-aarch64-static "$B/btest-aarch64" -c 127.0.0.1 -P "$PORT" -a ops -p arm)
expect "ended: completed" "${client[@]}" -t -r -b 50M -d 2      # TCP, EC-SRP5 login
expect "ended: completed" "${client[@]}" -u -t -r -b 50M -d 2   # UDP
kill -TERM $srv
wait $srv || fail "server exit status"
trap 'rm -f "$log"' EXIT

step "size"
echo "static btest (aarch64):   $(stat -c %s "$B/btest-aarch64") bytes, stripped"
step "done"
