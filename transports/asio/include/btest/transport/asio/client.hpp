// A btest client over Boost.Asio: resolves and connects, runs one client_session (PROTOCOL §5),
// opens the extra connections of a multi-connection TCP test (§7) and binds the UDP sockets at
// P+256+k (§8.2) when the session asks. The protocol itself is the kit's.
//
// Thread safety: everything runs on the io_context's thread; call start()/stop() from it (or
// before run()).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/core/entropy.hpp"
#include "btest/session/client_session.hpp"
#include "btest/transport/asio/address.hpp"
#include "btest/transport/asio/cpu_sampler.hpp"
#include "btest/transport/asio/detail/driver.hpp"
#include "btest/transport/asio/tuning.hpp"

namespace btest::asio {

enum class family_preference : std::uint8_t { any, v4, v6 };

struct client_options {
    std::string host;                  ///< name or address ("::1", "[::1]" and "router.lan" all work)
    std::uint16_t port = 2000;
    family_preference family = family_preference::any;
    client_config session{};
    std::chrono::milliseconds connect_timeout{10'000};
    std::size_t udp_socket_buffer = 4u << 20;
    bool trace_control = false;        ///< report control traffic to the observer (-vv)
    bool sample_cpu = true;            ///< /proc/stat once per second into the STATUS cpu byte
    /// Local address to connect from (and bind the UDP sockets on); nullopt: the system's
    /// choice. Only candidates of the same family are tried.
    std::optional<net::ip::address> local_address;
    data_plane_options data_plane{};   ///< GSO/GRO, buffers, timer granularity (tuning.hpp)
};

/// What the client tells its app. Called on the io_context's thread, never from inside the kit.
class client_observer {
public:
    virtual ~client_observer() = default;
    /// The control connection is up; the session starts.
    virtual void on_connected(const net::ip::tcp::endpoint& server) { (void)server; }
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
    client(net::io_context& ioc, client_options opt, entropy& rng, client_observer& observer)
        : ioc_(ioc), opt_(std::move(opt)), rng_(rng), observer_(observer), resolver_(ioc_), connect_timer_(ioc_),
          cpu_timer_(ioc_) {
        auto& burst = opt_.session.udp.burst_max;
        burst = std::max(burst, opt_.data_plane.min_udp_burst);
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
        boost::system::error_code ec;
        auto results = resolver_.resolve(host, std::to_string(opt_.port), net::ip::resolver_base::numeric_service, ec);
        if (ec) return fail_connect(ec, "cannot resolve " + host);
        for (const auto& r : results) {
            const auto a = r.endpoint().address();
            if (opt_.family == family_preference::v4 && !a.is_v4()) continue;
            if (opt_.family == family_preference::v6 && !a.is_v6()) continue;
            if (opt_.local_address && opt_.local_address->is_v6() != a.is_v6()) continue;
            candidates_.push_back(r.endpoint());
        }
        if (candidates_.empty())
            return fail_connect(std::make_error_code(std::errc::address_family_not_supported),
                                "no " + std::string(opt_.family == family_preference::v6 ? "IPv6" : "IPv4") +
                                    " address for " + host);
        connect_timer_.expires_after(opt_.connect_timeout);
        connect_timer_.async_wait([this](const boost::system::error_code& e) {
            if (!e && !driver_ && control_) {
                timed_out_ = true;
                boost::system::error_code ignore;
                control_->close(ignore);
            }
        });
        control_ = std::make_unique<net::ip::tcp::socket>(ioc_);
        if (opt_.local_address) return connect_from_local(0);
        net::async_connect(*control_, candidates_,
                           [this](const boost::system::error_code& e, const net::ip::tcp::endpoint& ep) {
                               connect_timer_.cancel();
                               if (finished_) return;
                               if (e) {
                                   const auto code = timed_out_ ? std::make_error_code(std::errc::timed_out) : std::error_code(e);
                                   return fail_connect(code, "cannot connect to " + endpoint_text());
                               }
                               on_connected(ep);
                           });
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
    class session_driver;

    /// The kit asks for UDP sockets P+256+k from inside its feed; bind them on the control
    /// connection's local address (the server filters by our IP).
    class binder final : public udp_binder {
    public:
        explicit binder(client& c) : c_(c) {}
        bool bind(std::uint16_t first, std::uint16_t count, std::uint16_t server_port) override {
            (void)server_port;
            std::vector<std::shared_ptr<detail::udp_link>> socks;
            for (std::uint32_t k = 0; k < count; ++k) {
                auto s = detail::open_udp(c_.ioc_,
                                          net::ip::udp::endpoint(c_.local_.address(), static_cast<std::uint16_t>(first + k)),
                                          c_.opt_.udp_socket_buffer, c_.opt_.data_plane);
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
        session_driver(client& c) : driver(c.ioc_, c.opt_.data_plane, &c.counters_), c_(c) {}
        void take_udp() { udp_ = c_.bound_; }

    protected:
        btest::detail::session_core& core() override { return *c_.session_; }
        void feed(std::uint32_t conn, time_point now, std::span<const std::byte> bytes) override {
            c_.session_->feed(conn, now, bytes);
            if (udp_.empty() && !c_.bound_.empty()) take_udp();
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
        net::ip::udp::endpoint udp_destination(const datagram& d) const override {
            return {c_.server_.address(), d.port};
        }
        void on_done() override { c_.on_session_done(); }

    private:
        client& c_;
    };

    /// With a local address: open, bind and connect to each candidate in turn.
    void connect_from_local(std::size_t i) {
        if (i >= candidates_.size()) {
            const auto code = timed_out_ ? std::make_error_code(std::errc::timed_out) : last_connect_error_;
            return fail_connect(code ? code : std::make_error_code(std::errc::connection_refused),
                                "cannot connect to " + endpoint_text());
        }
        boost::system::error_code ec;
        if (control_->is_open()) control_->close(ec);
        control_->open(candidates_[i].protocol(), ec);
        if (!ec) bind_local(*control_, ec);
        if (ec) {
            last_connect_error_ = ec;
            return connect_from_local(i + 1);
        }
        control_->async_connect(candidates_[i], [this, i](const boost::system::error_code& e) {
            if (finished_) return;
            if (e && !timed_out_) {
                last_connect_error_ = e;
                return connect_from_local(i + 1);
            }
            connect_timer_.cancel();
            if (e) return fail_connect(std::make_error_code(std::errc::timed_out), "cannot connect to " + endpoint_text());
            on_connected(candidates_[i]);
        });
    }

    void bind_local(net::ip::tcp::socket& s, boost::system::error_code& ec) {
        if (!opt_.local_address) return;
        s.bind(net::ip::tcp::endpoint(*opt_.local_address, 0), ec);
    }

    std::string endpoint_text() const {
        return to_string(endpoint{to_kit(candidates_.front().address()), opt_.port});
    }

    void on_connected(const net::ip::tcp::endpoint& ep) {
        boost::system::error_code ec;
        server_ = ep;
        local_ = control_->local_endpoint(ec);
        control_->set_option(net::ip::tcp::no_delay(true), ec);
        observer_.on_connected(ep);
        services_ = std::make_unique<client_services>(client_services{rng_, &binder_});
        session_ = std::make_unique<client_session>(opt_.session, *services_, to_kit(ep), clock::now());
        driver_ = std::make_shared<session_driver>(*this);
        if (opt_.trace_control)
            driver_->set_trace([this](std::uint32_t conn, bool sent, std::span<const std::byte> b) {
                observer_.on_control(conn, sent, b);
            });
        driver_->attach(0, std::make_shared<detail::tcp_link>(std::move(*control_)));
        control_.reset();
        if (opt_.sample_cpu) tick_cpu();
        driver_->pump();
    }

    /// Multi-connection TCP: one more connection to the same server address and port.
    void open_extra() {
        auto sock = std::make_shared<net::ip::tcp::socket>(ioc_);
        if (opt_.local_address) {
            boost::system::error_code ec;
            sock->open(server_.protocol(), ec);
            if (!ec) bind_local(*sock, ec);
        }
        sock->async_connect(server_, [this, sock, w = std::weak_ptr<session_driver>(driver_)](const boost::system::error_code& ec) {
            auto d = w.lock();
            if (!d || d->done()) {
                boost::system::error_code ignore;
                sock->close(ignore);
                return;
            }
            const auto now = clock::now();
            if (ec) {
                session_->connection_failed(now);
            } else {
                boost::system::error_code ignore;
                sock->set_option(net::ip::tcp::no_delay(true), ignore);
                const auto idx = session_->add_connection(now);
                d->attach(idx, std::make_shared<detail::tcp_link>(std::move(*sock)));
            }
            d->pump();
        });
    }

    void tick_cpu() {
        if (auto load = cpu_.sample(); load && session_) session_->set_local_cpu(*load);
        cpu_timer_.expires_after(std::chrono::seconds(1));
        cpu_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec && !finished_) tick_cpu();
        });
    }

    void cancel_all() {
        boost::system::error_code ec;
        connect_timer_.cancel();
        cpu_timer_.cancel();
        resolver_.cancel();
        if (control_) control_->close(ec);
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

    net::io_context& ioc_;
    detail::shared_counters counters_;   // before the driver, which points at it
    client_options opt_;
    entropy& rng_;
    client_observer& observer_;
    net::ip::tcp::resolver resolver_;
    std::vector<net::ip::tcp::endpoint> candidates_;
    std::unique_ptr<net::ip::tcp::socket> control_;
    net::steady_timer connect_timer_;
    bool timed_out_ = false;
    std::error_code last_connect_error_;
    net::ip::tcp::endpoint server_;
    net::ip::tcp::endpoint local_;
    binder binder_{*this};
    std::vector<std::shared_ptr<detail::udp_link>> bound_;
    std::unique_ptr<client_services> services_;
    std::unique_ptr<client_session> session_;
    std::shared_ptr<session_driver> driver_;
    cpu_sampler cpu_;
    net::steady_timer cpu_timer_;
    bool finished_ = false;
};

} // namespace btest::asio
