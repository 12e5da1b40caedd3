#!/usr/bin/env bash
# A stand-in for a real NIC path: two network namespaces joined by a veth pair with an MTU of
# 1500 and an fq qdisc on each end, addressed from the benchmarking range 198.18.0.0/15
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
    tc -n "$srv" qdisc replace dev "${prefix}s" root fq
    tc -n "$cli" qdisc replace dev "${prefix}c" root fq
    # A UDP test binds its data sockets to ports above the control port; let them all be used.
    for ns in "$srv" "$cli"; do
        ip netns exec "$ns" sysctl -qw net.core.rmem_max=33554432 net.core.wmem_max=33554432
    done
    echo "$srv 198.18.0.1 <-> $cli 198.18.0.2 (veth, mtu 1500, fq)"
    ;;
down)
    down
    ;;
*)
    echo "usage: $0 up|down [PREFIX]" >&2
    exit 2
    ;;
esac
