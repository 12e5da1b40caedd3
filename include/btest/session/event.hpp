// Events a session hands to its embedder through poll_event(). Drain until nullopt after every
// call into the session. Nothing is called back from inside feed()/on_timer().
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <system_error>
#include <variant>

#include "btest/core/time.hpp"
#include "btest/wire/command.hpp"

namespace btest {

/// How a test ended. Only `failure` carries an error code (session_closed::error).
enum class end_reason : std::uint8_t {
    completed,     ///< client: the configured duration elapsed
    stopped,       ///< stop() was called (Ctrl-C, SIGTERM, an embedder's decision)
    peer_closed,   ///< the peer closed a connection (a server's normal end of test)
    max_duration,  ///< T_max expired
    quota_exhausted,    ///< server: the test's byte budget ran out (a quota is spent)
    quota_unavailable,  ///< server: the budget ran out while the quota store was unreachable
    failure,       ///< an error: see the code
};

inline const char* to_string(end_reason r) noexcept {
    switch (r) {
    case end_reason::completed: return "completed";
    case end_reason::stopped: return "stopped";
    case end_reason::peer_closed: return "peer_closed";
    case end_reason::max_duration: return "max_duration";
    case end_reason::quota_exhausted: return "quota_exhausted";
    case end_reason::quota_unavailable: return "quota_unavailable";
    case end_reason::failure: return "failure";
    }
    return "?";
}

/// The handshake is over and data may flow.
struct test_started {
    protocol proto = protocol::tcp;
    direction dir = direction::receive;
    std::uint32_t connections = 1;   ///< TCP connections in the test / UDP streams
    std::uint16_t udp_port = 0;      ///< UDP: the server's port P
    std::string user;                ///< authenticated user (empty without auth)
};

/// Authentication outcome (server: for logs and throttling; client: informational).
struct auth_result {
    bool ok = false;
    std::string user;                ///< the name the client presented
};

/// One direction over one report interval.
struct direction_interval {
    bool active = false;             ///< this direction carries data in this test
    std::uint64_t bytes = 0;         ///< bytes sent (tx) / received (rx) in the interval
    std::uint64_t bits_per_second = 0;
    std::uint64_t packets = 0;       ///< UDP datagrams
    std::uint64_t lost_packets = 0;  ///< rx, UDP: lost in the interval
    double jitter_ms = 0;            ///< rx, UDP: current estimate
    /// tx: what the peer reported receiving (sum of the latest STATUS per connection, as
    /// bit/s); nullopt when the peer reports nothing usable (no STATUS, or an opaque stream).
    std::optional<std::uint64_t> peer_bits_per_second;
};

/// Emitted every report interval while the test runs, and once for the final partial interval.
struct interval_report {
    duration start{};                ///< offsets from the start of the test
    duration end{};
    direction_interval tx;
    direction_interval rx;
    std::optional<std::uint8_t> local_cpu;   ///< nullopt until the embedder supplied a sample
    std::optional<std::uint8_t> remote_cpu;
    bool final = false;              ///< the partial interval up to the end of the test
};

/// Something the app should tell the user; the session continues.
struct notice {
    std::error_code code;            ///< e.g. multi_connection_refused
    std::string text;
};

/// Client, multi-connection TCP: open `count` more TCP connections to the same server address
/// and port, then add_connection()/connection_failed() for each.
struct open_connections {
    std::uint32_t count = 0;
    std::uint16_t token = 0;
};

/// The session is over (emitted exactly once).
struct session_closed {
    end_reason reason = end_reason::failure;
    std::error_code error;           ///< set iff reason == failure
};

using event = std::variant<test_started, auth_result, interval_report, notice, open_connections, session_closed>;

inline std::ostream& operator<<(std::ostream& os, const session_closed& e) {
    os << "session_closed{" << to_string(e.reason);
    if (e.error) os << ", " << e.error.message();
    return os << "}";
}

} // namespace btest
