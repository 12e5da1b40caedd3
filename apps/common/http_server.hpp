// A small HTTP/1.1 server for the apps' operator endpoints (/metrics, /probe, a dashboard),
// hardened for a port that hostile clients can reach. cpp-httplib parses requests, routes
// them and writes the answers; accepting, waiting and threads are ours:
//
//   - it runs on threads of its own (one accept thread, one request-head reader, N workers)
//     and never on an Asio io thread, so nothing here can stall a data plane;
//   - a request must arrive whole (head and body) within `request_timeout`; until it has, the
//     connection waits in one epoll thread that peeks at the socket, not in a worker, so
//     slow-loris clients cost a descriptor each, never a thread;
//   - the head is capped at `max_header_bytes` (431), the body at `max_body_bytes` (413),
//     chunked request bodies are refused (400);
//   - at most `max_connections` are open at once (waiting, queued or being served); one more is
//     answered 503 and closed at once;
//   - one request per connection (Connection: close), so every request passes these checks;
//   - a response must be written within `write_timeout` of its first byte, or the connection
//     ends (a client that does not read cannot hold a worker).
//
// Handlers run on the workers and may block (a probe runs a whole bandwidth test in one); size
// `threads` for the longest handler you expect at once plus one for quick requests.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <httplib.h>

namespace btest_app::http {

struct server_options {
    std::string host = "127.0.0.1";    ///< address to bind ("::" for every IPv6 and IPv4 address)
    std::uint16_t port = 0;            ///< 0: any free port (see server::port())
    std::size_t threads = 4;           ///< workers running handlers
    std::size_t max_connections = 64;  ///< open at once; beyond: 503 and close
    std::chrono::milliseconds request_timeout{10'000};  ///< whole request (head + body)
    std::chrono::milliseconds write_timeout{5'000};     ///< a response write without progress
    std::size_t max_header_bytes = 8192;   ///< request line + headers + blank line
    std::size_t max_body_bytes = 0;        ///< 0: requests with a body are refused (413)
};

/// What the server refused or served, for an app's /metrics.
struct server_counters {
    std::uint64_t accepted = 0;        ///< connections accepted
    std::uint64_t served = 0;          ///< requests handed to httplib (any status)
    std::uint64_t refused_busy = 0;    ///< 503: max_connections reached
    std::uint64_t timed_out = 0;       ///< 408: request not complete within request_timeout
    std::uint64_t too_large = 0;       ///< 431/413: head or body over its cap
    std::uint64_t bad_request = 0;     ///< 400: chunked or malformed framing
};

/// In a handler: when the connection of the request being served was accepted. A handler
/// that must answer within a deadline the client counts (a scrape timeout) counts from here,
/// since the request may have waited for a worker.
std::chrono::steady_clock::time_point request_arrival() noexcept;

class server {
public:
    using handler = httplib::Server::Handler;

    explicit server(server_options opt);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// Registers a GET handler (before start()). `pattern` is an httplib regex ("/metrics").
    void get(const std::string& pattern, handler h);

    /// Binds and starts the threads. False (with `error` set) if the address cannot be bound.
    bool start(std::string& error);
    /// The bound port (after a successful start()).
    std::uint16_t port() const noexcept { return port_; }
    /// Stops accepting, closes waiting connections, lets running handlers finish, joins.
    void stop();

    server_counters counters() const noexcept;

private:
    class gate;
    class engine;
    void accept_loop();

    server_options opt_;
    std::unique_ptr<engine> http_;
    std::unique_ptr<gate> gate_;
    std::thread listener_;
    int listen_fd_ = -1;
    int stop_fd_ = -1;
    std::uint16_t port_ = 0;
    bool started_ = false;
};

/// An --http / --listen value: "127.0.0.1:9469", "[::1]:9469", ":9469" (every address) →
/// host (brackets removed; "::" for every address), port. False: not that shape, a port
/// above 65535, or 0 unless `allow_port_0` (the kernel picks one).
bool split_listen(const std::string& s, std::string& host, std::uint16_t& port, bool allow_port_0 = false);

} // namespace btest_app::http
