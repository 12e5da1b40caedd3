// `btest-server-pro serve --http`: the dashboard's JSON API and /metrics over real loopback
// HTTP, after real btest tests ran against the real server process (SQLite file). The API's
// numbers are compared with the session records as `sessions --json`, `quota show --json` and
// `user list --json` print them; the metrics with the sums over those records. Visitors are
// told apart by their source address (127.0.0.1 ran the tests; 127.0.0.2 did not): without the
// admin token a visitor sees its own address only and gets one uniform 401 for everything
// else. Hostile HTTP clients (malformed requests, huge headers, slow-loris, 1,000 requests at
// once) leave the server serving bandwidth tests.
//
// Ports: test k uses TCP 13100 + k for btest, UDP 5000 + 300·k for its UDP tests and HTTP
// 13200 + k (no other suite uses these).
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <cstdint>
#include <fcntl.h>
#include <fstream>
#include <map>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <poll.h>
#include <string>
#include <sys/resource.h>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "../probe/prom_parse.hpp"
#include "../probe/promtool.hpp"
#include "pro_support.hpp"
#include "process.hpp"
#include "serve_support.hpp"
#include "test/json.hpp"

using namespace std::chrono_literals;
using pro_test::has;
using pro_test::json_lines;
using pro_test::process;
using pro_test::temp_dir;

namespace {

std::uint16_t tcp_port(unsigned k) { return static_cast<std::uint16_t>(13100 + k); }
std::uint16_t udp_base(unsigned k) { return static_cast<std::uint16_t>(5000 + 300 * k); }
std::uint16_t http_port(unsigned k) { return static_cast<std::uint16_t>(13200 + k); }

constexpr const char* admin_token = "s3cret-admin-token-0123456789";

/// Deep equality of two JSON values (numbers exactly).
bool same(const test::json::value& a, const test::json::value& b) {
    if (a.v.index() != b.v.index()) return false;
    if (a.is_null()) return true;
    if (a.is_bool()) return a.boolean() == b.boolean();
    if (a.is_number()) return a.number() == b.number();
    if (a.is_string()) return a.str() == b.str();
    if (a.is_array()) {
        if (a.arr().size() != b.arr().size()) return false;
        for (std::size_t i = 0; i < a.arr().size(); ++i)
            if (!same(a.arr()[i], b.arr()[i])) return false;
        return true;
    }
    if (a.obj().size() != b.obj().size()) return false;
    for (const auto& [k, v] : a.obj())
        if (!b.has(k) || !same(v, b[k])) return false;
    return true;
}

struct run_result {
    int status;
    std::string out, err;
};

run_result pro(std::vector<std::string> args, const std::string& db) {
    args.push_back("--db");
    args.push_back(db);
    process p(BTEST_PRO_CLI, args);
    const int st = p.wait(30s);
    return {st, p.out(), p.err()};
}

/// The server on slot k with --http, ready when it printed its database line.
class server {
public:
    server(const std::string& db, unsigned k, const std::string& token_file, std::vector<std::string> extra = {}) {
        std::vector<std::string> args{"serve", "--db", db, "-P", std::to_string(tcp_port(k)), "--listen", "127.0.0.1",
                                      "--listen6", "none", "--udp-port-start", std::to_string(udp_base(k)),
                                      "--udp-port-end", std::to_string(udp_base(k) + 255), "--threads", "2",
                                      "--http", "127.0.0.1:" + std::to_string(http_port(k))};
        if (!token_file.empty()) {
            args.push_back("--admin-token-file");
            args.push_back(token_file);
        }
        args.insert(args.end(), extra.begin(), extra.end());
        p_ = std::make_unique<process>(BTEST_PRO_CLI, args);
        const auto end = std::chrono::steady_clock::now() + 15s;
        while (!has(p_->out(), "btest-server-pro: database")) {
            if (p_->wait(0ms) >= 0 || std::chrono::steady_clock::now() >= end) FAIL("the server did not start: " << p_->err() << p_->out());
            std::this_thread::sleep_for(10ms);
        }
    }
    ~server() {
        p_->kill(SIGTERM);
        p_->wait(10s);
    }
    int stop() {
        p_->kill(SIGTERM);
        return p_->wait(10s);
    }
    bool running() { return p_->wait(0ms) < 0; }
    std::string log() const { return p_->out() + p_->err(); }

private:
    std::unique_ptr<process> p_;
};

struct client_result {
    int status = -1;
    std::optional<test::json::value> summary;
};

client_result client(unsigned k, std::vector<std::string> args) {
    std::vector<std::string> all{"-c", "127.0.0.1", "-P", std::to_string(tcp_port(k)), "--json"};
    all.insert(all.end(), args.begin(), args.end());
    process p(BTEST_CLI, all);
    client_result r;
    r.status = p.wait(60s);
    for (auto& line : json_lines(p.out()))
        if (line["type"].str() == "summary") r.summary = line;
    return r;
}

/// A connected TCP socket from `source` to 127.0.0.1:port (-1 on failure).
int connect_from(const char* source, std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &src.sin_addr);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0 ||
        ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{15, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

std::string read_all(int fd) {
    std::string got;
    char buf[8192];
    for (;;) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got;
}

struct http_response {
    int status = 0;
    std::map<std::string, std::string> headers;  ///< names in lower case
    std::string body;
    test::json::value json() const { return test::json::parse(body); }
};

http_response parse_response(const std::string& raw) {
    http_response r;
    const auto head_end = raw.find("\r\n\r\n");
    if (raw.size() < 12 || head_end == std::string::npos) return r;
    r.status = std::stoi(raw.substr(9, 3));
    std::size_t pos = raw.find("\r\n") + 2;
    while (pos < head_end) {
        const auto eol = raw.find("\r\n", pos);
        const auto line = raw.substr(pos, eol - pos);
        const auto colon = line.find(':');
        if (colon != std::string::npos) {
            std::string name = line.substr(0, colon);
            for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            r.headers[name] = line.substr(line.find_first_not_of(' ', colon + 1));
        }
        pos = eol + 2;
    }
    r.body = raw.substr(head_end + 4);
    return r;
}

/// GET `path` on slot k's HTTP port, from `source`, with the admin token when given.
http_response get(unsigned k, const std::string& path, const char* source = "127.0.0.1",
                  const std::string& token = {}) {
    const int fd = connect_from(source, http_port(k));
    REQUIRE(fd >= 0);
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n";
    if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
    req += "\r\n";
    REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
    auto r = parse_response(read_all(fd));
    ::close(fd);
    return r;
}

std::string write_token_file(const temp_dir& dir) {
    const auto path = dir.file("admin.token");
    std::ofstream(path) << admin_token << "\n";
    return path;
}

double sum_of(const std::vector<test::json::value>& rows, const char* field) {
    double s = 0;
    for (const auto& r : rows) s += r[field].number();
    return s;
}

} // namespace

TEST_CASE("pro: http: the API and /metrics give exactly the session records of real tests", "[pro][http]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("http.db");
    REQUIRE(pro({"user", "add", "alice", "-p", "alice-pw", "--quota-monthly", "100G"}, db).status == 0);
    server s(db, 0, write_token_file(dir), {"--ip-quota-daily", "50G"});

    // Real tests: TCP download, UDP both ways at a set rate, TCP upload, and a failed login.
    auto a = client(0, {"-a", "alice", "-p", "alice-pw", "-d", "2", "-r"});
    REQUIRE(a.status == 0);
    auto b = client(0, {"-a", "alice", "-p", "alice-pw", "-d", "2", "-u", "-t", "-r", "-b", "20M"});
    REQUIRE(b.status == 0);
    auto c = client(0, {"-a", "alice", "-p", "alice-pw", "-d", "1", "-t"});
    REQUIRE(c.status == 0);
    CHECK(client(0, {"-a", "alice", "-p", "wrong", "-d", "1"}).status != 0);

    // The history as the CLI prints it (the server has written every end by now: sessions
    // --json reads the same file, after the server logged the ends).
    std::vector<test::json::value> rows;
    for (int i = 0; i < 200; ++i) {
        rows = json_lines(pro({"sessions", "--json"}, db).out);
        if (rows.size() == 3 && !rows[0]["end"].is_null()) break;
        std::this_thread::sleep_for(50ms);
    }
    REQUIRE(rows.size() == 3);

    {  // history: /api/v1/sessions is `sessions --json`, field for field
        auto r = get(0, "/api/v1/sessions");
        REQUIRE(r.status == 200);
        CHECK(r.headers["content-type"] == "application/json; charset=utf-8");
        const auto api = r.json()["sessions"].arr();
        REQUIRE(api.size() == rows.size());
        for (std::size_t i = 0; i < rows.size(); ++i) CHECK(same(api[i], rows[i]));
        // Paging and filters.
        auto page = get(0, "/api/v1/sessions?limit=1&offset=1").json()["sessions"].arr();
        REQUIRE(page.size() == 1);
        CHECK(same(page[0], rows[1]));
        CHECK(get(0, "/api/v1/sessions?user=alice&since=1h").json()["sessions"].arr().size() == 3);
        CHECK(get(0, "/api/v1/sessions?user=bob").json()["sessions"].arr().empty());
        CHECK(get(0, "/api/v1/sessions?limit=0").status == 400);
        CHECK(get(0, "/api/v1/sessions?limit=x").status == 400);
        CHECK(get(0, "/api/v1/sessions?since=yesterday").status == 400);
        CHECK(get(0, "/api/v1/sessions?ip=not-an-ip").status == 400);
    }

    {  // one session: the row plus its per-second intervals, which add up to the row
        for (const auto& row : rows) {
            const auto id = static_cast<long long>(row["id"].number());
            auto r = get(0, "/api/v1/sessions/" + std::to_string(id));
            REQUIRE(r.status == 200);
            auto j = r.json();
            const auto& iv = j["intervals"].arr();
            REQUIRE(!iv.empty());
            double tx = 0, rx = 0, lost = 0;
            for (const auto& i : iv) {
                tx += i["tx_bytes"].number();
                rx += i["rx_bytes"].number();
                lost += i["lost_packets"].number();
                CHECK(i["time_s"].number() >= i["start_s"].number());  // the final fragment may be empty
            }
            CHECK(tx == row["tx_bytes"].number());
            CHECK(rx == row["rx_bytes"].number());
            CHECK(lost == row["lost_packets"].number());
            for (const auto& [key, value] : row.obj()) CHECK(same(j[key], value));
        }
        CHECK(get(0, "/api/v1/sessions/999999", "127.0.0.1", admin_token).status == 404);
    }

    {  // the client's own figures agree with the record
        // The download: what the client received, the server sent (a few bytes may still have
        // been in flight when the client closed).
        const auto& down = rows[2];
        REQUIRE(down["direction"].str() == "receive");
        REQUIRE(a.summary);
        CHECK((*a.summary)["rx_bytes"].number() > 0);
        CHECK((*a.summary)["rx_bytes"].number() <= down["tx_bytes"].number());
        CHECK(down["rx_bytes"].number() == 0);
    }

    {  // /metrics: the sums over the records
        auto r = get(0, "/metrics");
        REQUIRE(r.status == 200);
        CHECK(has(r.headers["content-type"], "text/plain; version=0.0.4"));
        auto m = prom_parse::parse(r.body);
        INFO(m.error);
        REQUIRE(m.error.empty());
        CHECK(m.value("btest_bytes_total", {{"direction", "out"}}) == sum_of(rows, "tx_bytes"));
        CHECK(m.value("btest_bytes_total", {{"direction", "in"}}) == sum_of(rows, "rx_bytes"));
        CHECK(m.value("btest_lost_packets_total") == sum_of(rows, "lost_packets"));
        CHECK(m.value("btest_sessions_active") == 0);
        CHECK(m.value("btest_sessions_total", {{"protocol", "tcp"}, {"direction", "receive"}, {"end_reason", rows[2]["ended_by"].str()}}) == 1);
        CHECK(m.value("btest_sessions_total", {{"protocol", "udp"}, {"direction", "both"}, {"end_reason", rows[1]["ended_by"].str()}}) == 1);
        CHECK(m.value("btest_sessions_total", {{"protocol", "tcp"}, {"direction", "transmit"}, {"end_reason", rows[0]["ended_by"].str()}}) == 1);
        CHECK(m.value("btest_auth_total", {{"method", "ecsrp5"}, {"result", "success"}}) == 3);
        CHECK(m.value("btest_auth_total", {{"method", "ecsrp5"}, {"result", "failure"}}) == 1);
        CHECK(m.value("btest_handshake_duration_seconds_count") == 3);
        CHECK(m.value("btest_packets_total", {{"direction", "out"}}) > 0);  // the UDP test's datagrams
        CHECK(m.value("btest_refusals_total", {{"cause", "quota"}}) == 0);
        CHECK(m.value("btest_quota_cutoffs_total") == 0);
        CHECK(m.value("btest_storage_errors_total") == 0);
        CHECK(m.value("btest_io_threads") == 2);
        CHECK(m.value("process_resident_memory_bytes") > 0);
        CHECK(m.value("process_open_fds") > 0);
        // No per-address label anywhere.
        CHECK(!has(r.body, "127.0.0.1"));
        if (promtool::available()) {
            auto pt = promtool::check(r.body);
            INFO(pt.output);
            CHECK(pt.status == 0);
        }
    }

    {  // quota: the visitor's own address, as `quota show --json`
        auto r = get(0, "/api/v1/quota");
        REQUIRE(r.status == 200);
        const auto api = r.json()["quota"].arr();
        const auto cli = json_lines(pro({"quota", "show", "--ip", "127.0.0.1", "--json"}, db).out);
        REQUIRE(api.size() == cli.size());
        for (std::size_t i = 0; i < cli.size(); ++i) {
            CHECK(api[i]["used_bytes"].number() == cli[i]["used_bytes"].number());
            CHECK(same(api[i]["limit_bytes"], cli[i]["limit_bytes"]));
            CHECK(api[i]["window"].str() == cli[i]["window"].str());
            CHECK(api[i]["direction"].str() == cli[i]["direction"].str());
        }
        CHECK(api[2]["limit_bytes"].number() == 50e9);  // --ip-quota-daily 50G, total
        // A user's quota is the admin's business.
        CHECK(get(0, "/api/v1/quota?user=alice").status == 401);
        auto u = get(0, "/api/v1/quota?user=alice", "127.0.0.1", admin_token);
        REQUIRE(u.status == 200);
        CHECK(u.json()["quota"][8]["limit_bytes"].number() == 100e9);
        CHECK(get(0, "/api/v1/quota?user=nobody", "127.0.0.1", admin_token).status == 404);
    }

    {  // users: admin only, as `user list --json`
        auto none = get(0, "/api/v1/users");
        CHECK(none.status == 401);
        CHECK(has(none.headers["www-authenticate"], "Bearer"));
        CHECK(get(0, "/api/v1/users", "127.0.0.1", "wrong-token-wrong-token").status == 403);
        auto r = get(0, "/api/v1/users", "127.0.0.1", admin_token);
        REQUIRE(r.status == 200);
        const auto cli = json_lines(pro({"user", "list", "--json"}, db).out);
        const auto api = r.json()["users"].arr();
        REQUIRE(api.size() == cli.size());
        CHECK(same(api[0], cli[0]));
    }

    {  // another address sees nothing of 127.0.0.1, and cannot tell what exists
        const char* other = "127.0.0.2";
        auto mine = get(0, "/api/v1/sessions", other);
        REQUIRE(mine.status == 200);
        CHECK(mine.json()["sessions"].arr().empty());
        CHECK(get(0, "/api/v1/live", other).json()["sessions"].arr().empty());
        auto info = get(0, "/api/v1/info", other).json();
        CHECK(info["you"]["ip"].str() == other);
        CHECK(!info["you"]["admin"].boolean());

        // With history and without: the same answer, byte for byte.
        const auto id = std::to_string(static_cast<long long>(rows[0]["id"].number()));
        auto with = get(0, "/api/v1/sessions?ip=127.0.0.1", other);
        auto without = get(0, "/api/v1/sessions?ip=127.0.0.9", other);
        CHECK(with.status == 401);
        CHECK(without.status == 401);
        CHECK(with.body == without.body);
        auto exists = get(0, "/api/v1/sessions/" + id, other);
        auto missing = get(0, "/api/v1/sessions/999999", other);
        CHECK(exists.status == 401);
        CHECK(missing.status == 401);
        CHECK(exists.body == missing.body);
        CHECK(!has(exists.body, "127.0.0.1"));
        CHECK(get(0, "/api/v1/quota?ip=127.0.0.1", other).status == 401);
        CHECK(get(0, "/api/v1/quota?ip=127.0.0.1", other, "not-the-token-at-all").status == 403);

        // The admin token opens everything, from any address.
        auto all = get(0, "/api/v1/sessions", other, admin_token);
        REQUIRE(all.status == 200);
        CHECK(all.json()["sessions"].arr().size() == 3);
        CHECK(get(0, "/api/v1/sessions/" + id, other, admin_token).status == 200);
        CHECK(get(0, "/api/v1/info", other, admin_token).json()["you"]["admin"].boolean());
    }
    CHECK(s.stop() == 0);
}

TEST_CASE("pro: http: a running test is live with its rates, the dashboard has its own files and a strict CSP", "[pro][http]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("live.db");
    const std::string name = "<script>alert(1)</script>";
    REQUIRE(pro({"user", "add", name, "-p", "pw"}, db).status == 0);
    server s(db, 1, "");

    process running(BTEST_CLI, {"-c", "127.0.0.1", "-P", std::to_string(tcp_port(1)), "-a", name, "-p", "pw", "-d", "4",
                                "-r", "-b", "50M"});
    std::optional<test::json::value> seen;
    const auto end = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < end) {
        auto r = get(1, "/api/v1/live");
        REQUIRE(r.status == 200);
        auto j = r.json();
        if (!j["sessions"].arr().empty() && j["sessions"][0]["intervals"].arr().size() >= 2) {
            seen = j["sessions"][0];
            break;
        }
        std::this_thread::sleep_for(100ms);
    }
    REQUIRE(seen);
    CHECK((*seen)["user"].str() == name);  // JSON carries the name as data; the page shows it as text
    CHECK((*seen)["tx_bits_per_second"].number() > 0);
    CHECK((*seen)["protocol"].str() == "tcp");
    CHECK((*seen)["direction"].str() == "receive");
    CHECK((*seen)["intervals"][0]["tx_bits_per_second"].number() > 0);
    auto m = prom_parse::parse(get(1, "/metrics").body);
    CHECK(m.value("btest_sessions_active") == 1);
    CHECK(m.value("btest_bytes_total", {{"direction", "out"}}) > 0);  // counted while the test runs
    REQUIRE(running.wait(20s) == 0);

    // The live session is in the history under the same id once it ended.
    const auto id = std::to_string(static_cast<long long>((*seen)["id"].number()));
    http_response row;
    for (int i = 0; i < 100 && (row = get(1, "/api/v1/sessions/" + id)).status == 200 && row.json()["end"].is_null(); ++i)
        std::this_thread::sleep_for(50ms);
    REQUIRE(row.status == 200);
    CHECK(row.json()["user"].str() == name);
    CHECK(get(1, "/api/v1/live").json()["sessions"].arr().empty());

    // No admin token configured: nothing is admin, whatever is sent.
    CHECK(get(1, "/api/v1/users").status == 401);
    CHECK(get(1, "/api/v1/users", "127.0.0.1", admin_token).status == 403);

    // The dashboard: its own files only, a strict policy, no inline script.
    auto page = get(1, "/");
    REQUIRE(page.status == 200);
    const auto csp = page.headers["content-security-policy"];
    CHECK(has(csp, "default-src 'none'"));
    CHECK(has(csp, "script-src 'self'"));
    CHECK(!has(csp, "unsafe-inline"));
    CHECK(page.headers["x-content-type-options"] == "nosniff");
    CHECK(has(page.body, "<script src=\"/dashboard.js\""));
    CHECK(!has(page.body, "<script>"));
    auto js = get(1, "/dashboard.js");
    REQUIRE(js.status == 200);
    CHECK(has(js.headers["content-type"], "javascript"));
    CHECK(!has(js.body, "innerHTML"));  // values reach the page through textContent only
    CHECK(get(1, "/dashboard.css").status == 200);
    const bool chart_installed = ::access("/usr/share/javascript/chart.js/chart.min.js", R_OK) == 0;
    CHECK(get(1, "/static/chart.js").status == (chart_installed ? 200 : 404));
    CHECK(get(1, "/nothing-here").status == 404);
    CHECK(s.stop() == 0);

    // Without Chart.js: 404, and the page still loads.
    server no_chart(db, 1, "", {"--chart-js", dir.file("missing.js")});
    CHECK(get(1, "/static/chart.js").status == 404);
    CHECK(get(1, "/").status == 200);
}

TEST_CASE("pro: http: malformed, huge, slow and 1,000 parallel requests leave the server serving tests", "[pro][http]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("hostile.db");
    REQUIRE(pro({"user", "add", "alice", "-p", "pw"}, db).status == 0);
    server s(db, 2, write_token_file(dir));
    auto raw = [](const std::string& request) {
        const int fd = connect_from("127.0.0.1", http_port(2));
        REQUIRE(fd >= 0);
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
        auto r = parse_response(read_all(fd));
        ::close(fd);
        return r;
    };

    // Malformed requests and paths: a 4xx (or a closed connection), never a crash or a 5xx.
    for (const std::string& req : {
             std::string("GARBAGE\r\n\r\n"),
             std::string("GET\r\n\r\n"),
             std::string("GET /../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"),
             std::string("GET /api/v1/sessions/99999999999999999999999999 HTTP/1.1\r\nHost: x\r\n\r\n"),
             std::string("GET /api/v1/sessions/-1 HTTP/1.1\r\nHost: x\r\n\r\n"),
             std::string("GET /api/v1/sessions?limit=%ff%00 HTTP/1.1\r\nHost: x\r\n\r\n"),
             std::string("GET /%00%2e%2e/ HTTP/1.1\r\nHost: x\r\n\r\n"),
             std::string("GET /") + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
             std::string("POST /api/v1/users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
             std::string("GET /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer\r\n\r\n"),
             std::string("GET /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWRtaW46YWRtaW4=\r\n\r\n"),
         }) {
        auto r = raw(req);
        INFO(req.substr(0, 80));
        CHECK((r.status == 0 || (r.status >= 400 && r.status < 500)));
    }
    // A huge header: 431, not read into memory.
    // (The server may close before it read everything we sent: the 431 can be lost to the reset.)
    const auto big = raw("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(200'000, 'b') + "\r\n\r\n").status;
    CHECK((big == 431 || big == 0));

    // Slow-loris: 60 clients that never finish their request head hold no worker.
    std::vector<int> slow;
    for (int i = 0; i < 60; ++i) {
        const int fd = connect_from("127.0.0.1", http_port(2));
        REQUIRE(fd >= 0);
        const std::string part = "GET /api/v1/info HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        ::send(fd, part.data(), part.size(), MSG_NOSIGNAL);
        slow.push_back(fd);
    }
    CHECK(get(2, "/api/v1/info").status == 200);
    CHECK(client(2, {"-a", "alice", "-p", "pw", "-d", "1"}).status == 0);
    for (int fd : slow) ::close(fd);

    // 1,000 requests at once: each is answered (200, or 503 past the connection cap) or closed;
    // none hangs, and tests and the API keep working.
    {
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2048 && rl.rlim_max >= 2048) {
            rl.rlim_cur = 2048;
            ::setrlimit(RLIMIT_NOFILE, &rl);
        }
        struct conn {
            int fd;
            std::string got;
            bool sent = false, done = false;
        };
        std::vector<conn> conns;
        sockaddr_in dst{};
        dst.sin_family = AF_INET;
        dst.sin_port = htons(http_port(2));
        ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
        for (int i = 0; i < 1000; ++i) {
            const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            REQUIRE(fd >= 0);
            ::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst);
            conns.push_back({fd, {}});
        }
        const std::string req = "GET /api/v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        const auto end = std::chrono::steady_clock::now() + 60s;
        std::size_t open = conns.size();
        while (open > 0 && std::chrono::steady_clock::now() < end) {
            std::vector<pollfd> fds;
            for (auto& c : conns)
                if (!c.done) fds.push_back({c.fd, static_cast<short>(c.sent ? POLLIN : POLLOUT), 0});
            ::poll(fds.data(), fds.size(), 200);
            std::size_t j = 0;
            for (auto& c : conns) {
                if (c.done) continue;
                const auto& p = fds[j++];
                if (!p.revents) continue;
                if (!c.sent && (p.revents & POLLOUT)) {
                    c.sent = ::send(c.fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size());
                    if (!c.sent) c.done = true, --open;
                    continue;
                }
                char buf[4096];
                const auto n = ::recv(c.fd, buf, sizeof buf, 0);
                if (n > 0) c.got.append(buf, static_cast<std::size_t>(n));
                else c.done = true, --open;
            }
        }
        CHECK(open == 0);
        std::size_t ok = 0, busy = 0, other = 0;
        for (auto& c : conns) {
            const auto r = parse_response(c.got);
            if (r.status == 200) ++ok;
            else if (r.status == 503) ++busy;
            else ++other;
            ::close(c.fd);
        }
        INFO(ok << " answered, " << busy << " busy, " << other << " closed without an answer");
        CHECK(ok > 0);
        CHECK(ok + busy + other == 1000);
    }
    CHECK(get(2, "/api/v1/info").status == 200);
    CHECK(client(2, {"-a", "alice", "-p", "pw", "-d", "1", "-t"}).status == 0);
    auto m = prom_parse::parse(get(2, "/metrics").body);
    CHECK(m.value("btest_http_refused_total", {{"reason", "too_large"}}) >= 1);
    CHECK(m.value("btest_sessions_total", {{"protocol", "tcp"}, {"direction", "receive"}, {"end_reason", "peer_closed"}}) == 1);
    CHECK(s.running());
    CHECK(s.stop() == 0);
}

TEST_CASE("pro: http: bad --http and --admin-token-file values are usage errors, a busy port is exit 2", "[pro][http]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("flags.db");
    auto serve = [&](std::vector<std::string> extra) {
        std::vector<std::string> args{"serve", "-P", std::to_string(tcp_port(3)), "--listen", "127.0.0.1", "--listen6", "none"};
        args.insert(args.end(), extra.begin(), extra.end());
        return pro(args, db);
    };
    const auto http = "127.0.0.1:" + std::to_string(http_port(3));
    for (const auto& bad : {"127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "::1:80", "127.0.0.1:x"}) {
        auto r = serve({"--http", bad});
        CHECK(r.status == 1);
        CHECK(has(r.err, "--http"));
    }
    std::ofstream(dir.file("short")) << "abc\n";
    std::ofstream(dir.file("spaces")) << "0123456789 abcdef0123\n";
    CHECK(serve({"--http", http, "--admin-token-file", dir.file("short")}).status == 1);
    CHECK(serve({"--http", http, "--admin-token-file", dir.file("spaces")}).status == 1);
    CHECK(serve({"--http", http, "--admin-token-file", dir.file("absent")}).status == 1);
    CHECK(serve({"--admin-token-file", write_token_file(dir)}).status == 1);  // needs --http

    // The HTTP port taken: exit 2, with the reason.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(http_port(3));
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd, 1) == 0);
    auto r = serve({"--http", http});
    ::close(fd);
    CHECK(r.status == 2);
    CHECK(has(r.err, "--http"));
}

TEST_CASE("pro: http: refusals and quota cut-offs are counted by cause", "[pro][http]") {
    temp_dir dir;
    const auto db = "sqlite:" + dir.file("refusals.db");
    REQUIRE(pro({"user", "add", "small", "-p", "pw", "--quota-daily", "3M"}, db).status == 0);
    server s(db, 5, "", {"--deny", "127.0.0.3", "--lease-slice", "1M"});

    // A denied address: closed before the greeting.
    const int fd = connect_from("127.0.0.3", tcp_port(5));
    REQUIRE(fd >= 0);
    CHECK(read_all(fd).empty());
    ::close(fd);

    // The quota: the first test is cut off when it is spent, the next one refused.
    client(5, {"-a", "small", "-p", "pw", "-d", "10", "-r"});
    client(5, {"-a", "small", "-p", "pw", "-d", "1", "-r"});

    const auto rows = json_lines(pro({"sessions", "--json"}, db).out);
    REQUIRE(rows.size() == 2);
    CHECK(rows[1]["ended_by"].str() == "quota_exhausted");
    CHECK(rows[0]["refused"].boolean());
    auto m = prom_parse::parse(get(5, "/metrics").body);
    REQUIRE(m.error.empty());
    CHECK(m.value("btest_refusals_total", {{"cause", "deny_list"}}) == 1);
    CHECK(m.value("btest_refusals_total", {{"cause", "quota"}}) == 1);
    CHECK(m.value("btest_quota_cutoffs_total") == 1);
    CHECK(m.value("btest_sessions_total", {{"protocol", "tcp"}, {"direction", "receive"}, {"end_reason", "quota_exhausted"}}) == 1);
    CHECK(m.value("btest_bytes_total", {{"direction", "out"}}) == rows[1]["tx_bytes"].number());
    CHECK(m.value("btest_sessions_active") == 0);
    CHECK(s.stop() == 0);
}
