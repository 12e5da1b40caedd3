// The storage interface of btest-server-pro: accounts, usage, leases and session history
// (STYLE §14). Backends (SQLite, PostgreSQL) implement rows and locking only; every
// policy — validation, the quota arithmetic, lease rules, what a session row says — lives once,
// above this interface (accounts.hpp, ledger.hpp), so the backends cannot drift apart. One test
// suite runs against every backend (tests/pro/storage_test.cpp).
//
// Errors: every method may throw storage_error (storage_error.hpp). Outcomes that are part of
// normal operation (a name already taken, a row not found) are return values.
//
// Thread safety: one thread at a time per storage object (a connection). Several objects may
// use one database at once, from several threads or processes (and, with PostgreSQL, from
// several servers).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "btest/auth/ec_srp5.hpp"
#include "btest/core/address.hpp"
#include "btest/pro/quota.hpp"
#include "btest/pro/storage_error.hpp"
#include "btest/pro/utc_time.hpp"

namespace btest::pro {

// --- rows -------------------------------------------------------------------------------------

/// An account. EC-SRP5 needs only the validator record (salt, x_γ, parity: not
/// password-equivalent); the password itself is kept only for accounts that must answer MD5,
/// whose challenge-response cannot work without it.
struct account {
    std::string name;
    auth::ec_srp5::validator_record ecsrp5;
    std::optional<std::string> md5_password;  ///< set only for MD5-capable accounts
    quota_limits quotas;
    sys_ms created{};
    sys_ms updated{};

    bool md5() const noexcept { return md5_password.has_value(); }
};

/// Who a quota and its usage belong to.
enum class subject_kind : std::uint8_t { user = 1, ip = 2 };
struct subject {
    subject_kind kind = subject_kind::ip;
    std::string key;  ///< the account name, or the canonical text of the IP address
    friend bool operator==(const subject&, const subject&) = default;
};

struct usage_counts {
    std::uint64_t in = 0;   ///< client → server
    std::uint64_t out = 0;  ///< server → client
    std::uint64_t total() const noexcept { return in + out; }
    friend bool operator==(const usage_counts&, const usage_counts&) = default;
};

/// Bytes reserved by live leases and not yet spent, per direction (ledger.hpp).
struct reserved_counts {
    std::uint64_t in = 0, out = 0, total = 0;
    friend bool operator==(const reserved_counts&, const reserved_counts&) = default;
};

/// One (subject, window, period) a lease reserves from, and in which directions: those where
/// that subject had a limit in that window when the reservation was made.
struct lease_item {
    subject who;
    window win = window::daily;
    sys_ms period{};  ///< period_start(win, ·) of the period the reservation counts against
    bool in = false, out = false, total = false;
};

/// A running test's reservation (ledger.hpp explains the rules). Keyed by its session id.
struct lease {
    std::int64_t session_id = 0;
    std::string holder;      ///< the server process holding it (for logs and fleets)
    std::string user;        ///< empty: anonymous test
    std::string ip;          ///< canonical text of the client's address
    sys_ms opened{}, updated{}, expires{};
    /// Bytes the test may move since its start; nullopt: no limit in that direction.
    std::optional<std::uint64_t> allowed_in, allowed_out, allowed_total;
    /// Bytes recorded as moved since the start (already added to usage).
    std::uint64_t spent_in = 0, spent_out = 0;
    std::vector<lease_item> items;
};

/// One test in the history. Directions are the server's: tx = server → client.
struct session_row {
    std::int64_t id = 0;
    sys_ms start{};
    std::optional<sys_ms> end;       ///< nullopt while the test runs
    ip_address peer_ip;
    std::uint16_t peer_port = 0;
    std::string user;                ///< empty: no authentication
    std::string protocol;            ///< "tcp" / "udp"
    std::string direction;           ///< the client's view, as btest prints it: transmit / receive / both
    std::uint32_t connections = 1;
    std::uint64_t tx_speed_requested = 0;  ///< bit/s the client asked the server to send at; 0 = unlimited
    std::uint64_t rx_speed_requested = 0;  ///< bit/s the client said it would send at; 0 = unlimited
    std::uint64_t tx_bytes = 0, rx_bytes = 0;
    std::uint64_t tx_bits_per_second = 0, rx_bits_per_second = 0;  ///< whole-test averages
    std::uint64_t lost_packets = 0;
    std::string ended_by;            ///< empty while running; see ledger.hpp for the values
    std::string error;               ///< detail for ended_by = failure (may be empty)
    bool refused = false;            ///< refused at start: no data moved
};

/// One report interval of a test, both directions (offsets from the test's start).
struct interval_row {
    std::int64_t start_ms = 0, end_ms = 0;
    std::uint64_t tx_bytes = 0, rx_bytes = 0;
    std::uint64_t tx_bits_per_second = 0, rx_bits_per_second = 0;
    std::uint64_t lost_packets = 0;
    friend bool operator==(const interval_row&, const interval_row&) = default;
};

struct session_filter {
    std::optional<ip_address> ip;
    std::optional<std::string> user;
    std::optional<sys_ms> since;     ///< tests that started at or after
    std::size_t limit = 0;           ///< 0: all
    std::size_t offset = 0;
};

// --- the interface ----------------------------------------------------------------------------

class storage {
public:
    virtual ~storage() = default;

    /// "sqlite:/var/lib/btest/accounts.db" (no password of a URL ever appears here).
    virtual std::string describe() const = 0;
    /// The schema version this database is at (after open, always the latest this build knows).
    virtual int schema_version() = 0;

    /// A write transaction: other writers wait (SQLite takes its write lock now; PostgreSQL
    /// locks the rows lock_usage() names). One at a time per connection; nested only where
    /// nested_transactions() says so (an inner one is a savepoint: its rollback undoes only
    /// its own writes, its commit is final only with the outer one's). Prefer the
    /// write_transaction guard below.
    virtual void begin() = 0;
    virtual void commit() = 0;
    virtual void rollback() noexcept = 0;
    /// True when begin() may be called inside a transaction (SQLite).
    virtual bool nested_transactions() const noexcept { return false; }

    /// For backends whose server can go away (PostgreSQL): true when the connection is
    /// usable, after reconnecting if it was lost and the reconnect backoff allows an attempt
    /// now. Never throws; a service's worker calls it while idle so that it reconnects by
    /// itself. SQLite: always true.
    virtual bool reconnect() noexcept { return true; }
    /// Another connection to the same database just reached it: the next reconnect() tries at
    /// once instead of waiting out this connection's backoff.
    virtual void retry_now() noexcept {}

    // Accounts.
    virtual bool insert_account(const account& a) = 0;          ///< false: the name exists
    virtual bool update_account(const account& a) = 0;          ///< false: no such name
    virtual bool delete_account(std::string_view name) = 0;     ///< false: no such name
    virtual std::optional<account> find_account(std::string_view name) = 0;
    virtual std::vector<account> list_accounts() = 0;           ///< ordered by name
    /// A counter that every account change increments in its transaction, so a reader can
    /// tell cheaply whether anything changed since it last looked.
    virtual std::int64_t accounts_generation() = 0;
    virtual void bump_accounts_generation() = 0;

    // Per-IP limits (set by `serve` from its flags; one set for the whole database).
    virtual quota_limits ip_quota() = 0;
    virtual void set_ip_quota(const quota_limits& q) = 0;

    // Usage per (subject, window, period).
    /// Inside a write transaction: make sure the usage row exists and hold it until commit.
    virtual void lock_usage(const subject& s, window w, sys_ms period) = 0;
    virtual usage_counts usage(const subject& s, window w, sys_ms period) = 0;  ///< zeros if no row
    virtual void add_usage(const subject& s, window w, sys_ms period, usage_counts delta) = 0;
    /// Σ over live leases with an item on (s, w, period) of their unspent allowance, per
    /// direction the item reserves: max(allowed − spent, 0), total counting in + out.
    virtual reserved_counts reserved(const subject& s, window w, sys_ms period) = 0;

    // Leases.
    virtual void insert_lease(const lease& l) = 0;
    /// Rewrites allowances, spent and times (not the items).
    virtual void update_lease(const lease& l) = 0;
    /// Replaces the lease's items with l.items.
    virtual void replace_lease_items(const lease& l) = 0;
    virtual std::optional<lease> find_lease(std::int64_t session_id) = 0;
    virtual void delete_lease(std::int64_t session_id) = 0;
    /// Ids of leases whose expiry is ≤ now.
    virtual std::vector<std::int64_t> expired_leases(sys_ms now) = 0;

    // Session history.
    virtual std::int64_t insert_session(const session_row& r) = 0;   ///< returns the new id
    virtual void update_session(const session_row& r) = 0;           ///< by r.id
    virtual void insert_intervals(std::int64_t session_id, std::span<const interval_row> rows) = 0;
    virtual std::optional<session_row> find_session(std::int64_t id) = 0;
    /// Newest first.
    virtual std::vector<session_row> list_sessions(const session_filter& f) = 0;
    virtual std::vector<interval_row> intervals(std::int64_t session_id) = 0;
    /// Deletes finished sessions that started before `before` (with their intervals).
    virtual std::size_t prune_sessions(sys_ms before) = 0;
    /// Deletes usage rows of periods that started before `before`.
    virtual std::size_t prune_usage(sys_ms before) = 0;
};

/// Commits on commit(), rolls back if destroyed without it (an exception on the way out).
class write_transaction {
public:
    explicit write_transaction(storage& s) : s_(&s) { s_->begin(); }
    write_transaction(const write_transaction&) = delete;
    write_transaction& operator=(const write_transaction&) = delete;
    ~write_transaction() {
        if (s_) s_->rollback();
    }
    void commit() {
        s_->commit();
        s_ = nullptr;
    }

private:
    storage* s_;
};

// --- opening ----------------------------------------------------------------------------------

struct open_options {
    /// Create the database if it does not exist (`serve`, `user add`); read-mostly commands
    /// pass false so that a mistyped path is an error instead of a new empty database.
    bool create = true;
    /// How long a statement waits for another connection's lock before failing with busy.
    int busy_timeout_ms = 5000;
    /// Also read every page once (SQLite: PRAGMA quick_check) so that a damaged database is a
    /// clear error at startup rather than at some later query. Costs a scan of the file.
    bool verify = false;

    // Database servers (PostgreSQL); SQLite ignores these.
    /// Budget of one connection attempt.
    std::chrono::milliseconds connect_timeout{5000};
    /// Budget of one query round trip: past it the connection is dropped (unavailable).
    std::chrono::milliseconds query_timeout{10000};
    /// After a lost connection the first reconnect is immediate, later ones wait this long,
    /// doubling up to reconnect_max.
    std::chrono::milliseconds reconnect_min{250};
    std::chrono::milliseconds reconnect_max{10000};
    /// Told about connection events (lost, a failed reconnect, back): one line each, at most
    /// one per reconnect attempt. Called on the thread using the storage.
    std::function<void(const std::string&)> log;
};

/// Opens `url`, creating and migrating the schema as needed:
///   sqlite:PATH                 an SQLite file (relative to the working directory, or absolute)
///   postgresql://… postgres://… PostgreSQL, any libpq connection URI (pg_storage.hpp)
/// Anything else is storage_errc::bad_url.
std::unique_ptr<storage> open_storage(std::string_view url, const open_options& opts = {});

/// The URL the app uses when --db is not given.
inline constexpr std::string_view default_db_url = "sqlite:btest-server.db";

} // namespace btest::pro
