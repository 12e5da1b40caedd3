// The btest binary as users and scripts meet it: exit statuses, messages, text/JSON/CSV output,
// syslog, signals. Each test spawns real processes on loopback and is bounded in time.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "loopback.hpp"
#include "test/json.hpp"

using namespace std::chrono_literals;
using loopback::cli_server;
using loopback::process;

namespace {

std::vector<std::string> server_args(loopback::ports p, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{"-s", "-P", std::to_string(p.tcp), "--listen", "127.0.0.1", "--listen6", "none",
                               "--udp-port-start", std::to_string(p.udp_base)};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}
std::vector<std::string> client_args(loopback::ports p, std::vector<std::string> extra = {}) {
    std::vector<std::string> a{"-c", "127.0.0.1", "-P", std::to_string(p.tcp)};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
}
bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::vector<test::json::value> json_lines(const std::string& out) {
    std::vector<test::json::value> v;
    for (const auto& l : process::lines(out)) v.push_back(test::json::parse(l));  // throws if a line is not JSON
    return v;
}

} // namespace

TEST_CASE("cli: --help explains every option with its default", "[cli]") {
    process p({"--help"});
    REQUIRE(p.wait(5s) == 0);
    const auto out = p.out();
    for (const char* flag : {"--server", "--client", "--transmit", "--receive", "--udp", "--bandwidth", "--port", "--listen",
                             "--listen6", "--authuser", "--authpass", "--nat", "--duration", "--csv", "--quiet", "--syslog",
                             "--verbose", "--connection-count", "--local-tx-speed", "--remote-tx-speed", "--tx-size",
                             "--random-data", "--interval", "-4, -6", "--json", "--auth none|md5|ecsrp5", "--ecsrp5",
                             "--max-sessions", "--udp-port-start", "--max-conn-per-ip", "--max-auth-failures",
                             "--handshake-timeout", "--idle-timeout", "--max-pending", "Default: 20 (0 = unlimited)",
                             "Default: 10 (0 = off)", "Default: 64", "Default: 2000", "Default: 100", "exit status"})
        CHECK(contains(out, flag));
}

TEST_CASE("cli: usage errors exit 1 with a message on stderr", "[cli]") {
    for (const auto& args : std::vector<std::vector<std::string>>{
             {},
             {"-c"},
             {"-s", "-c", "x"},
             {"-s", "-t"},
             {"-c", "127.0.0.1", "--tx-size", "20"},
             {"-c", "127.0.0.1", "-b", "fast"},
             {"-c", "127.0.0.1", "--interval", "10"},
             {"-c", "127.0.0.1", "--bogus"},
             {"-s", "--auth", "md5"},
             {"-s", "--auth", "sha1", "-a", "u"},
         }) {
        process p(args);
        INFO("args: " << args.size());
        CHECK(p.wait(5s) == 1);
        CHECK(contains(p.err(), "btest: "));
        CHECK(p.out().empty());
    }
}

TEST_CASE("cli: a flag of the other mode is refused by its name", "[cli]") {
    {
        process p({"-s", "--tx-size", "100"});
        CHECK(p.wait(5s) == 1);
        CHECK(contains(p.err(), "btest: --tx-size is a client (-c) option"));
    }
    {
        process p({"-c", "127.0.0.1", "--max-sessions", "3"});
        CHECK(p.wait(5s) == 1);
        CHECK(contains(p.err(), "btest: --max-sessions is a server (-s) option"));
    }
}

TEST_CASE("cli: --version names the revision, the build and the data-plane features", "[cli]") {
    process p({"--version"});
    REQUIRE(p.wait(5s) == 0);
    const auto out = p.out();
    CHECK(std::regex_search(out, std::regex(R"(^btest \d+\.\d+\.\d+ \(btestkit\)\n)")));
    CHECK(std::regex_search(out, std::regex(R"(\nrevision:   \S+\n)")));  // a git description, or "unknown"
    CHECK(std::regex_search(out, std::regex(R"(\nbuild:      \S+, (static|dynamic), )")));
    CHECK(std::regex_search(out, std::regex(R"(\ndata plane: UDP GSO \(kernel: (yes|no|unknown)\), UDP GRO \(kernel: (yes|no|unknown)\))")));
    CHECK(p.err().empty());
}

TEST_CASE("cli: -a without -p takes the password from BTEST_PASSWORD (server and client)", "[cli]") {
    const auto ports = loopback::slot(49);
    ::setenv("BTEST_PASSWORD", "from-env", 1);  // inherited by the processes below
    cli_server s(server_args(ports, {"-a", "ops"}));
    ::unsetenv("BTEST_PASSWORD");
    REQUIRE(s.listening);
    {
        process c(client_args(ports, {"-a", "ops", "-p", "from-env", "-d", "1"}));
        CHECK(c.wait(10s) == 0);
    }
    {
        process c(client_args(ports, {"-a", "ops", "-d", "1"}));  // no BTEST_PASSWORD now: empty
        CHECK(c.wait(10s) == 3);
        CHECK(contains(c.err(), "authentication failed"));
    }
    {
        ::setenv("BTEST_PASSWORD", "from-env", 1);
        process c(client_args(ports, {"-a", "ops", "-d", "1"}));
        ::unsetenv("BTEST_PASSWORD");
        CHECK(c.wait(10s) == 0);
    }
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: server not listening gives exit 2 and connection refused", "[cli]") {
    const auto ports = loopback::slot(50);
    process c(client_args(ports, {"-d", "1"}));
    REQUIRE(c.wait(10s) == 2);
    CHECK(contains(c.err(), "cannot connect to 127.0.0.1:" + std::to_string(ports.tcp)));
    CHECK(contains(c.err(), "Connection refused"));
}

TEST_CASE("cli: wrong password and missing credentials give exit 3 with the reason (MD5 and EC-SRP5)", "[cli]") {
    const auto ports = loopback::slot(51);
    for (const char* method : {"md5", "ecsrp5"}) {
        cli_server s(server_args(ports, {"-a", "admin", "-p", "right", "--auth", method}));
        REQUIRE(s.listening);
        {
            process c(client_args(ports, {"-a", "admin", "-p", "wrong", "-d", "1"}));
            REQUIRE(c.wait(10s) == 3);
            CHECK(contains(c.err(), "authentication failed: wrong user or password"));
        }
        {
            process c(client_args(ports, {"-a", "nobody", "-p", "right", "-d", "1"}));
            REQUIRE(c.wait(10s) == 3);
            CHECK(contains(c.err(), "authentication failed: wrong user or password"));
        }
        {
            process c(client_args(ports, {"-d", "1"}));
            REQUIRE(c.wait(10s) == 3);
            CHECK(contains(c.err(), "server requires authentication: pass -a/-p"));
        }
        {
            process c(client_args(ports, {"-a", "admin", "-p", "right", "-d", "1", "-u", "-t"}));
            CHECK(c.wait(10s) == 0);
        }
        CHECK(s.proc.wait_for("authentication failed for user \"admin\"", 3s, true));
        s.proc.signal(SIGTERM);
        CHECK(s.proc.wait(5s) == 0);
    }
}

TEST_CASE("cli: server closing mid-test gives the client summary and exit 2 (server exits 0 on SIGTERM)", "[cli]") {
    const auto ports = loopback::slot(52);
    cli_server s(server_args(ports));
    REQUIRE(s.listening);
    process c(client_args(ports, {"-r", "-t", "-b", "50M", "-d", "20"}));
    REQUIRE(c.wait_for("RX", 5s, true));
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
    REQUIRE(c.wait(5s) == 2);
    CHECK(contains(c.err(), "connection closed by peer"));
    CHECK(contains(c.out(), "--- summary: tcp both"));
    CHECK(contains(c.out(), "ended: peer_closed"));
}

TEST_CASE("cli: a client killed mid-test frees its session on the server", "[cli]") {
    const auto ports = loopback::slot(53);
    cli_server s(server_args(ports, {"--max-sessions", "1", "--json"}));
    REQUIRE(s.listening);
    {
        process c(client_args(ports, {"-u", "-t", "-r", "-b", "20M", "-d", "30"}));
        REQUIRE(c.wait_for("RX", 5s, true));
        c.signal(SIGKILL);
        c.wait(5s);
    }
    // The server notices (EOF on the control connection) and reports the test, freeing the slot.
    REQUIRE(s.proc.wait_for("\"type\":\"summary\"", 5s, true));
    const auto lines = json_lines(s.proc.out());
    REQUIRE(lines.size() == 1);
    CHECK(lines[0]["ended_by"].str() == "peer_closed");
    CHECK(lines[0]["protocol"].str() == "udp");
    process c2(client_args(ports, {"-d", "1"}));
    CHECK(c2.wait(10s) == 0);
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: max sessions reached refuses the next client with exit 2", "[cli]") {
    const auto ports = loopback::slot(54);
    cli_server s(server_args(ports, {"--max-sessions", "1"}));
    REQUIRE(s.listening);
    process first(client_args(ports, {"-b", "10M", "-d", "4"}));
    REQUIRE(first.wait_for("RX", 5s, true));
    process second(client_args(ports, {"-d", "1"}));
    REQUIRE(second.wait(10s) == 2);
    CHECK(contains(second.err(), "max sessions reached"));
    CHECK(first.wait(10s) == 0);
    CHECK(contains(s.proc.out(), "refused: max sessions reached"));
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: text output has one line per interval per direction and a summary", "[cli]") {
    const auto ports = loopback::slot(55);
    cli_server s(server_args(ports, {"-v"}));
    REQUIRE(s.listening);
    process c(client_args(ports, {"-u", "-t", "-r", "-b", "20M", "-d", "2"}));
    REQUIRE(c.wait(10s) == 0);
    const std::regex tx(R"(^\[\s*\d+\] TX\s+\d+\.\d\d Mbit/s\s+\d+\.\d MB  cpu \d+%/(\d+%|-).*)");
    const std::regex rx(R"(^\[\s*\d+\] RX\s+\d+\.\d\d Mbit/s\s+\d+\.\d MB  cpu \d+%/(\d+%|-)  lost \d+$)");
    int n_tx = 0, n_rx = 0;
    for (const auto& l : c.out_lines()) {
        n_tx += std::regex_match(l, tx);
        n_rx += std::regex_match(l, rx);
    }
    CHECK(n_tx == 2);
    CHECK(n_rx == 2);
    const auto out = c.out();
    CHECK(contains(out, "--- summary: udp both, 1 stream, 2.00 s, ended: completed"));
    CHECK(std::regex_search(out, std::regex(R"(\nTX  \d+\.\d MB  avg \d+\.\d\d Mbit/s  10-s avg \d+\.\d\d Mbit/s)")));
    CHECK(std::regex_search(out, std::regex(R"(\nRX  .* lost \d+  jitter \d+\.\d+ ms)")));
    CHECK(c.err().empty());
    // The server: a line when the test starts and when it ends (+ intervals with -v).
    CHECK(s.proc.wait_for("test ended: peer_closed", 3s, true));
    CHECK(contains(s.proc.out(), "test started: udp both"));
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: TCP lines carry no loss figure in text, CSV or JSON (loss is a UDP receive figure)", "[cli]") {
    const auto ports = loopback::slot(62);
    const std::string path = "/tmp/btest_csv_tcp_" + std::to_string(::getpid()) + ".csv";
    ::unlink(path.c_str());
    cli_server s(server_args(ports, {"-v"}));
    REQUIRE(s.listening);
    process c(client_args(ports, {"-t", "-r", "-b", "20M", "-d", "2", "--csv", path}));
    REQUIRE(c.wait(10s) == 0);
    const auto out = c.out();
    INFO(out);
    CHECK(contains(out, "--- summary: tcp both"));
    CHECK_FALSE(contains(out, "lost"));
    CHECK_FALSE(contains(out, "jitter"));
    int rx_lines = 0;
    for (const auto& l : c.out_lines()) rx_lines += std::regex_match(l, std::regex(R"(^\[\s*\d+\] RX .*cpu \S+$)"));
    CHECK(rx_lines == 2);
    // The server's lines (-v: intervals and summary) and its "test ended" line alike.
    REQUIRE(s.proc.wait_for("test ended: peer_closed", 3s, true));
    REQUIRE(s.proc.wait_for("--- summary", 3s, true));
    CHECK_FALSE(contains(s.proc.out(), "lost"));
    // CSV: the lost_packets column stays empty on every row of a TCP test.
    const auto rows = process::lines(process::slurp(path));
    ::unlink(path.c_str());
    REQUIRE(rows.size() >= 1 + 4 + 2);  // header, 2 intervals × 2 directions, 2 summary rows
    for (std::size_t i = 1; i < rows.size(); ++i) {
        INFO(rows[i]);
        std::vector<std::string> cols;
        std::stringstream ss(rows[i]);
        for (std::string f; std::getline(ss, f, ',');) cols.push_back(f);
        REQUIRE(cols.size() >= 11);
        CHECK(cols[10].empty());  // lost_packets
    }
    // JSON: lost_packets is null for TCP, a number for a UDP receive direction only.
    process j(client_args(ports, {"-t", "-r", "-b", "20M", "-d", "1", "--json"}));
    REQUIRE(j.wait(10s) == 0);
    for (const auto& v : json_lines(j.out())) CHECK(v["lost_packets"].is_null());
    process ju(client_args(ports, {"-u", "-t", "-r", "-b", "20M", "-d", "1", "--json"}));
    REQUIRE(ju.wait(10s) == 0);
    for (const auto& v : json_lines(ju.out())) {
        const bool udp_rx = v["type"].str() == "summary" || v["direction"].str() == "rx";
        CHECK(v["lost_packets"].is_null() == !udp_rx);
    }
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: interval labels sit on the report grid with the interval's decimals, even when a report is late", "[cli]") {
    const auto ports = loopback::slot(63);
    cli_server s(server_args(ports));
    REQUIRE(s.listening);
    {
        // Stop the client around its 2-second report (from ~1.7 s to ~2.1 s after the test
        // started, if the first line was seen at once): the report fires late, when it resumes.
        process c(client_args(ports, {"-t", "-b", "10M", "-d", "4"}));
        REQUIRE(c.wait_for("[  1]", 5s, true));
        std::this_thread::sleep_for(700ms);
        c.signal(SIGSTOP);
        std::this_thread::sleep_for(400ms);
        c.signal(SIGCONT);
        REQUIRE(c.wait(10s) == 0);
        std::vector<std::string> labels;
        for (const auto& l : c.out_lines())
            if (!l.empty() && l[0] == '[') labels.push_back(l.substr(0, l.find(']') + 1));
        CHECK(labels == std::vector<std::string>{"[  1]", "[  2]", "[  3]", "[  4]"});
    }
    {
        process c(client_args(ports, {"-t", "-b", "10M", "-d", "2", "-i", "0.5"}));
        REQUIRE(c.wait(10s) == 0);
        std::vector<std::string> labels;
        for (const auto& l : c.out_lines())
            if (!l.empty() && l[0] == '[') labels.push_back(l.substr(0, l.find(']') + 1));
        CHECK(labels == std::vector<std::string>{"[  0.5]", "[  1.0]", "[  1.5]", "[  2.0]"});
    }
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: --json lines parse and carry the documented fields (client and server)", "[cli]") {
    const auto ports = loopback::slot(56);
    cli_server s(server_args(ports, {"--json", "-a", "ops", "-p", "pw"}));
    REQUIRE(s.listening);
    process c(client_args(ports, {"--json", "-a", "ops", "-p", "pw", "-u", "-t", "-r", "-b", "20M", "-d", "2"}));
    REQUIRE(c.wait(10s) == 0);
    const auto lines = json_lines(c.out());
    int intervals = 0, summaries = 0;
    for (const auto& j : lines) {
        const auto& type = j["type"].str();
        if (type == "interval") {
            ++intervals;
            for (const char* k : {"time_s", "direction", "bits_per_second", "bytes", "lost_packets", "jitter_ms", "local_cpu", "remote_cpu"})
                CHECK(j.has(k));
            CHECK((j["direction"].str() == "tx" || j["direction"].str() == "rx"));
            CHECK(j["bits_per_second"].number() > 0);
        } else if (type == "summary") {
            ++summaries;
            for (const char* k : {"time_s", "direction", "bits_per_second", "bytes", "lost_packets", "jitter_ms", "local_cpu",
                                  "remote_cpu", "tx_bytes", "rx_bytes", "tx_bits_per_second", "rx_bits_per_second",
                                  "duration_s", "ended_by"})
                CHECK(j.has(k));
            CHECK(j["ended_by"].str() == "completed");
            CHECK(j["direction"].str() == "both");
            CHECK(j["tx_bits_per_second"].number() == Approx(20e6).epsilon(0.1));
            CHECK(j["rx_bits_per_second"].number() == Approx(20e6).epsilon(0.1));
            CHECK(j["duration_s"].number() == Approx(2).epsilon(0.1));
        } else {
            FAIL("unexpected type " << type);
        }
    }
    CHECK(intervals == 4);
    CHECK(summaries == 1);
    CHECK(lines.back()["type"].str() == "summary");
    // The server: one summary per test, with who ran it.
    REQUIRE(s.proc.wait_for("\"type\":\"summary\"", 3s, true));
    const auto srv = json_lines(s.proc.out());
    REQUIRE(srv.size() == 1);
    const auto& j = srv[0];
    CHECK(j["role"].str() == "server");
    CHECK(contains(j["peer"].str(), "127.0.0.1:"));
    CHECK(j["protocol"].str() == "udp");
    CHECK(j["direction"].str() == "both");
    CHECK(j["connections"].number() == 1);
    CHECK(j["user"].str() == "ops");
    CHECK(j["ended_by"].str() == "peer_closed");
    CHECK(j["rx_bytes"].number() > 0);
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
    // Failures are JSON too (and the message goes to stderr).
    process bad(client_args(ports, {"--json", "-d", "1"}));
    REQUIRE(bad.wait(10s) == 2);
    const auto err = json_lines(bad.out());
    REQUIRE(err.size() == 1);
    CHECK(err[0]["type"].str() == "error");
    CHECK(err[0]["exit_status"].number() == 2);
    CHECK(contains(bad.err(), "Connection refused"));
}

TEST_CASE("cli: --csv appends rows under one header", "[cli]") {
    const auto ports = loopback::slot(57);
    const std::string path = "/tmp/btest_csv_" + std::to_string(::getpid()) + ".csv";
    ::unlink(path.c_str());
    cli_server s(server_args(ports));
    REQUIRE(s.listening);
    for (int run = 0; run < 2; ++run) {
        process c(client_args(ports, {"--csv", path, "-t", "-b", "20M", "-d", "1", "-q"}));
        REQUIRE(c.wait(10s) == 0);
        CHECK(c.out().find("[  1]") == std::string::npos);  // -q: no interval lines
        CHECK(contains(c.out(), "--- summary"));
    }
    const auto rows = process::lines(process::slurp(path));
    ::unlink(path.c_str());
    REQUIRE(rows.size() >= 5);
    CHECK(rows[0].rfind("timestamp,role,session,peer,type,direction,time_s,bits_per_second,bytes", 0) == 0);
    const auto columns = std::count(rows[0].begin(), rows[0].end(), ',');
    int headers = 0, summaries = 0, intervals = 0;
    for (const auto& r : rows) {
        CHECK(std::count(r.begin(), r.end(), ',') == columns);
        headers += r.rfind("timestamp,", 0) == 0;
        summaries += contains(r, ",summary,tx,");
        intervals += contains(r, ",interval,tx,");
    }
    CHECK(headers == 1);
    CHECK(summaries == 2);
    CHECK(intervals >= 2);
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: Ctrl-C ends an endless test cleanly with a summary and exit 0", "[cli]") {
    const auto ports = loopback::slot(58);
    cli_server s(server_args(ports));
    REQUIRE(s.listening);
    process c(client_args(ports, {"-d", "0", "-b", "10M"}));
    REQUIRE(c.wait_for("RX", 5s, true));
    c.signal(SIGINT);
    REQUIRE(c.wait(5s) == 0);
    CHECK(contains(c.out(), "ended: stopped"));
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: --syslog sends RFC 5424 messages for test start and end and auth results", "[cli]") {
    const auto ports = loopback::slot(59);
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(static_cast<std::uint16_t>(ports.udp_base + 200));
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
    cli_server s(server_args(ports, {"-a", "ops", "-p", "pw", "--syslog", "127.0.0.1:" + std::to_string(ports.udp_base + 200)}));
    REQUIRE(s.listening);
    process ok(client_args(ports, {"-a", "ops", "-p", "pw", "-d", "1"}));
    CHECK(ok.wait(10s) == 0);
    CHECK(s.proc.wait_for("test ended", 3s, true));  // its test-end message goes out before the next test
    process bad(client_args(ports, {"-a", "ops", "-p", "nope", "-d", "1"}));
    CHECK(bad.wait(10s) == 3);
    std::vector<std::string> msgs;
    const auto end = std::chrono::steady_clock::now() + 3s;
    while (msgs.size() < 4 && std::chrono::steady_clock::now() < end) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 100) <= 0) continue;
        char buf[2048];
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n > 0) msgs.emplace_back(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    REQUIRE(msgs.size() == 4);
    const std::regex rfc5424(R"(^<\d+>1 \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \S+ btest \d+ (test-start|test-end|auth-ok|auth-fail) - .+)");
    for (const auto& m : msgs) {
        INFO(m);
        CHECK(std::regex_match(m, rfc5424));
    }
    CHECK(contains(msgs[0], "auth-ok"));
    CHECK(contains(msgs[1], "test-start"));
    CHECK(contains(msgs[2], "test-end"));
    CHECK(contains(msgs[2], "user=ops"));
    CHECK(contains(msgs[3], "auth-fail"));
    CHECK(contains(msgs[3], "<28>1 "));  // daemon.warning
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: -vv hex-dumps the control conversation on stderr and stdout stays clean", "[cli]") {
    const auto ports = loopback::slot(60);
    cli_server s(server_args(ports));
    REQUIRE(s.listening);
    process c(client_args(ports, {"-vv", "-d", "1", "-b", "10M", "--json"}));
    REQUIRE(c.wait(10s) == 0);
    const auto err = c.err();
    CHECK(contains(err, "[conn 0] << 4 bytes"));       // HELLO
    CHECK(contains(err, "0000  01 00 00 00"));
    CHECK(contains(err, "[conn 0] >> 16 bytes"));      // COMMAND
    CHECK(contains(err, "0000  01 02 01 00 00 80"));
    CHECK_NOTHROW(json_lines(c.out()));
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: -v names the TCP paths that ran, --no-zerocopy and --no-discard switch them off", "[cli]") {
    const auto ports = loopback::slot(116);
    cli_server s(server_args(ports));
    REQUIRE(s.listening);
    // Bytes of a "data plane:" line: sent by reference, dropped unread.
    auto paths = [](const std::string& err) {
        std::smatch m;
        REQUIRE(std::regex_search(err, m, std::regex(R"(data plane: TCP sent \d+ B copied, (\d+) B by reference .*?(\d+) B dropped unread)")));
        return std::pair{std::stoull(m[1].str()), std::stoull(m[2].str())};
    };
    {  // both ways on 127.0.0.1, a peer on this host: zeros leave by reference, and payload is
       // dropped once the server's first STATUS (at 1 s) showed its chunk grid
        process c(client_args(ports, {"-v", "-t", "-r", "-d", "3", "-b", "200M"}));
        REQUIRE(c.wait(15s) == 0);
        const auto [by_ref, dropped] = paths(c.err());
        CHECK(by_ref > 10'000'000);
        CHECK(dropped > 10'000'000);
    }
    {
        process c(client_args(ports, {"-v", "-t", "-r", "-d", "1", "-b", "200M", "--no-zerocopy", "--no-discard"}));
        REQUIRE(c.wait(15s) == 0);
        const auto [by_ref, dropped] = paths(c.err());
        CHECK(by_ref == 0);
        CHECK(dropped == 0);
    }
    {
        process c(client_args(ports, {"-d", "1", "--no-zerocopy", "--zerocopy-everywhere"}));
        CHECK(c.wait(10s) == 1);  // contradictory flags: a usage error
        CHECK(contains(c.err(), "--zerocopy-everywhere"));
    }
    s.proc.signal(SIGTERM);
    CHECK(s.proc.wait(5s) == 0);
}

TEST_CASE("cli: multi-connection TCP and IPv6 through the binary", "[cli]") {
    const auto ports = loopback::slot(61);
    if (!loopback::ipv6_available()) {
        WARN("SKIPPED: IPv6 loopback ([::1]) is not available on this host");
        return;
    }
    process s({"-s", "-P", std::to_string(ports.tcp), "-6", "--udp-port-start", std::to_string(ports.udp_base), "--json"});
    REQUIRE(s.wait_for("listening on [::]:", 5s));
    process c({"-c", "::1", "-P", std::to_string(ports.tcp), "-t", "-r", "--connection-count", "5", "-b", "50M", "-d", "2", "--json"});
    REQUIRE(c.wait(10s) == 0);
    const auto lines = json_lines(c.out());
    REQUIRE_FALSE(lines.empty());
    CHECK(lines.back()["connections"].number() == 5);
    CHECK(contains(lines.back()["peer"].str(), "[::1]:"));
    REQUIRE(s.wait_for("\"type\":\"summary\"", 3s, true));
    CHECK(json_lines(s.out()).at(0)["connections"].number() == 5);
    s.signal(SIGTERM);
    CHECK(s.wait(5s) == 0);
}

namespace {

// The multi-connection tests RouterOS runs by default (connection-count=20), through the binary,
// with one authentication method: TCP with 20 connections and UDP with 4 streams, both
// directions. With -v the client and the server list every connection (or stream); each must
// have carried data both ways, and the per-connection lines must add up to the totals.
void multi_connection_run(unsigned slot, const std::vector<std::string>& auth_server, const std::vector<std::string>& auth_client) {
    const auto ports = loopback::slot(slot);
    const std::regex total(R"(^(TX|RX)  (\d+\.\d) MB  avg)");
    const std::regex tcp_conn(R"(^  conn (\d+)\s+TX (\d+\.\d) MB  RX (\d+\.\d) MB  status (\d+) sent / (\d+) received$)");
    const std::regex udp_stream(R"(^  stream (\d+)\s+RX (\d+\.\d) MB  (\d+) packets  lost (\d+)  jitter .*)");
    for (const bool udp : {false, true}) {
        INFO((udp ? "udp" : "tcp"));
        cli_server s(server_args(ports, auth_server));
        REQUIRE(s.listening);
        std::vector<std::string> args = auth_client;
        for (const char* a : {"-t", "-r", "-v", "-d", "2", "-b", "40M"}) args.emplace_back(a);
        args.insert(args.end(), {"--connection-count", udp ? "4" : "20"});
        if (udp) args.emplace_back("-u");
        process c(client_args(ports, args));
        REQUIRE(c.wait(20s) == 0);
        const auto out = c.out();
        CHECK(contains(out, std::string("--- summary: ") + (udp ? "udp both, 4 streams" : "tcp both, 20 connections")));
        double tx_total = 0, rx_total = 0, tx_sum = 0, rx_sum = 0;
        int conns = 0;
        std::set<unsigned> seen;
        for (const auto& l : c.out_lines()) {
            std::smatch m;
            if (std::regex_search(l, m, total)) (m[1] == "TX" ? tx_total : rx_total) = std::stod(m[2]);
            if (!udp && std::regex_match(l, m, tcp_conn)) {
                ++conns;
                seen.insert(static_cast<unsigned>(std::stoul(m[1])));
                CHECK(std::stod(m[2]) > 0);
                CHECK(std::stod(m[3]) > 0);
                CHECK(std::stoul(m[4]) >= 1);  // every connection carries its own STATUS (§7.6)
                tx_sum += std::stod(m[2]);
                rx_sum += std::stod(m[3]);
            }
            if (udp && std::regex_match(l, m, udp_stream)) {
                ++conns;
                seen.insert(static_cast<unsigned>(std::stoul(m[1])));
                CHECK(std::stoul(m[3]) > 0);
                rx_sum += std::stod(m[2]);
            }
        }
        INFO(out);
        CHECK(conns == (udp ? 4 : 20));
        CHECK(seen.size() == static_cast<std::size_t>(conns));  // distinct connections / streams
        CHECK(tx_total > 5);  // 40 Mbit/s for 2 s is 10 MB each way
        CHECK(rx_total > 5);
        // The lines are rounded to 0.1 MB each.
        CHECK(rx_sum == Approx(rx_total).margin(0.05 * (conns + 1)));
        if (!udp) CHECK(tx_sum == Approx(tx_total).margin(0.05 * (conns + 1)));
        // The server saw the same test and lists its side the same way.
        REQUIRE(s.proc.wait_for("--- summary:", 5s, true));
        CHECK(s.proc.wait_for(udp ? "stream 3 " : "conn 19 ", 2s, true));
        s.proc.signal(SIGTERM);
        CHECK(s.proc.wait(5s) == 0);
    }
}

} // namespace

TEST_CASE("cli: connection-count 20 TCP and 4 UDP streams both ways, no auth", "[cli][multi]") {
    multi_connection_run(36, {"-v"}, {});
}
TEST_CASE("cli: connection-count 20 TCP and 4 UDP streams both ways, MD5", "[cli][multi]") {
    multi_connection_run(37, {"-v", "-a", "admin", "-p", "pw", "--auth", "md5"}, {"-a", "admin", "-p", "pw"});
}
TEST_CASE("cli: connection-count 20 TCP and 4 UDP streams both ways, EC-SRP5", "[cli][multi]") {
    multi_connection_run(38, {"-v", "-a", "admin", "-p", "pw", "--auth", "ecsrp5"}, {"-a", "admin", "-p", "pw"});
}
