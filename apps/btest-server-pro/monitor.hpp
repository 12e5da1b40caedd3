// What `btest-server-pro serve` knows about itself, for its operators: the running tests with
// their latest rates and per-second history (the dashboard's live view) and the counters of
// /metrics. The server's observer and admission hook write into it on io threads and service
// workers (short critical sections under one mutex, nothing that waits); the HTTP threads read
// copies of it. Label sets are bounded: protocol × direction × end reason, auth method × result,
// refusal cause; no per-address or per-user label ever.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "btest/pro/storage.hpp"
#include "btest/pro/utc_time.hpp"
#include "common/prometheus.hpp"

namespace pro_serve {

/// Why a connection or a test was refused, as /metrics labels it.
enum class refusal_cause : std::uint8_t {
    max_sessions,       ///< the server runs --max-sessions tests
    per_ip,             ///< the address holds its maximum of connections (--max-conn-per-ip)
    throttle,           ///< the address failed to log in too often lately
    deny_list,          ///< --allow/--deny
    quota,              ///< a quota is spent
    quota_unavailable,  ///< the database could not be asked
};
inline constexpr std::size_t refusal_causes = 6;
const char* to_string(refusal_cause c) noexcept;

/// A running test as the live view shows it. Directions are the server's (tx = server → client).
struct live_test {
    std::int64_t session_id = 0;  ///< its row in the history (GET /api/v1/sessions/{id} once it ended)
    btest::pro::sys_ms start{};
    std::string peer_ip;          ///< canonical text (the visitor filter compares it)
    std::uint16_t peer_port = 0;
    std::string peer;             ///< ip:port / [v6]:port
    std::string user;             ///< empty without authentication
    std::string protocol, direction;
    std::uint32_t connections = 1;
    std::uint64_t tx_bytes = 0, rx_bytes = 0;                    ///< so far (the reported intervals)
    std::uint64_t tx_bits_per_second = 0, rx_bits_per_second = 0;  ///< the latest interval
    std::uint64_t lost_packets = 0;
    std::deque<btest::pro::interval_row> intervals;  ///< the latest max_live_intervals
};

class monitor {
public:
    /// Per-second rates a live test keeps for the chart (older ones are in the history).
    static constexpr std::size_t max_live_intervals = 300;

    monitor();

    // ---- written by the server (io threads, service workers) --------------------------------
    /// The server first saw test `test_id` (its login, or its command without authentication):
    /// the handshake clock starts.
    void seen(std::uint64_t test_id);
    void auth(const char* method, bool ok);
    void refused(refusal_cause c);
    /// The database admitted the test: it is live from now on.
    void admitted(std::uint64_t test_id, live_test t);
    /// Data flows: the handshake (login, admission, setup) is over.
    void started(std::uint64_t test_id);
    void interval(std::uint64_t test_id, const btest::pro::interval_row& r);
    /// The test ended with these totals (the same figures its history row gets).
    void ended(std::uint64_t test_id, const btest::pro::session_row& totals, std::uint64_t tx_packets,
               std::uint64_t rx_packets);
    /// A connection closed before it became a test.
    void forget(std::uint64_t test_id);

    // ---- read by the HTTP threads ------------------------------------------------------------
    /// Running tests, oldest first; only those from `ip` when given.
    std::vector<live_test> live(const std::optional<std::string>& ip) const;

    /// Everything that is not the process's: sessions, bytes, auth, refusals, handshakes,
    /// cut-offs; `storage_errors` and `io_threads` come from the caller.
    void write_metrics(btest_app::prom::text_writer& w, std::uint64_t storage_errors, std::size_t io_threads) const;

private:
    struct running {
        live_test view;
        std::uint64_t counted_tx = 0, counted_rx = 0;  ///< bytes already added to the counters
    };
    /// sessions_total key: protocol (tcp/udp) × direction (3) × end reason (as text).
    using session_key = std::array<std::string, 3>;

    mutable std::mutex m_;
    std::map<std::uint64_t, std::chrono::steady_clock::time_point> first_seen_;
    std::map<std::uint64_t, running> live_;
    std::map<session_key, std::uint64_t> sessions_total_;
    std::uint64_t bytes_in_ = 0, bytes_out_ = 0, packets_in_ = 0, packets_out_ = 0, lost_ = 0, cutoffs_ = 0;
    std::map<std::pair<std::string, bool>, std::uint64_t> auth_;
    std::array<std::uint64_t, refusal_causes> refusals_{};
    btest_app::prom::histogram handshake_;
};

} // namespace pro_serve
