// A btest server over Boost.Asio: listens on IPv4 and/or IPv6, runs one server_session per
// test (PROTOCOL §4), moves JOIN connections to the session they join (§7), binds each UDP
// test's port from a block pool (§8.1) and refuses connections beyond max_sessions (§12.4).
// The protocol itself — handshakes, auth, STATUS, pacing, UDP filtering — is the kit's.
//
// Thread safety: everything runs on the io_context's thread; call start()/stop() from it (or
// before run()).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/auth/credentials.hpp"
#include "btest/core/entropy.hpp"
#include "btest/session/join_registry.hpp"
#include "btest/session/port_blocks.hpp"
#include "btest/session/server_session.hpp"
#include "btest/transport/asio/address.hpp"
#include "btest/transport/asio/cpu_sampler.hpp"
#include "btest/transport/asio/detail/driver.hpp"

namespace btest::asio {

struct server_options {
    /// IPv4 listen address; nullopt: no IPv4.
    std::optional<net::ip::address> listen_v4 = net::ip::address(net::ip::address_v4::any());
    /// IPv6 listen address; nullopt: no IPv6.
    std::optional<net::ip::address> listen_v6 = net::ip::address(net::ip::address_v6::any());
    /// When false, an IPv6 listener that cannot be opened (no IPv6 on the host) is skipped.
    bool require_v6 = false;
    std::uint16_t port = 2000;
    /// Tests at once (§12.4); beyond it a connection is closed instead of HELLO (or after it,
    /// for a COMMAND on a connection accepted as a possible JOIN).
    std::size_t max_sessions = 100;
    port_block_allocator::limits udp_ports{};
    join_registry::limits joins{};
    server_config session{};
    std::size_t udp_socket_buffer = 4u << 20;
    bool trace_control = false;       ///< report control traffic to the observer (-vv)
    bool sample_cpu = true;           ///< /proc/stat once per second into the STATUS cpu byte
};

/// A running or finished test as the observer sees it.
struct server_test_view {
    std::uint64_t id;                 ///< increasing per accepted test connection
    endpoint peer;
    const server_session& session;
};

/// What the server tells its app. Called on the io_context's thread, never from inside the kit.
class server_observer {
public:
    virtual ~server_observer() = default;
    virtual void on_listening(const net::ip::tcp::endpoint& at) { (void)at; }
    /// A listener could not be opened (and was optional).
    virtual void on_listen_skipped(const net::ip::tcp::endpoint& at, const std::error_code& ec) { (void)at; (void)ec; }
    /// A connection was refused by a server limit (max_sessions).
    virtual void on_refused(const endpoint& peer, const char* why) { (void)peer; (void)why; }
    /// Every session event except connection_handoff (the transport handles that).
    virtual void on_event(const server_test_view& t, const event& ev) { (void)t; (void)ev; }
    /// -vv: bytes of the control conversation (see detail::trace_fn).
    virtual void on_control(const server_test_view& t, std::uint32_t conn, bool sent, std::span<const std::byte> b) {
        (void)t; (void)conn; (void)sent; (void)b;
    }
};

class server {
public:
    /// `rng` must be a CSPRNG (challenges, tokens, EC-SRP5 secrets). `credentials` is required
    /// for md5/ec_srp5. All references must outlive the server.
    server(net::io_context& ioc, server_options opt, entropy& rng, const auth::credential_store* credentials,
           server_observer& observer)
        : ioc_(ioc), opt_(std::move(opt)), rng_(rng), observer_(observer), joins_(opt_.joins),
          pool_(ioc_, opt_.udp_ports, opt_.udp_socket_buffer), services_{rng_, credentials, &pool_, &joins_, {}},
          cpu_timer_(ioc_) {
        rng_.fill(services_.secret);
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() { stop(); }

    /// Opens the listeners and starts accepting. Error: no listener could be opened (the first
    /// failure), or a required one failed.
    std::error_code start() {
        std::error_code first;
        auto open = [&](const net::ip::address& a, bool required) {
            const net::ip::tcp::endpoint at(a, opt_.port);
            boost::system::error_code ec;
            net::ip::tcp::acceptor acc(ioc_);
            acc.open(at.protocol(), ec);
            if (!ec && a.is_v6()) acc.set_option(net::ip::v6_only(true), ec);
            if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
            if (!ec) acc.bind(at, ec);
            if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
            if (ec) {
                if (required) {
                    if (!first) first = ec;
                } else {
                    observer_.on_listen_skipped(at, ec);
                }
                return;
            }
            auto p = std::make_shared<net::ip::tcp::acceptor>(std::move(acc));
            acceptors_.push_back(p);
            const auto bound = p->local_endpoint(ec);
            observer_.on_listening(ec ? at : bound);
            accept(p);
        };
        // IPv6 is optional when it was only the default and the host has none.
        if (opt_.listen_v4) open(*opt_.listen_v4, true);
        if (opt_.listen_v6) open(*opt_.listen_v6, opt_.require_v6 || !opt_.listen_v4);
        if (first) {
            stop();
            return first;
        }
        if (acceptors_.empty()) return std::make_error_code(std::errc::address_not_available);
        stopped_ = false;
        if (opt_.sample_cpu) tick_cpu();
        return {};
    }

    /// Stops accepting and ends every test now (each gets its session_closed, reason stopped).
    void stop() {
        stopped_ = true;
        for (auto& a : acceptors_) {
            boost::system::error_code ec;
            a->close(ec);
        }
        acceptors_.clear();
        cpu_timer_.cancel();
        // Sessions release ports and join tokens into the pool and registry, which outlive them.
        auto all = drivers_;
        for (auto& [s, d] : all) d->stop();
        drivers_.clear();
    }

    std::vector<net::ip::tcp::endpoint> listening() const {
        std::vector<net::ip::tcp::endpoint> v;
        for (const auto& a : acceptors_) {
            boost::system::error_code ec;
            auto ep = a->local_endpoint(ec);
            if (!ec) v.push_back(ep);
        }
        return v;
    }
    /// Sessions alive (tests and connections still in their handshake).
    std::size_t live_sessions() const noexcept { return drivers_.size(); }
    /// UDP port blocks in use.
    std::size_t udp_blocks_in_use() const noexcept { return pool_.active(); }
    std::size_t pending_joins() const noexcept { return joins_.pending(); }

private:
    class session_driver;

    /// §8.1 with real binds: the allocator finds a free block, try_bind binds P on the control
    /// connection's local address (so the client sees datagrams from the address it connected
    /// to). The socket stays here until its test takes it; release() closes it.
    class udp_pool final : public udp_port_pool {
    public:
        udp_pool(net::io_context& ioc, port_block_allocator::limits l, std::size_t buffer)
            : ioc_(ioc), alloc_(l), buffer_(buffer) {}
        void set_local_address(const net::ip::address& a) { local_ = a; }
        std::optional<std::uint16_t> acquire(std::uint16_t count) override {
            return alloc_.acquire(count, [&](std::uint16_t p) {
                auto s = detail::open_udp(ioc_, net::ip::udp::endpoint(local_, p), buffer_);
                if (!s) return false;
                bound_[p] = std::move(s);
                return true;
            });
        }
        void release(std::uint16_t first) override {
            if (auto it = bound_.find(first); it != bound_.end()) {
                it->second->close();
                bound_.erase(it);
            }
            alloc_.release(first);
        }
        std::shared_ptr<detail::udp_link> socket(std::uint16_t p) const {
            auto it = bound_.find(p);
            return it == bound_.end() ? nullptr : it->second;
        }
        std::size_t active() const noexcept { return alloc_.active(); }

    private:
        net::io_context& ioc_;
        port_block_allocator alloc_;
        std::size_t buffer_;
        net::ip::address local_;
        std::map<std::uint16_t, std::shared_ptr<detail::udp_link>> bound_;
    };

    class session_driver final : public detail::driver {
    public:
        session_driver(server& srv, std::uint64_t id, const net::ip::address& peer_ip, const endpoint& peer,
                       const net::ip::address& local, time_point now)
            : driver(srv.ioc_), srv_(srv), id_(id), peer_ip_(peer_ip), peer_(peer), local_(local),
              session_(std::make_unique<server_session>(srv.opt_.session, srv.services_, peer, now)) {}

        server_session& session() { return *session_; }
        const endpoint& peer() const { return peer_; }
        std::uint64_t id() const { return id_; }
        bool counted() const { return counted_; }
        bool refused() const { return refused_; }
        void set_cpu(std::uint8_t load) { session_->set_local_cpu(load); }
        server_test_view view() const { return {id_, peer_, *session_}; }

    protected:
        btest::detail::session_core& core() override { return *session_; }
        void feed(std::uint32_t conn, time_point now, std::span<const std::byte> bytes) override {
            srv_.pool_.set_local_address(local_);
            const bool had_command = session_->command().has_value();
            session_->feed(conn, now, bytes);
            if (!had_command && session_->command() && !retired_by_join_) admit(now);
        }
        void timer_fired(time_point now) override { session_->on_timer(now); }
        void on_event(event& ev) override {
            if (auto* h = std::get_if<connection_handoff>(&ev)) {
                retired_by_join_ = true;
                srv_.handoff(*this, *h);
                retire();
                return;
            }
            if (auto* t = std::get_if<test_started>(&ev); t && t->proto == protocol::udp) {
                if (auto u = srv_.pool_.socket(session_->udp_port())) udp_.push_back(std::move(u));
            }
            if (!refused_) srv_.observer_.on_event(view(), ev);
        }
        std::size_t udp_socket_for(const datagram&) const override { return 0; }
        net::ip::udp::endpoint udp_destination(const datagram& d) const override {
            return {peer_ip_, d.port};  // the accepted peer's address, IPv6 scope id included
        }
        void on_done() override { srv_.remove(*this); }

    private:
        /// The COMMAND arrived: count this test, or refuse it after HELLO when the server is full
        /// (it was let in as a possible JOIN of a pending test).
        void admit(time_point now) {
            if (srv_.tests() >= srv_.opt_.max_sessions) {
                refused_ = true;
                srv_.observer_.on_refused(peer_, "max sessions reached");
                session_->refuse(now);  // close: no reply word (§12.4)
                return;
            }
            counted_ = true;
        }

        server& srv_;
        std::uint64_t id_;
        net::ip::address peer_ip_;
        endpoint peer_;
        net::ip::address local_;
        std::unique_ptr<server_session> session_;
        bool counted_ = false;
        bool refused_ = false;
        bool retired_by_join_ = false;

        friend class server;
    };

    void accept(const std::shared_ptr<net::ip::tcp::acceptor>& acc) {
        acc->async_accept([this, acc](const boost::system::error_code& ec, net::ip::tcp::socket sock) {
            if (ec == net::error::operation_aborted || !acc->is_open()) return;
            if (!ec) on_accept(std::move(sock));
            if (ec && (ec == net::error::no_descriptors || ec == net::error::no_buffer_space)) {
                // Out of descriptors: retry shortly instead of spinning.
                auto t = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(100));
                t->async_wait([this, acc, t](const boost::system::error_code& e) {
                    if (!e && acc->is_open()) accept(acc);
                });
                return;
            }
            accept(acc);
        });
    }

    /// Tests counted against max_sessions.
    std::size_t tests() const {
        std::size_t n = 0;
        for (const auto& [s, d] : drivers_) n += d->counted() ? 1 : 0;
        return n;
    }

    void on_accept(net::ip::tcp::socket sock) {
        boost::system::error_code ec;
        const auto remote = sock.remote_endpoint(ec);
        if (ec) return;
        const auto local = sock.local_endpoint(ec);
        if (ec) return;
        const endpoint peer = to_kit(remote);
        // §12.4: over the limit, close instead of HELLO — unless this may be a JOIN of a test
        // waiting for its connections (then the COMMAND check in admit() applies).
        const bool maybe_join = joins_.pending_from(peer.address);
        const std::size_t handshaking = drivers_.size() - tests();
        if ((tests() >= opt_.max_sessions && !maybe_join) || handshaking >= opt_.max_sessions + 64) {
            observer_.on_refused(peer, "max sessions reached");
            sock.close(ec);
            return;
        }
        sock.set_option(net::ip::tcp::no_delay(true), ec);
        auto d = std::make_shared<session_driver>(*this, ++next_id_, remote.address(), peer, local.address(), clock::now());
        if (opt_.trace_control) {
            d->set_trace([this, w = std::weak_ptr<session_driver>(d)](std::uint32_t conn, bool sent, std::span<const std::byte> b) {
                if (auto s = w.lock()) observer_.on_control(s->view(), conn, sent, b);
            });
        }
        d->attach(0, std::make_shared<detail::tcp_link>(std::move(sock)));
        drivers_[&d->session()] = d;
        d->pump();
    }

    /// The connection of `from` was a JOIN: move it into the target session's driver.
    void handoff(session_driver& from, const connection_handoff& h) {
        auto it = drivers_.find(h.target);
        auto link = from.detach(0);
        if (it == drivers_.end() || !link) {
            if (link) link->close();
            return;
        }
        it->second->attach(h.conn, std::move(link));
        it->second->pump();
    }

    void remove(session_driver& d) { drivers_.erase(&d.session()); }

    void tick_cpu() {
        if (auto load = cpu_.sample())
            for (auto& [s, d] : drivers_) d->set_cpu(*load);
        cpu_timer_.expires_after(std::chrono::seconds(1));
        cpu_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec && !stopped_) tick_cpu();
        });
    }

    net::io_context& ioc_;
    server_options opt_;
    entropy& rng_;
    server_observer& observer_;
    join_registry joins_;
    udp_pool pool_;
    server_services services_;
    std::vector<std::shared_ptr<net::ip::tcp::acceptor>> acceptors_;
    std::map<const server_session*, std::shared_ptr<session_driver>> drivers_;
    std::uint64_t next_id_ = 0;
    cpu_sampler cpu_;
    net::steady_timer cpu_timer_;
    bool stopped_ = true;
};

} // namespace btest::asio
