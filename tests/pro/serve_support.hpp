// Support for the tests that run `btest-server-pro serve` as a process (serve_test.cpp,
// fleet_test.cpp): the server on a port slot, the real btest client with --json, the
// management subcommands, and what they print.
//
// Ports: slot k listens on TCP 13000 + k and hands out UDP ports from 10000 + 300·k (server P …
// and client P+256 …), below every other suite's ranges (tests/transport/loopback.hpp).
// serve_test.cpp uses k = 0..7, fleet_test.cpp k = 8..12.
#pragma once

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include "pro_support.hpp"
#include "process.hpp"
#include "test/json.hpp"

namespace pro_test {

using namespace std::chrono_literals;


inline std::uint16_t tcp_port(unsigned k) { return static_cast<std::uint16_t>(13000 + k); }
inline std::uint16_t udp_base(unsigned k) { return static_cast<std::uint16_t>(10000 + 300 * k); }

inline bool has(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

inline std::vector<test::json::value> json_lines(const std::string& out) {
    std::vector<test::json::value> v;
    std::size_t start = 0;
    while (start < out.size()) {
        const auto nl = out.find('\n', start);
        const auto line = out.substr(start, nl - start);
        if (!line.empty()) v.push_back(test::json::parse(line));
        if (nl == std::string::npos) break;
        start = nl + 1;
    }
    return v;
}

struct run_result {
    int status;
    std::string out, err;
};

/// A management subcommand on `db`.
inline run_result manage(std::vector<std::string> args, const std::string& db, const process::options& opts = {}) {
    args.push_back("--db");
    args.push_back(db);
    process p(BTEST_PRO_CLI, args, opts);
    const int st = p.wait(30s);
    return {st, p.out(), p.err()};
}

/// The server: started on slot k with `extra` flags, ready when it has printed its database
/// line (after it listens). Stopped with SIGTERM (exit 0 asserted) unless killed.
class server {
public:
    server(const std::string& db, unsigned k, std::vector<std::string> extra) {
        std::vector<std::string> args{"serve", "--db", db, "-P", std::to_string(tcp_port(k)), "--listen", "127.0.0.1",
                                      "--listen6", "none", "--udp-port-start", std::to_string(udp_base(k)),
                                      "--udp-port-end", std::to_string(udp_base(k) + 255), "--threads", "2"};
        args.insert(args.end(), extra.begin(), extra.end());
        p_ = std::make_unique<process>(BTEST_PRO_CLI, args);
        const auto end = std::chrono::steady_clock::now() + 15s;
        while (!has(p_->out(), "btest-server-pro: database")) {
            if (p_->wait(0ms) >= 0 || std::chrono::steady_clock::now() >= end) {
                FAIL("the server did not start: " << p_->err() << p_->out());
            }
            std::this_thread::sleep_for(10ms);
        }
    }
    ~server() {
        if (!stopped_) {
            p_->kill(SIGTERM);
            p_->wait(10s);
        }
    }
    /// SIGTERM; the exit status.
    int stop() {
        stopped_ = true;
        p_->kill(SIGTERM);
        return p_->wait(10s);
    }
    void kill9() {
        stopped_ = true;
        p_->kill(SIGKILL);
        p_->wait(10s);
    }
    std::string log() const { return p_->out() + p_->err(); }
    bool alive() { return !stopped_ && p_->wait(0ms) < 0; }

private:
    std::unique_ptr<process> p_;
    bool stopped_ = false;
};

struct client_result {
    int status = -1;
    std::string err;
    std::optional<test::json::value> summary, error;
};

/// The btest client against slot k, with --json; `args` as a user types them.
inline client_result client(unsigned k, std::vector<std::string> args) {
    std::vector<std::string> all{"-c", "127.0.0.1", "-P", std::to_string(tcp_port(k)), "--json"};
    all.insert(all.end(), args.begin(), args.end());
    process p(BTEST_CLI, all);
    client_result r;
    r.status = p.wait(60s);
    r.err = p.err();
    for (auto& line : json_lines(p.out())) {
        if (line["type"].str() == "summary") r.summary = line;
        if (line["type"].str() == "error") r.error = line;
    }
    return r;
}

inline std::string error_code(const client_result& r) { return r.error ? r.error->operator[]("error_code").str() : ""; }

/// The history rows (sessions --json, with `filter` flags), newest first. The server writes a
/// test's row after the test ended, so a client that just returned may not see it closed yet:
/// `settled` waits (up to 10 s) until no row is still running.
inline std::vector<test::json::value> sessions(const std::string& db, std::vector<std::string> filter = {},
                                               bool settled = true) {
    std::vector<std::string> args{"sessions", "--json"};
    args.insert(args.end(), filter.begin(), filter.end());
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    for (;;) {
        auto r = manage(args, db);
        REQUIRE(r.status == 0);
        auto rows = json_lines(r.out);
        bool running = false;
        for (auto& row : rows) running = running || row["end"].is_null();
        if (!settled || !running || std::chrono::steady_clock::now() >= deadline) return rows;
        std::this_thread::sleep_for(50ms);
    }
}

/// used_bytes of one (window, direction) line of `quota show`.
inline double used(const std::string& db, const std::vector<std::string>& who, const std::string& win, const std::string& dir) {
    std::vector<std::string> args{"quota", "show", "--json"};
    args.insert(args.end(), who.begin(), who.end());
    auto r = manage(args, db);
    REQUIRE(r.status == 0);
    for (auto& l : json_lines(r.out))
        if (l["window"].str() == win && l["direction"].str() == dir) return l["used_bytes"].number();
    FAIL("no line " << win << " " << dir);
    return -1;
}

/// Connects from `source` (a 127.0.0.0/8 address) to slot k and returns what the server sent
/// before closing or within 2 s: a HELLO for an allowed address, nothing for a denied one.
inline std::string first_bytes_from(const char* source, unsigned k) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, source, &src.sin_addr);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) == 0);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(tcp_port(k));
    ::inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) == 0);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got;
    char buf[64];
    for (;;) {
        const auto n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
        if (got.size() >= 4) break;
    }
    ::close(fd);
    return got;
}

inline constexpr double MB = 1e6;


} // namespace pro_test
