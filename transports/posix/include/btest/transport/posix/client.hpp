// A btest client over plain POSIX sockets on an epoll event_loop: resolves and connects, runs
// one client_session (PROTOCOL §5), opens the extra connections of a multi-connection TCP test
// (§7) and binds the UDP sockets at P+256+k (§8.2) when the session asks. The protocol itself is
// the kit's.
//
// Thread safety: everything runs on the loop's thread; call start()/stop() from it (or before
// the loop runs).
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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "btest/core/entropy.hpp"
#include "btest/session/client_session.hpp"
#include "btest/transport/posix/address.hpp"
#include "btest/transport/posix/cpu_sampler.hpp"
#include "btest/transport/posix/detail/driver.hpp"
#include "btest/transport/posix/detail/socket.hpp"
#include "btest/transport/posix/event_loop.hpp"

namespace btest::posix {

struct client_options {
    std::string host;                  ///< name or address ("::1", "[::1]" and "router.lan" all work)
    std::uint16_t port = 2000;
    family_preference family = family_preference::any;
    client_config session{};
    std::chrono::milliseconds connect_timeout{10'000};
    std::size_t udp_socket_buffer = 4u << 20;
    /// UDP test sockets: consecutive equal datagrams to one destination leave as one UDP GSO
    /// message, and reception is coalesced (GRO) and split back, where the kernel has them.
    bool udp_gso = true;
    bool udp_gro = true;
    /// A session's timer is never armed closer than this to now: a paced sender wakes once per
    /// batch and sends everything that fell due since. 0: wake at every deadline.
    std::chrono::microseconds timer_granularity{500};
    /// The session's udp.burst_max (BURST_MAX of PROTOCOL §11) is raised to at least this, so
    /// that a wake-up delayed by the granularity (or a busy machine) still sends its backlog
    /// instead of losing it to the drift clamp. 0: the session's value as is.
    std::uint32_t min_udp_burst = 2048;
    bool trace_control = false;        ///< report control traffic to the observer (-vv)
    bool sample_cpu = true;            ///< /proc/stat once per second into the STATUS cpu byte
};

/// What the client tells its app. Called on the loop's thread, never from inside the kit.
class client_observer {
public:
    virtual ~client_observer() = default;
    /// The control connection is up; the session starts.
    virtual void on_connected(const endpoint& server) { (void)server; }
    /// Every session event (interval reports, notices, the end of the test, ...).
    virtual void on_event(const client_session& s, const event& ev) { (void)s; (void)ev; }
    /// -vv: bytes of the control conversation (see detail::trace_fn).
    virtual void on_control(std::uint32_t conn, bool sent, std::span<const std::byte> b) { (void)conn; (void)sent; (void)b; }
    /// The client is done: either the connection never came up (`connect_error` set, no
    /// session) or the session is over (its summary() holds the result). Sockets are closed.
    virtual void on_finished(const client_session* s, const std::error_code& connect_error,
                             const std::string& connect_detail) {
        (void)s; (void)connect_error; (void)connect_detail;
    }
};

class client {
public:
    /// `rng`: a CSPRNG (EC-SRP5). All references must outlive the client.
    client(event_loop& loop, client_options opt, entropy& rng, client_observer& observer)
        : loop_(loop), opt_(std::move(opt)), rng_(rng), observer_(observer),
          connect_timer_(loop_, [this] { connect_timed_out(); }), cpu_timer_(loop_, [this] { tick_cpu(); }) {
        opt_.session.udp.burst_max = std::max(opt_.session.udp.burst_max, opt_.min_udp_burst);
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() {
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
    class session_driver;

    /// A non-blocking connect in progress: done when the socket becomes writable.
    struct connect_attempt {
        connect_attempt(event_loop& l, const socket_address& to) : loop(l) {
            fd = detail::open_socket(to, SOCK_STREAM);
            if (fd < 0) {
                early = detail::last_error();
                return;
            }
            // A refusal may be reported at once; it is delivered with the writability event
            // like any other outcome (the socket reads as writable once the attempt is over).
            if (::connect(fd, to.data(), to.length) != 0 && errno != EINPROGRESS) early = detail::last_error();
        }
        connect_attempt(const connect_attempt&) = delete;
        connect_attempt& operator=(const connect_attempt&) = delete;
        ~connect_attempt() {
            loop.unwatch(watch);
            if (fd >= 0) ::close(fd);
        }
        std::error_code result() const { return early ? early : detail::socket_error(fd); }
        /// The connected descriptor, no longer watched or owned here.
        int take() {
            loop.unwatch(watch);
            const int f = fd;
            fd = -1;
            return f;
        }

        event_loop& loop;
        int fd = -1;
        watch_id watch;
        std::error_code early;
    };

    /// The kit asks for UDP sockets P+256+k from inside its feed; bind them on the control
    /// connection's local address (the server filters by our IP).
    class binder final : public udp_binder {
    public:
        explicit binder(client& c) : c_(c) {}
        bool bind(std::uint16_t first, std::uint16_t count, std::uint16_t server_port) override {
            (void)server_port;
            std::vector<std::shared_ptr<detail::udp_link>> socks;
            for (std::uint32_t k = 0; k < count; ++k) {
                auto s = detail::open_udp(c_.loop_, c_.local_.with_port(static_cast<std::uint16_t>(first + k)),
                                          {c_.opt_.udp_socket_buffer, c_.opt_.udp_gso, c_.opt_.udp_gro});
                if (!s) {
                    for (auto& o : socks) o->close();
                    return false;
                }
                socks.push_back(std::move(s));
            }
            c_.bound_ = std::move(socks);
            return true;
        }
        void unbind() override {
            for (auto& s : c_.bound_) s->close();
            c_.bound_.clear();
        }

    private:
        client& c_;
    };

    class session_driver final : public detail::driver {
    public:
        explicit session_driver(client& c) : driver(c.loop_, c.opt_.timer_granularity), c_(c) {}

    protected:
        btest::detail::session_core& core() override { return *c_.session_; }
        void feed(std::uint32_t conn, time_point now, std::span<const std::byte> bytes) override {
            c_.session_->feed(conn, now, bytes);
            if (udp_.empty() && !c_.bound_.empty())
                for (auto& u : c_.bound_) add_udp(u);
        }
        void timer_fired(time_point now) override { c_.session_->on_timer(now); }
        void on_event(event& ev) override {
            if (auto* o = std::get_if<open_connections>(&ev)) {
                for (std::uint32_t i = 0; i < o->count; ++i) c_.open_extra();
                return;
            }
            c_.observer_.on_event(*c_.session_, ev);
        }
        bool keep_connection(std::uint32_t conn) override { return c_.session_->connection_open(conn); }
        std::size_t udp_socket_for(const datagram& d) const override { return d.stream; }
        socket_address udp_destination(const datagram& d) const override { return c_.server_.with_port(d.port); }
        void on_done() override { c_.on_session_done(); }

    private:
        client& c_;
    };

    std::string endpoint_text() const { return to_string(endpoint{to_kit(candidates_.front()).address, opt_.port}); }

    /// Connects to the next candidate address; the last failure is reported when none is left.
    void try_next() {
        if (next_ >= candidates_.size())
            return fail_connect(last_error_ ? last_error_ : std::make_error_code(std::errc::host_unreachable),
                                "cannot connect to " + endpoint_text());
        const auto& to = candidates_[next_++];
        control_ = std::make_unique<connect_attempt>(loop_, to);
        if (control_->fd >= 0) control_->watch = loop_.watch(control_->fd, EPOLLOUT, [this](std::uint32_t) { on_control_ready(); });
        if (!control_->watch.valid()) {
            last_error_ = control_->early ? control_->early : detail::last_error();
            control_.reset();
            return try_next();
        }
    }

    void on_control_ready() {
        const auto ec = control_->result();
        if (ec) {
            last_error_ = ec;
            control_.reset();
            return try_next();
        }
        connect_timer_.cancel();
        on_connected(candidates_[next_ - 1], control_->take());
        control_.reset();
    }

    void connect_timed_out() {
        if (driver_ || finished_) return;
        fail_connect(std::make_error_code(std::errc::timed_out), "cannot connect to " + endpoint_text());
    }

    void on_connected(const socket_address& to, int fd) {
        server_ = to;
        local_ = detail::local_address(fd).value_or(socket_address{});
        detail::set_nodelay(fd);
        observer_.on_connected(to_kit(server_));
        services_ = std::make_unique<client_services>(client_services{rng_, &binder_});
        session_ = std::make_unique<client_session>(opt_.session, *services_, to_kit(server_), clock::now());
        driver_ = std::make_shared<session_driver>(*this);
        if (opt_.trace_control)
            driver_->set_trace([this](std::uint32_t conn, bool sent, std::span<const std::byte> b) {
                observer_.on_control(conn, sent, b);
            });
        driver_->attach(0, std::make_unique<detail::tcp_link>(loop_, fd));
        if (opt_.sample_cpu) tick_cpu();
        driver_->pump();
    }

    /// Multi-connection TCP: one more connection to the same server address and port.
    void open_extra() {
        auto a = std::make_unique<connect_attempt>(loop_, server_);
        connect_attempt* raw = a.get();
        if (a->fd >= 0) a->watch = loop_.watch(a->fd, EPOLLOUT, [this, raw](std::uint32_t) { on_extra_ready(raw); });
        if (!a->watch.valid()) {
            // No socket (out of descriptors): a failed join, reported now (we are draining
            // events, not inside a call of the session).
            session_->connection_failed(clock::now());
            return;
        }
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
        if (const auto ec = a->result()) {
            session_->connection_failed(now);
        } else {
            const int fd = a->take();
            detail::set_nodelay(fd);
            const auto idx = session_->add_connection(now);
            d->attach(idx, std::make_unique<detail::tcp_link>(loop_, fd));
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

    event_loop& loop_;
    client_options opt_;
    entropy& rng_;
    client_observer& observer_;
    std::vector<socket_address> candidates_;
    std::size_t next_ = 0;
    std::error_code last_error_;
    std::unique_ptr<connect_attempt> control_;
    std::vector<std::unique_ptr<connect_attempt>> extras_;
    timer connect_timer_;
    socket_address server_;
    socket_address local_;
    binder binder_{*this};
    std::vector<std::shared_ptr<detail::udp_link>> bound_;
    std::unique_ptr<client_services> services_;
    std::unique_ptr<client_session> session_;
    std::shared_ptr<session_driver> driver_;
    cpu_sampler cpu_;
    timer cpu_timer_;
    bool finished_ = false;
};

} // namespace btest::posix
