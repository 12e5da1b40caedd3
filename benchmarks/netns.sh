#!/usr/bin/env bash
# A stand-in for a real NIC path: two network namespaces joined by a veth pair with an MTU of
# 1500 and a queueing discipline on each end (fq where the kernel has it, else fq_codel, else
# pfifo_fast: a veth has none by default), addressed from the benchmarking range 198.18.0.0/15
# (RFC 2544), which exists only inside these namespaces. Needs root (ip, tc).
#
#   benchmarks/netns.sh up   [PREFIX]   creates PREFIX-srv (198.18.0.1) and PREFIX-cli (198.18.0.2)
#   benchmarks/netns.sh down [PREFIX]   removes them (and with them the veth pair)
#
# PREFIX defaults to btnet. Run a command inside one with `ip netns exec PREFIX-srv CMD`.
set -euo pipefail
cmd=${1:-}
prefix=${2:-btnet}
srv="$prefix-srv"
cli="$prefix-cli"

down() {
    ip netns del "$srv" 2>/dev/null || true
    ip netns del "$cli" 2>/dev/null || true
}

case "$cmd" in
up)
    down
    trap 'down' ERR
    ip netns add "$srv"
    ip netns add "$cli"
    ip link add "${prefix}s" netns "$srv" type veth peer name "${prefix}c" netns "$cli"
    ip -n "$srv" addr add 198.18.0.1/30 dev "${prefix}s"
    ip -n "$cli" addr add 198.18.0.2/30 dev "${prefix}c"
    for ns in "$srv" "$cli"; do
        ip -n "$ns" link set lo up
    done
    ip -n "$srv" link set "${prefix}s" mtu 1500 up
    ip -n "$cli" link set "${prefix}c" mtu 1500 up
    qdisc=""
    for q in fq fq_codel pfifo_fast; do
        if tc -n "$srv" qdisc replace dev "${prefix}s" root "$q" 2>/dev/null; then
            qdisc=$q
            break
        fi
    done
    [ -n "$qdisc" ] || { echo "netns.sh: no qdisc could be set" >&2; down; exit 1; }
    tc -n "$cli" qdisc replace dev "${prefix}c" root "$qdisc"
    trap - ERR
    echo "$srv 198.18.0.1 <-> $cli 198.18.0.2 (veth, mtu 1500, $qdisc)"
    ;;
down)
    down
    ;;
*)
    echo "usage: $0 up|down [PREFIX]" >&2
    exit 2
    ;;
esac
