// A fleet as operators run it: `btest-server-pro serve` processes sharing one real PostgreSQL
// (the process's throwaway cluster, pg_cluster.hpp), driven by the real btest client. One
// user's quota spent through two servers at once; PostgreSQL stopped and started under a
// running test; a server killed with SIGKILL while it holds a lease.
//
// Test k runs on port slot k (serve_support.hpp): k = 8..12.
#include <future>

#include "pg_cluster.hpp"
#include "serve_support.hpp"

using namespace pro_test;

namespace {

/// The sessions (history rows) of one user, newest first, once none is still running.
std::vector<test::json::value> sessions_of(const std::string& db, const std::string& user) {
    return sessions(db, {"--user", user});
}

/// The client's test in the background.
std::future<client_result> client_async(unsigned k, std::vector<std::string> args) {
    return std::async(std::launch::async, [k, args = std::move(args)] { return client(k, args); });
}

} // namespace

TEST_CASE("pro: fleet: two servers on one PostgreSQL spend one user's quota at once, never past it",
          "[pro][pg][fleet][serve]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    const auto db = pg.url(pg.create_database());
    constexpr double quota = 80 * MB, slice = 4 * MB;
    REQUIRE(manage({"user", "add", "erin", "-p", "pw", "--quota-daily", "80M"}, db).status == 0);
    server a(db, 8, {"--lease-slice", "4M", "--server-id", "fleet-a"});
    server b(db, 9, {"--lease-slice", "4M", "--server-id", "fleet-b"});

    // Both servers send as fast as loopback goes, 1 and 2 TCP connections; both tests run
    // until the shared quota is spent.
    auto via_a = client_async(8, {"-a", "erin", "-p", "pw", "-r", "-d", "20"});
    auto via_b = client_async(9, {"-a", "erin", "-p", "pw", "-r", "-d", "20", "--connection-count", "2"});
    const auto ra = via_a.get(), rb = via_b.get();
    INFO("server a:\n" << a.log() << "\nserver b:\n" << b.log());
    CHECK(ra.status == 2);
    CHECK(rb.status == 2);

    const auto rows = sessions_of(db, "erin");
    REQUIRE(rows.size() == 2);
    double sent = 0;
    for (const auto& r : rows) {
        CHECK(r["ended_by"].str() == "quota_exhausted");
        sent += r["tx_bytes"].number() + r["rx_bytes"].number();
    }
    INFO("fleet-wide " << sent << " bytes against a quota of " << quota);
    // The servers send: each stops at its own budget, so the fleet never goes past the quota,
    // and what it leaves unspent is less than the stated bound (two slices per server).
    CHECK(sent <= quota);
    CHECK(sent >= quota - 2 * 2 * slice);
    CHECK(used(db, {"--user", "erin"}, "daily", "total") == sent);

    // What is left (less than the unspent bound) goes to the next tests, a chunk at a time,
    // through either server; then the next test is refused before any data.
    bool refused = false;
    for (unsigned i = 0; i < 6 && !refused; ++i) {
        auto more = client(8 + i % 2, {"-a", "erin", "-p", "pw", "-r", "-d", "3"});
        CHECK(more.status == 2);
        refused = error_code(more) == "test_refused";
        if (!refused) CHECK(sessions_of(db, "erin")[0]["ended_by"].str() == "quota_exhausted");
    }
    CHECK(refused);
    const double total = used(db, {"--user", "erin"}, "daily", "total");
    CHECK(total <= quota);
    CHECK(total > quota - 32768);  // less than one chunk is left
    CHECK(a.stop() == 0);
    CHECK(b.stop() == 0);
}

TEST_CASE("pro: fleet: PostgreSQL stopped under a running test, then started: the test ends within its lease, "
          "logins are refused meanwhile and work again, nothing is lost",
          "[pro][pg][fleet][serve][outage]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    pg_cluster pg;  // its own: this test stops it
    const auto db = pg.url(pg.create_database());
    REQUIRE(manage({"user", "add", "finn", "-p", "pw", "--quota-daily", "500M"}, db).status == 0);
    server s(db, 10, {"--lease-slice", "2M"});

    // 40 Mbit/s from the client: a 2 MB slice lasts 0.4 s, so the test needs refills.
    auto running = client_async(10, {"-a", "finn", "-p", "pw", "-t", "-b", "40M", "-d", "15"});
    std::this_thread::sleep_for(2s);
    pg.stop();
    const auto stopped_at = std::chrono::steady_clock::now();
    const auto cut = running.get();
    const auto cut_after = std::chrono::steady_clock::now() - stopped_at;
    INFO("server:\n" << s.log());
    // It went on within its lease (at most two slices: 0.8 s at this rate), then ended.
    CHECK(cut.status == 2);
    CHECK(cut_after < 8s);
    REQUIRE(cut.summary);
    CHECK((*cut.summary)["tx_bytes"].number() > 8 * MB);
    CHECK(s.alive());

    // While the database is down a login is refused (the snapshot still knows the account,
    // the quota cannot be leased), with a line in the log.
    auto refused = client(10, {"-a", "finn", "-p", "pw", "-t", "-d", "2"});
    CHECK(refused.status == 2);
    CHECK(error_code(refused) == "test_refused");
    CHECK(has(s.log(), "quota_unavailable"));
    CHECK(s.alive());

    // Back: the server reconnects by itself, and tests run again.
    pg.start();
    client_result again;
    const auto deadline = std::chrono::steady_clock::now() + 40s;
    do {
        again = client(10, {"-a", "finn", "-p", "pw", "-t", "-b", "40M", "-d", "1"});
        if (again.status == 0) break;
        std::this_thread::sleep_for(500ms);
    } while (std::chrono::steady_clock::now() < deadline);
    CHECK(again.status == 0);

    // The test cut by the outage reached the history, with its end reason and its bytes.
    std::vector<test::json::value> rows;
    const auto history_deadline = std::chrono::steady_clock::now() + 20s;
    bool found = false;
    while (!found && std::chrono::steady_clock::now() < history_deadline) {
        rows = sessions_of(db, "finn");
        for (const auto& r : rows)
            if (r["ended_by"].str() == "quota_unavailable" && !r["refused"].boolean()) {  // not the refused login
                found = true;
                CHECK(r["rx_bytes"].number() > 8 * MB);
                CHECK(r["rx_bytes"].number() <= (*cut.summary)["tx_bytes"].number());
            }
        if (!found) std::this_thread::sleep_for(500ms);
    }
    INFO("history:\n" << manage({"sessions", "--json"}, db).out << "\nserver:\n" << s.log());
    CHECK(found);
    CHECK(s.stop() == 0);
}

TEST_CASE("pro: fleet: a server killed while it holds a lease costs the others at most its unspent slices",
          "[pro][pg][fleet][serve][crash]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    const auto db = pg.url(pg.create_database());
    constexpr double quota = 60 * MB, slice = 4 * MB;
    REQUIRE(manage({"user", "add", "gus", "-p", "pw", "--quota-daily", "60M"}, db).status == 0);
    std::optional<server> a(std::in_place, db, 11, std::vector<std::string>{"--lease-slice", "4M", "--server-id", "dies"});
    server b(db, 12, {"--lease-slice", "4M", "--server-id", "lives"});

    // Server a sends at 80 Mbit/s (10 MB/s) and is killed after about 1.5 s.
    auto doomed = client_async(11, {"-a", "gus", "-p", "pw", "-r", "-b", "80M", "-d", "20"});
    std::this_thread::sleep_for(1500ms);
    a->kill9();
    const auto cut = doomed.get();
    CHECK(cut.status == 2);
    REQUIRE(cut.summary);
    const double got_from_a = (*cut.summary)["rx_bytes"].number();
    CHECK(got_from_a > 5 * MB);

    // Server b spends what is left as fast as it can.
    const auto rest = client(12, {"-a", "gus", "-p", "pw", "-r", "-d", "20"});
    INFO("server b:\n" << b.log());
    CHECK(rest.status == 2);
    REQUIRE(rest.summary);
    const double got_from_b = (*rest.summary)["rx_bytes"].number();
    INFO("a delivered " << got_from_a << ", b " << got_from_b << " of " << quota);
    // Never past the quota; what the dead server held back is at most its two unspent slices
    // (plus what was still in flight when it died: at 10 MB/s, well under 1 MB).
    CHECK(got_from_a + got_from_b <= quota);
    CHECK(got_from_b >= quota - got_from_a - 2 * slice - 1 * MB);
    CHECK(b.stop() == 0);
}
