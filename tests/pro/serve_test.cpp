// `btest-server-pro serve` as operators run it: the real server process on loopback, against a
// real SQLite file, driven by the real btest client and the management subcommands. Logins
// with accounts made by `user add`, quotas that cut tests within the overshoot bound (and the
// bytes `sessions` and `quota show` report), --max-duration, --allow/--deny over 127.0.0.0/8,
// bad input, and a server killed in the middle of a test.
//
// Test k runs on port slot k (serve_support.hpp).
#include <filesystem>
#include <fstream>
#include <sys/stat.h>

#include "serve_support.hpp"

using namespace pro_test;

TEST_CASE("pro: serve: EC-SRP5 and MD5 accounts from user add log in, wrong, unknown and deleted users do not",
          "[pro][serve]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("accounts.db");
    REQUIRE(manage({"user", "add", "alice", "-p", "alice-pw"}, db).status == 0);
    REQUIRE(manage({"user", "add", "bob", "-p", "bob-pw", "--md5"}, db).status == 0);

    {
        server s(db, 0, {});  // --auth ecsrp5, the default
        auto ok = client(0, {"-a", "alice", "-p", "alice-pw", "-d", "1"});
        CHECK(ok.status == 0);
        REQUIRE(ok.summary);
        CHECK((*ok.summary)["user"].str() == "alice");
        CHECK((*ok.summary)["rx_bytes"].number() > 0);
        CHECK(client(0, {"-a", "bob", "-p", "bob-pw", "-d", "1", "-t"}).status == 0);  // MD5 accounts do EC-SRP5 too

        // A wrong password and an unknown user look the same to the client.
        auto wrong = client(0, {"-a", "alice", "-p", "nope", "-d", "1"});
        auto unknown = client(0, {"-a", "mallory", "-p", "nope", "-d", "1"});
        CHECK(wrong.status == 3);
        CHECK(unknown.status == 3);
        CHECK(error_code(wrong) == "auth_failed");
        CHECK(error_code(unknown) == "auth_failed");
        CHECK(wrong.err == unknown.err);

        // Accounts changed while the server runs: a deleted user no longer logs in, a new one
        // does (the server picks changes up within a second).
        REQUIRE(manage({"user", "del", "alice"}, db).status == 0);
        REQUIRE(manage({"user", "add", "carol", "-p", "carol-pw"}, db).status == 0);
        std::this_thread::sleep_for(1500ms);
        auto deleted = client(0, {"-a", "alice", "-p", "alice-pw", "-d", "1"});
        CHECK(deleted.status == 3);
        CHECK(error_code(deleted) == "auth_failed");
        CHECK(client(0, {"-a", "carol", "-p", "carol-pw", "-d", "1"}).status == 0);
        CHECK(has(s.log(), "authentication failed for user \"mallory\""));
        CHECK(s.stop() == 0);
    }
    {
        server s(db, 0, {"--auth", "md5"});
        CHECK(client(0, {"-a", "bob", "-p", "bob-pw", "-d", "1"}).status == 0);
        // carol was added without --md5: the server has nothing to check an MD5 login against.
        auto no_md5 = client(0, {"-a", "carol", "-p", "carol-pw", "-d", "1"});
        CHECK(no_md5.status == 3);
        CHECK(error_code(no_md5) == "auth_failed");
    }

    // Every admitted test is a history row with its user; failed logins are not tests.
    const auto rows = sessions(db);
    REQUIRE(rows.size() == 4);
    CHECK(rows[0]["user"].str() == "bob");
    CHECK(rows[1]["user"].str() == "carol");
    CHECK(rows[3]["user"].str() == "alice");
    CHECK(rows[3]["ended_by"].str() == "peer_closed");  // the client ended it (§12.1: the server sees EOF)
    CHECK(rows[3]["tx_bytes"].number() > 0);  // -r (the default): the server sent
}

TEST_CASE("pro: serve: a user quota cuts TCP tests within the bound, refills included, and refuses the next",
          "[pro][serve][quota]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("quota.db");
    REQUIRE(manage({"user", "add", "dora", "-p", "pw", "--quota-out-daily", "20M", "--quota-in-daily", "20M"}, db).status == 0);
    // Slices of 3 MB: the 20 MB arrive in several refills while the test runs.
    server s(db, 2, {"--lease-slice", "3M"});

    // The server sends: it stops at the budget (never past it), the client sees the close.
    auto out = client(2, {"-a", "dora", "-p", "pw", "-r", "-d", "20"});
    CHECK(out.status == 2);
    CHECK(error_code(out) == "peer_closed");
    REQUIRE(out.summary);
    const double received = (*out.summary)["rx_bytes"].number();
    CHECK(received <= 20 * MB);
    auto rows = sessions(db);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["ended_by"].str() == "quota_exhausted");
    const double sent = rows[0]["tx_bytes"].number();
    CHECK(sent <= 20 * MB);
    CHECK(sent > 20 * MB - 32768);  // one chunk did not fit
    CHECK(sent >= received);
    CHECK(used(db, {"--user", "dora"}, "daily", "out") == sent);
    CHECK(used(db, {"--ip", "127.0.0.1"}, "daily", "out") == sent);

    // The client sends over 3 connections: the server ends the test on the byte past the
    // budget (it reads at most one byte more than is left).
    auto in = client(2, {"-a", "dora", "-p", "pw", "-t", "-d", "20", "--connection-count", "3"});
    CHECK(in.status == 2);
    rows = sessions(db);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0]["ended_by"].str() == "quota_exhausted");
    CHECK(rows[0]["connections"].number() == 3);
    const double got = rows[0]["rx_bytes"].number();
    CHECK(got > 20 * MB);
    CHECK(got <= 20 * MB + 3);
    CHECK(used(db, {"--user", "dora"}, "daily", "in") == got);

    // Both directions spent: the next test is refused before any data, and recorded.
    auto refused = client(2, {"-a", "dora", "-p", "pw", "-r", "-d", "5"});
    CHECK(refused.status == 2);
    CHECK(error_code(refused) == "test_refused");
    CHECK_FALSE(refused.summary);
    rows = sessions(db);
    REQUIRE(rows.size() == 3);
    CHECK(rows[0]["refused"].boolean());
    CHECK(rows[0]["tx_bytes"].number() == 0);
    CHECK(has(s.log(), "refused: quota exhausted (user dora: daily out quota 20M"));

    // Raising the quota takes effect at the next test, without a restart.
    REQUIRE(manage({"user", "set", "dora", "--quota-out-daily", "30M"}, db).status == 0);
    auto more = client(2, {"-a", "dora", "-p", "pw", "-r", "-d", "20"});
    CHECK(more.status == 2);
    rows = sessions(db);
    CHECK(rows[0]["tx_bytes"].number() <= 30 * MB - sent);
    CHECK(rows[0]["tx_bytes"].number() > 30 * MB - sent - 32768);
    CHECK(used(db, {"--user", "dora"}, "daily", "out") == sent + rows[0]["tx_bytes"].number());
}

TEST_CASE("pro: serve: an IP quota cuts anonymous UDP tests within one datagram per stream", "[pro][serve][quota]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("ip.db");
    server s(db, 3, {"--auth", "none", "--ip-quota-out-daily", "30M", "--ip-quota-in-daily", "30M"});

    // The server sends 1500-byte datagrams (headers included) and stops before the budget.
    auto out = client(3, {"-u", "-r", "-d", "20", "-b", "400M"});
    CHECK(out.status == 2);
    auto rows = sessions(db);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["ended_by"].str() == "quota_exhausted");
    CHECK(rows[0]["protocol"].str() == "udp");
    CHECK(rows[0]["user"].is_null());
    const double sent = rows[0]["tx_bytes"].number();
    CHECK(sent <= 30 * MB);
    CHECK(sent > 30 * MB - 1500);
    CHECK(used(db, {"--ip", "127.0.0.1"}, "daily", "out") == sent);

    // The client sends on 2 streams: the server ends the test on the datagram past the budget.
    auto in = client(3, {"-u", "-t", "-d", "20", "-b", "400M", "--connection-count", "2"});
    CHECK(in.status == 2);
    rows = sessions(db);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0]["ended_by"].str() == "quota_exhausted");
    const double got = rows[0]["rx_bytes"].number();
    CHECK(got > 30 * MB);
    CHECK(got <= 30 * MB + 2 * 1500);
    CHECK(used(db, {"--ip", "127.0.0.1"}, "daily", "in") == got);
    CHECK(used(db, {"--ip", "127.0.0.1"}, "daily", "total") == sent + got);

    // Spent: refused without authentication, the client sees a plain close.
    auto refused = client(3, {"-u", "-r", "-d", "5"});
    CHECK(refused.status == 2);
    CHECK(error_code(refused) == "peer_closed");
    CHECK(sessions(db)[0]["refused"].boolean());
}

TEST_CASE("pro: serve: --max-duration ends a test cleanly and records it", "[pro][serve]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("duration.db");
    server s(db, 4, {"--auth", "none", "--max-duration", "1.5"});
    const auto t0 = std::chrono::steady_clock::now();
    auto r = client(4, {"-t", "-r", "-d", "10", "-b", "50M"});
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(r.status == 2);  // the client sees the server close the test
    CHECK(took < 8s);
    const auto rows = sessions(db);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["ended_by"].str() == "max_duration");
    CHECK(rows[0]["duration_s"].number() >= 1.4);
    CHECK(rows[0]["duration_s"].number() < 4);
    CHECK(rows[0]["tx_bytes"].number() > 0);
    CHECK(rows[0]["rx_bytes"].number() > 0);
    CHECK(has(s.log(), "test ended: max_duration"));
}

TEST_CASE("pro: serve: --allow and --deny close other addresses before the greeting", "[pro][serve]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("filter.db");
    const std::string hello("\x01\x00\x00\x00", 4);
    {
        server s(db, 5, {"--auth", "none", "--allow", "127.0.0.0/29", "--deny", "127.0.0.3", "--deny", "2001:db8::/32"});
        CHECK(first_bytes_from("127.0.0.2", 5) == hello);
        CHECK(first_bytes_from("127.0.0.3", 5).empty());   // denied: wins over --allow
        CHECK(first_bytes_from("127.0.0.9", 5).empty());   // outside the allowed /29
        CHECK(client(5, {"-d", "1"}).status == 0);         // 127.0.0.1 is allowed
        CHECK(has(s.log(), "127.0.0.3"));
        CHECK(has(s.log(), "refused: address not allowed"));
    }
    {
        server s(db, 5, {"--auth", "none", "--allow", "127.0.0.2/32"});
        auto r = client(5, {"-d", "1"});
        CHECK(r.status == 2);
        CHECK(has(r.err, "without a greeting"));
        CHECK(first_bytes_from("127.0.0.2", 5) == hello);
    }
    CHECK(sessions(db).size() == 1);  // closed before the greeting: never a test
}

TEST_CASE("pro: serve: bad flags and unusable databases are clear errors that change nothing", "[pro][serve]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("bad.db");
    REQUIRE(manage({"user", "add", "erin", "-p", "pw"}, db).status == 0);
    const auto before = manage({"user", "list", "--json"}, db).out;
    struct bad {
        std::vector<std::string> args;
        const char* says;
    };
    for (const auto& b : std::vector<bad>{
             {{"--ip-quota-daily", "12X"}, "--ip-quota-daily"},
             {{"--ip-quota-in-weekly", "-5M"}, "--ip-quota-in-weekly"},
             {{"--allow", "300.1.1.1/8"}, "--allow '300.1.1.1/8'"},
             {{"--deny", "10.0.0.0/33"}, "--deny '10.0.0.0/33'"},
             {{"--deny", ""}, "--deny"},
             {{"--lease-slice", "0"}, "--lease-slice"},
             {{"--max-duration", "-1"}, "--max-duration"},
             {{"--keep-days", "0"}, "--keep-days"},
             {{"--auth", "kerberos"}, "--auth"},
         }) {
        std::vector<std::string> args{"serve", "-P", std::to_string(tcp_port(7))};
        args.insert(args.end(), b.args.begin(), b.args.end());
        auto r = manage(args, db);
        INFO(b.args[0] << " " << b.args[1] << ": " << r.err);
        CHECK(r.status == 1);
        CHECK(has(r.err, b.says));
    }
    CHECK(manage({"user", "list", "--json"}, db).out == before);

    // A corrupt file: a clear storage error (2), never a crash, and the file is left as it was.
    const auto junk_path = dir.file("junk.db");
    {
        std::ofstream junk(junk_path, std::ios::binary);
        junk << std::string(8192, 'x');
    }
    auto corrupt = manage({"serve", "-P", std::to_string(tcp_port(7))}, "sqlite:" + junk_path);
    CHECK(corrupt.status == 2);
    CHECK(has(corrupt.err, "cannot use the database"));
    CHECK(std::filesystem::file_size(junk_path) == 8192);

    // A database the server may not write (run as an unprivileged user): refused at start.
    if (::geteuid() == 0) {
        ::chmod(dir.path().c_str(), 0755);
        process::options nobody;
        nobody.unprivileged = true;
        auto ro = manage({"serve", "-P", std::to_string(tcp_port(7))}, db, nobody);
        CHECK(ro.status == 2);
        CHECK(has(ro.err, "cannot use the database"));
    }

    // The port taken by another server: exit 2, and the first one goes on serving.
    server first(db, 7, {"--auth", "none"});
    auto busy = manage({"serve", "-P", std::to_string(tcp_port(7)), "--listen", "127.0.0.1", "--listen6", "none"}, db);
    CHECK(busy.status == 2);
    CHECK(has(busy.err, "cannot listen on port " + std::to_string(tcp_port(7))));
    CHECK(client(7, {"-d", "1"}).status == 0);
    CHECK(manage({"user", "list", "--json"}, db).out == before);
}

TEST_CASE("pro: serve: killed in the middle of a test, the usage up to the last flush is kept", "[pro][serve][crash]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("crash.db");
    REQUIRE(manage({"user", "add", "fred", "-p", "pw", "--quota-daily", "10G"}, db).status == 0);
    double received = 0;
    {
        server s(db, 6, {});
        // 40 Mbit/s for 20 s, killed after about 5 s: two flushes (every 2 s) are in.
        process c(BTEST_CLI, {"-c", "127.0.0.1", "-P", std::to_string(tcp_port(6)), "-a", "fred", "-p", "pw", "-r", "-d",
                              "20", "-b", "40M", "--json"});
        std::this_thread::sleep_for(5s);
        s.kill9();
        CHECK(c.wait(30s) == 2);  // the client sees the server go away
        for (auto& l : json_lines(c.out()))
            if (l["type"].str() == "summary") received = l["rx_bytes"].number();
    }
    REQUIRE(received > 15 * MB);
    // The database opens cleanly and holds what was flushed: at least the first 4 s at 5 MB/s
    // less the first flush's lag, never more than was moved.
    const double recorded = used(db, {"--user", "fred"}, "daily", "out");
    CHECK(recorded >= 10 * MB);
    CHECK(recorded <= received + 1 * MB);  // (the client's count trails the server's by what was in flight)
    const auto rows = sessions(db, {}, /*settled=*/false);  // its server died: it stays open
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["user"].str() == "fred");

    // A new server starts on the same file and serves.
    server again(db, 6, {});
    CHECK(client(6, {"-a", "fred", "-p", "pw", "-d", "1"}).status == 0);
}
