// btest-server-pro's management subcommands as operators and scripts run them: real processes
// on a real SQLite file; exit statuses, messages, JSON field names, and bad input that changes
// nothing.
#include <catch2/catch.hpp>

#include <future>
#include <sys/stat.h>

#include "btest/pro/service.hpp"
#include "pro_support.hpp"
#include "process.hpp"
#include "test/json.hpp"

using namespace btest::pro;
using namespace std::chrono_literals;
using pro_test::process;
using pro_test::temp_dir;

namespace {

struct run_result {
    int status;
    std::string out, err;
};

run_result run(const std::vector<std::string>& args, const process::options& opts = {}) {
    process p(BTEST_PRO_CLI, args, opts);
    const int st = p.wait(30s);
    return {st, p.out(), p.err()};
}

std::vector<test::json::value> json_lines(const std::string& out) {
    std::vector<test::json::value> v;
    std::size_t start = 0;
    while (start < out.size()) {
        const auto nl = out.find('\n', start);
        v.push_back(test::json::parse(out.substr(start, nl - start)));
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    return v;
}

process::options with_stdin(std::string text) {
    process::options o;
    o.stdin_text = std::move(text);
    return o;
}

bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

/// The database's content as the app shows it: equal before and after means nothing changed.
std::string state(const std::string& db) {
    auto users = run({"user", "list", "--json", "--db", db});
    auto sessions = run({"sessions", "--json", "--db", db});
    return users.out + "|" + sessions.out;
}

} // namespace

TEST_CASE("pro: cli: --help explains the subcommands, units, exit statuses and the MD5 trade-off", "[pro][cli]") {
    auto top = run({"--help"});
    CHECK(top.status == 0);
    for (const char* s : {"user", "quota", "sessions", "--db URL", "sqlite:btest-server.db", "UTC", "Monday",
                          "tighter", "EXIT STATUS", "usage error", "storage error", "no such user"})
        CHECK(has(top.out, s));
    auto add = run({"user", "add", "--help"});
    CHECK(add.status == 0);
    for (const char* s : {"--password-stdin", "--md5", "--quota-daily", "--quota-in-weekly", "--quota-out-monthly",
                          "powers of 1000", "never the password", "in the clear", "32 bytes", "--db"})
        CHECK(has(add.out, s));
    auto sessions = run({"sessions", "--help"});
    for (const char* s : {"--since", "ISO 8601", "24h", "7d", "tx_bytes", "ended_by", "--ip", "--user"})
        CHECK(has(sessions.out, s));
    auto quota = run({"quota", "show", "--help"});
    for (const char* s : {"--ip", "--user", "limit_bytes", "used_bytes", "remaining_bytes", "Monday"})
        CHECK(has(quota.out, s));
    auto set = run({"user", "set", "--help"});
    CHECK(has(set.out, "'none' removes it"));
    CHECK(has(set.out, "--no-md5"));
    auto v = run({"--version"});
    CHECK(v.status == 0);
    CHECK(has(v.out, "btest-server-pro 0."));
}

TEST_CASE("pro: cli: accounts end to end, with JSON rows", "[pro][cli]") {
    temp_dir dir;
    const std::string db = "sqlite:" + dir.file("accounts.db");
    auto a = run({"user", "add", "alice", "--password-stdin", "--quota-daily", "2G", "--quota-out-monthly", "1.5T", "--db", db},
                 with_stdin("alice-secret\n"));
    INFO(a.err);
    REQUIRE(a.status == 0);
    REQUIRE(run({"user", "add", "btest", "-p", "btest", "--md5", "--db", db}).status == 0);

    auto list = run({"user", "list", "--json", "--db", db});
    REQUIRE(list.status == 0);
    auto rows = json_lines(list.out);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0]["name"].str() == "alice");
    REQUIRE(rows[0]["methods"].arr().size() == 1);
    CHECK(rows[0]["methods"][0].str() == "ecsrp5");
    CHECK(rows[0]["quotas"]["daily"]["total"].number() == 2e9);
    CHECK(rows[0]["quotas"]["daily"]["in"].is_null());
    CHECK(rows[0]["quotas"]["monthly"]["out"].number() == 1.5e12);
    CHECK(rows[1]["name"].str() == "btest");
    REQUIRE(rows[1]["methods"].arr().size() == 2);
    CHECK(rows[1]["methods"][1].str() == "md5");
    CHECK(rows[1]["created"].str().size() == 24);

    auto text = run({"user", "list", "--db", db});
    CHECK(has(text.out, "alice"));
    CHECK(has(text.out, "ecsrp5,md5"));

    auto set = run({"user", "set", "alice", "--quota-daily", "none", "--quota-in-weekly", "10G", "--md5", "-p", "new", "--db", db});
    INFO(set.err);
    CHECK(set.status == 0);
    auto accounts = open_storage(db);
    auto alice = accounts->find_account("alice");
    REQUIRE(alice);
    CHECK(alice->md5_password == "new");
    CHECK_FALSE(alice->quotas.get(window::daily, quota_dir::total));
    CHECK(alice->quotas.get(window::weekly, quota_dir::in) == 10'000'000'000u);
    CHECK(alice->ecsrp5 == btest::auth::ec_srp5::derive_record("alice", "new", alice->ecsrp5.salt));

    CHECK(run({"user", "set", "alice", "--no-md5", "--db", db}).status == 0);
    CHECK_FALSE(accounts->find_account("alice")->md5_password);

    auto dup = run({"user", "add", "alice", "-p", "x", "--db", db});
    CHECK(dup.status == 3);
    CHECK(has(dup.err, "already exists"));
    auto missing = run({"user", "del", "nobody", "--db", db});
    CHECK(missing.status == 3);
    CHECK(has(missing.err, "no user 'nobody'"));
    auto md5 = run({"user", "set", "alice", "--md5", "--db", db});
    CHECK(md5.status == 1);
    CHECK(has(md5.err, "needs the password"));
    CHECK(run({"user", "del", "alice", "--db", db}).status == 0);
    CHECK_FALSE(accounts->find_account("alice"));
}

TEST_CASE("pro: cli: bad input is a usage error (1) and changes nothing", "[pro][cli]") {
    temp_dir dir;
    const std::string db = "sqlite:" + dir.file("bad.db");
    REQUIRE(run({"user", "add", "keep", "-p", "x", "--quota-daily", "1G", "--db", db}).status == 0);
    const auto before = state(db);
    const std::vector<std::vector<std::string>> bad{
        {"user", "add", "", "-p", "x"},
        {"user", "add", std::string(33, 'n'), "-p", "x"},
        {"user", "add", "tab\tname", "-p", "x"},
        {"user", "add", "esc\x1b[2Jname", "-p", "x"},
        {"user", "add", "bad\xffutf8", "-p", "x"},
        {"user", "add", "newuser", "-p", "x", "--quota-daily", "2X"},
        {"user", "add", "newuser", "-p", "x", "--quota-daily", "-1G"},
        {"user", "add", "newuser", "-p", "x", "--quota-daily", "1.0005K"},
        {"user", "add", "newuser", "-p", "x", "--quota-daily", "none"},
        {"user", "add", "newuser", "-p", "x", "--password-stdin"},
        {"user", "add", "newuser"},  // no password, stdin not a terminal
        {"user", "add", "newuser", "-p", "x", "--bogus"},
        {"user", "set", "keep"},  // nothing to change
        {"user", "set", "keep", "--quota-daily", "lots"},
        {"user", "set", "keep", "--md5", "--no-md5", "-p", "x"},
        {"user", "set", std::string(40, 'k'), "-p", "x"},
        {"user", "del", ""},
        {"quota", "show"},
        {"quota", "show", "--ip", "1.2.3.4", "--user", "keep"},
        {"quota", "show", "--ip", "300.1.1.1"},
        {"quota", "show", "--user", "a\nb"},
        {"sessions", "--since", "yesterday"},
        {"sessions", "--since", "2024-02-30"},
        {"sessions", "--ip", "::g"},
        {"sessions", "--limit", "many"},
        {"user"},
        {},
    };
    for (auto args : bad) {
        args.push_back("--db");
        args.push_back(db);
        auto r = run(args);
        std::string joined;
        for (const auto& x : args) joined += "[" + x + "] ";
        INFO(joined << "\nstderr: " << r.err);
        CHECK(r.status == 1);
        CHECK(has(r.err, "btest-server-pro: "));
        CHECK(r.out.empty());
        // Names from the command line are shown escaped, never raw.
        CHECK_FALSE(has(r.err, "\x1b"));
    }
    CHECK(state(db) == before);
    CHECK(has(run({"user", "add", "", "-p", "x", "--db", db}).err, "invalid user name '': it is empty"));
    CHECK(has(run({"user", "add", std::string(33, 'n'), "-p", "x", "--db", db}).err, "at most 32 bytes"));
    CHECK(has(run({"user", "add", "tab\tname", "-p", "x", "--db", db}).err, "control character"));
    CHECK(has(run({"user", "add", "n", "-p", "x", "--quota-daily", "2X", "--db", db}).err, "--quota-daily: invalid byte size '2X'"));
}

TEST_CASE("pro: cli: database problems are storage errors (2) with a clear message", "[pro][cli]") {
    temp_dir dir;
    ::chmod(dir.path().c_str(), 0755);
    auto missing = run({"user", "list", "--db", "sqlite:" + dir.file("nope.db")});
    CHECK(missing.status == 2);
    CHECK(has(missing.err, "no database at"));
    CHECK_FALSE(std::filesystem::exists(dir.file("nope.db")));

    auto pg = run({"user", "list", "--db", "postgresql://u:pw@127.0.0.1:1/btest"});  // nothing listens there
    CHECK(pg.status == 2);
    CHECK(has(pg.err, "cannot connect to PostgreSQL"));
    CHECK_FALSE(has(pg.err, ":pw@"));
    auto bad = run({"user", "list", "--db", "mysql://x"});
    CHECK(bad.status == 2);
    CHECK(has(bad.err, "bad database URL"));

    const auto garbage = dir.file("garbage.db");
    {
        std::ofstream f(garbage, std::ios::binary);
        for (int i = 0; i < 4096; ++i) f.put(static_cast<char>(i * 37 + 11));
    }
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"user", "list"}, {"user", "add", "x", "-p", "y"}, {"sessions"}, {"quota", "show", "--ip", "192.0.2.1"}}) {
        auto a = args;
        a.push_back("--db");
        a.push_back("sqlite:" + garbage);
        auto r = run(a);
        CHECK(r.status == 2);
        CHECK(has(r.err, "not a database"));
    }

    const auto ro = dir.file("ro.db");
    REQUIRE(run({"user", "add", "x", "-p", "y", "--db", "sqlite:" + ro}).status == 0);
    ::chmod(ro.c_str(), 0444);
    process::options unpriv;
    unpriv.unprivileged = true;
    auto r = run({"user", "add", "z", "-p", "y", "--db", "sqlite:" + ro}, unpriv);
    CHECK(r.status == 2);
    CHECK(has(r.err, "read-only"));
}

TEST_CASE("pro: cli: sessions and quota show report what the ledger recorded, with btest's field names",
          "[pro][cli]") {
    temp_dir dir;
    const std::string url = "sqlite:" + dir.file("history.db");
    REQUIRE(run({"user", "add", "carol", "-p", "pw", "--quota-monthly", "1G", "--db", url}).status == 0);
    auto db = open_storage(url);
    {
        write_transaction tx(*db);
        db->set_ip_quota(pro_test::limit(window::daily, quota_dir::in, 200'000'000));
        tx.commit();
    }
    ledger l{ledger_config{}};
    const auto now = utc_now();
    auto req = pro_test::request("2001:db8::9", "carol", 51234);
    req.protocol = "tcp";
    req.direction = "both";
    req.connections = 2;
    auto r = l.open_test(*db, req, now - 10s);
    REQUIRE(r.admitted);
    test_result res;
    res.tx_bytes = 300'000'000;
    res.rx_bytes = 200'000'000;
    res.tx_bits_per_second = 240'000'000;
    res.rx_bits_per_second = 160'000'000;
    res.lost_packets = 3;
    res.ended_by = "quota_exhausted";
    const std::vector<interval_row> iv{{0, 1000, 30'000'000, 20'000'000, 240'000'000, 160'000'000, 0}};
    l.close_test(*db, r.session_id, res, iv, now);
    // The IP's daily 200 MB in are spent: the next test from it is refused at start.
    CHECK_FALSE(l.open_test(*db, pro_test::request("2001:db8::9", "", 51235), now).admitted);

    auto out = run({"sessions", "--json", "--db", url});
    REQUIRE(out.status == 0);
    auto rows = json_lines(out.out);
    REQUIRE(rows.size() == 2);
    const auto& s = rows[1];
    for (const char* k : {"id", "start", "end", "peer", "user", "protocol", "direction", "connections", "tx_bytes",
                          "rx_bytes", "tx_bits_per_second", "rx_bits_per_second", "lost_packets", "ended_by"})
        CHECK(s.has(k));
    CHECK(s["id"].number() == static_cast<double>(r.session_id));
    CHECK(s["peer"].str() == "[2001:db8::9]:51234");
    CHECK(s["user"].str() == "carol");
    CHECK(s["protocol"].str() == "tcp");
    CHECK(s["direction"].str() == "both");
    CHECK(s["connections"].number() == 2);
    CHECK(s["tx_bytes"].number() == 3e8);
    CHECK(s["rx_bytes"].number() == 2e8);
    CHECK(s["tx_bits_per_second"].number() == 2.4e8);
    CHECK(s["lost_packets"].number() == 3);
    CHECK(s["ended_by"].str() == "quota_exhausted");
    CHECK_FALSE(s["refused"].boolean());
    CHECK(s["start"].str() == format_utc(now - 10s));
    CHECK(s["end"].str() == format_utc(now));
    CHECK(rows[0]["refused"].boolean());
    CHECK(rows[0]["user"].is_null());

    CHECK(json_lines(run({"sessions", "--json", "--user", "carol", "--db", url}).out).size() == 1);
    CHECK(json_lines(run({"sessions", "--json", "--ip", "2001:db8:0::9", "--db", url}).out).size() == 2);
    CHECK(run({"sessions", "--json", "--ip", "192.0.2.1", "--db", url}).out.empty());
    CHECK(json_lines(run({"sessions", "--json", "--since", "1h", "--db", url}).out).size() == 2);
    CHECK(run({"sessions", "--json", "--since", "2099-01-01", "--db", url}).out.empty());
    auto text = run({"sessions", "--db", url});
    CHECK(has(text.out, "[2001:db8::9]:51234"));
    CHECK(has(text.out, "refused: quota_exhausted"));

    auto q = run({"quota", "show", "--user", "carol", "--json", "--db", url});
    REQUIRE(q.status == 0);
    auto lines = json_lines(q.out);
    REQUIRE(lines.size() == 9);
    const auto& monthly_total = lines[8];
    CHECK(monthly_total["user"].str() == "carol");
    CHECK(monthly_total["window"].str() == "monthly");
    CHECK(monthly_total["direction"].str() == "total");
    CHECK(monthly_total["limit_bytes"].number() == 1e9);
    CHECK(monthly_total["used_bytes"].number() == 5e8);
    CHECK(monthly_total["remaining_bytes"].number() == 5e8);
    CHECK(lines[0]["limit_bytes"].is_null());
    CHECK(lines[0]["remaining_bytes"].is_null());

    auto qi = run({"quota", "show", "--ip", "2001:db8::9", "--json", "--db", url});
    auto ip_lines = json_lines(qi.out);
    REQUIRE(ip_lines.size() == 9);
    CHECK(ip_lines[0]["ip"].str() == "2001:db8::9");
    CHECK(ip_lines[0]["direction"].str() == "in");
    CHECK(ip_lines[0]["limit_bytes"].number() == 2e8);
    CHECK(ip_lines[0]["used_bytes"].number() == 2e8);
    CHECK(ip_lines[0]["remaining_bytes"].number() == 0);
    CHECK(run({"quota", "show", "--user", "ghost", "--db", url}).status == 3);
}

TEST_CASE("pro: cli: user commands work while a server writes to the same database", "[pro][cli][concurrency]") {
    temp_dir dir;
    const std::string url = "sqlite:" + dir.file("shared.db");
    open_storage(url).reset();
    service_config cfg;
    cfg.flush_interval = 1ms;  // the "server" writes all the time
    service svc(open_storage(url), cfg);
    std::promise<async_result<open_result>> opened;
    svc.open_test(pro_test::request("192.0.2.8"), [&](async_result<open_result> r) { opened.set_value(std::move(r)); });
    auto r = opened.get_future().get();
    REQUIRE(r);
    std::atomic<bool> stop{false};
    std::thread usage([&] {
        for (std::uint64_t n = 1; !stop.load(); ++n) {
            svc.record_usage(r.value->session_id, {n, n});
            std::this_thread::sleep_for(200us);
        }
    });
    for (int i = 0; i < 8; ++i) {
        auto a = run({"user", "add", "user" + std::to_string(i), "-p", "pw", "--db", url});
        INFO(a.err);
        CHECK(a.status == 0);
    }
    stop = true;
    usage.join();
    CHECK(run({"user", "list", "--db", url}).out.find("user7") != std::string::npos);
    CHECK(svc.errors() == 0);
}
