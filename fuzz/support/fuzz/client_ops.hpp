// The input format of the client_session target, shared with the seed generator.
//
// Layout (FuzzedDataProvider order): entropy pool, client configuration, server family, then
// operations until the input is exhausted.
#pragma once

#include <cstdint>

namespace fuzz::client_ops {

enum class op : int {
    advance,            ///< now += step
    fire_timer,         ///< now = max(now, next_deadline()); on_timer(now)
    timer_now,          ///< on_timer(now), due or not
    feed_raw,           ///< connection k: bytes from the input
    feed_canned,        ///< connection k: a well-formed server message (see `canned`)
    write,              ///< connection k: write_to() up to r times
    datagrams,          ///< next_datagram() up to r times
    feed_datagram,      ///< a datagram from the server's IP or another one
    close,              ///< connection k: EOF, reset or error
    stop,               ///< stop(now)
    add_connection,     ///< after open_connections: one more connection is established
    connection_failed,  ///< after open_connections: one could not be opened
    cpu,                ///< set_local_cpu()
    op_last = cpu,
};

enum class canned : int {
    hello,      ///< 01 00 00 00
    auth_word,  ///< OK (with or without a token), MD5 + challenge, EC-SRP5, failed
    udp_port,   ///< a 2-byte port
    status,     ///< a STATUS record
    zeros,      ///< n zero bytes (test data)
    ec_msg2,    ///< MSG2 of a server exchange answering the MSG1 the client wrote
    ec_msg4,    ///< MSG4 (and an OK word) answering the MSG3 the client wrote
    join_reply, ///< 01 HI LO 00 with the session's token
    frame,      ///< `[len][len bytes]` of input
    canned_last = frame,
};

inline constexpr std::size_t entropy_pool_max = 1024;

} // namespace fuzz::client_ops
