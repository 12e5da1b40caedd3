#include "monitor.hpp"

#include <utility>

namespace pro_serve {

namespace prom = btest_app::prom;
using prom::metric_type;

const char* to_string(refusal_cause c) noexcept {
    switch (c) {
    case refusal_cause::max_sessions: return "max_sessions";
    case refusal_cause::per_ip: return "per_ip";
    case refusal_cause::throttle: return "throttle";
    case refusal_cause::deny_list: return "deny_list";
    case refusal_cause::quota: return "quota";
    case refusal_cause::quota_unavailable: return "quota_unavailable";
    }
    return "?";
}

// Handshakes: a login over loopback takes milliseconds, one across the world with a database
// round trip a second or more; T_hs ends them at 10 s (or the server's -T).
monitor::monitor() : handshake_({0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}) {}

void monitor::seen(std::uint64_t test_id) {
    std::lock_guard lk(m_);
    // A connection that vanishes without an event we see (none should) must not grow this
    // without bound: past a generous size the oldest entries go.
    if (first_seen_.size() >= 100'000) first_seen_.erase(first_seen_.begin());
    first_seen_.emplace(test_id, std::chrono::steady_clock::now());
}

void monitor::auth(const char* method, bool ok) {
    std::lock_guard lk(m_);
    ++auth_[{method, ok}];
}

void monitor::refused(refusal_cause c) {
    std::lock_guard lk(m_);
    ++refusals_[static_cast<std::size_t>(c)];
}

void monitor::admitted(std::uint64_t test_id, live_test t) {
    std::lock_guard lk(m_);
    live_[test_id].view = std::move(t);
}

void monitor::started(std::uint64_t test_id) {
    std::optional<double> took;
    {
        std::lock_guard lk(m_);
        auto it = first_seen_.find(test_id);
        if (it == first_seen_.end()) return;
        took = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second).count();
        first_seen_.erase(it);
    }
    handshake_.observe(*took);
}

void monitor::interval(std::uint64_t test_id, const btest::pro::interval_row& r) {
    std::lock_guard lk(m_);
    auto it = live_.find(test_id);
    if (it == live_.end()) return;
    auto& t = it->second;
    t.view.tx_bytes += r.tx_bytes;
    t.view.rx_bytes += r.rx_bytes;
    t.view.tx_bits_per_second = r.tx_bits_per_second;
    t.view.rx_bits_per_second = r.rx_bits_per_second;
    t.view.lost_packets += r.lost_packets;
    t.view.intervals.push_back(r);
    if (t.view.intervals.size() > max_live_intervals) t.view.intervals.pop_front();
    t.counted_tx += r.tx_bytes;
    t.counted_rx += r.rx_bytes;
    bytes_out_ += r.tx_bytes;
    bytes_in_ += r.rx_bytes;
}

void monitor::ended(std::uint64_t test_id, const btest::pro::session_row& totals, std::uint64_t tx_packets,
                    std::uint64_t rx_packets) {
    std::lock_guard lk(m_);
    first_seen_.erase(test_id);
    auto it = live_.find(test_id);
    if (it == live_.end()) return;
    // The counters end on exactly the figures of the history row: what the intervals did not
    // report (the last fraction of a second) is added now.
    const auto& t = it->second;
    if (totals.tx_bytes > t.counted_tx) bytes_out_ += totals.tx_bytes - t.counted_tx;
    if (totals.rx_bytes > t.counted_rx) bytes_in_ += totals.rx_bytes - t.counted_rx;
    packets_out_ += tx_packets;
    packets_in_ += rx_packets;
    lost_ += totals.lost_packets;
    if (totals.ended_by == "quota_exhausted") ++cutoffs_;
    ++sessions_total_[{t.view.protocol, t.view.direction, totals.ended_by}];
    live_.erase(it);
}

void monitor::forget(std::uint64_t test_id) {
    std::lock_guard lk(m_);
    first_seen_.erase(test_id);
}

std::vector<live_test> monitor::live(const std::optional<std::string>& ip) const {
    std::vector<live_test> out;
    std::lock_guard lk(m_);
    for (const auto& [id, t] : live_)
        if (!ip || t.view.peer_ip == *ip) out.push_back(t.view);
    return out;
}

void monitor::write_metrics(prom::text_writer& w, std::uint64_t storage_errors, std::size_t io_threads) const {
    std::lock_guard lk(m_);
    w.single("btest_sessions_active", metric_type::gauge, "Tests running now (admitted and not ended).",
             static_cast<double>(live_.size()));
    w.family("btest_sessions_total", metric_type::counter,
             "Tests that ended, by protocol, direction (the client's view: transmit, receive, both) and end reason "
             "(the history's ended_by).");
    for (const auto& [k, n] : sessions_total_)
        w.sample({{"protocol", k[0]}, {"direction", k[1]}, {"end_reason", k[2]}}, static_cast<double>(n));
    w.family("btest_bytes_total", metric_type::counter,
             "Test data moved: in = client to server, out = server to client.")
        .sample({{"direction", "in"}}, static_cast<double>(bytes_in_))
        .sample({{"direction", "out"}}, static_cast<double>(bytes_out_));
    w.family("btest_packets_total", metric_type::counter, "UDP test datagrams of ended tests: in = received, out = sent.")
        .sample({{"direction", "in"}}, static_cast<double>(packets_in_))
        .sample({{"direction", "out"}}, static_cast<double>(packets_out_));
    w.single("btest_lost_packets_total", metric_type::counter, "UDP datagrams from clients lost on the way (ended tests).",
             static_cast<double>(lost_));
    w.family("btest_auth_total", metric_type::counter, "Logins by method (ecsrp5, md5) and result (success, failure).");
    for (const auto& [k, n] : auth_)
        w.sample({{"method", k.first}, {"result", k.second ? "success" : "failure"}}, static_cast<double>(n));
    w.family("btest_refusals_total", metric_type::counter,
             "Connections and tests refused: max_sessions, per_ip, throttle (failed logins), deny_list, quota, "
             "quota_unavailable.");
    for (std::size_t c = 0; c < refusal_causes; ++c)
        w.sample({{"cause", to_string(static_cast<refusal_cause>(c))}}, static_cast<double>(refusals_[c]));
    w.family("btest_handshake_duration_seconds", metric_type::histogram,
             "From the server's first sight of a test (its login, or its command without authentication) to data "
             "flowing: login, quota admission by the database, connection setup.")
        .histogram_sample(handshake_.snapshot());
    w.single("btest_quota_cutoffs_total", metric_type::counter, "Tests ended because a quota was spent (quota_exhausted).",
             static_cast<double>(cutoffs_));
    w.single("btest_storage_errors_total", metric_type::counter, "Failed database operations.",
             static_cast<double>(storage_errors));
    w.single("btest_io_threads", metric_type::gauge, "Data-plane io threads (--threads).", static_cast<double>(io_threads));
}

} // namespace pro_serve
