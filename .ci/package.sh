#!/usr/bin/env bash
# Shipping checks (run as root on a Debian 12 machine, like CI):
#   1. the Debian package: cpack builds btestkit_*.deb (Depends from dpkg-shlibdeps), apt-get
#      installs it, the installed btest prints --version, passes a TCP and a UDP test on loopback
#      with its server started the way btest-server.service starts it, the installed units pass
#      systemd-analyze verify; the installed btest-server-pro serves a login test for an account
#      it added; apt-get purge then leaves none of the package's files behind;
#   2. the static btest (-DBTEST_STATIC=ON): ldd says it is not a dynamic executable, and it runs.
# Build directories: build-package/, build-static/. Prints the .deb and binary sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "=== package.sh: $* ($(( $(date +%s) - start ))s)"; }
fail() { echo "package.sh: FAILED: $*" >&2; exit 1; }
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
PORT=${PACKAGE_TEST_PORT:-12600}
[ "$(id -u)" -eq 0 ] || fail "run as root (installs and purges a package)"

step "dependencies"
./build.sh deps
need=()
for p in dpkg-dev file systemd; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then apt-get update -qq; apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; fi

OFF=(-DBTEST_BUILD_TESTS=OFF -DBTEST_BUILD_FUZZERS=OFF -DBTEST_BUILD_BENCHMARKS=OFF -DBTEST_BUILD_EXAMPLES=OFF)
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)

step "build the Debian package (cpack -G DEB)"
cmake -S . -B build-package -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr \
    -DBTEST_WERROR=ON "${OFF[@]}" "${launcher[@]}" >/dev/null
cmake --build build-package -j "$(nproc)"
rm -f build-package/*.deb
(cd build-package && cpack -G DEB >/dev/null)
deb=$(ls build-package/btestkit_*.deb)
dpkg-deb -f "$deb" Package Version Architecture Depends Conflicts Installed-Size
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libbotan-2 libc6 libstdc++6 libsqlite3-0 libpq5; do
    [[ $depends == *"$lib"* ]] || fail "Depends lacks $lib: $depends"
done

step "install it with apt-get"
dpkg-query -W -f='${Status}' btestkit 2>/dev/null | grep -q "install ok installed" && apt-get purge -y -qq btestkit >/dev/null
apt-get install -y -qq "./$deb" >/dev/null
files=$(dpkg -L btestkit)
[ "$(command -v btest)" = /usr/bin/btest ] || fail "btest is not /usr/bin/btest"
expect "^revision: " btest --version
[ -f /usr/share/man/man1/btest.1 ] || fail "no man page"
if command -v man >/dev/null; then man -w btest | grep -q /usr/share/man/man1/btest.1 || fail "man does not find btest(1)"; fi
[ "$(stat -c %a /etc/default/btest-server)" = 600 ] || fail "/etc/default/btest-server is not mode 600"
systemd-analyze verify /usr/lib/systemd/system/btest-server.service
systemd-analyze security --offline=true --no-pager /usr/lib/systemd/system/btest-server.service | tail -1
expect "btest-server-pro " btest-server-pro --version
[ -f /usr/share/man/man8/btest-server-pro.8 ] || fail "no btest-server-pro(8)"
[ "$(stat -c %a /etc/default/btest-server-pro)" = 600 ] || fail "/etc/default/btest-server-pro is not mode 600"
systemd-analyze verify /usr/lib/systemd/system/btest-server-pro.service
systemd-analyze security --offline=true --no-pager /usr/lib/systemd/system/btest-server-pro.service | tail -1

step "a TCP and a UDP test on loopback with the installed binary"
# The server as the unit starts it: the example configuration's options, then loopback only.
# shellcheck disable=SC1091
BTEST_SERVER_OPTS=$(. /etc/default/btest-server; echo "${BTEST_SERVER_OPTS:-}")
log=$(mktemp)
# shellcheck disable=SC2086
/usr/bin/btest -s $BTEST_SERVER_OPTS -P "$PORT" --listen 127.0.0.1 --listen6 none --udp-port-start $((PORT + 1)) 2>"$log" &
srv=$!
trap 'kill -TERM $srv 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q "listening on" "$log" && break; kill -0 $srv 2>/dev/null || { cat "$log"; fail "server did not start"; }; sleep 0.05; done
expect "ended: completed" /usr/bin/btest -c 127.0.0.1 -P "$PORT" -t -r -d 2
expect "ended: completed" /usr/bin/btest -c 127.0.0.1 -P "$PORT" -u -t -r -b 100M -d 2
kill -TERM $srv
wait $srv || fail "server exit status $?"
trap 'rm -f "$log"' EXIT

step "the installed btest-server-pro: an account, a login test, its history row"
pro_dir=$(mktemp -d)
db="sqlite:$pro_dir/accounts.db"
expect "added" btest-server-pro user add ci -p ci-pass --db "$db"
/usr/bin/btest-server-pro serve --db "$db" -P $((PORT + 300)) --listen 127.0.0.1 --listen6 none \
    --udp-port-start $((PORT + 301)) >"$log" 2>&1 &
srv=$!
trap 'kill -TERM $srv 2>/dev/null || true; rm -rf "$log" "$pro_dir"' EXIT
for _ in $(seq 100); do grep -q "btest-server-pro: database" "$log" && break; kill -0 $srv 2>/dev/null || { cat "$log"; fail "btest-server-pro did not start"; }; sleep 0.05; done
expect "ended: completed" /usr/bin/btest -c 127.0.0.1 -P $((PORT + 300)) -a ci -p ci-pass -t -r -d 2
kill -TERM $srv
wait $srv || fail "btest-server-pro exit status $?"
expect '"user":"ci"' btest-server-pro sessions --json --db "$db"
rm -rf "$pro_dir"
trap 'rm -f "$log"' EXIT

step "apt-get purge leaves nothing behind"
apt-get purge -y -qq btestkit >/dev/null
if dpkg-query -W -f='${Status}' btestkit 2>/dev/null | grep -q "installed"; then fail "btestkit still installed"; fi
left=()
while IFS= read -r f; do
    [ "$f" = "/." ] && continue
    if [ -d "$f" ] && [ ! -L "$f" ]; then
        # A directory may stay only if another package owns it too (/usr/bin, /etc/default, ...).
        dpkg -S "$f" >/dev/null 2>&1 || left+=("$f")
    elif [ -e "$f" ] || [ -L "$f" ]; then
        left+=("$f")
    fi
done <<< "$files"
for f in /var/lib/btest /var/lib/private/btest; do [ -e "$f" ] && left+=("$f"); done
[ ${#left[@]} -eq 0 ] || fail "left behind after purge: ${left[*]}"
echo "purged: none of the package's $(wc -l <<< "$files") paths is left"

step "static btest (-DBTEST_STATIC=ON)"
cmake -S . -B build-static -G Ninja -DCMAKE_BUILD_TYPE=Release -DBTEST_STATIC=ON -DBTEST_WERROR=ON \
    "${OFF[@]}" "${launcher[@]}" >/dev/null
cmake --build build-static -j "$(nproc)" --target btest
strip -o build-static/btest-x86_64 build-static/apps/btest
# The promise: nothing is loaded at run time (README "Install").
out=$(ldd build-static/btest-x86_64 2>&1 || true)
echo "ldd: $out"
grep -q "not a dynamic executable" <<< "$out" || fail "static btest is dynamic"
expect "statically linked" file build-static/btest-x86_64
expect "static" build-static/btest-x86_64 --version

step "sizes"
echo "btestkit .deb:            $(stat -c %s "$deb") bytes ($deb)"
echo "static btest (x86-64):    $(stat -c %s build-static/btest-x86_64) bytes, stripped"
step "done"
