// Quota reservations per second through btest-server-pro's ledger, SQLite and PostgreSQL in
// the same run. What a server does per test: open_test (sweep, session row, reserve a slice of
// the user's and the IP's daily quota) and close_test (final usage, lease settled, history
// row), plus extend (record usage, reserve the next slice) while a test runs.
//
//   single: one connection, one test after another (the latency of the round trips)
//   pool:   a service per backend with the pool rule's connections (SQLite 1, PostgreSQL
//           io threads + 1), T client threads opening and closing tests at once; "one user"
//           puts every test on the same user's quota rows (the worst case: every reservation
//           takes the same row lock), "many users" spreads them over T users
//
//   btest_bench_pro_lease [--seconds S] [--threads T] [--pg URL | --pg-settings "-c NAME=VALUE ..."]
// Prints leases/s (open + close pairs) and extends/s per backend, and PostgreSQL / SQLite.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "btest/pro/accounts.hpp"
#include "btest/pro/cidr.hpp"
#include "btest/pro/service.hpp"
#include "pg_source.hpp"

using namespace btest::pro;
using clk = std::chrono::steady_clock;

namespace {

constexpr std::uint64_t slice = 10'000'000;

test_request req(const std::string& user, int k) {
    test_request r;
    r.user = user;
    r.peer_ip = *parse_ip("198.51.100." + std::to_string(1 + k % 200));
    r.peer_port = static_cast<std::uint16_t>(1024 + k % 60000);
    return r;
}

void prepare(storage& db, int users) {
    btest::seeded_entropy rng{7};
    quota_limits q;
    q.set(window::daily, quota_dir::total, std::uint64_t{1'000'000'000'000'000});  // never the limit
    for (int u = 0; u < users; ++u) add_account(db, make_account("u" + std::to_string(u), "pw", false, q, rng, utc_now()));
    write_transaction tx(db);
    db.set_ip_quota(q);
    tx.commit();
}

test_result done(std::uint64_t bytes) {
    test_result r;
    r.tx_bytes = bytes;
    r.ended_by = "peer_closed";
    return r;
}

struct single_rates {
    double leases = 0, extends = 0;
};

single_rates single(storage& db, double seconds) {
    ledger_config c;
    c.slice_bytes = slice;
    ledger l{c};
    single_rates out;
    int n = 0;
    auto t0 = clk::now();
    auto end = t0 + std::chrono::duration<double>(seconds / 2);
    while (clk::now() < end) {
        auto r = l.open_test(db, req("u0", n), utc_now());
        if (!r.admitted) throw std::runtime_error("refused");
        l.close_test(db, r.session_id, done(1000), {}, utc_now());
        ++n;
    }
    out.leases = n / std::chrono::duration<double>(clk::now() - t0).count();
    auto r = l.open_test(db, req("u0", 0), utc_now());
    std::uint64_t moved = 0;
    int e = 0;
    t0 = clk::now();
    end = t0 + std::chrono::duration<double>(seconds / 2);
    while (clk::now() < end) {
        moved += slice;
        if (!l.extend(db, r.session_id, {0, moved}, utc_now()).lease_alive) throw std::runtime_error("lease lost");
        ++e;
    }
    out.extends = e / std::chrono::duration<double>(clk::now() - t0).count();
    l.close_test(db, r.session_id, done(moved), {}, utc_now());
    return out;
}

double pooled(service& svc, int threads, bool one_user, double seconds) {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> total{0}, failures{0};
    std::vector<std::thread> clients;
    const auto t0 = clk::now();
    for (int t = 0; t < threads; ++t)
        clients.emplace_back([&, t] {
            const std::string user = one_user ? "u0" : "u" + std::to_string(t);
            for (int n = 0; !stop.load(); ++n) {
                std::promise<async_result<open_result>> p;
                svc.open_test(req(user, t * 1000 + n), [&](async_result<open_result> r) { p.set_value(std::move(r)); });
                auto r = p.get_future().get();
                if (!r || !r.value->admitted) {
                    ++failures;
                    continue;
                }
                std::promise<std::optional<storage_failure>> c;
                svc.close_test(r.value->session_id, done(1000), {},
                               [&](std::optional<storage_failure> f) { c.set_value(std::move(f)); });
                if (c.get_future().get()) ++failures;
                ++total;
            }
        });
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    stop = true;
    for (auto& c : clients) c.join();
    if (failures.load()) std::fprintf(stderr, "note: %llu failed leases\n", static_cast<unsigned long long>(failures.load()));
    return static_cast<double>(total.load()) / std::chrono::duration<double>(clk::now() - t0).count();
}

struct backend {
    std::string label, url;
    single_rates one;
    double one_user = 0, many_users = 0;
    std::size_t connections = 0;
};

} // namespace

int main(int argc, char** argv) {
    double seconds = 6;
    int threads = 4;
    std::string pg_url, pg_settings;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
        else if (!std::strcmp(argv[i], "--pg")) pg_url = argv[i + 1];
        else if (!std::strcmp(argv[i], "--pg-settings")) pg_settings = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: %s [--seconds S] [--threads T] [--pg URL | --pg-settings \"-c name=value ...\"]\n", argv[0]);
            return 1;
        }
    }
    auto pg = pro_bench::find_pg(pg_url, pg_settings);
    char dir_tmpl[] = "/tmp/btest_bench_lease_XXXXXX";
    if (!::mkdtemp(dir_tmpl)) return 1;
    const std::string dir = dir_tmpl;
    int rc = 0;
    try {
        std::vector<backend> backends{{"SQLite", "sqlite:" + dir + "/bench.db", {}, 0, 0, 0}};
        if (!pg.url.empty()) backends.push_back({"PostgreSQL", pg.database(), {}, 0, 0, 0});
        for (auto& b : backends) {
            auto db = open_storage(b.url);
            prepare(*db, threads);
        }
        // Alternate the backends per phase so that drift hits both alike.
        const double per = seconds / 3;
        for (auto& b : backends) {
            auto db = open_storage(b.url);
            b.one = single(*db, per);
        }
        for (auto& b : backends) {
            // The pool rule with `threads` io threads: one client thread per io thread.
            b.connections = service::pool_size(b.url, static_cast<unsigned>(threads));
            service_config cfg;
            cfg.ledger.slice_bytes = slice;
            service svc(service::open_pool(b.url, b.connections), cfg);
            b.one_user = pooled(svc, threads, true, per / 2);
            b.many_users = pooled(svc, threads, false, per / 2);
        }
        std::printf("Quota leases (open_test + close_test), %.1f s per backend\n", seconds);
        for (const auto& b : backends)
            std::printf("  %-10s single connection %8.0f leases/s %8.0f extends/s | %zu connection(s), %d threads: "
                        "one user %8.0f leases/s, many users %8.0f leases/s\n",
                        b.label.c_str(), b.one.leases, b.one.extends, b.connections, threads, b.one_user, b.many_users);
        if (backends.size() > 1)
            std::printf("  PostgreSQL / SQLite: single %.2f, one user %.2f, many users %.2f\nPostgreSQL: %s\n",
                        backends[1].one.leases / backends[0].one.leases, backends[1].one_user / backends[0].one_user,
                        backends[1].many_users / backends[0].many_users, pg.what.c_str());
        else
            std::printf("  PostgreSQL: skipped (%s)\n", pg.why_not.c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_lease: %s\n", e.what());
        rc = 2;
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    return rc;
}
