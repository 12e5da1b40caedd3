// The ledger as `serve` uses it: asynchronous, never blocking the caller. Worker threads own
// the storage connections (a pool, one connection per worker) and run the jobs; callers pass
// completions, which a worker invokes (on its own thread: keep them short, e.g. post to the
// io_context that owns the session). No Asio here: any executor can receive the completions.
// No io thread ever waits for the database: every member returns at once.
//
// Pool size (pool_size()): SQLite gets one connection (one writer at a time is all SQLite
// allows; more connections would only queue on its write lock). A database server gets one
// connection per io thread plus one, so that every io thread's test starts can be in flight at
// once and the periodic flush or a credential refresh never waits behind them. A fleet needs
// Σ (io_threads + 1) connections plus one per running management command, below the server's
// max_connections (PostgreSQL's default is 100).
//
// Jobs run in the order they were queued only with one connection; with several, independent
// jobs run concurrently. A caller that needs an order (set_ip_quota before the first test)
// waits for the first completion.
//
// Group commit: with one connection that nests transactions (SQLite), the test starts, ends,
// refills and refusals waiting at the head of the queue (up to max_group) run in one
// transaction, each in its own savepoint, and are answered after its commit — one commit for
// many tests when the server is busy, no added wait when it is not. Should that commit fail,
// each runs again on its own.
//
// Usage of running tests is coalesced: record_usage() only notes the latest cumulative counts
// (cheap, from any thread); the first worker writes every open test's counts in one
// transaction every flush interval (and renews its lease while at it), so a crash loses at
// most one interval of accounting. close_test() writes the final counts at once.
//
// Storage errors never escape: a job that fails completes with a storage_failure (and is
// counted in errors()). A job that loses a race with another server (conflict) is run again,
// up to 8 times; one that finds its connection lost is run once more on a fresh connection
// (a database restarted while the connection was idle). The failure's code tells the caller
// what to do: unavailable = the database cannot be reached (refuse new tests with
// quota_unavailable; database_available() says the same without a call).
//
// Losing the database. Connections reconnect by themselves with backoff (pg_storage.hpp); an
// idle worker tries every flush interval. Meanwhile:
//   - usage that failed to flush stays pending and is written when the database is back;
//   - a running test's budget is valid until its lease expires: when the lease could not be
//     renewed and will expire before the next flush, on_lease_lost() fires (the server ends
//     the test with quota_unavailable) — one flush interval before the expiry, so the test
//     has stopped before another server can sweep the lease and hand its bytes out again;
//   - a close_test that fails is kept (up to max_pending_closes, the oldest dropped with an
//     error report) and retried at every flush until it succeeds, so history is written when
//     the database is back — lost only if the process ends first (the destructor tries once
//     more).
//
// Thread safety: every public member may be called from any thread at once. on_error and the
// completions may run on several workers at once. The destructor runs the jobs already
// queued, flushes pending usage and closes, and joins the workers; do not call members
// concurrently with it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "btest/pro/ledger.hpp"
#include "btest/pro/storage.hpp"

namespace btest::pro {

struct storage_failure {
    storage_errc code = storage_errc::io;
    std::string message;
};

/// A job's outcome: a value, or the failure (exactly one is set).
template <class T>
struct async_result {
    std::optional<T> value;
    std::optional<storage_failure> error;
    explicit operator bool() const noexcept { return value.has_value(); }
};

struct service_config {
    ledger_config ledger;
    /// How often pending usage is written, leases renewed and lost connections retried.
    /// Keep it well below lease_ttl (a quarter or less).
    std::chrono::milliseconds flush_interval{2000};
    /// Wall-clock time for the ledger (tests inject a fake one).
    std::function<sys_ms()> clock = utc_now;
    /// Told about every storage failure, on a worker thread (logs, metrics).
    std::function<void(const storage_failure&)> on_error;
    /// Closes kept for retry while the database is unreachable.
    std::size_t max_pending_closes = 10'000;
};

class service {
public:
    /// One connection, one worker.
    service(std::unique_ptr<storage> db, service_config cfg);
    /// A pool: one worker per connection (at least one).
    service(std::vector<std::unique_ptr<storage>> pool, service_config cfg);
    service(const service&) = delete;
    service& operator=(const service&) = delete;
    ~service();

    /// The pool size rule above: 1 for SQLite, io_threads + 1 for a database server.
    static std::size_t pool_size(std::string_view url, unsigned io_threads);
    /// Opens `n` connections to `url` (throws storage_error like open_storage).
    static std::vector<std::unique_ptr<storage>> open_pool(std::string_view url, std::size_t n,
                                                           const open_options& opts = {});

    /// Admits a test or refuses it for its quota (ledger::open_test). When admitted, the test
    /// is "open": its usage is flushed and its lease renewed every flush interval until
    /// close_test. `on_lease_lost` (optional) is called if a flush finds the lease gone (it
    /// expired and was swept), or when it could not be renewed and would expire before the
    /// next flush: end the test with quota_unavailable.
    void open_test(test_request req, std::function<void(async_result<open_result>)> done,
                   std::function<void(std::int64_t)> on_lease_lost = {});
    /// Records `moved` and reserves more (ledger::extend). Call it when a direction's budget
    /// is running low (e.g. half a slice left). If it fails, keep spending the budget you
    /// have, then end the test with quota_unavailable.
    void extend(std::int64_t session_id, usage_counts moved, std::function<void(async_result<extend_result>)> done);
    /// Notes the cumulative counts of an open test; written at the next flush.
    void record_usage(std::int64_t session_id, usage_counts moved);
    /// Writes the final counts, the history row and its intervals, and settles the lease.
    /// `done` reports the first attempt; a failed close is kept and retried (see above).
    void close_test(std::int64_t session_id, test_result result, std::vector<interval_row> intervals,
                    std::function<void(std::optional<storage_failure>)> done = {});
    /// A refusal that did not come from open_test (ledger::record_refused).
    void record_refused(test_request req, std::string reason,
                        std::function<void(async_result<std::int64_t>)> done = {});
    /// Retention: ledger::prune with now = the service clock.
    void prune(std::chrono::days keep, std::function<void(async_result<prune_result>)> done = {});
    /// Stores the server's per-IP limits (from its flags) in the database.
    void set_ip_quota(quota_limits q, std::function<void(std::optional<storage_failure>)> done = {});
    /// Writes pending usage (and retries pending closes) now; completes with the number of
    /// tests written.
    void flush(std::function<void(async_result<std::size_t>)> done = {});
    /// Runs `job` on a worker with its connection (queries for the HTTP API, the credential
    /// refresher). A storage_error it throws is counted and reported to `on_error`; `job` must
    /// catch it itself to report a failure to its own caller.
    void post(std::function<void(storage&)> job);

    /// Storage failures so far.
    std::uint64_t errors() const noexcept { return errors_.load(std::memory_order_relaxed); }
    /// False after a job failed with unavailable, true again after one succeeded: a cheap
    /// check for an io thread deciding whether to admit a login at all.
    bool database_available() const noexcept { return available_.load(std::memory_order_relaxed); }
    /// Tests open (admitted and not closed).
    std::size_t open_tests() const;
    /// Closes waiting for the database.
    std::size_t pending_closes() const;
    std::size_t connections() const noexcept { return dbs_.size(); }
    const ledger& ledger_policy() const noexcept { return ledger_; }

private:
    struct open_entry {
        usage_counts moved;
        usage_counts written;
        sys_ms last_write{};
        sys_ms expires{};  ///< of the lease, as last renewed
        std::function<void(std::int64_t)> on_lease_lost;
    };
    struct pending_close {
        std::int64_t session_id;
        test_result result;
        std::vector<interval_row> intervals;
    };

    /// A job whose database work may share one commit with its neighbours: it does the work
    /// and returns what to do once that work is committed (bookkeeping, the completion).
    using finish_fn = std::function<void()>;
    using step_fn = std::function<finish_fn(storage&)>;
    struct queued {
        std::function<void(storage&)> plain;  ///< or:
        step_fn step;
    };
    static constexpr std::size_t max_group = 64;  ///< steps per group commit

    void enqueue(std::function<void(storage&)> job);
    void enqueue_step(step_fn step);
    /// Runs steps taken from the queue together: one transaction when the connection nests
    /// them, each on its own otherwise (or when the shared commit failed).
    void run_steps(storage& db, std::vector<step_fn>& steps);
    void run(std::size_t index);
    /// Runs `fn(db)` with the retry rules above; rethrows the last failure.
    template <class F>
    auto attempt(storage& db, F&& fn) -> decltype(fn(db));
    /// Writes the usage of running tests; `*ok` (if given) becomes false when that failed.
    std::size_t flush_now(storage& db, bool* ok = nullptr);
    /// Writes the kept closes; false when one failed (it stays kept).
    bool retry_closes(storage& db);
    void expire_unrenewed(sys_ms now);
    storage_failure failed(const storage_error& e);
    void succeeded() noexcept { available_.store(true, std::memory_order_relaxed); }

    std::vector<std::unique_ptr<storage>> dbs_;
    service_config cfg_;
    ledger ledger_;
    std::atomic<std::uint64_t> errors_{0};
    std::atomic<bool> available_{true};

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<queued> jobs_;
    std::map<std::int64_t, open_entry> open_;  ///< guarded by mu_
    std::deque<pending_close> closes_;         ///< guarded by mu_
    bool stopping_ = false;
    std::mutex flush_mu_;  ///< one flush at a time (the periodic one and flush())
    std::mutex retry_mu_;  ///< one retry_closes() at a time: a flush returns only after the closes another worker was writing
    std::vector<std::thread> workers_;
};

} // namespace btest::pro
