// What a session's handshake negotiated for the test phase (session::params()): valid once the
// test started (test_started was emitted).
#pragma once

#include <cstdint>
#include <string>

#include "btest/core/time.hpp"
#include "btest/wire/command.hpp"

namespace btest {

struct test_params {
    protocol proto = protocol::tcp;
    direction dir = direction::receive;
    std::uint32_t streams = 1;          ///< UDP streams (N of §8.6)
    bool random_data = false;
    std::uint32_t tcp_chunk = wire::default_tcp_chunk;
    std::uint32_t udp_size = 1500;      ///< whole IP datagram size S of what we send
    std::uint64_t tx_cap = 0;           ///< bit/s; 0 = unlimited
    std::uint16_t udp_port = 0;         ///< the server's port P
    bool udp_single_destination = false;
    bool udp_reply_to_source = false;
    duration duration_limit{};          ///< client: test duration (0 = until stop)
    std::string user;
};

} // namespace btest
