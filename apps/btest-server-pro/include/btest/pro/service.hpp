// The ledger as `serve` uses it: asynchronous, never blocking the caller. One worker thread
// owns the storage connection and runs every job in order; callers pass completions, which
// the worker invokes (on its own thread: keep them short, e.g. post to the io_context that owns
// the session). No Asio here: any executor can receive the completions.
//
// Usage of running tests is coalesced: record_usage() only notes the latest cumulative counts
// (cheap, from any thread); the worker writes every open test's counts in one transaction
// every flush interval (and renews its lease while at it), so a crash loses at most one
// interval of accounting. close_test() writes the final counts at once.
//
// Storage errors never escape: a job that fails completes with a storage_failure (and is
// counted in errors()); usage that failed to flush stays pending and is retried.
//
// Thread safety: every public member may be called from any thread at once. The destructor
// runs the jobs already queued, flushes pending usage and joins the worker; do not call
// members concurrently with it.
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
    /// How often pending usage is written and leases renewed. Keep it well below lease_ttl.
    std::chrono::milliseconds flush_interval{2000};
    /// Wall-clock time for the ledger (tests inject a fake one).
    std::function<sys_ms()> clock = utc_now;
    /// Told about every storage failure, on the worker thread (logs, metrics).
    std::function<void(const storage_failure&)> on_error;
};

class service {
public:
    service(std::unique_ptr<storage> db, service_config cfg);
    service(const service&) = delete;
    service& operator=(const service&) = delete;
    ~service();

    /// Admits a test or refuses it for its quota (ledger::open_test). When admitted, the test
    /// is "open": its usage is flushed and its lease renewed every flush interval until
    /// close_test. `on_lease_lost` (optional) is called if a flush finds the lease gone (it
    /// expired: end the test with quota_unavailable).
    void open_test(test_request req, std::function<void(async_result<open_result>)> done,
                   std::function<void(std::int64_t)> on_lease_lost = {});
    /// Records `moved` and reserves more (ledger::extend). Call it when a direction's budget
    /// is running low (e.g. half a slice left).
    void extend(std::int64_t session_id, usage_counts moved, std::function<void(async_result<extend_result>)> done);
    /// Notes the cumulative counts of an open test; written at the next flush.
    void record_usage(std::int64_t session_id, usage_counts moved);
    /// Writes the final counts, the history row and its intervals, and settles the lease.
    void close_test(std::int64_t session_id, test_result result, std::vector<interval_row> intervals,
                    std::function<void(std::optional<storage_failure>)> done = {});
    /// A refusal that did not come from open_test (ledger::record_refused).
    void record_refused(test_request req, std::string reason,
                        std::function<void(async_result<std::int64_t>)> done = {});
    /// Retention: ledger::prune with now = the service clock.
    void prune(std::chrono::days keep, std::function<void(async_result<prune_result>)> done = {});
    /// Stores the server's per-IP limits (from its flags) in the database.
    void set_ip_quota(quota_limits q, std::function<void(std::optional<storage_failure>)> done = {});
    /// Writes pending usage now; completes with the number of tests written.
    void flush(std::function<void(async_result<std::size_t>)> done = {});
    /// Runs `job` on the worker with the connection (queries for the HTTP API, the credential
    /// refresher). A storage_error it throws is counted and reported to `on_error`; `job` must
    /// catch it itself to report a failure to its own caller.
    void post(std::function<void(storage&)> job);

    /// Storage failures so far.
    std::uint64_t errors() const noexcept { return errors_.load(std::memory_order_relaxed); }
    /// Tests open (admitted and not closed).
    std::size_t open_tests() const;
    const ledger& ledger_policy() const noexcept { return ledger_; }

private:
    struct open_entry {
        usage_counts moved;
        usage_counts written;
        sys_ms last_write{};
        std::function<void(std::int64_t)> on_lease_lost;
    };

    void enqueue(std::function<void()> job);
    void run();
    std::size_t flush_now();
    storage_failure failed(const storage_error& e);

    std::unique_ptr<storage> db_;
    service_config cfg_;
    ledger ledger_;
    std::atomic<std::uint64_t> errors_{0};

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    std::map<std::int64_t, open_entry> open_;  ///< guarded by mu_
    bool stopping_ = false;
    std::thread worker_;
};

} // namespace btest::pro
