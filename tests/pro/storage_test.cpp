// The storage suite: accounts, the quota ledger with its leases, session history. Every case
// runs against every backend (TEMPLATE_TEST_CASE over pro_support.hpp's backends) on a real
// database, so that SQLite and PostgreSQL cannot drift. Time is always an argument here (the
// ledger takes `now`), so windows, expiry and rollover are exact.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "btest/auth/ec_srp5.hpp"
#include "btest/pro/cidr.hpp"
#include "pg_cluster.hpp"
#include "pro_support.hpp"

using namespace btest::pro;
using namespace std::chrono_literals;
using pro_test::limit;
using pro_test::request;
using pro_test::temp_dir;
using pro_test::test_account;
using pro_test::utc;

namespace {

constexpr std::uint64_t MB = 1'000'000;

ledger make_ledger(std::uint64_t slice = 100 * MB, std::chrono::milliseconds ttl = 60s) {
    ledger_config c;
    c.slice_bytes = slice;
    c.lease_ttl = ttl;
    c.holder = "test";
    return ledger{c};
}

void set_ip_quota(storage& db, const quota_limits& q) {
    write_transaction tx(db);
    db.set_ip_quota(q);
    tx.commit();
}

subject ip_subject(const std::string& ip) { return {subject_kind::ip, ip}; }
subject user_subject(const std::string& u) { return {subject_kind::user, u}; }

test_result result(std::uint64_t tx, std::uint64_t rx, std::string_view ended = ended_by::peer_closed) {
    test_result r;
    r.tx_bytes = tx;
    r.rx_bytes = rx;
    r.ended_by = std::string(ended);
    return r;
}

} // namespace

// --- accounts ---------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("pro: storage: accounts round-trip, every write bumps the generation", "[pro][storage]",
                   pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    CHECK(db->list_accounts().empty());
    const auto g0 = db->accounts_generation();

    auto alice = test_account("alice", "secret", false, limit(window::daily, quota_dir::total, 2'000'000'000));
    REQUIRE(add_account(*db, alice) == account_status::ok);
    CHECK(db->accounts_generation() == g0 + 1);
    auto bob = test_account("bob", "pw", true, {}, 2);
    REQUIRE(add_account(*db, bob) == account_status::ok);

    auto found = db->find_account("alice");
    REQUIRE(found);
    CHECK(found->ecsrp5 == alice.ecsrp5);
    CHECK_FALSE(found->md5_password.has_value());  // no password at rest for EC-SRP5 accounts
    CHECK(found->quotas == alice.quotas);
    CHECK(found->created == alice.created);
    CHECK(methods(*found) == std::vector<std::string_view>{"ecsrp5"});
    auto b = db->find_account("bob");
    REQUIRE(b);
    CHECK(b->md5_password == "pw");
    CHECK(methods(*b) == std::vector<std::string_view>{"ecsrp5", "md5"});

    const auto list = db->list_accounts();
    REQUIRE(list.size() == 2);
    CHECK(list[0].name == "alice");
    CHECK(list[1].name == "bob");

    // A name that is taken: nothing changes, not even the generation.
    const auto g2 = db->accounts_generation();
    CHECK(add_account(*db, test_account("alice", "other", true, {}, 3)) == account_status::exists);
    CHECK(db->accounts_generation() == g2);
    CHECK(db->find_account("alice")->ecsrp5 == alice.ecsrp5);

    CHECK(delete_account(*db, "alice") == account_status::ok);
    CHECK(db->accounts_generation() == g2 + 1);
    CHECK_FALSE(db->find_account("alice"));
    CHECK(delete_account(*db, "alice") == account_status::not_found);
    CHECK(db->accounts_generation() == g2 + 1);
}

TEMPLATE_TEST_CASE("pro: storage: malformed names are refused and change nothing", "[pro][storage]", pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    REQUIRE(add_account(*db, test_account("keep", "x")) == account_status::ok);
    const auto g = db->accounts_generation();
    for (const std::string& bad : {std::string(), std::string(33, 'a'), std::string("a\nb"), std::string("a\0b", 3),
                                  std::string("\x1b[31mred"), std::string("\xff\xfe")}) {
        INFO("name of " << bad.size() << " bytes");
        CHECK(add_account(*db, test_account(bad, "x")) == account_status::invalid_name);
        account_change c;
        c.password = "y";
        btest::seeded_entropy rng{9};
        CHECK(change_account(*db, bad, c, rng, utc_now()) == account_status::invalid_name);
    }
    CHECK(db->accounts_generation() == g);
    const auto list = db->list_accounts();
    REQUIRE(list.size() == 1);
    CHECK(list[0].name == "keep");
}

TEMPLATE_TEST_CASE("pro: storage: user set changes password, MD5 and quotas", "[pro][storage]", pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    btest::seeded_entropy rng{42};
    const auto before = test_account("carol", "old", false, limit(window::monthly, quota_dir::total, 100 * MB));
    REQUIRE(add_account(*db, before) == account_status::ok);

    account_change nothing;
    CHECK(change_account(*db, "carol", nothing, rng, utc_now()) == account_status::nothing_to_change);
    account_change md5_only;
    md5_only.md5 = true;
    CHECK(change_account(*db, "carol", md5_only, rng, utc_now()) == account_status::md5_needs_password);
    CHECK(change_account(*db, "nobody", md5_only, rng, utc_now()) == account_status::not_found);
    CHECK(db->find_account("carol")->ecsrp5 == before.ecsrp5);

    account_change pw;
    pw.password = "new";
    pw.md5 = true;
    pw.quotas[static_cast<std::size_t>(window::monthly)][static_cast<std::size_t>(quota_dir::total)] =
        std::optional<std::uint64_t>{};  // remove
    pw.quotas[static_cast<std::size_t>(window::daily)][static_cast<std::size_t>(quota_dir::out)] = 5 * MB;
    const auto g = db->accounts_generation();
    REQUIRE(change_account(*db, "carol", pw, rng, utc_now()) == account_status::ok);
    CHECK(db->accounts_generation() == g + 1);
    auto after = db->find_account("carol");
    REQUIRE(after);
    CHECK(after->ecsrp5.salt != before.ecsrp5.salt);  // a new password gets a new salt
    CHECK(after->ecsrp5 == btest::auth::ec_srp5::derive_record("carol", "new", after->ecsrp5.salt));
    CHECK(after->md5_password == "new");
    CHECK_FALSE(after->quotas.get(window::monthly, quota_dir::total));
    CHECK(after->quotas.get(window::daily, quota_dir::out) == 5 * MB);

    account_change off;
    off.md5 = false;
    REQUIRE(change_account(*db, "carol", off, rng, utc_now()) == account_status::ok);
    auto last = db->find_account("carol");
    CHECK_FALSE(last->md5_password.has_value());
    CHECK(last->ecsrp5 == after->ecsrp5);  // the EC-SRP5 record is kept
}

TEMPLATE_TEST_CASE("pro: storage: a stored EC-SRP5 record authenticates its password and only it", "[pro][storage]",
                   pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    namespace ec = btest::auth::ec_srp5;
    temp_dir dir;
    auto db = TestType::open(dir);
    REQUIRE(add_account(*db, test_account("dave", "correct horse")) == account_status::ok);
    const auto rec = db->find_account("dave")->ecsrp5;
    for (const char* typed : {"correct horse", "wrong"}) {
        btest::seeded_entropy ca{1}, sb{2};
        ec::client_exchange client{"dave", typed, ca};
        ec::server_exchange server{sb};
        auto m2 = server.on_msg1({"dave", client.client_key()}, rec);
        REQUIRE(m2);
        auto m3 = client.on_msg2(*m2);
        REQUIRE(m3);
        const bool ok = server.on_msg3(*m3).has_value();
        CHECK(ok == (std::string_view(typed) == "correct horse"));
    }
}

// --- the ledger -------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("pro: ledger: without limits a test is admitted with an unlimited budget and its usage is recorded",
                   "[pro][storage][ledger]", pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger();
    const auto t0 = utc(2024, 5, 8, 10);
    auto r = l.open_test(*db, request("192.0.2.7", "alice"), t0);
    REQUIRE(r.admitted);
    CHECK(r.budget == byte_budget{});
    CHECK(r.expires == t0 + 60s);

    const usage_report rep{r.session_id, {1000, 5000}};
    CHECK(l.record_usage(*db, std::span{&rep, 1}, t0 + 2s).empty());
    CHECK(l.record_usage(*db, std::span{&rep, 1}, t0 + 4s).empty());  // cumulative: no double count
    for (auto w : all_windows) {
        CHECK(db->usage(ip_subject("192.0.2.7"), w, period_start(w, t0)) == usage_counts{1000, 5000});
        CHECK(db->usage(user_subject("alice"), w, period_start(w, t0)) == usage_counts{1000, 5000});
    }
    l.close_test(*db, r.session_id, result(7000, 1500), {}, t0 + 10s);
    CHECK(db->usage(ip_subject("192.0.2.7"), window::daily, period_start(window::daily, t0)) == usage_counts{1500, 7000});
    CHECK_FALSE(db->find_lease(r.session_id));
    auto s = db->find_session(r.session_id);
    REQUIRE(s);
    CHECK(s->tx_bytes == 7000);
    CHECK(s->rx_bytes == 1500);
    CHECK(s->end == t0 + 10s);
    CHECK(s->ended_by == "peer_closed");
}

TEMPLATE_TEST_CASE("pro: ledger: the tighter of the user and IP quotas wins, per direction", "[pro][storage][ledger]",
                   pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger(100 * MB);
    const auto t0 = utc(2024, 5, 8, 10);

    SECTION("the IP quota is tighter") {
        REQUIRE(add_account(*db, test_account("u", "p", false, limit(window::daily, quota_dir::total, 300 * MB))) ==
                account_status::ok);
        set_ip_quota(*db, limit(window::daily, quota_dir::total, 150 * MB));
        auto r = l.open_test(*db, request("192.0.2.1", "u"), t0);
        REQUIRE(r.admitted);
        CHECK(r.budget.total == 100 * MB);  // one slice
        CHECK_FALSE(r.budget.in);
        CHECK_FALSE(r.budget.out);
        auto e = l.extend(*db, r.session_id, {0, 100 * MB}, t0 + 5s);
        REQUIRE(e.lease_alive);
        CHECK(e.budget.total == 150 * MB);  // the IP's 150 MB, not the user's 300 MB
        auto e2 = l.extend(*db, r.session_id, {0, 150 * MB}, t0 + 6s);
        CHECK(e2.budget.total == 150 * MB);
    }
    SECTION("the user quota is tighter") {
        REQUIRE(add_account(*db, test_account("u", "p", false, limit(window::weekly, quota_dir::total, 120 * MB))) ==
                account_status::ok);
        set_ip_quota(*db, limit(window::daily, quota_dir::total, 1000 * MB));
        auto r = l.open_test(*db, request("192.0.2.1", "u"), t0);
        REQUIRE(r.admitted);
        auto e = l.extend(*db, r.session_id, {0, 100 * MB}, t0 + 5s);
        CHECK(e.budget.total == 120 * MB);
    }
    SECTION("different directions limited by different subjects") {
        REQUIRE(add_account(*db, test_account("u", "p", false, limit(window::monthly, quota_dir::out, 30 * MB))) ==
                account_status::ok);
        set_ip_quota(*db, limit(window::daily, quota_dir::in, 40 * MB, limit(window::daily, quota_dir::total, 60 * MB)));
        auto r = l.open_test(*db, request("192.0.2.1", "u"), t0);
        REQUIRE(r.admitted);
        CHECK(r.budget.out == 30 * MB);
        CHECK(r.budget.in == 40 * MB);
        CHECK(r.budget.total == 60 * MB);
    }
    SECTION("an anonymous test gets the IP quota only") {
        set_ip_quota(*db, limit(window::daily, quota_dir::out, 70 * MB));
        auto r = l.open_test(*db, request("192.0.2.1"), t0);
        REQUIRE(r.admitted);
        CHECK(r.budget.out == 70 * MB);
        CHECK_FALSE(r.budget.in);
    }
}

TEMPLATE_TEST_CASE("pro: ledger: concurrent reservations never exceed the limit, settling returns the rest",
                   "[pro][storage][ledger]", pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger(100 * MB);
    set_ip_quota(*db, limit(window::daily, quota_dir::total, 250 * MB));
    const auto t0 = utc(2024, 5, 8, 10);
    auto a = l.open_test(*db, request("192.0.2.9", "", 1), t0);
    auto b = l.open_test(*db, request("192.0.2.9", "", 2), t0);
    auto c = l.open_test(*db, request("192.0.2.9", "", 3), t0);
    auto d = l.open_test(*db, request("192.0.2.9", "", 4), t0);
    REQUIRE(a.admitted);
    REQUIRE(b.admitted);
    REQUIRE(c.admitted);
    CHECK(a.budget.total == 100 * MB);
    CHECK(b.budget.total == 100 * MB);
    CHECK(c.budget.total == 50 * MB);  // what is left
    CHECK_FALSE(d.admitted);           // nothing left unreserved
    CHECK_THAT(d.detail, Catch::Contains("ip 192.0.2.9") && Catch::Contains("daily total"));
    auto refused = db->find_session(d.session_id);
    REQUIRE(refused);
    CHECK(refused->refused);
    CHECK(refused->ended_by == "quota_exhausted");
    CHECK(refused->end == t0);

    // Another IP is not affected.
    CHECK(l.open_test(*db, request("192.0.2.10"), t0).admitted);

    auto q = l.quota_report(*db, ip_subject("192.0.2.9"), t0 + 1s);
    REQUIRE(q);
    const auto& total = (*q)[2];  // daily total
    CHECK(total.limit == 250 * MB);
    CHECK(total.used == 0);
    CHECK(total.reserved == 250 * MB);
    CHECK(total.remaining == 0);

    // a moved 30 MB: the 70 MB it did not use come back at once.
    l.close_test(*db, a.session_id, result(30 * MB, 0), {}, t0 + 10s);
    auto e = l.open_test(*db, request("192.0.2.9", "", 5), t0 + 11s);
    REQUIRE(e.admitted);
    CHECK(e.budget.total == 70 * MB);  // 250 − 30 used − 100 (b) − 50 (c)
}

TEMPLATE_TEST_CASE("pro: ledger: two connections reserving at once never hold more than the limit",
                   "[pro][storage][ledger]", pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    {
        auto db = TestType::open(dir);
        set_ip_quota(*db, limit(window::daily, quota_dir::out, 1000 * MB));
    }
    const auto t0 = utc(2024, 5, 8, 10);
    std::atomic<std::uint64_t> granted{0};
    std::atomic<int> admitted{0}, refused{0};
    auto worker = [&](int k) {
        auto db = TestType::open(dir);  // its own connection
        auto l = make_ledger(30 * MB);
        for (int i = 0; i < 25; ++i) {
            auto r = l.open_test(*db, request("198.51.100.1", "", static_cast<std::uint16_t>(k * 100 + i)), t0);
            if (r.admitted) {
                granted += r.budget.out.value();
                ++admitted;
            } else {
                ++refused;
            }
        }
    };
    std::thread t1(worker, 1), t2(worker, 2);
    t1.join();
    t2.join();
    CHECK(granted.load() == 1000 * MB);  // 33 slices of 30 MB and the last 10 MB
    CHECK(admitted.load() == 34);
    CHECK(refused.load() == 16);
}

TEMPLATE_TEST_CASE("pro: ledger: extend adds a slice, never more than two unspent, and follows limit changes",
                   "[pro][storage][ledger]", pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger(100 * MB);
    REQUIRE(add_account(*db, test_account("e", "p", false, limit(window::monthly, quota_dir::in, 1000 * MB))) ==
            account_status::ok);
    const auto t0 = utc(2024, 5, 8, 10);
    auto r = l.open_test(*db, request("203.0.113.5", "e"), t0);
    REQUIRE(r.admitted);
    CHECK(r.budget.in == 100 * MB);
    auto e1 = l.extend(*db, r.session_id, {0, 0}, t0 + 1s);
    CHECK(e1.budget.in == 200 * MB);
    auto e2 = l.extend(*db, r.session_id, {0, 0}, t0 + 2s);
    CHECK(e2.budget.in == 200 * MB);  // two unspent slices already
    auto e3 = l.extend(*db, r.session_id, {150 * MB, 0}, t0 + 3s);
    CHECK(e3.budget.in == 300 * MB);  // 50 unspent + one slice
    CHECK(e3.expires == t0 + 3s + 60s);
    CHECK(db->usage(user_subject("e"), window::monthly, period_start(window::monthly, t0)).in == 150 * MB);

    // The operator lowers the quota mid-test: no new slice beyond it, the budget never shrinks.
    btest::seeded_entropy rng{5};
    account_change c;
    c.quotas[static_cast<std::size_t>(window::monthly)][static_cast<std::size_t>(quota_dir::in)] = 200 * MB;
    REQUIRE(change_account(*db, "e", c, rng, utc_now()) == account_status::ok);
    auto e4 = l.extend(*db, r.session_id, {190 * MB, 0}, t0 + 4s);
    CHECK(e4.budget.in == 300 * MB);
    // And raises a limit on a direction that had none: it starts from what was spent.
    c = {};
    c.quotas[static_cast<std::size_t>(window::daily)][static_cast<std::size_t>(quota_dir::out)] = 500 * MB;
    REQUIRE(change_account(*db, "e", c, rng, utc_now()) == account_status::ok);
    auto e5 = l.extend(*db, r.session_id, {190 * MB, 20 * MB}, t0 + 5s);
    CHECK(e5.budget.out == 120 * MB);
}

TEMPLATE_TEST_CASE("pro: ledger: a spent quota refuses new tests only for the directions they use", "[pro][storage][ledger]",
                   pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger(100 * MB);
    set_ip_quota(*db, limit(window::daily, quota_dir::in, 10 * MB));
    const auto t0 = utc(2024, 5, 8, 10);
    auto first = l.open_test(*db, request("192.0.2.50"), t0);
    REQUIRE(first.admitted);
    l.close_test(*db, first.session_id, result(0, 10 * MB), {}, t0 + 5s);

    auto again = l.open_test(*db, request("192.0.2.50"), t0 + 6s);
    CHECK_FALSE(again.admitted);
    CHECK_THAT(again.detail, Catch::Contains("daily in quota 10M, 10M used"));

    auto send_only = request("192.0.2.50");
    send_only.server_receives = false;  // the client only receives: nothing comes in
    auto ok = l.open_test(*db, send_only, t0 + 7s);
    CHECK(ok.admitted);
    CHECK(ok.budget.in == 0u);

    // The next day the quota is fresh.
    CHECK(l.open_test(*db, request("192.0.2.50"), utc(2024, 5, 9, 0)).admitted);
}

TEMPLATE_TEST_CASE("pro: ledger: less left than one chunk or datagram of the test is a refusal", "[pro][storage][ledger]",
                   pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger(100 * MB);
    set_ip_quota(*db, limit(window::daily, quota_dir::total, 10 * MB));
    const auto t0 = utc(2024, 5, 8, 10);
    auto first = l.open_test(*db, request("192.0.2.60"), t0);
    REQUIRE(first.admitted);
    l.close_test(*db, first.session_id, result(10 * MB - 1000, 0), {}, t0 + 5s);  // 1000 bytes left

    auto udp = request("192.0.2.60");
    udp.min_grant = 1500;  // a 1500-byte datagram cannot fit
    auto refused = l.open_test(*db, udp, t0 + 6s);
    CHECK_FALSE(refused.admitted);
    CHECK_THAT(refused.detail, Catch::Contains("daily total quota 10M"));

    udp.min_grant = 1000;  // a 1000-byte one can
    auto ok = l.open_test(*db, udp, t0 + 7s);
    REQUIRE(ok.admitted);
    CHECK(ok.budget.total == 1000u);
}

TEMPLATE_TEST_CASE("pro: ledger: an unrenewed lease expires, returns its reservation and closes its session",
                   "[pro][storage][ledger]", pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger(100 * MB, 60s);
    set_ip_quota(*db, limit(window::daily, quota_dir::total, 100 * MB));
    const auto t0 = utc(2024, 5, 8, 10);
    auto crashed = l.open_test(*db, request("192.0.2.77"), t0);
    REQUIRE(crashed.admitted);
    const usage_report rep{crashed.session_id, {0, 40 * MB}};
    l.record_usage(*db, std::span{&rep, 1}, t0 + 10s);  // renewed until t0 + 70 s

    // Still held at t0 + 69 s: a second test is refused.
    CHECK_FALSE(l.open_test(*db, request("192.0.2.77"), t0 + 69s).admitted);
    // At t0 + 70 s the lease has expired: swept by the next reservation, which gets what the
    // crashed test did not record.
    auto next = l.open_test(*db, request("192.0.2.77"), t0 + 70s);
    REQUIRE(next.admitted);
    CHECK(next.budget.total == 60 * MB);
    CHECK_FALSE(db->find_lease(crashed.session_id));
    auto s = db->find_session(crashed.session_id);
    REQUIRE(s);
    CHECK(s->ended_by == "server_lost");
    CHECK(s->tx_bytes == 40 * MB);
    CHECK(s->end == t0 + 10s);
    CHECK(s->tx_bits_per_second == 40 * MB * 8 / 10);

    // The crashed test's server comes back to life: its flush learns the lease is gone ...
    const usage_report late{crashed.session_id, {0, 45 * MB}};
    CHECK(l.record_usage(*db, std::span{&late, 1}, t0 + 71s) == std::vector<std::int64_t>{crashed.session_id});
    CHECK_FALSE(l.extend(*db, crashed.session_id, {0, 45 * MB}, t0 + 71s).lease_alive);
    // ... and its close still records the bytes the sweep could not know.
    l.close_test(*db, crashed.session_id, result(45 * MB, 0, ended_by::quota_unavailable), {}, t0 + 72s);
    CHECK(db->usage(ip_subject("192.0.2.77"), window::daily, period_start(window::daily, t0)).out == 45 * MB);
    CHECK(db->find_session(crashed.session_id)->ended_by == "quota_unavailable");
    CHECK(l.sweep(*db, t0 + 200s) == 1);  // `next` was never renewed
}

TEMPLATE_TEST_CASE("pro: ledger: one flush of several tests adds each test's new bytes once", "[pro][storage][ledger]",
                   pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger();
    const auto t0 = utc(2024, 5, 8, 10);
    auto a = l.open_test(*db, request("192.0.2.60", "ann", 1), t0);
    auto b = l.open_test(*db, request("192.0.2.60", "ben", 2), t0);
    auto c = l.open_test(*db, request("192.0.2.61", "ann", 3), t0);
    REQUIRE((a.admitted && b.admitted && c.admitted));
    std::vector<usage_report> reps{{a.session_id, {10, 100}}, {b.session_id, {20, 200}}, {c.session_id, {40, 400}}};
    CHECK(l.record_usage(*db, reps, t0 + 2s).empty());
    reps = {{a.session_id, {11, 110}}, {b.session_id, {20, 200}}, {c.session_id, {40, 500}}};
    CHECK(l.record_usage(*db, reps, t0 + 4s).empty());
    const auto day = period_start(window::daily, t0);
    CHECK(db->usage(ip_subject("192.0.2.60"), window::daily, day) == usage_counts{31, 310});
    CHECK(db->usage(ip_subject("192.0.2.61"), window::daily, day) == usage_counts{40, 500});
    CHECK(db->usage(user_subject("ann"), window::monthly, period_start(window::monthly, t0)) == usage_counts{51, 610});
    CHECK(db->usage(user_subject("ben"), window::weekly, period_start(window::weekly, t0)) == usage_counts{20, 200});
    CHECK(db->find_lease(a.session_id)->spent_out == 110);
    CHECK(db->find_lease(c.session_id)->expires == t0 + 4s + 60s);
}

TEMPLATE_TEST_CASE("pro: ledger: usage follows a window rollover during a test", "[pro][storage][ledger]",
                   pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger(100 * MB);
    set_ip_quota(*db, limit(window::daily, quota_dir::total, 1000 * MB));
    const auto before_midnight = utc(2024, 5, 31, 23, 59, 50);  // also the end of a month
    auto r = l.open_test(*db, request("192.0.2.3"), before_midnight);
    REQUIRE(r.admitted);
    const usage_report a{r.session_id, {0, 10 * MB}};
    l.record_usage(*db, std::span{&a, 1}, before_midnight + 5s);
    const auto after_midnight = utc(2024, 6, 1, 0, 0, 5);
    const usage_report b{r.session_id, {0, 25 * MB}};
    l.record_usage(*db, std::span{&b, 1}, after_midnight);
    const subject ip = ip_subject("192.0.2.3");
    CHECK(db->usage(ip, window::daily, utc(2024, 5, 31, 0)).out == 10 * MB);
    CHECK(db->usage(ip, window::daily, utc(2024, 6, 1, 0)).out == 15 * MB);
    CHECK(db->usage(ip, window::monthly, utc(2024, 5, 1, 0)).out == 10 * MB);
    CHECK(db->usage(ip, window::monthly, utc(2024, 6, 1, 0)).out == 15 * MB);
    CHECK(db->usage(ip, window::weekly, utc(2024, 5, 27, 0)).out == 25 * MB);  // same ISO week
    // The unspent reservation now counts against the new day.
    CHECK(db->reserved(ip, window::daily, utc(2024, 6, 1, 0)).total == 75 * MB);
    CHECK(db->reserved(ip, window::daily, utc(2024, 5, 31, 0)).total == 0);
}

// --- history ----------------------------------------------------------------------------------

TEMPLATE_TEST_CASE("pro: history: sessions with intervals, filters, newest first, pruning", "[pro][storage][history]",
                   pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger();
    const auto t0 = utc(2024, 5, 1, 8);
    std::vector<std::int64_t> ids;
    for (int i = 0; i < 4; ++i) {
        auto req = request(i % 2 ? "2001:db8::5" : "192.0.2.5", i < 2 ? "alice" : "", static_cast<std::uint16_t>(50000 + i));
        req.protocol = i == 3 ? "udp" : "tcp";
        req.direction = "receive";
        req.connections = 4;
        req.tx_speed_requested = 100'000'000;
        auto r = l.open_test(*db, req, t0 + std::chrono::hours{24 * i});
        REQUIRE(r.admitted);
        ids.push_back(r.session_id);
    }
    std::vector<interval_row> iv;
    for (std::int64_t s = 0; s < 10; ++s)
        iv.push_back({s * 1000, (s + 1) * 1000, 12'500'000, 1'000, 100'000'000, 8'000, static_cast<std::uint64_t>(s % 2)});
    test_result res = result(125'000'000, 10'000);
    res.tx_bits_per_second = 100'000'000;
    res.rx_bits_per_second = 8'000;
    res.lost_packets = 5;
    for (std::size_t i = 0; i + 1 < ids.size(); ++i)
        l.close_test(*db, ids[i], res, iv, t0 + std::chrono::hours{24 * static_cast<int>(i)} + 10s);

    auto s0 = db->find_session(ids[0]);
    REQUIRE(s0);
    CHECK(s0->peer_ip.to_string() == "192.0.2.5");
    CHECK(s0->peer_port == 50000);
    CHECK(s0->user == "alice");
    CHECK(s0->protocol == "tcp");
    CHECK(s0->direction == "receive");
    CHECK(s0->connections == 4);
    CHECK(s0->tx_speed_requested == 100'000'000);
    CHECK(s0->tx_bits_per_second == 100'000'000);
    CHECK(s0->lost_packets == 5);
    CHECK(db->intervals(ids[0]) == iv);
    CHECK(db->intervals(ids[3]).empty());  // still running

    auto all = db->list_sessions({});
    REQUIRE(all.size() == 4);
    CHECK(all[0].id == ids[3]);  // newest first
    CHECK_FALSE(all[0].end);
    CHECK(all[3].id == ids[0]);
    session_filter by_ip;
    by_ip.ip = *parse_ip("2001:db8::5");
    CHECK(db->list_sessions(by_ip).size() == 2);
    session_filter by_user;
    by_user.user = "alice";
    CHECK(db->list_sessions(by_user).size() == 2);
    session_filter since;
    since.since = t0 + std::chrono::hours{24};
    CHECK(db->list_sessions(since).size() == 3);
    session_filter page;
    page.limit = 2;
    page.offset = 1;
    auto p = db->list_sessions(page);
    REQUIRE(p.size() == 2);
    CHECK(p[0].id == ids[2]);

    // Keep 2 days at t0 + 2.5 days: session 0 goes (with its intervals); later, every finished
    // one; the running one (3) stays whatever its age.
    auto pr = l.prune(*db, t0 + std::chrono::hours{60}, std::chrono::days{2});
    CHECK(pr.sessions == 1);  // only session 0 started before t0 + 12 h
    CHECK_FALSE(db->find_session(ids[0]));
    CHECK(db->intervals(ids[0]).empty());
    CHECK(db->find_session(ids[1]));
    pr = l.prune(*db, t0 + std::chrono::hours{24 * 40}, std::chrono::days{2});
    CHECK(pr.sessions == 2);
    CHECK(db->find_session(ids[3]));
}

TEMPLATE_TEST_CASE("pro: history: record_refused writes a closed row", "[pro][storage][history]", pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger();
    const auto t0 = utc(2024, 5, 1, 8);
    const auto id = l.record_refused(*db, request("192.0.2.1", "bob"), ended_by::quota_unavailable, t0);
    auto s = db->find_session(id);
    REQUIRE(s);
    CHECK(s->refused);
    CHECK(s->ended_by == "quota_unavailable");
    CHECK(s->end == t0);
    CHECK(s->tx_bytes == 0);
}

TEMPLATE_TEST_CASE("pro: storage: usage rows of old periods are pruned, current ones kept", "[pro][storage][history]",
                   pro_test::sqlite_backend, pro_test::pg_backend) {
    PRO_REQUIRE_BACKEND(TestType);
    temp_dir dir;
    auto db = TestType::open(dir);
    auto l = make_ledger();
    const auto t0 = utc(2024, 1, 15);
    auto r = l.open_test(*db, request("192.0.2.1"), t0);
    l.close_test(*db, r.session_id, result(1, 1), {}, t0 + 1s);
    const auto later = utc(2024, 6, 1);
    auto r2 = l.open_test(*db, request("192.0.2.1"), later);
    l.close_test(*db, r2.session_id, result(1, 1), {}, later + 1s);
    auto pr = l.prune(*db, later + std::chrono::hours{1}, std::chrono::days{90});
    CHECK(pr.usage_rows == 3);  // January's day, week and month
    CHECK(db->usage(ip_subject("192.0.2.1"), window::monthly, utc(2024, 6, 1, 0)).total() == 2);
    CHECK(db->usage(ip_subject("192.0.2.1"), window::monthly, utc(2024, 1, 1, 0)).total() == 0);
}
