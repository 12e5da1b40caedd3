#include "btest/pro/service.hpp"

#include <algorithm>

#include "btest/pro/pg.hpp"

namespace btest::pro {

namespace {
/// Conflicts are races between servers over the same rows: each retry is likely to win.
constexpr int max_conflict_retries = 8;
} // namespace

service::service(std::unique_ptr<storage> db, service_config cfg) : service([&] {
    std::vector<std::unique_ptr<storage>> pool;
    pool.push_back(std::move(db));
    return pool;
}(), std::move(cfg)) {}

service::service(std::vector<std::unique_ptr<storage>> pool, service_config cfg)
    : dbs_(std::move(pool)), cfg_(std::move(cfg)), ledger_(cfg_.ledger) {
    if (dbs_.empty()) throw storage_error(storage_errc::io, "a service needs at least one storage connection");
    if (!cfg_.clock) cfg_.clock = utc_now;
    for (std::size_t i = 0; i < dbs_.size(); ++i) workers_.emplace_back([this, i] { run(i); });
}

service::~service() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    // Every worker has drained the queue and stopped: the last writes run here, on the
    // first connection.
    retry_closes(*dbs_[0]);
    flush_now(*dbs_[0]);
}

std::size_t service::pool_size(std::string_view url, unsigned io_threads) {
    if (!pg::is_postgresql_url(url)) return 1;
    return std::clamp<std::size_t>(io_threads, 1, 64) + 1;
}

std::vector<std::unique_ptr<storage>> service::open_pool(std::string_view url, std::size_t n, const open_options& opts) {
    std::vector<std::unique_ptr<storage>> pool;
    for (std::size_t i = 0; i < std::max<std::size_t>(n, 1); ++i) pool.push_back(open_storage(url, opts));
    return pool;
}

storage_failure service::failed(const storage_error& e) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    if (e.code() == storage_errc::unavailable) available_.store(false, std::memory_order_relaxed);
    storage_failure f{e.code(), e.what()};
    if (cfg_.on_error) cfg_.on_error(f);
    return f;
}

template <class F>
auto service::attempt(storage& db, F&& fn) -> decltype(fn(db)) {
    bool reconnected = false;
    for (int conflicts = 0;;) {
        try {
            if constexpr (std::is_void_v<decltype(fn(db))>) {
                fn(db);
                succeeded();
                return;
            } else {
                auto r = fn(db);
                succeeded();
                return r;
            }
        } catch (const storage_error& e) {
            if (e.code() == storage_errc::conflict && ++conflicts <= max_conflict_retries) continue;
            // A connection that broke while idle (the database restarted): the first
            // reconnect is immediate, so one more try finds the database if it is back.
            if (e.code() == storage_errc::unavailable && !reconnected) {
                // Another worker reached the database since this connection gave up (it came
                // back): do not fail calls for the rest of this connection's backoff.
                if (available_.load(std::memory_order_relaxed)) db.retry_now();
                if (db.reconnect()) {
                    reconnected = true;
                    continue;
                }
            }
            throw;
        }
    }
}

void service::enqueue(std::function<void(storage&)> job) {
    {
        std::lock_guard lock(mu_);
        jobs_.push_back(queued{std::move(job), {}});
    }
    cv_.notify_one();
}

void service::enqueue_step(step_fn step) {
    {
        std::lock_guard lock(mu_);
        jobs_.push_back(queued{{}, std::move(step)});
    }
    cv_.notify_one();
}

void service::run_steps(storage& db, std::vector<step_fn>& steps) {
    if (steps.size() > 1 && dbs_.size() == 1 && db.nested_transactions()) {
        // Group commit: every step in one transaction (each in its own savepoint), answered
        // after the one commit.
        std::vector<finish_fn> finishes;
        bool committed = false;
        try {
            write_transaction outer(db);
            for (auto& st : steps) finishes.push_back(st(db));
            outer.commit();
            committed = true;
        } catch (const storage_error&) {
            // Undone as a whole: each runs again on its own below (and reports its failure).
        }
        if (committed) {
            succeeded();
            for (auto& f : finishes)
                if (f) f();
            return;
        }
    }
    for (auto& st : steps)
        if (auto f = st(db)) f();
}

void service::run(std::size_t index) {
    storage& db = *dbs_[index];
    auto next_tick = std::chrono::steady_clock::now() + cfg_.flush_interval;
    std::vector<step_fn> steps;
    for (;;) {
        std::function<void(storage&)> job;
        steps.clear();
        {
            std::unique_lock lock(mu_);
            cv_.wait_until(lock, next_tick, [&] { return stopping_ || !jobs_.empty(); });
            if (!jobs_.empty() && jobs_.front().step) {
                // The steps waiting at the head of the queue, in order, share one commit.
                while (!jobs_.empty() && jobs_.front().step && steps.size() < max_group) {
                    steps.push_back(std::move(jobs_.front().step));
                    jobs_.pop_front();
                }
            } else if (!jobs_.empty()) {
                job = std::move(jobs_.front().plain);
                jobs_.pop_front();
            } else if (stopping_) {
                return;  // the destructor writes what is left
            }
        }
        if (!steps.empty()) run_steps(db, steps);
        if (job) job(db);
        if (std::chrono::steady_clock::now() < next_tick) continue;
        if (index == 0) {
            retry_closes(db);
            flush_now(db);
        } else {
            db.reconnect();  // an idle connection comes back by itself
        }
        next_tick = std::chrono::steady_clock::now() + cfg_.flush_interval;
    }
}

std::size_t service::flush_now(storage& db, bool* ok) {
    std::lock_guard flush_lock(flush_mu_);
    const sys_ms now = cfg_.clock();
    // Renew a quiet test's lease well before it could expire.
    const auto renew_after = cfg_.ledger.lease_ttl / 4;
    std::vector<usage_report> reports;
    {
        std::lock_guard lock(mu_);
        for (const auto& [id, e] : open_) {
            if (e.moved != e.written || now - e.last_write >= renew_after) reports.push_back({id, e.moved});
        }
    }
    if (reports.empty()) {
        expire_unrenewed(now);
        return 0;
    }
    std::vector<std::int64_t> lost;
    try {
        lost = attempt(db, [&](storage& s) { return ledger_.record_usage(s, reports, now); });
    } catch (const storage_error& e) {
        failed(e);  // still pending: retried at the next flush
        if (ok) *ok = false;
        expire_unrenewed(now);
        return 0;
    }
    std::vector<std::pair<std::int64_t, std::function<void(std::int64_t)>>> to_tell;
    {
        std::lock_guard lock(mu_);
        for (const auto& r : reports) {
            auto it = open_.find(r.session_id);
            if (it == open_.end()) continue;
            it->second.written = r.moved;
            it->second.last_write = now;
            it->second.expires = now + cfg_.ledger.lease_ttl;
        }
        for (const auto id : lost) {
            auto it = open_.find(id);
            if (it == open_.end()) continue;
            to_tell.emplace_back(id, std::move(it->second.on_lease_lost));
            open_.erase(it);
        }
    }
    for (auto& [id, cb] : to_tell)
        if (cb) cb(id);
    expire_unrenewed(now);
    return reports.size();
}

void service::expire_unrenewed(sys_ms now) {
    // A lease that was not renewed and would expire before the next flush could renew it:
    // its budget is no longer ours to spend (another server may sweep it at the expiry).
    // (A flush interval above a quarter of the TTL is a misconfiguration; the margin stays
    // a quarter of the TTL then.)
    const auto margin = std::min<std::chrono::milliseconds>(cfg_.flush_interval, cfg_.ledger.lease_ttl / 4);
    std::vector<std::pair<std::int64_t, std::function<void(std::int64_t)>>> to_tell;
    {
        std::lock_guard lock(mu_);
        for (auto it = open_.begin(); it != open_.end();) {
            if (now + margin >= it->second.expires) {
                to_tell.emplace_back(it->first, std::move(it->second.on_lease_lost));
                it = open_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto& [id, cb] : to_tell)
        if (cb) cb(id);
}

bool service::retry_closes(storage& db) {
    // Serialised across workers: a flush() that finds the list empty while another worker is
    // still writing what it took must wait for that write, or "flushed" would not mean written.
    std::lock_guard serial(retry_mu_);
    for (;;) {
        pending_close c;
        {
            std::lock_guard lock(mu_);
            if (closes_.empty()) return true;
            c = std::move(closes_.front());
            closes_.pop_front();
        }
        try {
            attempt(db, [&](storage& s) { ledger_.close_test(s, c.session_id, c.result, c.intervals, cfg_.clock()); });
        } catch (const storage_error& e) {
            failed(e);
            std::lock_guard lock(mu_);
            closes_.push_front(std::move(c));  // still unreachable: try again at the next flush
            return false;
        }
    }
}

void service::open_test(test_request req, std::function<void(async_result<open_result>)> done,
                        std::function<void(std::int64_t)> on_lease_lost) {
    enqueue_step([this, req = std::move(req), done = std::move(done), lost = std::move(on_lease_lost)](storage& db) -> finish_fn {
        async_result<open_result> r;
        const sys_ms now = cfg_.clock();
        try {
            r.value = attempt(db, [&](storage& s) { return ledger_.open_test(s, req, now); });
        } catch (const storage_error& e) {
            r.error = failed(e);
        }
        return [this, r = std::move(r), now, done, lost]() mutable {
            if (r.value && r.value->admitted) {
                std::lock_guard lock(mu_);
                open_[r.value->session_id] = open_entry{{}, {}, now, r.value->expires, lost};
            }
            if (done) done(std::move(r));
        };
    });
}

void service::extend(std::int64_t session_id, usage_counts moved, std::function<void(async_result<extend_result>)> done) {
    enqueue_step([this, session_id, moved, done = std::move(done)](storage& db) -> finish_fn {
        async_result<extend_result> r;
        const sys_ms now = cfg_.clock();
        try {
            r.value = attempt(db, [&](storage& s) { return ledger_.extend(s, session_id, moved, now); });
        } catch (const storage_error& e) {
            r.error = failed(e);
        }
        return [this, r = std::move(r), session_id, moved, now, done]() mutable {
            if (r.value) {
                std::lock_guard lock(mu_);
                if (auto it = open_.find(session_id); it != open_.end()) {
                    if (!r.value->lease_alive) {
                        open_.erase(it);
                    } else {
                        it->second.moved.in = std::max(it->second.moved.in, moved.in);
                        it->second.moved.out = std::max(it->second.moved.out, moved.out);
                        it->second.written = moved;
                        it->second.last_write = now;
                        it->second.expires = r.value->expires;
                    }
                }
            }
            if (done) done(std::move(r));
        };
    });
}

void service::record_usage(std::int64_t session_id, usage_counts moved) {
    std::lock_guard lock(mu_);
    auto it = open_.find(session_id);
    if (it == open_.end()) return;
    // Counts only grow; a late report must not move them back.
    it->second.moved.in = std::max(it->second.moved.in, moved.in);
    it->second.moved.out = std::max(it->second.moved.out, moved.out);
}

void service::close_test(std::int64_t session_id, test_result result, std::vector<interval_row> intervals,
                         std::function<void(std::optional<storage_failure>)> done) {
    enqueue_step([this, session_id, result = std::move(result), intervals = std::move(intervals),
                  done = std::move(done)](storage& db) -> finish_fn {
        std::optional<storage_failure> err;
        try {
            attempt(db, [&](storage& s) { ledger_.close_test(s, session_id, result, intervals, cfg_.clock()); });
        } catch (const storage_error& e) {
            err = failed(e);
        }
        return [this, session_id, err, result, intervals, done]() mutable {
            std::optional<storage_failure> dropped;
            {
                std::lock_guard lock(mu_);
                open_.erase(session_id);
                if (err) {
                    // Kept and retried at every flush (close_test is idempotent: it adds only
                    // what was not recorded yet). The test is no longer flushed or renewed.
                    closes_.push_back({session_id, std::move(result), std::move(intervals)});
                    if (closes_.size() > cfg_.max_pending_closes) {
                        dropped = storage_failure{storage_errc::unavailable,
                                                  "dropped the history of test " + std::to_string(closes_.front().session_id) +
                                                      ": more than " + std::to_string(cfg_.max_pending_closes) +
                                                      " closes are waiting for the database"};
                        closes_.pop_front();
                    }
                }
            }
            if (dropped && cfg_.on_error) cfg_.on_error(*dropped);
            if (done) done(std::move(err));
        };
    });
}

void service::record_refused(test_request req, std::string reason, std::function<void(async_result<std::int64_t>)> done) {
    enqueue_step([this, req = std::move(req), reason = std::move(reason), done = std::move(done)](storage& db) -> finish_fn {
        async_result<std::int64_t> r;
        try {
            r.value = attempt(db, [&](storage& s) { return ledger_.record_refused(s, req, reason, cfg_.clock()); });
        } catch (const storage_error& e) {
            r.error = failed(e);
        }
        return [r = std::move(r), done]() mutable {
            if (done) done(std::move(r));
        };
    });
}

void service::prune(std::chrono::days keep, std::function<void(async_result<prune_result>)> done) {
    enqueue([this, keep, done = std::move(done)](storage& db) {
        async_result<prune_result> r;
        try {
            r.value = attempt(db, [&](storage& s) { return ledger_.prune(s, cfg_.clock(), keep); });
        } catch (const storage_error& e) {
            r.error = failed(e);
        }
        if (done) done(std::move(r));
    });
}

void service::set_ip_quota(quota_limits q, std::function<void(std::optional<storage_failure>)> done) {
    enqueue([this, q, done = std::move(done)](storage& db) {
        std::optional<storage_failure> err;
        try {
            attempt(db, [&](storage& s) {
                write_transaction tx(s);
                s.set_ip_quota(q);
                tx.commit();
            });
        } catch (const storage_error& e) {
            err = failed(e);
        }
        if (done) done(std::move(err));
    });
}

void service::flush(std::function<void(async_result<std::size_t>)> done) {
    enqueue([this, done = std::move(done)](storage& db) {
        // This call's own failures only: other workers may fail meanwhile (a reconnect).
        async_result<std::size_t> r;
        bool ok = retry_closes(db);
        const std::size_t n = flush_now(db, &ok);
        if (!ok)
            r.error = storage_failure{available_.load() ? storage_errc::io : storage_errc::unavailable,
                                      "flushing usage failed (see the storage error reported before)"};
        else
            r.value = n;
        if (done) done(std::move(r));
    });
}

void service::post(std::function<void(storage&)> job) {
    enqueue([this, job = std::move(job)](storage& db) {
        try {
            attempt(db, job);
        } catch (const storage_error& e) {
            failed(e);
        }
    });
}

std::size_t service::open_tests() const {
    std::lock_guard lock(mu_);
    return open_.size();
}

std::size_t service::pending_closes() const {
    std::lock_guard lock(mu_);
    return closes_.size();
}

} // namespace btest::pro
