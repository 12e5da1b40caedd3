#!/usr/bin/env bash
# btest vs iperf3 on loopback, side by side, in one invocation (issue "speed to the limit").
#
#   benchmarks/loopback.sh                 3 repetitions x 10 s per case, every case
#   benchmarks/loopback.sh --quick         2 s per case, 1 repetition (CI: keeps it working,
#                                          judges no speed)
#   benchmarks/loopback.sh --cases tcp_tx,udp_1g --reps 5
#   benchmarks/loopback.sh --client-args --no-gso --server-args "--no-gro --threads 1"
#   benchmarks/loopback.sh --baseline-btest OLD/btest   adds an older btest binary to every round
#   benchmarks/loopback.sh --baseline-args "--no-zerocopy --no-discard"   the same btest with these
#                                          flags (client and server) as the baseline column
#
# Environment: BTEST (the btest binary; default: the first of build-perf/, build/ that has
# one), IPERF3 (default: iperf3 from PATH, installed with apt-get when missing).
# Prints per case the median of each measure for both tools and the ratio btest/iperf3, then
# CPU seconds per GB; exits non-zero only when a run failed (never because of a speed).
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    echo "loopback.sh: installing $*" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

command -v python3 >/dev/null || apt_install python3
IPERF3=${IPERF3:-iperf3}
command -v "$IPERF3" >/dev/null || apt_install iperf3

if [ -z "${BTEST:-}" ]; then
    for d in build-perf build; do
        if [ -x "$d/apps/btest" ]; then BTEST="$d/apps/btest"; break; fi
    done
fi
if [ -z "${BTEST:-}" ] || [ ! -x "$BTEST" ]; then
    echo "loopback.sh: no btest binary (build it: ./build.sh build, or set BTEST)" >&2
    exit 2
fi

exec python3 benchmarks/loopback.py --btest "$BTEST" --iperf3 "$IPERF3" "$@"
