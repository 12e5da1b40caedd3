#!/usr/bin/env bash
# Every way of sending a zero-filled TCP stream against both ways of receiving it, on loopback
# and over a veth pair between two network namespaces (benchmarks/netns.sh), one after the
# other in one invocation (zc_probe.cpp says what each method is). Needs root for the veth
# part; without it only loopback runs.
#
#   benchmarks/zerocopy/zc_probe.sh [SECONDS]      default 3 s per pair
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-3}
bin=$(mktemp -d)/zc_probe
trap 'rm -rf "$(dirname "$bin")"; benchmarks/netns.sh down btzc >/dev/null 2>&1 || true' EXIT
c++ -O2 -std=c++20 -pthread -o "$bin" benchmarks/zerocopy/zc_probe.cpp
methods=(copy sendfile splice vmsplice zerocopy)

echo "== loopback (127.0.0.1), both ends in one process; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for rx in copy trunc; do
    for m in "${methods[@]}"; do
        nice "$bin" local "$m" "$rx" "$secs" | paste -sd' '
    done
done

if [ "$(id -u)" -eq 0 ] && command -v ip >/dev/null && command -v tc >/dev/null; then
    benchmarks/netns.sh up btzc >/dev/null
    echo "== veth pair, mtu 1500, fq (btzc-cli 198.18.0.2 -> btzc-srv 198.18.0.1); load: $(cut -d' ' -f1-3 /proc/loadavg)"
    port=17100
    for rx in copy trunc; do
        for m in "${methods[@]}"; do
            port=$((port + 1))
            out=$(mktemp)
            ip netns exec btzc-srv nice "$bin" recv "$port" "$rx" >"$out" &
            r=$!
            ip netns exec btzc-cli nice "$bin" send 198.18.0.1 "$port" "$m" "$secs" | tr '\n' ' '
            wait "$r"
            cat "$out"
            rm -f "$out"
        done
    done
else
    echo "(not root, or no ip/tc: the veth part is skipped)"
fi
