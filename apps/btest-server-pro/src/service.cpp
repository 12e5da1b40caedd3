#include "btest/pro/service.hpp"

namespace btest::pro {

service::service(std::unique_ptr<storage> db, service_config cfg)
    : db_(std::move(db)), cfg_(std::move(cfg)), ledger_(cfg_.ledger) {
    if (!cfg_.clock) cfg_.clock = utc_now;
    worker_ = std::thread([this] { run(); });
}

service::~service() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    worker_.join();
}

storage_failure service::failed(const storage_error& e) {
    errors_.fetch_add(1, std::memory_order_relaxed);
    storage_failure f{e.code(), e.what()};
    if (cfg_.on_error) cfg_.on_error(f);
    return f;
}

void service::enqueue(std::function<void()> job) {
    {
        std::lock_guard lock(mu_);
        jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
}

void service::run() {
    auto next_flush = std::chrono::steady_clock::now() + cfg_.flush_interval;
    for (;;) {
        std::deque<std::function<void()>> batch;
        bool stop = false;
        {
            std::unique_lock lock(mu_);
            cv_.wait_until(lock, next_flush, [&] { return stopping_ || !jobs_.empty(); });
            batch.swap(jobs_);
            stop = stopping_;
        }
        for (auto& job : batch) job();
        if (stop) {
            // Jobs queued while this batch ran belong to callers that raced the destructor
            // (documented as not allowed); run them anyway rather than drop a completion.
            std::deque<std::function<void()>> rest;
            {
                std::lock_guard lock(mu_);
                rest.swap(jobs_);
            }
            for (auto& job : rest) job();
            flush_now();
            return;
        }
        if (std::chrono::steady_clock::now() >= next_flush) {
            flush_now();
            next_flush = std::chrono::steady_clock::now() + cfg_.flush_interval;
        }
    }
}

std::size_t service::flush_now() {
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
    if (reports.empty()) return 0;
    std::vector<std::int64_t> lost;
    try {
        lost = ledger_.record_usage(*db_, reports, now);
    } catch (const storage_error& e) {
        failed(e);  // still pending: retried at the next flush
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
    return reports.size();
}

void service::open_test(test_request req, std::function<void(async_result<open_result>)> done,
                        std::function<void(std::int64_t)> on_lease_lost) {
    enqueue([this, req = std::move(req), done = std::move(done), lost = std::move(on_lease_lost)]() mutable {
        async_result<open_result> r;
        try {
            const sys_ms now = cfg_.clock();
            r.value = ledger_.open_test(*db_, req, now);
            if (r.value->admitted) {
                std::lock_guard lock(mu_);
                open_[r.value->session_id] = open_entry{{}, {}, now, std::move(lost)};
            }
        } catch (const storage_error& e) {
            r.error = failed(e);
        }
        if (done) done(std::move(r));
    });
}

void service::extend(std::int64_t session_id, usage_counts moved, std::function<void(async_result<extend_result>)> done) {
    enqueue([this, session_id, moved, done = std::move(done)] {
        async_result<extend_result> r;
        try {
            const sys_ms now = cfg_.clock();
            r.value = ledger_.extend(*db_, session_id, moved, now);
            std::lock_guard lock(mu_);
            if (auto it = open_.find(session_id); it != open_.end()) {
                if (!r.value->lease_alive) {
                    open_.erase(it);
                } else {
                    it->second.moved.in = std::max(it->second.moved.in, moved.in);
                    it->second.moved.out = std::max(it->second.moved.out, moved.out);
                    it->second.written = moved;
                    it->second.last_write = now;
                }
            }
        } catch (const storage_error& e) {
            r.error = failed(e);
        }
        if (done) done(std::move(r));
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
    enqueue([this, session_id, result = std::move(result), intervals = std::move(intervals), done = std::move(done)] {
        std::optional<storage_failure> err;
        try {
            ledger_.close_test(*db_, session_id, result, intervals, cfg_.clock());
            std::lock_guard lock(mu_);
            open_.erase(session_id);
        } catch (const storage_error& e) {
            // The test stays open: its last counts keep being flushed and its lease renewed,
            // so the usage is not lost; the caller may retry the close.
            err = failed(e);
        }
        if (done) done(std::move(err));
    });
}

void service::record_refused(test_request req, std::string reason, std::function<void(async_result<std::int64_t>)> done) {
    enqueue([this, req = std::move(req), reason = std::move(reason), done = std::move(done)] {
        async_result<std::int64_t> r;
        try {
            r.value = ledger_.record_refused(*db_, req, reason, cfg_.clock());
        } catch (const storage_error& e) {
            r.error = failed(e);
        }
        if (done) done(std::move(r));
    });
}

void service::prune(std::chrono::days keep, std::function<void(async_result<prune_result>)> done) {
    enqueue([this, keep, done = std::move(done)] {
        async_result<prune_result> r;
        try {
            r.value = ledger_.prune(*db_, cfg_.clock(), keep);
        } catch (const storage_error& e) {
            r.error = failed(e);
        }
        if (done) done(std::move(r));
    });
}

void service::set_ip_quota(quota_limits q, std::function<void(std::optional<storage_failure>)> done) {
    enqueue([this, q, done = std::move(done)] {
        std::optional<storage_failure> err;
        try {
            write_transaction tx(*db_);
            db_->set_ip_quota(q);
            tx.commit();
        } catch (const storage_error& e) {
            err = failed(e);
        }
        if (done) done(std::move(err));
    });
}

void service::flush(std::function<void(async_result<std::size_t>)> done) {
    enqueue([this, done = std::move(done)] {
        const auto before = errors();
        async_result<std::size_t> r;
        const std::size_t n = flush_now();
        if (errors() != before)
            r.error = storage_failure{storage_errc::io, "flushing usage failed (see the storage error reported before)"};
        else
            r.value = n;
        if (done) done(std::move(r));
    });
}

void service::post(std::function<void(storage&)> job) {
    enqueue([this, job = std::move(job)] {
        try {
            job(*db_);
        } catch (const storage_error& e) {
            failed(e);
        }
    });
}

std::size_t service::open_tests() const {
    std::lock_guard lock(mu_);
    return open_.size();
}

} // namespace btest::pro
