// What a session counted: per-connection counters, and the end-of-test summary with RouterOS's
// three figures per direction (PROTOCOL §12.2: each side computes its own from its counters).
#pragma once

#include <cstdint>
#include <optional>
#include <system_error>

#include "btest/core/time.hpp"
#include "btest/session/event.hpp"

namespace btest {

/// Counters of one TCP connection of a test (64-bit, PROTOCOL §13.11).
struct connection_stats {
    std::uint64_t tx_bytes = 0;                 ///< data bytes written (STATUS excluded)
    std::uint64_t rx_bytes = 0;                 ///< data bytes received (STATUS excluded)
    std::uint64_t last_interval_tx_bytes = 0;   ///< in the last completed report interval
    std::uint64_t last_interval_rx_bytes = 0;
    std::uint32_t status_sent = 0;              ///< STATUS messages written on this connection
    std::uint32_t status_received = 0;
    std::optional<std::uint32_t> peer_bytes;    ///< `bytes` of the latest STATUS received
    bool opaque = false;                        ///< the peer's stream is not zero-filled
};

struct direction_summary {
    bool active = false;
    std::uint64_t bytes = 0;
    std::uint64_t packets = 0;              ///< UDP datagrams
    std::uint64_t lost_packets = 0;         ///< rx, UDP
    double jitter_ms = 0;                   ///< rx, UDP
    std::uint64_t average_bps = 0;          ///< over the whole test
    std::uint64_t average10_bps = 0;        ///< over the last 10 seconds
    std::uint64_t current_bps = 0;          ///< over the last second
};

struct test_summary {
    bool started = false;                   ///< the handshake completed
    duration elapsed{};                     ///< from the start of the test to its end (or now)
    std::uint32_t connections = 0;          ///< TCP connections in the test / UDP streams
    direction_summary tx;
    direction_summary rx;
    std::optional<std::uint8_t> local_cpu;   ///< nullopt until the embedder supplied a sample
    std::optional<std::uint8_t> remote_cpu;
    std::uint64_t status_bytes_sent = 0;    ///< sum of `bytes` over the STATUS messages we sent
    std::uint64_t status_bytes_received = 0;///< … over the STATUS messages the peer sent
    std::uint64_t status_sent = 0;
    std::uint64_t status_received = 0;
    std::optional<end_reason> reason;       ///< set once the session is over
    std::error_code error;
};

} // namespace btest
