// Rig for the data-plane tests: a btest::asio::server on an io thread of its own (plus the
// server's own threads when server_options::threads > 1) and Asio clients on the test's
// thread, over loopback. Every run is bounded in time.
//
// Ports: TCP 15100 + slot, UDP from 40000 + 400·slot (server P …, client P+256 …).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/auth/credentials.hpp"
#include "btest/core/entropy.hpp"
#include "btest/transport/asio/client.hpp"
#include "btest/transport/asio/server.hpp"
#include "loopback.hpp"

namespace perf {

namespace net = boost::asio;
using namespace std::chrono_literals;

inline std::uint16_t tcp_port(unsigned slot) { return static_cast<std::uint16_t>(15100 + slot); }
inline std::uint16_t udp_base(unsigned slot) { return static_cast<std::uint16_t>(40000 + 400 * slot); }

/// Does this kernel have UDP GSO (UDP_SEGMENT) / accept UDP_GRO?
inline bool kernel_has_udp_gso() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    int v = 0;
    socklen_t len = sizeof v;
    const bool ok = fd >= 0 && ::getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
}
inline bool kernel_has_udp_gro() {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    const int one = 1;
    const bool ok = fd >= 0 && ::setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
    if (fd >= 0) ::close(fd);
    return ok;
}

/// What the server told its app; filled on the server's threads, read under the mutex.
struct server_log final : btest::asio::server_observer {
    struct test {
        btest::test_summary summary;
        std::optional<btest::test_started> started;
        bool closed = false;
    };
    mutable std::mutex m;
    std::map<std::uint64_t, test> tests;
    std::size_t refused = 0;

    void on_refused(const btest::endpoint&, btest::refusal) override {
        std::lock_guard<std::mutex> lk(m);
        ++refused;
    }
    void on_event(const btest::asio::server_test_view& t, const btest::event& ev) override {
        std::lock_guard<std::mutex> lk(m);
        auto& e = tests[t.id];
        if (auto* s = std::get_if<btest::test_started>(&ev)) e.started = *s;
        if (std::get_if<btest::session_closed>(&ev)) {
            e.summary = t.session.summary();
            e.closed = true;
        }
    }
    std::vector<test> finished() const {
        std::lock_guard<std::mutex> lk(m);
        std::vector<test> v;
        for (const auto& [id, t] : tests)
            if (t.started && t.closed) v.push_back(t);
        return v;
    }
    std::size_t started_count() const {
        std::lock_guard<std::mutex> lk(m);
        std::size_t n = 0;
        for (const auto& [id, t] : tests) n += t.started ? 1 : 0;
        return n;
    }
};

struct client_log final : btest::asio::client_observer {
    bool done = false;
    std::error_code connect_error;
    std::optional<btest::test_summary> summary;
    void on_finished(const btest::client_session* s, const std::error_code& ec, const std::string&) override {
        done = true;
        connect_error = ec;
        if (s) summary = s->summary();
    }
};

inline btest::asio::server_options server_opts(unsigned slot) {
    btest::asio::server_options so;
    so.port = tcp_port(slot);
    so.listen_v4 = btest::asio::parse_address("127.0.0.1");
    so.listen_v6.reset();
    so.udp_ports.base = udp_base(slot);
    so.udp_ports.last = static_cast<std::uint16_t>(udp_base(slot) + 200);
    so.data_plane.udp_socket_buffer = 16u << 20;  // no drops while the receiving thread is descheduled
    so.sample_cpu = false;
    return so;
}

inline btest::asio::client_options client_opts(unsigned slot, btest::protocol p, btest::direction d,
                                               std::uint64_t rate, std::chrono::milliseconds length) {
    btest::asio::client_options co;
    co.host = "127.0.0.1";
    co.port = tcp_port(slot);
    co.sample_cpu = false;
    co.data_plane.udp_socket_buffer = 16u << 20;
    co.session.proto = p;
    co.session.dir = d;
    co.session.local_tx_speed = rate;
    co.session.remote_tx_speed = rate;
    co.session.test_duration = length;
    return co;
}

class rig {
public:
    explicit rig(btest::asio::server_options so) : rng_(0x5eed), creds_(rng_) {
        server_ = std::make_unique<btest::asio::server>(server_ioc_, std::move(so), rng_, &creds_, log_);
    }
    ~rig() { stop_server(); }

    std::error_code start() {
        auto ec = server_->start();
        if (!ec) server_thread_ = std::thread([this] { server_ioc_.run(); });
        return ec;
    }
    /// What the server holds once stopped: nothing, if every session released what it took.
    struct leftovers {
        std::size_t live_sessions = 0;
        std::size_t udp_blocks = 0;
        std::size_t pending_joins = 0;
    };
    /// Stops the server (on its thread), waits for all its threads and reports what it holds.
    leftovers stop_server() {
        leftovers l;
        if (!server_) return l;
        if (server_thread_.joinable()) {
            net::post(server_ioc_, [this] { server_->stop(); });
            server_thread_.join();
        }
        server_->join();
        l = {server_->live_sessions(), server_->udp_blocks_in_use(), server_->pending_joins()};
        server_.reset();
        return l;
    }
    btest::asio::server& server() { return *server_; }
    server_log& log() { return log_; }

    client_log& add_client(btest::asio::client_options co) {
        auto e = std::make_unique<entry>();
        e->rng = std::make_unique<btest::seeded_entropy>(0xc0ffee + clients_.size());
        e->client = std::make_unique<btest::asio::client>(ioc_, std::move(co), *e->rng, e->log);
        e->client->start();
        clients_.push_back(std::move(e));
        return clients_.back()->log;
    }
    btest::asio::client& client(std::size_t i) { return *clients_.at(i)->client; }

    /// Runs the clients until `done()` holds (checked every 20 ms, when `tick` also runs) or
    /// `limit` passes; returns done().
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit,
                   const std::function<void()>& tick = {}) {
        return loopback::asio_transport::run_until(ioc_, [&] {
            if (tick) tick();
            return done();
        }, limit);
    }
    bool clients_done() const {
        for (const auto& e : clients_)
            if (!e->log.done) return false;
        return true;
    }

private:
    struct entry {
        std::unique_ptr<btest::seeded_entropy> rng;
        client_log log;
        std::unique_ptr<btest::asio::client> client;
    };
    net::io_context ioc_{1};
    net::io_context server_ioc_{1};
    btest::seeded_entropy rng_;
    btest::auth::memory_credentials creds_;
    server_log log_;
    std::unique_ptr<btest::asio::server> server_;
    std::thread server_thread_;
    std::vector<std::unique_ptr<entry>> clients_;
};

} // namespace perf
