// The asynchronous service `serve` will call, the credential store over the database, and crash
// safety: real SQLite files, a worker thread, completions waited for with futures (bounded).
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <set>
#include <thread>

#include <sqlite3.h>

#include "btest/auth/ec_srp5.hpp"
#include "btest/pro/cidr.hpp"
#include "btest/pro/db_credentials.hpp"
#include "btest/pro/service.hpp"
#include "pro_support.hpp"
#include "process.hpp"

using namespace btest::pro;
using namespace std::chrono_literals;
using pro_test::limit;
using pro_test::request;
using pro_test::temp_dir;
using pro_test::test_account;
using pro_test::utc;

namespace {

constexpr std::uint64_t MB = 1'000'000;

/// A settable wall clock for the service.
struct fake_clock {
    std::atomic<std::int64_t> ms{to_unix_ms(utc(2024, 5, 8, 10))};
    sys_ms now() const { return from_unix_ms(ms.load()); }
    void advance(std::chrono::milliseconds d) { ms += d.count(); }
};

template <class T>
T await(std::future<T> f) {
    REQUIRE(f.wait_for(10s) == std::future_status::ready);
    return f.get();
}

template <class R>
std::pair<std::function<void(R)>, std::future<R>> completion() {
    auto p = std::make_shared<std::promise<R>>();
    auto f = p->get_future();
    return {[p](R r) { p->set_value(std::move(r)); }, std::move(f)};
}

service_config config(fake_clock& clock, std::chrono::milliseconds flush = 1h) {
    service_config c;
    c.flush_interval = flush;  // tests flush explicitly unless they say otherwise
    c.clock = [&clock] { return clock.now(); };
    c.ledger.slice_bytes = 100 * MB;
    c.ledger.lease_ttl = 60s;
    return c;
}

} // namespace

TEST_CASE("pro: service: open, usage, flush and close run on the worker and land in the database", "[pro][service]") {
    temp_dir dir;
    fake_clock clock;
    auto check = pro_test::sqlite_backend::open(dir);  // a second connection, as the CLI would be
    {
        write_transaction tx(*check);
        check->set_ip_quota(limit(window::daily, quota_dir::out, 500 * MB));
        tx.commit();
    }
    service svc(pro_test::sqlite_backend::open(dir), config(clock));

    auto [open_cb, opened] = completion<async_result<open_result>>();
    auto req = request("192.0.2.44", "", 41000);
    req.protocol = "udp";
    req.direction = "receive";
    svc.open_test(req, open_cb);
    auto r = await(std::move(opened));
    REQUIRE(r);
    REQUIRE(r.value->admitted);
    CHECK(r.value->budget.out == 100 * MB);
    CHECK(svc.open_tests() == 1);

    svc.record_usage(r.value->session_id, {1000, 30 * MB});
    svc.record_usage(r.value->session_id, {500, 20 * MB});  // late and smaller: ignored
    auto [flush_cb, flushed] = completion<async_result<std::size_t>>();
    svc.flush(flush_cb);
    CHECK(await(std::move(flushed)).value == 1u);
    const subject ip{subject_kind::ip, "192.0.2.44"};
    CHECK(check->usage(ip, window::daily, period_start(window::daily, clock.now())) == usage_counts{1000, 30 * MB});

    auto [ext_cb, extended] = completion<async_result<extend_result>>();
    svc.extend(r.value->session_id, {1000, 80 * MB}, ext_cb);
    auto e = await(std::move(extended));
    REQUIRE(e);
    CHECK(e.value->lease_alive);
    CHECK(e.value->budget.out == 200 * MB);

    clock.advance(12s);
    test_result res;
    res.tx_bytes = 90 * MB;
    res.rx_bytes = 2000;
    res.tx_bits_per_second = 60 * MB;
    res.ended_by = "peer_closed";
    std::vector<interval_row> iv{{0, 1000, 7'500'000, 100, 60'000'000, 800, 0}};
    auto [close_cb, closed] = completion<std::optional<storage_failure>>();
    svc.close_test(r.value->session_id, res, iv, close_cb);
    CHECK_FALSE(await(std::move(closed)).has_value());
    CHECK(svc.open_tests() == 0);
    CHECK(check->usage(ip, window::daily, period_start(window::daily, clock.now())) == usage_counts{2000, 90 * MB});
    auto s = check->find_session(r.value->session_id);
    REQUIRE(s);
    CHECK(s->protocol == "udp");
    CHECK(s->tx_bytes == 90 * MB);
    CHECK(s->ended_by == "peer_closed");
    CHECK(check->intervals(r.value->session_id) == iv);
    CHECK_FALSE(check->find_lease(r.value->session_id));
    CHECK(svc.errors() == 0);
}

TEST_CASE("pro: service: the periodic flush writes usage and renews leases on its own", "[pro][service]") {
    temp_dir dir;
    fake_clock clock;
    auto check = pro_test::sqlite_backend::open(dir);
    service svc(pro_test::sqlite_backend::open(dir), config(clock, 10ms));
    auto [open_cb, opened] = completion<async_result<open_result>>();
    svc.open_test(request("192.0.2.45"), open_cb);
    auto r = await(std::move(opened));
    REQUIRE(r.value->admitted);
    svc.record_usage(r.value->session_id, {0, 12345});
    const subject ip{subject_kind::ip, "192.0.2.45"};
    const auto day = period_start(window::daily, clock.now());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (check->usage(ip, window::daily, day).out != 12345 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    CHECK(check->usage(ip, window::daily, day).out == 12345);
    // A quiet test is renewed too: 50 s later (more than a quarter of the TTL) its lease
    // expiry moves on without any new usage.
    clock.advance(50s);
    const auto want = clock.now() + 60s;
    while (check->find_lease(r.value->session_id)->expires != want && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(5ms);
    CHECK(check->find_lease(r.value->session_id)->expires == want);
}

TEST_CASE("pro: service: a lease swept by someone else is reported through on_lease_lost", "[pro][service]") {
    temp_dir dir;
    fake_clock clock;
    service svc(pro_test::sqlite_backend::open(dir), config(clock));
    std::promise<std::int64_t> lost;
    auto [open_cb, opened] = completion<async_result<open_result>>();
    svc.open_test(request("192.0.2.46"), open_cb, [&lost](std::int64_t id) { lost.set_value(id); });
    auto r = await(std::move(opened));
    REQUIRE(r.value->admitted);

    // Another server (connection) sweeps the lease after its expiry.
    auto other = pro_test::sqlite_backend::open(dir);
    ledger l{ledger_config{}};
    CHECK(l.sweep(*other, clock.now() + 61s) == 1);

    svc.record_usage(r.value->session_id, {1, 1});
    svc.flush();
    CHECK(await(lost.get_future()) == r.value->session_id);
    CHECK(svc.open_tests() == 0);
}

TEST_CASE("pro: service: storage failures come back as values and are counted", "[pro][service]") {
    temp_dir dir;
    fake_clock clock;
    auto blocker = pro_test::sqlite_backend::open(dir);
    std::atomic<int> reported{0};
    auto cfg = config(clock);
    cfg.on_error = [&](const storage_failure&) { ++reported; };
    service svc(open_storage(pro_test::sqlite_backend::url(dir), pro_test::options(true, 30, false)), cfg);
    blocker->begin();  // holds the write lock past the service's 30 ms busy timeout
    auto [open_cb, opened] = completion<async_result<open_result>>();
    svc.open_test(request("192.0.2.47"), open_cb);
    auto r = await(std::move(opened));
    blocker->rollback();
    CHECK_FALSE(r);
    REQUIRE(r.error);
    CHECK(r.error->code == storage_errc::busy);
    CHECK(svc.errors() == 1);
    CHECK(reported.load() == 1);
    // And the next job works again.
    auto [cb2, opened2] = completion<async_result<open_result>>();
    svc.open_test(request("192.0.2.47"), cb2);
    CHECK(await(std::move(opened2)).value->admitted);
}

TEST_CASE("pro: credentials: logins come from the snapshot, a change through another connection is seen after refresh",
          "[pro][service][credentials]") {
    namespace ec = btest::auth::ec_srp5;
    temp_dir dir;
    fake_clock clock;
    auto admin = pro_test::sqlite_backend::open(dir);  // `user add` in another process, in effect
    REQUIRE(add_account(*admin, test_account("alice", "a-pass")) == account_status::ok);
    REQUIRE(add_account(*admin, test_account("legacy", "l-pass", true, {}, 2)) == account_status::ok);
    service svc(pro_test::sqlite_backend::open(dir), config(clock));
    db_credentials creds(svc, {0ms, {}});  // refresh only when asked

    CHECK(creds.size() == 2);
    REQUIRE(creds.ecsrp5_prepared("alice"));
    CHECK_FALSE(creds.md5_password("alice"));  // EC-SRP5 only
    CHECK(creds.md5_password("legacy") == "l-pass");
    CHECK_FALSE(creds.ecsrp5_prepared("nobody"));
    CHECK_FALSE(creds.md5_password("nobody"));

    // A whole EC-SRP5 login from the prepared record.
    auto login = [&](const std::string& user, const std::string& pw) {
        btest::seeded_entropy ca{11}, sb{12};
        ec::client_exchange client{user, pw, ca};
        ec::server_exchange server{sb};
        auto rec = creds.ecsrp5_prepared(user);
        if (!rec) return false;
        auto m2 = server.on_msg1({user, client.client_key()}, *rec);
        auto m3 = m2 ? client.on_msg2(*m2) : btest::errc::auth_failed;
        return m3 && server.on_msg3(*m3).has_value();
    };
    CHECK(login("alice", "a-pass"));
    CHECK_FALSE(login("alice", "wrong"));

    // Changes through the other connection: invisible until the refresh, then in effect.
    REQUIRE(add_account(*admin, test_account("bob", "b-pass", false, {}, 3)) == account_status::ok);
    btest::seeded_entropy rng{4};
    account_change c;
    c.password = "a-new";
    REQUIRE(change_account(*admin, "alice", c, rng, utc_now()) == account_status::ok);
    REQUIRE(delete_account(*admin, "legacy") == account_status::ok);
    CHECK_FALSE(creds.ecsrp5_prepared("bob"));
    const auto g = creds.generation();
    creds.refresh_now();
    CHECK(creds.generation() == g + 3);
    CHECK(login("bob", "b-pass"));
    CHECK(login("alice", "a-new"));
    CHECK_FALSE(login("alice", "a-pass"));
    CHECK_FALSE(creds.md5_password("legacy"));
    CHECK(creds.size() == 2);
}

TEST_CASE("pro: credentials: the background refresher picks up changes while lookups run on other threads",
          "[pro][service][credentials]") {
    temp_dir dir;
    fake_clock clock;
    auto admin = pro_test::sqlite_backend::open(dir);
    REQUIRE(add_account(*admin, test_account("stable", "s", true)) == account_status::ok);
    service svc(pro_test::sqlite_backend::open(dir), config(clock));
    db_credentials creds(svc, {5ms, {}});

    std::atomic<bool> stop{false};
    std::atomic<long> lookups{0}, misses{0};
    auto reader = [&] {
        while (!stop.load()) {
            // "stable" exists in every snapshot: a lookup never misses it, whatever is swapped.
            if (!creds.ecsrp5_prepared("stable") || creds.md5_password("stable") != "s") ++misses;
            ++lookups;
        }
    };
    std::thread r1(reader), r2(reader);
    for (int i = 0; i < 20; ++i)
        REQUIRE(add_account(*admin, test_account("u" + std::to_string(i), "p", false, {}, static_cast<std::uint64_t>(i))) ==
                account_status::ok);
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!creds.ecsrp5_prepared("u19") && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(2ms);
    stop = true;
    r1.join();
    r2.join();
    CHECK(creds.ecsrp5_prepared("u19"));
    CHECK(creds.size() == 21);
    CHECK(misses.load() == 0);
    CHECK(lookups.load() > 0);
}

TEST_CASE("pro: crash: a server killed with SIGKILL mid-test leaves its flushed usage and a clean database",
          "[pro][service][crash]") {
    temp_dir dir;
    const auto url = pro_test::sqlite_backend::url(dir);
    open_storage(url).reset();
    constexpr std::uint64_t step = 1'000'000;
    pro_test::process child(BTEST_PRO_CRASH_CHILD, {url, std::to_string(step)});
    REQUIRE(child.wait_lines(6, 20s));  // the session line and five flushes
    child.kill(SIGKILL);
    CHECK(child.wait() == 128 + SIGKILL);
    const auto lines = child.out_lines();
    const std::int64_t session = std::stoll(lines.at(0).substr(std::string("session ").size()));
    const std::uint64_t last_seen = std::stoull(lines.back().substr(std::string("flushed ").size()));

    auto db = open_storage(url);  // opens cleanly: WAL recovery of the killed writer
    {
        sqlite::connection raw(dir.file("test.db"), {});
        auto q = raw.prepare("PRAGMA integrity_check");
        REQUIRE(q->step());
        CHECK(q->text_at(0) == "ok");
    }
    auto l = db->find_lease(session);
    REQUIRE(l);
    const subject ip{subject_kind::ip, "192.0.2.200"};
    // The month of the last flush (a test of a second or so straddles a month end only by
    // bad luck; a day would be 30 times likelier).
    const auto used = db->usage(ip, window::monthly, period_start(window::monthly, l->updated));
    // Everything flushed before the kill is there; what is there came from whole flushes
    // (a transaction is all or nothing).
    CHECK(used.out >= last_seen);
    CHECK(used.out % step == 0);
    CHECK(used.in == used.out / 2);
    CHECK(l->spent_out == used.out);
    CHECK_FALSE(db->find_session(session)->end);

    // Once the lease expires, the next reservation closes the session with what was recorded.
    ledger led{ledger_config{}};
    CHECK(led.sweep(*db, l->expires) == 1);
    auto s = db->find_session(session);
    CHECK(s->ended_by == "server_lost");
    CHECK(s->tx_bytes == used.out);
}

TEST_CASE("pro: service: test starts and ends queued behind a busy worker share commits and are all answered",
          "[pro][service]") {
    temp_dir dir;
    fake_clock clock;
    auto check = pro_test::sqlite_backend::open(dir);
    {
        write_transaction tx(*check);
        check->set_ip_quota(limit(window::daily, quota_dir::total, 10 * MB));
        tx.commit();
    }
    service svc(pro_test::sqlite_backend::open(dir), config(clock, 1h));

    // Hold the worker so that the jobs queue up behind it, then let them run as a group.
    std::promise<void> release;
    auto held = release.get_future().share();
    svc.post([held](storage&) { held.wait(); });
    constexpr int n = 40;
    std::vector<std::future<async_result<open_result>>> opened;
    for (int i = 0; i < n; ++i) {
        auto [cb, f] = completion<async_result<open_result>>();
        svc.open_test(request("192.0.2.77", "", static_cast<std::uint16_t>(42000 + i)), cb);
        opened.push_back(std::move(f));
    }
    release.set_value();
    std::set<std::int64_t> ids;
    for (auto& f : opened) {
        auto r = await(std::move(f));
        REQUIRE(r);
        // 10 MB among 40 tests: each reservation is taken from what the ones before left.
        if (r.value->admitted) ids.insert(r.value->session_id);
    }
    CHECK(ids.size() >= 1);
    CHECK(svc.open_tests() == ids.size());
    auto ip_report = [&] {
        auto lines = ledger(ledger_config{}).quota_report(*check, subject{subject_kind::ip, "192.0.2.77"}, clock.now());
        REQUIRE(lines);
        for (const auto& l : *lines)
            if (l.win == window::daily && l.dir == quota_dir::total) return l;
        FAIL("no daily total line");
        return quota_line{};
    };
    const std::uint64_t reserved = ip_report().reserved;
    CHECK(reserved <= 10 * MB);  // the group never hands out more than the quota

    // Their ends, queued the same way, close every row and return every reservation.
    std::promise<void> release2;
    auto held2 = release2.get_future().share();
    svc.post([held2](storage&) { held2.wait(); });
    std::vector<std::future<std::optional<storage_failure>>> closed;
    for (auto id : ids) {
        auto [cb, f] = completion<std::optional<storage_failure>>();
        svc.close_test(id, test_result{1000, 0, 0, 0, 0, "peer_closed", ""}, {}, cb);
        closed.push_back(std::move(f));
    }
    release2.set_value();
    for (auto& f : closed) CHECK_FALSE(await(std::move(f)));
    CHECK(svc.open_tests() == 0);
    auto rows = check->list_sessions(session_filter{});
    CHECK(rows.size() == static_cast<std::size_t>(n));
    std::size_t ended = 0;
    for (const auto& row : rows) ended += row.end.has_value();
    CHECK(ended == static_cast<std::size_t>(n));  // admitted ones closed, refused ones closed at once
    const auto after = ip_report();
    CHECK(after.reserved == 0);
    CHECK(after.used == 1000 * ids.size());
}

TEST_CASE("pro: sqlite: a nested transaction is a savepoint: its rollback keeps the outer writes", "[pro][sqlite]") {
    temp_dir dir;
    auto db = pro_test::sqlite_backend::open(dir);
    REQUIRE(db->nested_transactions());
    {
        write_transaction outer(*db);
        REQUIRE(db->insert_account(test_account("outer", "pw")));
        {
            write_transaction inner(*db);
            REQUIRE(db->insert_account(test_account("undone", "pw")));
        }  // rolled back
        {
            write_transaction inner(*db);
            REQUIRE(db->insert_account(test_account("kept", "pw")));
            inner.commit();
        }
        outer.commit();
    }
    CHECK(db->find_account("outer"));
    CHECK(db->find_account("kept"));
    CHECK_FALSE(db->find_account("undone"));
    {
        write_transaction outer(*db);
        {
            write_transaction inner(*db);
            REQUIRE(db->insert_account(test_account("gone", "pw")));
            inner.commit();
        }
    }  // the outer one rolled back: the inner commit goes with it
    CHECK_FALSE(db->find_account("gone"));
}
