// `btest probe`'s request logic, apart from HTTP: a /probe request (query parameters and the
// scrape timeout Prometheus sends) in, a status and a Prometheus text body out; and the
// exporter's own /metrics.
//
// Semantics (README "btest probe"):
//   - target: HOST, HOST:PORT or [V6]:PORT (port 2000 by default); module: a [modules.NAME] of
//     the config (optional when the config has one module, or one named "default"). Any other
//     parameter is refused (400): credentials come from the config file only.
//   - targets outside the allow-list: 403 (a name must resolve to allowed addresses only,
//     unless the name itself is listed; the test connects to the checked address).
//   - time: budget = X-Prometheus-Scrape-Timeout-Seconds − timeout offset (0.5 s by default).
//     The test's duration is the module's, shortened when it would not fit the budget with a
//     reserve for connecting and the handshake; whatever still runs at the end of the budget is
//     stopped, and the answer goes out within the budget (plus a 250 ms grace for the stop).
//   - concurrency: at most max_concurrent tests at once. A request beyond that waits in a FIFO
//     of at most max_queued, but only as long as its whole planned test still fits its budget;
//     otherwise 503 (Prometheus records the scrape as failed — `up` 0 — rather than a false
//     probe_success 0 for the target).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/http_server.hpp"
#include "common/prometheus.hpp"
#include "probe/client_run.hpp"
#include "probe/config.hpp"

namespace btest_probe {

struct service_options {
    std::size_t max_concurrent = 1;                      ///< tests at once
    std::size_t max_queued = 8;                          ///< requests waiting for a slot
    std::chrono::milliseconds timeout_offset{500};       ///< subtracted from the scrape timeout
};

struct http_answer {
    int status = 200;
    std::string content_type;
    std::string body;
};

/// What one probe found; rendered by render_probe().
struct probe_outcome {
    bool success = false;
    double duration_seconds = 0;                   ///< the whole probe, resolution included
    std::string error_class;                       ///< empty on success
    std::string error_detail;                      ///< for the log, never for the metrics
    std::string module;
    btest::protocol proto = btest::protocol::tcp;
    btest::direction dir = btest::direction::receive;
    std::optional<auth_kind> auth;
    std::optional<btest::test_summary> summary;    ///< set when the test started
    double planned_test_seconds = 0;               ///< the test duration asked of the session
};

/// The /probe answer's metrics.
std::string render_probe(const probe_outcome& o);

class service {
public:
    service(probe_config cfg, service_options opt);

    /// GET /probe. `params`: the decoded query parameters; `scrape_timeout`: the header's
    /// value, if sent; `arrived`: when the request reached the server (the scrape timeout
    /// counts from there). Blocks for the test (on an HTTP worker thread).
    http_answer probe(const std::vector<std::pair<std::string, std::string>>& params,
                      const std::optional<std::string>& scrape_timeout,
                      std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now());

    /// GET /metrics: the exporter's own counters, the HTTP server's and the process's.
    std::string metrics(const btest_app::http::server_counters& http) const;

    /// Running tests stop now, waiting requests get 503, new ones too.
    void shutdown();

    /// One line per probe for the log (stderr), called after every probe; may be empty.
    std::function<void(const std::string&)> log;

private:
    struct slot_guard;
    bool acquire(std::chrono::steady_clock::time_point wait_until);
    void release();
    void count_refusal(const char* reason);

    probe_config cfg_;
    service_options opt_;
    std::atomic<bool> stopping_{false};

    mutable std::mutex slots_m_;
    std::condition_variable slots_cv_;
    std::size_t running_ = 0;
    std::deque<std::uint64_t> queue_;
    std::uint64_t next_ticket_ = 0;

    mutable std::mutex stats_m_;
    std::map<std::pair<std::string, bool>, std::uint64_t> probes_;   // (module, success) → count
    std::map<std::string, std::uint64_t> errors_;                    // error class → count
    std::map<std::string, std::uint64_t> refused_;                   // bad_request|forbidden|busy → count
    btest_app::prom::histogram durations_{{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30, 60, 120}};
};

} // namespace btest_probe
