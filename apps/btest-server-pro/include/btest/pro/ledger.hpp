// Quotas, leases and session history: the policy, written once over the storage interface.
//
// Subjects. A test is accounted to its client's IP address (always) and to its user (when it
// authenticated). Usage is recorded for both in every window, whether or not a limit is set,
// so `quota show` reports usage and a limit added later starts from the truth. Limits come
// from the account (user) and from the database's IP quota (set by `serve` from its flags).
// An IP quota and a user quota both apply: the tighter one wins, because a test's allowance
// is the minimum of what every applicable (subject, window, direction) has left.
//
// Leases. A test never spends quota it has not reserved. When it opens, one transaction
// reserves a slice for each limited direction (in, out, total): at most `slice_bytes`, at most
// what is left, where
//     left = limit − used − Σ unspent reservations of the other live leases on that quota.
// Two tests on one quota therefore never hold more than the limit between them. The session
// gets the reserved bytes as its byte budget (cumulative allowances since the start; nullopt =
// unlimited). Before a direction's allowance runs out the server calls extend(), which reserves
// up to one more slice; a lease never holds more than two unspent slices per direction.
// Usage is written while the test runs (record_usage: cumulative counts, batched by the
// service, at most every flush interval) and at the end (close_test), which adds the final
// bytes to `used` and deletes the lease: the unspent remainder is free again at once.
//
// Expiry. Every write for a lease (record_usage, extend) renews it until now + lease_ttl. A
// lease not renewed by then (its server crashed or lost the database) is swept by the next
// transaction that reserves: the bytes it recorded stay in `used`, its unspent reservation
// returns to the pool, and its session row is closed with ended_by = "server_lost" and the
// bytes recorded so far. What a crashed server moved after its last flush is not counted
// (at most one flush interval of traffic, and never more than its unspent slices). A live
// server must therefore treat its budget as valid only until the lease's expiry: if its
// renewals keep failing until then, it ends the test (quota_unavailable).
//
// Windows roll over while a test runs: usage goes to the period that contains the time of
// each write, and extend() moves the lease's reservation to the current periods.
//
// Thread safety: a ledger holds only its configuration; calls on one storage follow the
// storage's rule (one thread at a time). service.hpp runs them on a worker thread.
#pragma once

#include <chrono>
#include <map>
#include <tuple>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "btest/pro/storage.hpp"

namespace btest::pro {

/// Values of session_row::ended_by written by the server (`btest --json` names where they exist).
namespace ended_by {
inline constexpr std::string_view peer_closed = "peer_closed";      ///< the client ended the test (normal)
inline constexpr std::string_view stopped = "stopped";              ///< the server was stopped
inline constexpr std::string_view max_duration = "max_duration";    ///< --max-duration reached
inline constexpr std::string_view failure = "failure";              ///< an error (see error)
inline constexpr std::string_view quota_exhausted = "quota_exhausted";      ///< cut off, or refused at start
inline constexpr std::string_view quota_unavailable = "quota_unavailable";  ///< the ledger could not be reached
inline constexpr std::string_view server_lost = "server_lost";      ///< its lease expired (server crash)
} // namespace ended_by

struct ledger_config {
    /// Bytes reserved per direction per reservation.
    std::uint64_t slice_bytes = 100'000'000;
    /// How long a lease stays valid without a renewal.
    std::chrono::milliseconds lease_ttl{60'000};
    /// Who holds the leases this ledger takes (e.g. "hostname:pid"): shown in the database.
    std::string holder = "btest-server-pro";
};

/// What the server knows about a test when it asks to admit it (after authentication, before
/// the OK word).
struct test_request {
    std::string user;                ///< empty: anonymous (IP quotas only)
    ip_address peer_ip;
    std::uint16_t peer_port = 0;
    std::string protocol = "tcp";    ///< "tcp" / "udp"
    std::string direction = "both";  ///< the client's view: "transmit" / "receive" / "both"
    std::uint32_t connections = 1;
    std::uint64_t tx_speed_requested = 0;
    std::uint64_t rx_speed_requested = 0;
    /// The directions that carry data, from the server's side. A test is refused only for
    /// a direction it uses (and for total); an unused direction still gets what is left.
    bool server_sends = true;
    bool server_receives = true;
    /// The test's unit (a TCP chunk, a UDP datagram): a direction it uses with less than this
    /// left is refused, since the test could not move a single one.
    std::uint64_t min_grant = 1;
};

/// Allowances since the start of the test, per direction seen from the server; nullopt: no
/// limit. The session stops sending at `out`, ends the test when receiving past `in`, and
/// treats `total` as a bound on in + out.
struct byte_budget {
    std::optional<std::uint64_t> in, out, total;
    friend bool operator==(const byte_budget&, const byte_budget&) = default;
};

struct open_result {
    bool admitted = false;
    std::int64_t session_id = 0;     ///< the history row (also written for a refusal)
    byte_budget budget;              ///< when admitted
    sys_ms expires{};                ///< renew before this (service.hpp does it)
    /// When refused: which quota, for the server's log (not for the client: it names limits).
    std::string detail;
};

struct extend_result {
    bool lease_alive = false;        ///< false: the lease expired and was swept; end the test
    byte_budget budget;              ///< the new allowances (never lower than before)
    sys_ms expires{};
};

/// A running test's cumulative counts (server's view: in = received, out = sent).
struct usage_report {
    std::int64_t session_id = 0;
    usage_counts moved;
};

/// How a test ended, for its history row.
struct test_result {
    std::uint64_t tx_bytes = 0, rx_bytes = 0;          ///< tx = server → client
    std::uint64_t tx_bits_per_second = 0, rx_bits_per_second = 0;
    std::uint64_t lost_packets = 0;
    std::string ended_by;                              ///< see namespace ended_by
    std::string error;
};

/// One line of `quota show`.
struct quota_line {
    window win = window::daily;
    quota_dir dir = quota_dir::in;
    sys_ms period_start{}, period_end{};
    std::optional<std::uint64_t> limit;
    std::uint64_t used = 0;
    std::uint64_t reserved = 0;                   ///< held by running tests, not spent yet
    std::optional<std::uint64_t> remaining;       ///< limit − used − reserved (≥ 0); nullopt without a limit
};

struct prune_result {
    std::size_t sessions = 0;
    std::size_t usage_rows = 0;
};

class ledger {
public:
    explicit ledger(ledger_config cfg) : cfg_(std::move(cfg)) {}
    const ledger_config& config() const noexcept { return cfg_; }

    /// Sweeps expired leases, writes the session row, and reserves the first slices (one
    /// transaction). Refused: the row is closed at once (refused, quota_exhausted).
    open_result open_test(storage& db, const test_request& req, sys_ms now);

    /// Records `moved` (cumulative), then reserves up to one more slice per limited direction,
    /// against the current periods and the account's current limits (one transaction).
    extend_result extend(storage& db, std::int64_t session_id, usage_counts moved, sys_ms now);

    /// Records cumulative counts of several running tests and renews their leases (one
    /// transaction). Returns the ids whose lease no longer exists (swept: end those tests).
    std::vector<std::int64_t> record_usage(storage& db, std::span<const usage_report> reports, sys_ms now);

    /// Records the final counts, deletes the lease (returning the unspent remainder), closes
    /// the session row and stores its intervals (one transaction). Works also when the lease
    /// was already swept: the bytes not yet recorded are added then.
    void close_test(storage& db, std::int64_t session_id, const test_result& result,
                    std::span<const interval_row> intervals, sys_ms now);

    /// A test refused before any quota was consulted (e.g. the ledger was unreachable and has
    /// come back, or a limit of the server): a closed history row with `reason`.
    std::int64_t record_refused(storage& db, const test_request& req, std::string_view reason, sys_ms now);

    /// Expires leases not renewed by `now` (see above; one transaction). Returns how many.
    std::size_t sweep(storage& db, sys_ms now);

    /// Deletes finished sessions older than `keep` and usage rows of periods that ended more
    /// than `keep` ago (one transaction).
    prune_result prune(storage& db, sys_ms now, std::chrono::days keep);

    /// The nine (window, direction) lines for `who` at `now`; nullopt when `who` is a user
    /// without an account.
    std::optional<std::vector<quota_line>> quota_report(storage& db, const subject& who, sys_ms now);

private:
    struct grant_outcome {
        bool refused = false;
        std::string detail;
    };
    grant_outcome grant(storage& db, lease& l, const test_request* req, sys_ms now);
    /// Usage deltas keyed by (kind, subject, window, period): written in this order, so that
    /// every transaction takes its row locks in one global order (user before ip, daily before
    /// monthly), which keeps a row-locking backend free of deadlocks between servers.
    using usage_batch = std::map<std::tuple<int, std::string, int, std::int64_t>, usage_counts>;
    void apply_usage(lease& l, usage_counts moved, sys_ms now, usage_batch& batch) const;
    static void write_usage(storage& db, const usage_batch& batch);
    std::size_t sweep_in_transaction(storage& db, sys_ms now);

    ledger_config cfg_;
};

} // namespace btest::pro
