#include "btest/pro/db_credentials.hpp"

#include <future>

#include <botan/mem_ops.h>


namespace btest::pro {

db_credentials::entry::~entry() {
    if (md5_password) Botan::secure_scrub_memory(md5_password->data(), md5_password->size());
}

db_credentials::db_credentials(service& svc, options opts) : svc_(svc), opts_(std::move(opts)) {
    install(std::make_shared<const snapshot>());
    refresh_now();
    if (opts_.refresh_interval.count() > 0) thread_ = std::thread([this] { refresher(); });
}

db_credentials::~db_credentials() {
    {
        std::lock_guard lock(stop_mu_);
        stop_ = true;
    }
    stop_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void db_credentials::refresh_now() {
    std::lock_guard refresh_lock(refresh_mu_);
    const auto old = current();

    // Only the database work runs on the worker: the generation and, if it moved, the rows.
    // A failure comes back as a value and is thrown again here: an exception object shared
    // between threads through exception_ptr is reference-counted inside libstdc++, where
    // ThreadSanitizer cannot see the synchronisation.
    struct loaded {
        std::int64_t generation = 0;
        std::optional<std::vector<account>> accounts;
        std::optional<storage_failure> failure;
    };
    std::promise<loaded> p;
    auto f = p.get_future();
    svc_.post([&p, known = old->generation](storage& db) {
        loaded l;
        try {
            l.generation = db.accounts_generation();
            if (l.generation != known) {
                // The generation is read first: a write that lands between the two reads is
                // in the rows already and makes the next check reload once more.
                l.accounts = db.list_accounts();
            }
        } catch (const storage_error& e) {
            l.accounts.reset();
            l.failure = storage_failure{e.code(), e.what()};
        } catch (const std::exception& e) {
            l.accounts.reset();
            l.failure = storage_failure{storage_errc::io, e.what()};
        }
        p.set_value(std::move(l));
    });
    loaded l = f.get();
    if (l.failure) throw storage_error(l.failure->code, l.failure->message);
    if (!l.accounts) return;

    // Prepare off the worker: a redp1 loop per new or changed record.
    auto next = std::make_shared<snapshot>();
    next->generation = l.generation;
    for (auto& a : *l.accounts) {
        auto it = old->users.find(a.name);
        if (it != old->users.end() && it->second->prepared.record == a.ecsrp5 &&
            it->second->md5_password == a.md5_password) {
            next->users.emplace(a.name, it->second);
        } else if (auto prepared = auth::ec_srp5::prepare(a.ecsrp5)) {
            auto e = std::make_shared<entry>();
            e->prepared = std::move(*prepared);
            e->md5_password = std::move(a.md5_password);
            next->users.emplace(a.name, std::move(e));
        }
        // A record that does not decode could never log in: leaving it out makes it an
        // unknown user, which fails the same way.
        if (a.md5_password) Botan::secure_scrub_memory(a.md5_password->data(), a.md5_password->size());
    }
    install(std::move(next));
}

void db_credentials::refresher() {
    std::unique_lock lock(stop_mu_);
    while (!stop_cv_.wait_for(lock, opts_.refresh_interval, [this] { return stop_; })) {
        lock.unlock();
        try {
            refresh_now();
        } catch (const storage_error& e) {
            if (opts_.on_error) opts_.on_error({e.code(), e.what()});
        }
        lock.lock();
    }
}

std::int64_t db_credentials::generation() const { return current()->generation; }
std::size_t db_credentials::size() const { return current()->users.size(); }

const db_credentials::entry* db_credentials::find(const snapshot& s, std::string_view user) const {
    auto it = s.users.find(user);
    return it == s.users.end() ? nullptr : it->second.get();
}

std::optional<std::string> db_credentials::md5_password(std::string_view user) const {
    // Names are at most 32 bytes (user_name.hpp), so the MD5 field never truncates one.
    const auto s = current();
    const entry* e = find(*s, user);
    if (!e || !e->md5_password) return std::nullopt;
    return e->md5_password;
}

std::optional<auth::ec_srp5::validator_record> db_credentials::ecsrp5_record(std::string_view user) const {
    const auto s = current();
    const entry* e = find(*s, user);
    if (!e) return std::nullopt;
    return e->prepared.record;
}

std::optional<auth::ec_srp5::prepared_record> db_credentials::ecsrp5_prepared(std::string_view user) const {
    const auto s = current();
    const entry* e = find(*s, user);
    if (!e) return std::nullopt;
    return e->prepared;
}

} // namespace btest::pro
