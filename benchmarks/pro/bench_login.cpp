// EC-SRP5 server logins per second through btest-server-pro's database credential store
// (db_credentials: accounts in SQLite, or in PostgreSQL as a fleet shares them; an in-memory
// prepared snapshot either way) against the kit's memory_credentials (what `btest -s -a/-p`
// uses), in the same run. Each login is what a server session does: look the user up
// (ecsrp5_prepared), then the server side of the handshake (MSG1 → MSG2, MSG3 → MSG4) with
// precomputed client messages. Rounds alternate between the stores so that frequency drift
// hits all alike. The churn variants keep the refresher (checking every 100 ms; a server's
// default is 1 s) swapping snapshots, with an account written every 10 ms, while the logins
// run: each swap reads all accounts and re-prepares the changed one.
//
// Also printed: what the snapshot saves, per backend — one account lookup straight from the
// database (what a login would cost without the snapshot) and one full reload of the
// accounts (a refresh after a change, before preparing).
//
//   btest_bench_pro_login [--users N] [--seconds S] [--threads T] [--pg URL | --pg-settings "-c NAME=VALUE ..."]
// PostgreSQL: --pg URL (an empty database), else a throwaway cluster when postgresql-15 is
// installed (pg_source.hpp), else those lines are skipped.
// Prints logins/s per store and the ratio db / memory (target ≥ 0.8).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "btest/auth/credentials.hpp"
#include "btest/auth/ec_srp5.hpp"
#include "btest/pro/accounts.hpp"
#include "btest/pro/db_credentials.hpp"
#include "btest/pro/service.hpp"
#include "pg_source.hpp"

namespace ec = btest::auth::ec_srp5;
using namespace btest::pro;
using clk = std::chrono::steady_clock;

namespace {

struct login {
    std::string user;
    btest::wire::ec_point_bytes client_key;
    btest::wire::ecsrp5_proof msg3{};
};

const std::array<std::byte, 32> s_a = [] {
    std::array<std::byte, 32> a{};
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = std::byte(i * 7 + 1);
    return a;
}();
const std::array<std::byte, 32> s_b = [] {
    std::array<std::byte, 32> a{};
    for (std::size_t i = 0; i < a.size(); ++i) a[i] = std::byte(i * 13 + 5);
    return a;
}();

/// Client messages for `user` against the record `store` holds (its salt is the store's own).
login transcript(const btest::auth::credential_store& store, const std::string& user, const std::string& password) {
    btest::fixed_entropy fa{s_a}, fb{s_b};
    ec::client_exchange client{user, password, fa};
    ec::server_exchange server{fb};
    auto rec = store.ecsrp5_prepared(user);
    if (!rec) throw std::runtime_error("no record for " + user);
    auto m2 = server.on_msg1({user, client.client_key()}, *rec);
    auto m3 = m2 ? client.on_msg2(*m2) : btest::errc::auth_failed;
    if (!m3 || !server.on_msg3(*m3)) throw std::runtime_error("setup login failed for " + user);
    return {user, client.client_key(), *m3};
}

/// Logins for `seconds` on `threads` threads; returns logins per second. Every login must succeed.
double run(const btest::auth::credential_store& store, const std::vector<login>& logins, double seconds, int threads) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> total{0}, failures{0};
    std::vector<std::thread> pool;
    const auto start = clk::now();
    for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            std::uint64_t n = 0, bad = 0;
            std::size_t i = static_cast<std::size_t>(t) * 7;
            while (!stop.load(std::memory_order_relaxed)) {
                const login& l = logins[i++ % logins.size()];
                auto rec = store.ecsrp5_prepared(l.user);
                btest::fixed_entropy rng{s_b};
                ec::server_exchange server{rng};
                auto m2 = rec ? server.on_msg1({l.user, l.client_key}, *rec) : btest::errc::auth_failed;
                auto m4 = m2 ? server.on_msg3(l.msg3) : btest::errc::auth_failed;
                if (!m4) ++bad;
                ++n;
            }
            total += n;
            failures += bad;
        });
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& th : pool) th.join();
    const double elapsed = std::chrono::duration<double>(clk::now() - start).count();
    if (failures.load() != 0) throw std::runtime_error("a login failed during the benchmark");
    return static_cast<double>(total.load()) / elapsed;
}

void fill(storage& db, int users, btest::seeded_entropy& salts, btest::auth::memory_credentials* mem) {
    write_transaction tx(db);
    for (int u = 0; u < users; ++u) {
        const auto name = "user" + std::to_string(u);
        db.insert_account(make_account(name, "pw" + std::to_string(u), u % 10 == 0, {}, salts, utc_now()));
        if (mem) mem->add(name, "pw" + std::to_string(u));
    }
    db.bump_accounts_generation();
    tx.commit();
}

struct raw_costs {
    double lookup_us = 0;   ///< find_account, one round trip
    double reload_ms = 0;   ///< list_accounts of every account
};

raw_costs measure_raw(storage& db, int users) {
    raw_costs c;
    constexpr int lookups = 400, reloads = 5;
    auto t0 = clk::now();
    for (int i = 0; i < lookups; ++i)
        if (!db.find_account("user" + std::to_string((i * 37) % users))) throw std::runtime_error("lookup failed");
    c.lookup_us = std::chrono::duration<double, std::micro>(clk::now() - t0).count() / lookups;
    t0 = clk::now();
    for (int i = 0; i < reloads; ++i)
        if (db.list_accounts().size() != static_cast<std::size_t>(users)) throw std::runtime_error("reload failed");
    c.reload_ms = std::chrono::duration<double, std::milli>(clk::now() - t0).count() / reloads;
    return c;
}

/// One database-backed store and what measures it.
struct db_store {
    std::string label;
    std::string url;
    std::unique_ptr<service> svc;
    std::unique_ptr<db_credentials> creds;
    std::vector<login> logins;
    double rate = 0, churn = 0;
    raw_costs raw;
};

} // namespace

int main(int argc, char** argv) {
    int users = 1000, threads = 1;
    double seconds = 6;
    std::string pg_url, pg_settings;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--users")) users = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--pg")) pg_url = argv[i + 1];
        else if (!std::strcmp(argv[i], "--pg-settings")) pg_settings = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: %s [--users N] [--seconds S] [--threads T] [--pg URL | --pg-settings \"-c name=value ...\"]\n", argv[0]);
            return 1;
        }
    }
    auto pg = pro_bench::find_pg(pg_url, pg_settings);
    char dir_tmpl[] = "/tmp/btest_bench_login_XXXXXX";
    if (!::mkdtemp(dir_tmpl)) return 1;
    const std::string dir = dir_tmpl;
    int rc = 0;
    try {
        btest::seeded_entropy salts{99};
        btest::auth::memory_credentials mem{salts};
        std::vector<std::unique_ptr<db_store>> stores;
        stores.push_back(std::make_unique<db_store>());
        stores.back()->label = "SQLite";
        stores.back()->url = "sqlite:" + dir + "/bench.db";
        if (!pg.url.empty()) {
            stores.push_back(std::make_unique<db_store>());
            stores.back()->label = "PostgreSQL";
            stores.back()->url = pg.database();
        }
        for (auto& st : stores) {
            {
                auto db = open_storage(st->url);
                fill(*db, users, salts, st->label == "SQLite" ? &mem : nullptr);
                st->raw = measure_raw(*db, users);
            }
            st->svc = std::make_unique<service>(open_storage(st->url), service_config{});
            st->creds = std::make_unique<db_credentials>(*st->svc, db_credentials::options{std::chrono::milliseconds{100}, {}});
        }

        std::vector<login> mem_logins;
        for (int u = 0; u < users; u += std::max(1, users / 64)) {
            const auto name = "user" + std::to_string(u);
            mem_logins.push_back(transcript(mem, name, "pw" + std::to_string(u)));
            for (auto& st : stores) st->logins.push_back(transcript(*st->creds, name, "pw" + std::to_string(u)));
        }

        const int rounds = 6;
        const double slice = seconds / (rounds * static_cast<double>(1 + 2 * stores.size()));
        double mem_rate = 0;
        for (int r = 0; r < rounds; ++r) {
            mem_rate += run(mem, mem_logins, slice, threads);
            for (auto& st : stores) {
                st->rate += run(*st->creds, st->logins, slice, threads);
                // The same with an account written every 10 ms: the refresher swaps snapshots
                // (re-preparing only the changed account) under the running logins.
                auto writer_db = open_storage(st->url);
                std::atomic<bool> stop{false};
                std::thread writer([&] {
                    btest::seeded_entropy rng{static_cast<std::uint64_t>(r) + 1};
                    int k = 0;
                    while (!stop.load()) {
                        account_change c;
                        c.quotas[0][2] = static_cast<std::uint64_t>(++k) * 1000;
                        change_account(*writer_db, "user1", c, rng, utc_now());
                        std::this_thread::sleep_for(std::chrono::milliseconds{10});
                    }
                });
                const auto gen_before = st->creds->generation();
                st->churn += run(*st->creds, st->logins, slice, threads);
                stop = true;
                writer.join();
                if (st->creds->generation() == gen_before)
                    std::fprintf(stderr, "note: no %s snapshot swap happened in round %d\n", st->label.c_str(), r);
            }
        }
        mem_rate /= rounds;
        std::printf("EC-SRP5 server logins, %d users, %d thread(s), %.2f s per store\n", users, threads, slice * rounds);
        std::printf("  memory_credentials (btest -s -a/-p)         %10.0f logins/s\n", mem_rate);
        for (auto& st : stores) {
            st->rate /= rounds;
            st->churn /= rounds;
            std::printf("  db_credentials, %-10s snapshot           %10.0f logins/s   ratio %.3f\n", st->label.c_str(),
                        st->rate, st->rate / mem_rate);
            std::printf("  db_credentials, %-10s a swap every 100 ms %9.0f logins/s   ratio %.3f\n", st->label.c_str(),
                        st->churn, st->churn / mem_rate);
        }
        if (stores.size() > 1)
            std::printf("  PostgreSQL / SQLite snapshot logins: ratio %.3f\n", stores[1]->rate / stores[0]->rate);
        else
            std::printf("  PostgreSQL: skipped (%s)\n", pg.why_not.c_str());
        std::printf("What the snapshot saves (one connection, no snapshot):\n");
        for (auto& st : stores)
            std::printf("  %-10s  account lookup %8.1f us   reload of %d accounts %8.2f ms\n", st->label.c_str(),
                        st->raw.lookup_us, users, st->raw.reload_ms);
        if (stores.size() > 1) std::printf("PostgreSQL: %s\n", pg.what.c_str());
        // Creds before services: the refresher posts to the service.
        for (auto& st : stores) st->creds.reset();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_login: %s\n", e.what());
        rc = 2;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return rc;
}
