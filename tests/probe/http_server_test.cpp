// The shared HTTP server (apps/common/http_server.hpp) over loopback, with raw sockets playing
// the hostile clients: oversized heads and bodies, chunked bodies, slow-loris clients, a client
// that never reads, more connections than allowed — and a legitimate request served meanwhile.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/http_server.hpp"

using namespace std::chrono_literals;
namespace http = btest_app::http;

namespace {

/// A raw TCP client on 127.0.0.1.
class raw_client {
public:
    explicit raw_client(std::uint16_t port, int rcvbuf = 0) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (rcvbuf) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~raw_client() { close(); }
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    bool connected() const { return connected_; }
    bool send(const std::string& s) { return ::send(fd_, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size()); }
    /// Everything until the server closes, or what came within `limit`.
    std::string read_all(std::chrono::milliseconds limit = 5000ms) {
        std::string out;
        const auto end = std::chrono::steady_clock::now() + limit;
        char buf[65536];
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
            const auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                closed_by_peer_ = true;
                break;
            }
            out.append(buf, static_cast<std::size_t>(n));
        }
        return out;
    }
    bool closed_by_peer() const { return closed_by_peer_; }
    void shutdown_write() { ::shutdown(fd_, SHUT_WR); }
    void close() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
    bool connected_ = false;
    bool closed_by_peer_ = false;
};

std::string get(const std::string& path) { return "GET " + path + " HTTP/1.1\r\nHost: test\r\n\r\n"; }

std::string status_of(const std::string& response) {
    const auto sp = response.find(' ');
    return sp == std::string::npos ? "" : response.substr(sp + 1, 3);
}

struct fixture {
    explicit fixture(http::server_options o) : srv(std::move(o)) {
        srv.get("/hello", [](const httplib::Request& req, httplib::Response& res) {
            res.set_content("hello " + req.get_param_value("name"), "text/plain");
        });
        srv.get("/big", [](const httplib::Request&, httplib::Response& res) {
            res.set_content(std::string(32u << 20, 'x'), "text/plain");
        });
        srv.get("/throw", [](const httplib::Request&, httplib::Response&) { throw std::runtime_error("secret detail"); });
        std::string err;
        REQUIRE(srv.start(err));
        port = srv.port();
        REQUIRE(port != 0);
    }
    /// A legitimate request, answered in full.
    std::string hello() {
        raw_client c(port);
        REQUIRE(c.connected());
        REQUIRE(c.send(get("/hello?name=ok")));
        return c.read_all();
    }
    http::server srv;
    std::uint16_t port = 0;
};

http::server_options small_options() {
    http::server_options o;
    o.threads = 1;   // one worker: any client that could hold it would block the next request
    o.max_connections = 8;
    o.request_timeout = 600ms;
    o.write_timeout = 500ms;
    o.max_header_bytes = 1024;
    return o;
}

} // namespace

TEST_CASE("probe: http server: a request is answered and the connection closed") {
    fixture f(small_options());
    const auto r = f.hello();
    INFO(r);
    CHECK(status_of(r) == "200");
    CHECK(r.find("Connection: close") != std::string::npos);
    CHECK(r.find("X-Content-Type-Options: nosniff") != std::string::npos);
    CHECK(r.substr(r.size() - 8) == "hello ok");
    raw_client nf(f.port);
    REQUIRE(nf.send(get("/nothing-here")));
    CHECK(status_of(nf.read_all()) == "404");
    CHECK(f.srv.counters().served == 2);
}

TEST_CASE("probe: http server: a head over the cap gets 431, a body over the cap 413, a chunked body 400") {
    fixture f(small_options());
    {
        raw_client c(f.port);
        REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(2000, 'a') + "\r\n\r\n"));
        CHECK(status_of(c.read_all()) == "431");
    }
    {
        raw_client c(f.port);   // many small header lines add up too
        std::string head = "GET /hello HTTP/1.1\r\n";
        for (int i = 0; i < 200; ++i) head += "X-" + std::to_string(i) + ": v\r\n";
        REQUIRE(c.send(head));
        CHECK(status_of(c.read_all()) == "431");
    }
    {
        raw_client c(f.port);
        REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123456789"));
        CHECK(status_of(c.read_all()) == "413");
    }
    {
        raw_client c(f.port);
        REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
        CHECK(status_of(c.read_all()) == "400");
    }
    {
        raw_client c(f.port);
        REQUIRE(c.send("GET /hello HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"));
        CHECK(status_of(c.read_all()) == "400");
    }
    const auto k = f.srv.counters();
    CHECK(k.too_large == 3);
    CHECK(k.bad_request == 2);
    CHECK(k.served == 0);
    CHECK(status_of(f.hello()) == "200");
}

TEST_CASE("probe: http server: slow-loris clients get 408 and never hold the worker") {
    fixture f(small_options());
    std::vector<std::unique_ptr<raw_client>> slow;
    for (int i = 0; i < 4; ++i) {
        slow.push_back(std::make_unique<raw_client>(f.port));
        REQUIRE(slow.back()->send("GET /hello HTTP/1.1\r\nHost: t\r\n"));   // never finished
    }
    // The only worker is free: a complete request is answered while they dribble.
    CHECK(status_of(f.hello()) == "200");
    for (auto& s : slow) s->send("X-More: 1\r\n");   // may already have been answered
    CHECK(status_of(f.hello()) == "200");
    for (auto& s : slow) {
        const auto r = s->read_all(5000ms);
        INFO(r);
        CHECK(status_of(r) == "408");
        CHECK(s->closed_by_peer());
    }
    CHECK(f.srv.counters().timed_out == 4);
    // A client that connects and says nothing is closed the same way.
    raw_client silent(f.port);
    CHECK(status_of(silent.read_all(5000ms)) == "408");
}

TEST_CASE("probe: http server: beyond max_connections a connection gets 503 at once, then service resumes") {
    auto o = small_options();
    o.max_connections = 3;
    o.request_timeout = 3000ms;
    fixture f(o);
    std::vector<std::unique_ptr<raw_client>> idle;
    for (int i = 0; i < 3; ++i) {
        idle.push_back(std::make_unique<raw_client>(f.port));
        REQUIRE(idle.back()->connected());
    }
    // Until the server has accepted all three, a fourth may still find room: wait for them.
    for (int i = 0; i < 100 && f.srv.counters().accepted < 3; ++i) std::this_thread::sleep_for(10ms);
    REQUIRE(f.srv.counters().accepted == 3);
    raw_client extra(f.port);
    REQUIRE(extra.send(get("/hello")));
    const auto r = extra.read_all();
    INFO(r);
    CHECK(status_of(r) == "503");
    CHECK(f.srv.counters().refused_busy == 1);
    idle.clear();   // the clients go away: their slots free up
    std::string ok;
    for (int i = 0; i < 100 && status_of(ok) != "200"; ++i) {
        ok = f.hello();
        if (status_of(ok) != "200") std::this_thread::sleep_for(20ms);
    }
    CHECK(status_of(ok) == "200");
}

TEST_CASE("probe: http server: a client that does not read its answer loses it, and the worker is freed") {
    fixture f(small_options());
    raw_client lazy(f.port, 4096);
    REQUIRE(lazy.send(get("/big")));   // 32 MiB that it will not read
    std::this_thread::sleep_for(100ms);
    // The single worker gives up on it within write_timeout and answers the next client.
    const auto r = f.hello();
    INFO(r.substr(0, 200));
    CHECK(status_of(r) == "200");
}

TEST_CASE("probe: http server: a handler that throws answers 500 without its message") {
    fixture f(small_options());
    raw_client c(f.port);
    REQUIRE(c.send(get("/throw")));
    const auto r = c.read_all();
    INFO(r);
    CHECK(status_of(r) == "500");
    CHECK(r.find("secret detail") == std::string::npos);
    CHECK(status_of(f.hello()) == "200");
}

TEST_CASE("probe: http server: stop() returns with clients still connected, and the port is free again") {
    auto o = small_options();
    o.request_timeout = 10000ms;
    std::uint16_t port = 0;
    {
        fixture f(o);
        port = f.port;
        raw_client waiting(f.port);
        REQUIRE(waiting.send("GET /hello HTTP/1.1\r\n"));
        std::this_thread::sleep_for(50ms);
        const auto t0 = std::chrono::steady_clock::now();
        f.srv.stop();
        CHECK(std::chrono::steady_clock::now() - t0 < 5s);
        waiting.read_all(2000ms);
        CHECK(waiting.closed_by_peer());
    }
    auto o2 = small_options();
    o2.port = port;
    http::server again(o2);
    std::string err;
    CHECK(again.start(err));
    INFO(err);
}

TEST_CASE("probe: http server: a client that stops sending mid-request is dropped without an answer") {
    fixture f(small_options());
    raw_client c(f.port);
    REQUIRE(c.send("GET /hello HTTP/1.1\r\nHost: t\r\n"));
    raw_client half(f.port);
    REQUIRE(half.send("GET /hello HTTP/1.1\r\nHost: t\r\n"));
    half.shutdown_write();
    const auto r = half.read_all(5000ms);
    CHECK(r.empty());
    CHECK(half.closed_by_peer());
    // It was not left to time out (that one is still waiting, or got its 408).
    c.read_all(5000ms);
    CHECK(f.srv.counters().timed_out == 1);
    CHECK(status_of(f.hello()) == "200");
}
