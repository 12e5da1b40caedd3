// The input format of the session_pair target, shared with the seed generator.
//
// Layout (FuzzedDataProvider order): entropy pool, server configuration, client configuration,
// then operations until the input is exhausted.
#pragma once

#include <cstdint>

namespace fuzz::pair_ops {

enum class op : int {
    advance,          ///< now += step
    fire_timer,       ///< the client or server session j: now = max(now, deadline); on_timer
    pump,             ///< link k, one direction: write_to() into the pipe, up to r times
    deliver,          ///< link k, one direction: n bytes from the pipe to the receiver
    deliver_corrupt,  ///< the same with one byte changed
    send_datagrams,   ///< the client or server session j: next_datagram() into the air
    land_datagrams,   ///< deliver (or drop) up to r datagrams, possibly out of order
    close,            ///< link k: one side's transport sees EOF/reset; the other sees EOF
    stop,             ///< the client or server session j: stop(now)
    connect_extra,    ///< after open_connections: an extra connection reaches a new server session
    extra_failed,     ///< after open_connections: an extra connection fails
    cpu,              ///< set_local_cpu() on the client or server session j
    op_last = cpu,
};

inline constexpr std::size_t max_server_sessions = 8;
inline constexpr std::size_t entropy_pool_max = 1024;

} // namespace fuzz::pair_ops
