// The probe's one contact with the Asio client (transports/asio/.../client.hpp): run one test,
// options in, a result out. When the client's API changes, this function is the place to adapt.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

#include <boost/asio/ip/address.hpp>

#include "btest/core/entropy.hpp"
#include "btest/session/config.hpp"
#include "btest/session/stats.hpp"

namespace btest_probe {

/// The authentication the server asked for.
enum class auth_kind : std::uint8_t { none, md5, ecsrp5 };

struct client_run_options {
    /// Already checked against the allow-list: the client connects here and never resolves.
    boost::asio::ip::address address;
    std::uint16_t port = 2000;
    btest::client_config session;                 ///< test parameters, credentials, duration
    std::chrono::milliseconds connect_timeout{3000};
    /// Whatever state the run is in at this time, it is stopped (a running test ends cleanly,
    /// with its summary; a connection attempt is abandoned).
    std::chrono::steady_clock::time_point deadline;
    /// Checked every 100 ms: once true, the run stops as at the deadline (the exporter is
    /// shutting down). May be null.
    const std::atomic<bool>* cancel = nullptr;
};

struct client_run_result {
    bool connected = false;                       ///< the control connection came up
    std::error_code connect_error;                ///< why it did not (connected == false)
    std::string connect_detail;
    bool deadline_hit = false;                    ///< stopped by options.deadline
    std::optional<btest::test_summary> summary;   ///< the session's, once connected
    std::optional<auth_kind> auth;                ///< known once the server's auth word arrived
    std::uint64_t control_bytes_received = 0;     ///< 0: the server closed without a greeting
};

/// How long after the deadline a stopped test may take to close before it is abandoned.
inline constexpr std::chrono::milliseconds stop_grace{250};

/// Runs one client test on the calling thread (an io_context of its own) and returns when the
/// test is over, at the latest `stop_grace` after `deadline`. `rng` must be a CSPRNG (EC-SRP5).
client_run_result run_client_test(const client_run_options& options, btest::entropy& rng);

} // namespace btest_probe
