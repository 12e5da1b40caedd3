// The input format of the server_session target, shared with the seed generator so that seeds
// are written in the same terms the target reads them.
//
// Layout (FuzzedDataProvider order): entropy pool, server configuration, peer family, then
// operations until the input is exhausted. Each operation is one `op` and its arguments.
#pragma once

#include <cstdint>

namespace fuzz::server_ops {

enum class op : int {
    advance,        ///< now += step
    fire_timer,     ///< session j: now = max(now, next_deadline()); on_timer(now)
    timer_now,      ///< session j: on_timer(now), due or not
    feed_raw,       ///< socket k: bytes from the input
    feed_canned,    ///< socket k: a well-formed message (see `canned`)
    write,          ///< socket k: write_to() up to r times into a buffer of a chosen size
    datagrams,      ///< session j: next_datagram() up to r times
    feed_datagram,  ///< session j: a datagram from the peer's IP or another one
    close,          ///< socket k: the transport saw EOF, a reset or an error
    stop,           ///< session j: stop(now)
    accept,         ///< a new connection (a new session) from the peer's IP or another
    cpu,            ///< session j: set_local_cpu()
    op_last = cpu,
};

enum class canned : int {
    command,      ///< a COMMAND built from fields
    md5_reply,    ///< the MD5 reply for the challenge this socket received, for a chosen login
    ec_msg1,      ///< EC-SRP5 MSG1 of a fresh client exchange for a chosen login
    ec_msg3,      ///< EC-SRP5 MSG3 answering the MSG2 this socket received
    join,         ///< a JOIN carrying session j's token
    status,       ///< a STATUS record
    zeros,        ///< n zero bytes (test data)
    frame,        ///< `[len][len bytes]` of input (an EC-SRP5-shaped frame of garbage)
    canned_last = frame,
};

inline constexpr std::size_t max_sessions = 6;
inline constexpr std::size_t entropy_pool_max = 1024;

} // namespace fuzz::server_ops
