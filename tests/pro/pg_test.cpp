// What is particular to PostgreSQL, and fleets of servers on one database: URLs and passwords,
// schema creation and migration, concurrent startups, two services ("servers") spending one
// quota at once, a server that dies holding a lease, the database stopped and started under a
// running service, and the management commands against PostgreSQL. A real cluster started by
// the tests (pg_cluster.hpp); every wait is bounded.
#include <catch2/catch.hpp>

#include <atomic>
#include <csignal>
#include <future>
#include <mutex>
#include <random>
#include <thread>

#include "btest/pro/db_credentials.hpp"
#include "btest/pro/pg.hpp"
#include "btest/pro/pg_storage.hpp"
#include "btest/pro/service.hpp"
#include "pg_cluster.hpp"
#include "pro_support.hpp"
#include "process.hpp"
#include "test/json.hpp"

using namespace btest::pro;
using namespace std::chrono_literals;
using pro_test::limit;
using pro_test::pg_backend;
using pro_test::pg_cluster;
using pro_test::request;
using pro_test::temp_dir;
using pro_test::test_account;

namespace {

constexpr std::uint64_t MB = 1'000'000;

storage_error open_failure(const std::string& url, const open_options& o = {}) {
    try {
        open_storage(url, o);
    } catch (const storage_error& e) {
        return e;
    }
    FAIL("opening " << pg::redact_url(url) << " succeeded");
    return storage_error(storage_errc::io, "");
}

/// Waits for a completion; throws after `limit`. No Catch macro here: the fleet tests call it
/// from their client threads, and Catch's assertions are for the main thread only.
template <class T>
T await(std::future<T> f, std::chrono::seconds limit = 20s) {
    if (f.wait_for(limit) != std::future_status::ready) throw std::runtime_error("no completion within the time limit");
    return f.get();
}

template <class R>
std::pair<std::function<void(R)>, std::future<R>> completion() {
    auto p = std::make_shared<std::promise<R>>();
    auto f = p->get_future();
    return {[p](R r) { p->set_value(std::move(r)); }, std::move(f)};
}

async_result<open_result> open_sync(service& svc, const test_request& req, std::function<void(std::int64_t)> lost = {}) {
    auto [cb, f] = completion<async_result<open_result>>();
    svc.open_test(req, cb, std::move(lost));
    return await(std::move(f));
}
async_result<extend_result> extend_sync(service& svc, std::int64_t id, usage_counts moved) {
    auto [cb, f] = completion<async_result<extend_result>>();
    svc.extend(id, moved, cb);
    return await(std::move(f));
}
std::optional<storage_failure> close_sync(service& svc, std::int64_t id, std::uint64_t tx, std::uint64_t rx,
                                          std::string_view ended = ended_by::peer_closed) {
    test_result r;
    r.tx_bytes = tx;
    r.rx_bytes = rx;
    r.ended_by = std::string(ended);
    auto [cb, f] = completion<std::optional<storage_failure>>();
    svc.close_test(id, r, {}, cb);
    return await(std::move(f));
}
async_result<std::size_t> flush_sync(service& svc) {
    auto [cb, f] = completion<async_result<std::size_t>>();
    svc.flush(cb);
    return await(std::move(f));
}

/// A settable wall clock shared by the services of a test.
struct fake_clock {
    std::atomic<std::int64_t> ms{to_unix_ms(pro_test::utc(2024, 5, 8, 10))};
    sys_ms now() const { return from_unix_ms(ms.load()); }
    void advance(std::chrono::milliseconds d) { ms += d.count(); }
};

service_config fleet_config(const std::string& holder, std::uint64_t slice, fake_clock* clock = nullptr) {
    service_config c;
    c.ledger.holder = holder;
    c.ledger.slice_bytes = slice;
    c.ledger.lease_ttl = 60s;
    c.flush_interval = 1h;  // flushed explicitly unless a test says otherwise
    if (clock) c.clock = [clock] { return clock->now(); };
    return c;
}

/// A test's client in miniature: spends its whole budget (out direction) in steps, reporting
/// usage and asking for the next slice when less than half a slice is left, until no more is
/// granted; then closes. Returns the bytes it moved. Checks the two-slice rule on the way.
std::uint64_t spend_all(service& svc, std::int64_t id, std::uint64_t budget, std::uint64_t slice, std::uint64_t step,
                        std::atomic<int>& rule_broken) {
    std::uint64_t moved = 0;
    for (;;) {
        while (moved < budget) {
            moved = std::min(budget, moved + step);
            svc.record_usage(id, {0, moved});
            if (budget - moved < slice / 2) break;
        }
        auto e = extend_sync(svc, id, {0, moved});
        if (!e || !e.value->lease_alive) {
            ++rule_broken;  // neither may happen here: the database is up, nobody sweeps
            break;
        }
        const std::uint64_t next = e.value->budget.total.value_or(0);
        if (next < budget || next - moved > 2 * slice) ++rule_broken;
        if (next == budget && moved == budget) break;  // nothing more to be had
        budget = next;
    }
    if (close_sync(svc, id, moved, 0)) ++rule_broken;
    return moved;
}

} // namespace

TEST_CASE("pro: pg: URLs over TCP and the Unix socket, passwords stay out of messages", "[pro][pg]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    const auto db = pg.create_database();

    auto tcp = open_storage(pg.url(db));
    CHECK(tcp->schema_version() == pg_latest_schema());
    CHECK(tcp->describe() == "postgresql://btest:***@127.0.0.1:" + std::to_string(pg.port()) + "/" + db);
    auto sock = open_storage(pg.socket_url(db));
    REQUIRE(add_account(*sock, test_account("alice", "a")) == account_status::ok);
    CHECK(tcp->find_account("alice"));  // one database, two ways in
    auto short_scheme = open_storage("postgres://btest:" + std::string(pg_cluster::password) + "@127.0.0.1:" +
                                     std::to_string(pg.port()) + "/" + db);
    CHECK(short_scheme->list_accounts().size() == 1);

    const std::string base = "@127.0.0.1:" + std::to_string(pg.port()) + "/";
    auto wrong = open_failure("postgresql://btest:not-the-pw" + base + db);
    CHECK(wrong.code() == storage_errc::unavailable);
    CHECK_THAT(wrong.what(), Catch::Contains("password authentication failed") && !Catch::Contains("not-the-pw"));
    auto no_db = open_failure(pg.url("no_such_db"));
    CHECK(no_db.code() == storage_errc::unavailable);
    CHECK_THAT(no_db.what(), Catch::Contains("does not exist") && !Catch::Contains(pg_cluster::password));
    auto bad = open_failure("postgresql://btest:secret-pw" + base + db + "?no_such_option=1");
    CHECK(bad.code() == storage_errc::bad_url);
    CHECK_THAT(bad.what(), !Catch::Contains("secret-pw"));
    // Nothing listens on port 1: refused at once, not a hang.
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(open_failure("postgresql://btest:pw@127.0.0.1:1/db").code() == storage_errc::unavailable);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);

    CHECK(pg::redact_url("postgresql://u:p%40ss@h:5/d?sslmode=require&password=x") ==
          "postgresql://u:***@h:5/d?sslmode=require&password=***");
    CHECK(pg::redact_url("postgresql://u@h/d") == "postgresql://u@h/d");
    // The pool rule (service.hpp): SQLite one connection, a database server one per io thread
    // and one more.
    CHECK(service::pool_size("sqlite:x.db", 8) == 1u);
    CHECK(service::pool_size(pg.url(db), 4) == 5u);
    CHECK(service::pool_size(pg.url(db), 0) == 2u);
    CHECK(pg::redact_url("postgresql:///d?host=/run/pg") == "postgresql:///d?host=/run/pg");
}

TEST_CASE("pro: pg: a server that stops answering costs a call its deadline, never a hang", "[pro][pg][outage]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    // A listener that accepts and never says a word: the connection attempt times out.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 4) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    open_options o;
    o.connect_timeout = 500ms;
    o.query_timeout = 800ms;
    auto t0 = std::chrono::steady_clock::now();
    auto mute = open_failure("postgresql://btest:pw@127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/db", o);
    CHECK(mute.code() == storage_errc::unavailable);
    CHECK_THAT(mute.what(), Catch::Contains("no answer within 500 ms"));
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    ::close(fd);

    // A backend frozen mid-session (SIGSTOP: a hung host, as far as the client can tell).
    std::vector<std::string> log;
    o.log = [&](const std::string& line) { log.push_back(line); };
    o.reconnect_min = 10ms;
    auto db = open_storage(pg.url(pg.create_database()), o);
    pg::connect_options co;
    co.conninfo = pg.url("postgres");
    pg::connection admin(co);
    // The backend of `db`: the newest connection of its database.
    const auto pid = static_cast<pid_t>(
        admin.exec("SELECT pid FROM pg_stat_activity WHERE datname <> 'postgres' AND backend_type = 'client backend' "
                   "ORDER BY backend_start DESC LIMIT 1")
            .int64(0, 0));
    REQUIRE(::kill(pid, SIGSTOP) == 0);
    t0 = std::chrono::steady_clock::now();
    storage_errc code = storage_errc::io;
    try {
        db->list_accounts();
    } catch (const storage_error& e) {
        code = e.code();
    }
    const auto took = std::chrono::steady_clock::now() - t0;
    ::kill(pid, SIGCONT);
    CHECK(code == storage_errc::unavailable);
    CHECK(took < 10s);  // the 800 ms deadline, not a hang (the log line says which)
    REQUIRE_FALSE(log.empty());
    CHECK_THAT(log.front(), Catch::Contains("no answer within 800 ms"));
    // The next call reconnects (at once: the first attempt after a loss) and works.
    CHECK(db->list_accounts().empty());
    CHECK_THAT(log.back(), Catch::Contains("available again"));
    CHECK(db->reconnect());
}

TEST_CASE("pro: pg: read-only commands do not create tables, a new database gets the schema once, also from "
          "servers starting together",
          "[pro][pg]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    const auto db = pg.create_database();
    open_options read_only;
    read_only.create = false;
    auto e = open_failure(pg.url(db), read_only);
    CHECK(e.code() == storage_errc::not_found);
    CHECK_THAT(e.what(), Catch::Contains("no btest-server-pro tables"));

    std::vector<std::thread> starters;
    std::atomic<int> opened{0};
    std::mutex mu;
    std::string failure;
    for (int i = 0; i < 6; ++i)
        starters.emplace_back([&] {
            try {
                if (open_storage(pg.url(db))->schema_version() == pg_latest_schema()) ++opened;
            } catch (const storage_error& ex) {
                std::lock_guard lock(mu);
                failure = ex.what();
            }
        });
    for (auto& t : starters) t.join();
    INFO(failure);
    CHECK(opened.load() == 6);
    CHECK(open_storage(pg.url(db), read_only)->accounts_generation() == 1);  // v2's bump, once
}

TEST_CASE("pro: pg: a version-1 database with an account migrates to version 2 and keeps it", "[pro][pg]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    const auto db = pg.create_database();
    CHECK(open_postgresql(pg.url(db), {}, 1)->schema_version() == 1);
    const auto rec = btest::auth::ec_srp5::derive_record("olduser", "oldpw", {});
    {
        pg::connect_options o;
        o.conninfo = pg.url(db);
        pg::connection raw(o);
        raw.exec("INSERT INTO accounts (name, ecsrp5_salt, ecsrp5_x, ecsrp5_parity, md5_password, created_ms, updated_ms) "
                 "VALUES ('olduser', $1, $2, $3, NULL, 1000, 2000)",
                 pg::params{}.add_bytes(rec.salt).add_bytes(rec.validator.u).add(int{rec.validator.parity}));
        CHECK(raw.exec("SELECT 1 FROM information_schema.tables WHERE table_name = 'sessions'").rows() == 0);
    }
    auto s = open_storage(pg.url(db));
    CHECK(s->schema_version() == 2);
    auto a = s->find_account("olduser");
    REQUIRE(a);
    CHECK(a->ecsrp5 == rec);
    CHECK_FALSE(a->quotas.any());
    CHECK(a->created == from_unix_ms(1000));
    btest::seeded_entropy rng{1};
    account_change c;
    c.quotas[0][2] = std::uint64_t{5'000'000};
    CHECK(change_account(*s, "olduser", c, rng, utc_now()) == account_status::ok);
    ledger l{ledger_config{}};
    auto r = l.open_test(*s, request("192.0.2.1", "olduser"), utc_now());
    CHECK(r.admitted);
    CHECK(r.budget.total == 5'000'000u);
    CHECK(open_storage(pg.url(db))->schema_version() == 2);
}

TEST_CASE("pro: pg: a newer schema, or another application's tables, are refused untouched", "[pro][pg]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    pg::connect_options o;
    const auto future_db = pg.create_database();
    open_storage(pg.url(future_db)).reset();
    o.conninfo = pg.url(future_db);
    pg::connection(o).exec("UPDATE schema_version SET version = 99");
    auto e = open_failure(pg.url(future_db));
    CHECK(e.code() == storage_errc::schema_too_new);
    CHECK_THAT(e.what(), Catch::Contains("schema version 99") && Catch::Contains("upgrade"));
    CHECK(pg::connection(o).exec("SELECT version FROM schema_version").int64(0, 0) == 99);

    const auto other_db = pg.create_database();
    o.conninfo = pg.url(other_db);
    pg::connection(o).exec_script("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)");
    auto other = open_failure(pg.url(other_db));
    CHECK(other.code() == storage_errc::corrupt);
    CHECK_THAT(other.what(), Catch::Contains("not a btest-server-pro database"));
    CHECK(pg::connection(o).exec("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'").rows() == 1);
    // A schema of its own in that database works (search_path in the URL).
    pg::connection(o).exec_script("CREATE SCHEMA btest");
    auto own = open_storage(pg.url(other_db) + "?options=-csearch_path%3Dbtest");
    CHECK(own->schema_version() == pg_latest_schema());
}

TEST_CASE("pro: fleet: two servers spending one user's quota at once never reserve more than the limit, and "
          "spend all of it",
          "[pro][pg][fleet]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    const auto url = pg.url(pg.create_database());
    constexpr std::uint64_t quota = 600 * MB, slice = 7 * MB;
    {
        auto admin = open_storage(url);
        REQUIRE(add_account(*admin, test_account("fleet", "pw", false, limit(window::daily, quota_dir::total, quota))) ==
                account_status::ok);
    }
    // Two "servers": their own holders, pools and workers.
    service a(service::open_pool(url, 3), fleet_config("server-a", slice));
    service b(service::open_pool(url, 3), fleet_config("server-b", slice));
    CHECK(a.connections() == 3);

    std::atomic<bool> done{false};
    std::atomic<int> rule_broken{0}, over_limit{0}, checks{0};
    std::thread monitor([&] {
        // Reads used before reserved: a write between the two reads can only make the sum
        // look smaller, so any excess seen is real.
        auto db = open_storage(url);
        ledger l{ledger_config{}};
        while (!done.load()) {
            auto q = l.quota_report(*db, {subject_kind::user, "fleet"}, utc_now());
            const auto& total = (*q)[2];  // daily total
            if (total.used + total.reserved > quota) ++over_limit;
            ++checks;
            std::this_thread::sleep_for(2ms);
        }
    });
    std::atomic<std::uint64_t> moved{0};
    std::atomic<int> tests{0}, refused{0};
    auto client = [&](service& svc, int k) {
      try {
        for (int n = 0; n < 1000; ++n) {
            auto r = open_sync(svc, request("198.51.100." + std::to_string(k), "fleet", static_cast<std::uint16_t>(n)));
            if (!r) {
                ++rule_broken;
                return;
            }
            if (!r.value->admitted) {
                ++refused;
                return;  // quota spent (or all of what is left held by running tests)
            }
            ++tests;
            const std::uint64_t b = r.value->budget.total.value_or(0);
            if (b > slice) ++rule_broken;
            moved += spend_all(svc, r.value->session_id, b, slice, 1'500'000 + 100'000 * static_cast<std::uint64_t>(k), rule_broken);
        }
      } catch (const std::exception&) {
        ++rule_broken;  // a completion that never came
      }
    };
    std::vector<std::thread> clients;
    for (int k = 0; k < 10; ++k) clients.emplace_back(client, std::ref(k % 2 ? b : a), k);
    for (auto& t : clients) t.join();
    done = true;
    monitor.join();

    INFO("tests " << tests.load() << ", monitor checks " << checks.load());
    CHECK(rule_broken.load() == 0);
    CHECK(over_limit.load() == 0);
    CHECK(checks.load() > 0);
    CHECK(refused.load() == 10);
    // Every test spent all it was granted, so the fleet reaches the quota exactly: nothing is
    // left unspent once every lease is settled.
    CHECK(moved.load() == quota);
    auto db = open_storage(url);
    CHECK(db->usage({subject_kind::user, "fleet"}, window::daily, period_start(window::daily, utc_now())).out == quota);
    CHECK(db->expired_leases(utc_now() + std::chrono::hours{24 * 400}).empty());  // no lease left behind
    CHECK(a.errors() == 0);
    CHECK(b.errors() == 0);
}

TEST_CASE("pro: fleet: a server that dies holding a lease costs at most its unspent slices, until the lease expires",
          "[pro][pg][fleet]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    const auto url = pg.url(pg.create_database());
    constexpr std::uint64_t quota = 100 * MB, slice = 10 * MB;
    {
        auto admin = open_storage(url);
        REQUIRE(add_account(*admin, test_account("u", "pw", false, limit(window::daily, quota_dir::total, quota))) ==
                account_status::ok);
    }
    fake_clock clock;
    service alive(service::open_pool(url, 2), fleet_config("alive", slice, &clock));
    std::uint64_t dead_spent = 0, dead_reserved = 0;
    sys_ms dead_expires{};
    {
        service doomed(open_storage(url), fleet_config("doomed", slice, &clock));
        auto r = open_sync(doomed, request("192.0.2.66", "u"));
        REQUIRE(r.value->admitted);
        auto e = extend_sync(doomed, r.value->session_id, {0, 4 * MB});  // a second slice
        REQUIRE(e.value->lease_alive);
        dead_reserved = e.value->budget.total.value();
        CHECK(dead_reserved == 2 * slice);
        doomed.record_usage(r.value->session_id, {0, 6 * MB});
        REQUIRE(flush_sync(doomed).value == 1u);  // its last flush before it "dies"
        dead_spent = 6 * MB;
        dead_expires = clock.now() + 60s;
        // Dropped here without closing its test: its lease stays in the database, as a
        // SIGKILLed server's would.
    }
    const std::uint64_t unspent = dead_reserved - dead_spent;
    CHECK(unspent <= 2 * slice);

    std::atomic<int> rule_broken{0};
    auto spend_until_refused = [&](int port0) {
        std::uint64_t total = 0;
        for (int n = 0; n < 100; ++n) {
            auto r = open_sync(alive, request("192.0.2.67", "u", static_cast<std::uint16_t>(port0 + n)));
            REQUIRE(r);
            if (!r.value->admitted) break;
            total += spend_all(alive, r.value->session_id, r.value->budget.total.value(), slice, 3 * MB, rule_broken);
        }
        return total;
    };
    // While the dead server's lease lives, the living one gets everything but that lease.
    const auto before_expiry = spend_until_refused(1000);
    CHECK(before_expiry == quota - dead_spent - unspent);
    CHECK(before_expiry >= quota - dead_spent - 2 * slice);
    // Once it expires, the next reservation sweeps it and the rest is free.
    clock.ms = to_unix_ms(dead_expires);
    const auto after_expiry = spend_until_refused(2000);
    CHECK(after_expiry == unspent);
    CHECK(dead_spent + before_expiry + after_expiry == quota);
    CHECK(rule_broken.load() == 0);
    auto db = open_storage(url);
    auto lost = db->list_sessions({});
    const auto dead_row = std::find_if(lost.begin(), lost.end(), [](const session_row& s) { return s.ended_by == "server_lost"; });
    REQUIRE(dead_row != lost.end());
    CHECK(dead_row->tx_bytes == dead_spent);
}

TEST_CASE("pro: fleet: PostgreSQL stopped under a running service: errors as values, no hang, history kept, "
          "everything works again after a restart",
          "[pro][pg][fleet][outage]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    // Its own cluster: this test stops it.
    pg_cluster pg;
    const auto db = pg.create_database();
    const auto url = pg.url(db);
    {
        auto admin = open_storage(url);
        REQUIRE(add_account(*admin, test_account("alice", "a-pass", false, limit(window::daily, quota_dir::total, 500 * MB))) ==
                account_status::ok);
    }
    std::mutex log_mu;
    std::vector<std::string> log;
    open_options o;
    o.connect_timeout = 2s;
    o.query_timeout = 3s;
    o.reconnect_min = 50ms;
    o.reconnect_max = 400ms;
    o.log = [&](const std::string& line) {
        std::lock_guard lock(log_mu);
        log.push_back(line);
    };
    auto logged = [&](const std::string& what) {
        std::lock_guard lock(log_mu);
        return std::any_of(log.begin(), log.end(), [&](const std::string& l) { return l.find(what) != std::string::npos; });
    };
    fake_clock clock;
    auto cfg = fleet_config("outage", 50 * MB, &clock);
    cfg.flush_interval = 100ms;  // the workers' own reconnect and flush ticks
    std::atomic<int> errors_seen{0};
    cfg.on_error = [&](const storage_failure&) { ++errors_seen; };
    service svc(service::open_pool(url, 2, o), cfg);
    std::atomic<int> refresh_failures{0};
    db_credentials creds(svc, {50ms, [&](const storage_failure&) { ++refresh_failures; }});
    REQUIRE(creds.ecsrp5_prepared("alice"));

    std::promise<std::int64_t> lost_promise;
    auto running = open_sync(svc, request("192.0.2.90", "alice", 1), [&](std::int64_t id) { lost_promise.set_value(id); });
    REQUIRE(running.value->admitted);
    const auto run_id = running.value->session_id;
    auto finished = open_sync(svc, request("192.0.2.90", "alice", 2));
    REQUIRE(finished.value->admitted);
    svc.record_usage(run_id, {0, 20 * MB});
    REQUIRE(flush_sync(svc).value == 1u);

    pg.stop();
    const auto t0 = std::chrono::steady_clock::now();
    // Every call completes, with `unavailable`.
    svc.record_usage(run_id, {0, 30 * MB});
    auto f = flush_sync(svc);
    REQUIRE(f.error);
    CHECK(f.error->code == storage_errc::unavailable);
    auto refused = open_sync(svc, request("192.0.2.91", "alice", 3));
    REQUIRE(refused.error);
    CHECK(refused.error->code == storage_errc::unavailable);
    CHECK_FALSE(svc.database_available());
    auto ext = extend_sync(svc, run_id, {0, 30 * MB});
    REQUIRE(ext.error);
    CHECK(ext.error->code == storage_errc::unavailable);
    auto closed = close_sync(svc, finished.value->session_id, 7 * MB, 1 * MB);
    REQUIRE(closed);
    CHECK(closed->code == storage_errc::unavailable);
    CHECK(svc.pending_closes() == 1u);
    // Logins keep working from the last snapshot while refreshes fail.
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (refresh_failures.load() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    CHECK(refresh_failures.load() > 0);
    CHECK(creds.ecsrp5_prepared("alice"));
    CHECK(std::chrono::steady_clock::now() - t0 < 30s);  // nothing waited for the database to come back
    CHECK(logged("unavailable"));
    while (!logged("reconnect") && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
    CHECK(logged("failed"));

    // The running test's lease cannot be renewed: one flush interval before it expires, the
    // service tells the server to end the test.
    clock.advance(60s - cfg.flush_interval / 2);
    REQUIRE(await(lost_promise.get_future()) == run_id);
    CHECK(svc.open_tests() == 0);

    pg.start();
    // Back by itself: the workers reconnect on their ticks; the next calls succeed.
    async_result<open_result> again;
    while (std::chrono::steady_clock::now() < deadline + 10s) {
        again = open_sync(svc, request("192.0.2.92", "alice", 4));
        if (again) break;
        std::this_thread::sleep_for(50ms);
    }
    REQUIRE(again);
    CHECK(again.value->admitted);
    CHECK(svc.database_available());
    CHECK(logged("available again"));
    // The close kept during the outage is written at the next flush.
    REQUIRE(flush_sync(svc));
    CHECK(svc.pending_closes() == 0u);
    auto check = open_storage(url);
    auto row = check->find_session(finished.value->session_id);
    REQUIRE(row);
    CHECK(row->end.has_value());
    CHECK(row->tx_bytes == 7 * MB);
    // The ended test's server closes it with what it moved: recorded once, even though its
    // lease was never swept.
    REQUIRE_FALSE(close_sync(svc, run_id, 30 * MB, 0, ended_by::quota_unavailable));
    const auto used = check->usage({subject_kind::user, "alice"}, window::daily, period_start(window::daily, clock.now()));
    CHECK(used.out == 30 * MB + 7 * MB);
    // Account changes reach the snapshot again.
    REQUIRE(add_account(*check, test_account("bob", "b", false, {}, 2)) == account_status::ok);
    creds.refresh_now();
    CHECK(creds.ecsrp5_prepared("bob"));
    CHECK(errors_seen.load() > 0);
}

TEST_CASE("pro: fleet: account changes reach every server's credential snapshot", "[pro][pg][fleet]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    const auto url = pg.url(pg.create_database());
    open_storage(url).reset();
    service a(service::open_pool(url, 2), fleet_config("a", 10 * MB));
    service b(service::open_pool(url, 2), fleet_config("b", 10 * MB));
    db_credentials ca(a, {0ms, {}}), cb(b, {0ms, {}});
    auto admin = open_storage(url);
    REQUIRE(add_account(*admin, test_account("carol", "c", true)) == account_status::ok);
    CHECK_FALSE(ca.md5_password("carol"));
    ca.refresh_now();
    cb.refresh_now();
    CHECK(ca.md5_password("carol") == "c");
    CHECK(cb.md5_password("carol") == "c");
    REQUIRE(delete_account(*admin, "carol") == account_status::ok);
    cb.refresh_now();
    CHECK_FALSE(cb.ecsrp5_prepared("carol"));
    CHECK(cb.generation() == admin->accounts_generation());
}

TEST_CASE("pro: cli: the management commands work on PostgreSQL", "[pro][pg][cli]") {
    PRO_REQUIRE_BACKEND(pg_backend);
    auto& pg = *pg_cluster::shared();
    const auto db = pg.create_database();
    const auto url = pg.url(db);
    auto cli = [](const std::vector<std::string>& args) {
        pro_test::process p(BTEST_PRO_CLI, args);
        const int st = p.wait(30s);
        return std::make_tuple(st, p.out(), p.err());
    };
    // Read-only commands on an empty database: a clear error, no tables created.
    auto [st0, out0, err0] = cli({"user", "list", "--db", url});
    CHECK(st0 == 2);
    CHECK_THAT(err0, Catch::Contains("no btest-server-pro tables") && !Catch::Contains(pg_cluster::password));
    auto [st1, out1, err1] = cli({"user", "add", "alice", "-p", "pw", "--quota-daily", "2G", "--db", url});
    INFO(err1);
    REQUIRE(st1 == 0);
    auto [st2, out2, err2] = cli({"user", "list", "--json", "--db", url});
    REQUIRE(st2 == 0);
    auto row = test::json::parse(out2.substr(0, out2.find('\n')));
    CHECK(row["name"].str() == "alice");
    CHECK(row["quotas"]["daily"]["total"].number() == 2e9);
    // The same database through the socket URL, as another host's admin would see it.
    auto [st3, out3, err3] = cli({"quota", "show", "--user", "alice", "--json", "--db", pg.socket_url(db)});
    INFO(err3);
    CHECK(st3 == 0);
    CHECK_THAT(out3, Catch::Contains("\"limit_bytes\":2000000000"));
    auto [st4, out4, err4] = cli({"user", "del", "alice", "--db", url});
    CHECK(st4 == 0);
    CHECK_FALSE(open_storage(url)->find_account("alice"));
}
