// A btest client for every transport: resolves and connects, runs one client_session
// (PROTOCOL §5) in a basic_driver, opens the extra connections of a multi-connection TCP test
// (§7) and binds the UDP sockets at P+256+k (§8.2) when the session asks. The protocol itself
// is the kit's.
//
// Thread safety: everything runs on the reactor's thread; call start()/stop() from it (or
// before it runs).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <cerrno>
#include <sys/socket.h>

#include "btest/core/entropy.hpp"
#include "btest/session/client_session.hpp"
#include "btest/transport/cpu_sampler.hpp"
#include "btest/transport/driver.hpp"
#include "btest/transport/options.hpp"
#include "btest/transport/reactor.hpp"
#include "btest/transport/socket.hpp"

namespace btest::transport {

template <reactor R>
class basic_client {
public:
    /// `rng`: a CSPRNG (EC-SRP5). All references must outlive the client.
    basic_client(R& r, client_options opt, entropy& rng, client_observer& observer)
        : r_(r), opt_(std::move(opt)), rng_(rng), observer_(observer), connect_timer_(r_, [this] { connect_timed_out(); }),
          cpu_timer_(r_, [this] { tick_cpu(); }) {
        auto& burst = opt_.session.udp.burst_max;
        burst = std::max(burst, opt_.data_plane.min_udp_burst);
    }
    basic_client(const basic_client&) = delete;
    basic_client& operator=(const basic_client&) = delete;
    ~basic_client() {
        cancel_all();
        if (driver_) driver_->stop();
        driver_.reset();
    }

    /// Resolves the host and connects; the test runs from there.
    void start() {
        std::string host = opt_.host;
        if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        std::error_code ec;
        auto all = resolve(host, opt_.port, ec);
        if (ec) return fail_connect(ec, "cannot resolve " + host);
        for (const auto& a : all) {
            if (opt_.family == family_preference::v4 && a.is_v6()) continue;
            if (opt_.family == family_preference::v6 && !a.is_v6()) continue;
            if (opt_.local_address && (opt_.local_address->family == ip_family::v6) != a.is_v6()) continue;
            candidates_.push_back(a);
        }
        if (candidates_.empty())
            return fail_connect(std::make_error_code(std::errc::address_family_not_supported),
                                "no " + std::string(opt_.family == family_preference::v6 ? "IPv6" : "IPv4") +
                                    " address for " + host);
        connect_timer_.arm(clock::now() + opt_.connect_timeout);
        try_next();
    }

    /// Ends the test now (Ctrl-C / SIGTERM): the session reports `stopped` and its summary.
    void stop() {
        if (finished_) return;
        if (driver_) {
            driver_->stop();
            return;
        }
        // Still connecting: give up.
        cancel_all();
        finish(nullptr, std::make_error_code(std::errc::operation_canceled), "stopped while connecting");
    }

    bool finished() const noexcept { return finished_; }
    /// What the data plane did so far (system calls, timer wake-ups, GSO/GRO use).
    io_counters counters() const noexcept { return counters_.snapshot(); }
    /// The session (after on_connected), for its summary(); nullptr before.
    const client_session* session() const noexcept { return session_.get(); }
    /// Bytes read on the control connection (0: the server closed without a word).
    std::uint64_t control_bytes_received() const noexcept { return driver_ ? driver_->received(0) : 0; }
    /// The server's address once connected (else the first resolved candidate).
    endpoint server_endpoint() const {
        if (driver_) return to_kit(server_);
        return candidates_.empty() ? endpoint{} : to_kit(candidates_.front());
    }

private:
    /// A non-blocking connect in progress: done when the socket becomes writable.
    struct connect_attempt {
        connect_attempt(R& reactor, const socket_address& to, const std::optional<ip_address>& from) : r(reactor) {
            fd = open_socket(to, SOCK_STREAM);
            if (!fd) {
                early = last_error();
                return;
            }
            if (from) {
                const auto at = socket_address::from(endpoint{*from, 0});
                if (::bind(fd.get(), at.data(), at.length) != 0) {
                    early = last_error();
                    return;
                }
            }
            // A refusal may be reported at once; it is delivered with the writability event
            // like any other outcome (the socket reads as writable once the attempt is over).
            if (::connect(fd.get(), to.data(), to.length) != 0 && errno != EINPROGRESS) early = last_error();
        }
        connect_attempt(const connect_attempt&) = delete;
        connect_attempt& operator=(const connect_attempt&) = delete;
        ~connect_attempt() {
            if (watching) r.unwatch(watch);
        }
        void watch_for(std::function<void()> done) {
            watch = r.watch_fd(fd.get(), [d = std::move(done)](std::uint8_t) { d(); });
            watching = true;
            r.want(watch, false, true);
        }
        std::error_code result() const { return early ? early : socket_error(fd.get()); }
        /// The connected descriptor, no longer watched here.
        unique_fd take() {
            if (watching) r.unwatch(watch);
            watching = false;
            return std::move(fd);
        }

        R& r;
        unique_fd fd;
        typename R::watch watch;
        bool watching = false;
        std::error_code early;
    };

    class session_driver final : public basic_driver<R> {
    public:
        explicit session_driver(basic_client& c) : basic_driver<R>(c.r_, c.opt_.data_plane, c.counters_), c_(c) {}

    protected:
        btest::session& sess() override { return *c_.session_; }
        void on_event(const event& ev) override {
            if (auto* o = std::get_if<open_connections>(&ev)) {
                for (std::uint32_t i = 0; i < o->count; ++i) c_.open_extra();
                return;
            }
            c_.observer_.on_event(*c_.session_, ev);
        }
        void on_request(const request& rq) override {
            if (auto* b = std::get_if<udp_bind_request>(&rq)) c_.session_->udp_bound(clock::now(), bind(*b));
        }
        bool keep_connection(std::uint32_t conn) override { return c_.session_->connection_open(conn); }
        socket_address udp_destination(const datagram& d) const override { return c_.server_.with_port(d.port); }
        void on_done() override { c_.on_session_done(); }

    private:
        /// The sockets P+256+k on the control connection's local address (the server filters
        /// by our IP); they close with the driver when the test is over.
        bool bind(const udp_bind_request& b) {
            std::vector<udp_socket> socks;
            for (std::uint32_t k = 0; k < b.count; ++k) {
                auto s = open_udp(c_.local_.with_port(static_cast<std::uint16_t>(b.first + k)),
                                  c_.opt_.data_plane.udp_socket_buffer, c_.opt_.data_plane.udp_gso, c_.opt_.data_plane.udp_gro);
                if (!s.fd) return false;
                socks.push_back(std::move(s));
            }
            for (auto& s : socks) this->add_udp(std::move(s));
            return true;
        }

        basic_client& c_;
    };

    std::string endpoint_text() const { return to_string(endpoint{to_kit(candidates_.front()).address, opt_.port}); }

    /// Connects to the next candidate address; the last failure is reported when none is left.
    void try_next() {
        if (next_ >= candidates_.size())
            return fail_connect(last_error_ ? last_error_ : std::make_error_code(std::errc::host_unreachable),
                                "cannot connect to " + endpoint_text());
        const auto& to = candidates_[next_++];
        control_ = std::make_unique<connect_attempt>(r_, to, opt_.local_address);
        if (!control_->fd) {  // no socket at all (out of descriptors)
            last_error_ = control_->early;
            control_.reset();
            return try_next();
        }
        // An attempt that failed at once reports through its watch too (the socket reads as
        // writable, with the error pending), so the outcome always comes from the reactor.
        control_->watch_for([this] { on_control_ready(); });
    }

    void on_control_ready() {
        const auto ec = control_->result();
        if (ec) {
            last_error_ = ec;
            control_.reset();
            return try_next();
        }
        connect_timer_.cancel();
        auto fd = control_->take();
        control_.reset();
        on_connected(candidates_[next_ - 1], std::move(fd));
    }

    void connect_timed_out() {
        if (driver_ || finished_) return;
        fail_connect(std::make_error_code(std::errc::timed_out), "cannot connect to " + endpoint_text());
    }

    void on_connected(const socket_address& to, unique_fd fd) {
        server_ = to;
        local_ = local_address(fd.get()).value_or(socket_address{});
        set_nodelay(fd.get());
        observer_.on_connected(to_kit(server_));
        services_ = std::make_unique<client_services>(client_services{rng_});
        session_ = std::make_unique<client_session>(opt_.session, *services_, to_kit(server_), clock::now());
        driver_ = std::make_shared<session_driver>(*this);
        if (opt_.trace_control)
            driver_->set_trace([this](std::uint32_t conn, bool sent, std::span<const std::byte> b) {
                observer_.on_control(conn, sent, b);
            });
        driver_->attach(0, std::make_unique<detail::tcp_link<R>>(r_, std::move(fd), driver_.get()));
        if (opt_.sample_cpu) tick_cpu();
        driver_->pump();
    }

    /// Multi-connection TCP: one more connection to the same server address and port.
    void open_extra() {
        auto a = std::make_unique<connect_attempt>(r_, server_, opt_.local_address);
        if (!a->fd) {
            // No socket (out of descriptors): a failed join, reported now (we are draining
            // events, not inside a call of the session).
            session_->connection_failed(clock::now());
            return;
        }
        connect_attempt* raw = a.get();
        a->watch_for([this, raw] { on_extra_ready(raw); });
        extras_.push_back(std::move(a));
    }

    void on_extra_ready(connect_attempt* raw) {
        auto it = std::find_if(extras_.begin(), extras_.end(), [&](const auto& p) { return p.get() == raw; });
        if (it == extras_.end()) return;
        auto a = std::move(*it);
        extras_.erase(it);
        auto d = driver_;
        if (!d || d->done()) return;  // `a` closes its socket
        const auto now = clock::now();
        if (a->result()) {
            session_->connection_failed(now);
        } else {
            auto fd = a->take();
            set_nodelay(fd.get());
            const auto idx = session_->add_connection(now);
            d->attach(idx, std::make_unique<detail::tcp_link<R>>(r_, std::move(fd), d.get()));
        }
        d->pump();
    }

    void tick_cpu() {
        if (finished_) return;
        if (auto load = cpu_.sample(); load && session_) session_->set_local_cpu(*load);
        cpu_timer_.arm(clock::now() + std::chrono::seconds(1));
    }

    void cancel_all() {
        connect_timer_.cancel();
        cpu_timer_.cancel();
        control_.reset();
        extras_.clear();
    }

    void fail_connect(const std::error_code& ec, const std::string& what) {
        cancel_all();
        finish(nullptr, ec, what);
    }

    void on_session_done() {
        cancel_all();
        finish(session_.get(), {}, {});
    }

    void finish(const client_session* s, const std::error_code& ec, const std::string& what) {
        if (finished_) return;
        finished_ = true;
        observer_.on_finished(s, ec, what);
    }

    R& r_;
    detail::shared_counters counters_;  // before the driver, which points at it
    client_options opt_;
    entropy& rng_;
    client_observer& observer_;
    std::vector<socket_address> candidates_;
    std::size_t next_ = 0;
    std::error_code last_error_;
    std::unique_ptr<connect_attempt> control_;
    std::vector<std::unique_ptr<connect_attempt>> extras_;
    typename R::timer connect_timer_;
    socket_address server_;
    socket_address local_;
    std::unique_ptr<client_services> services_;
    std::unique_ptr<client_session> session_;
    std::shared_ptr<session_driver> driver_;
    cpu_sampler cpu_;
    typename R::timer cpu_timer_;
    bool finished_ = false;
};

} // namespace btest::transport
