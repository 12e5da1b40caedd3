// A btest server over plain POSIX sockets on an epoll event_loop: listens on IPv4 and/or IPv6,
// runs one server_session per test (PROTOCOL §4), moves JOIN connections to the session they
// join (§7), binds each UDP test's port from a block pool (§8.1) and refuses connections beyond
// max_sessions (§12.4, the kit's session_admission). The protocol itself — handshakes, auth,
// STATUS, pacing, UDP filtering — is the kit's.
//
// Thread safety: everything runs on the loop's thread; call start()/stop() from it (or before
// the loop runs).
#pragma once

#include <algorithm>
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

#include <cerrno>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "btest/auth/credentials.hpp"
#include "btest/core/entropy.hpp"
#include "btest/session/admission.hpp"
#include "btest/session/server_limits.hpp"
#include "btest/session/join_registry.hpp"
#include "btest/session/port_blocks.hpp"
#include "btest/session/server_session.hpp"
#include "btest/transport/posix/address.hpp"
#include "btest/transport/posix/cpu_sampler.hpp"
#include "btest/transport/posix/detail/driver.hpp"
#include "btest/transport/posix/detail/socket.hpp"
#include "btest/transport/posix/event_loop.hpp"

namespace btest::posix {

struct server_options {
    /// IPv4 listen address; nullopt: no IPv4.
    std::optional<ip_address> listen_v4 = ip_address::v4(0, 0, 0, 0);
    /// IPv6 listen address; nullopt: no IPv6.
    std::optional<ip_address> listen_v6 = ip_address::v6({});
    /// Interface index for a link-local listen_v6 (0: none).
    std::uint32_t listen_v6_scope_id = 0;
    /// When false, an IPv6 listener that cannot be opened (no IPv6 on the host) is skipped.
    bool require_v6 = false;
    std::uint16_t port = 2000;
    /// Tests at once (§12.4); beyond it a connection is closed instead of HELLO (or after it,
    /// for a COMMAND on a connection accepted as a possible JOIN).
    std::size_t max_sessions = 100;
    port_block_allocator::limits udp_ports{};
    join_registry::limits joins{};
    /// Live TCP connections from one source IP (every connection counts, JOINs included, until
    /// its socket closes); beyond it a connection is closed before HELLO. 0: unlimited.
    std::size_t max_connections_per_ip = 20;
    /// Failed authentications from one source IP within `window` before that IP is refused
    /// (closed before HELLO) for `block`. max_failures 0: off.
    auth_throttle::limits auth_failures{};
    server_config session{};
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
    bool trace_control = false;       ///< report control traffic to the observer (-vv)
    bool sample_cpu = true;           ///< /proc/stat once per second into the STATUS cpu byte
};

/// A running or finished test as the observer sees it.
struct server_test_view {
    std::uint64_t id;                 ///< increasing per accepted test connection
    endpoint peer;
    const server_session& session;
};

/// What the server tells its app. Called on the loop's thread, never from inside the kit.
class server_observer {
public:
    virtual ~server_observer() = default;
    virtual void on_listening(const endpoint& at) { (void)at; }
    /// A listener could not be opened (and was optional).
    virtual void on_listen_skipped(const endpoint& at, const std::error_code& ec) { (void)at; (void)ec; }
    /// A connection was refused by a server limit: "max sessions reached", "too many
    /// connections from this address", "too many failed logins from this address".
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
    server(event_loop& loop, server_options opt, entropy& rng, const auth::credential_store* credentials,
           server_observer& observer)
        : loop_(loop), opt_(std::move(opt)), rng_(rng), observer_(observer), joins_(opt_.joins),
          admission_({opt_.max_sessions, 64}), ip_connections_(opt_.max_connections_per_ip),
          auth_throttle_(opt_.auth_failures), pool_(loop_, opt_.udp_ports, {opt_.udp_socket_buffer, opt_.udp_gso, opt_.udp_gro}),
          services_{rng_, credentials, &pool_, &joins_, {}}, cpu_timer_(loop_, [this] { tick_cpu(); }) {
        rng_.fill(services_.secret);
        opt_.session.udp.burst_max = std::max(opt_.session.udp.burst_max, opt_.min_udp_burst);
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() { stop(); }

    /// Opens the listeners and starts accepting. Error: no listener could be opened (the first
    /// failure), or a required one failed.
    std::error_code start() {
        std::error_code first;
        auto open = [&](const socket_address& at, bool required) {
            std::error_code ec;
            auto l = listen_on(at, ec);
            if (!l) {
                if (required) {
                    if (!first) first = ec;
                } else {
                    observer_.on_listen_skipped(to_kit(at), ec);
                }
                return;
            }
            observer_.on_listening(to_kit(l->bound));
            listeners_.push_back(std::move(l));
        };
        // IPv6 is optional when it was only the default and the host has none.
        if (opt_.listen_v4) open(socket_address::from({*opt_.listen_v4, opt_.port}), true);
        if (opt_.listen_v6)
            open(socket_address::from({*opt_.listen_v6, opt_.port}, opt_.listen_v6_scope_id),
                 opt_.require_v6 || !opt_.listen_v4);
        if (first) {
            stop();
            return first;
        }
        if (listeners_.empty()) return std::make_error_code(std::errc::address_not_available);
        stopped_ = false;
        if (opt_.sample_cpu) tick_cpu();
        return {};
    }

    /// Stops accepting and ends every test now (each gets its session_closed, reason stopped).
    void stop() {
        stopped_ = true;
        listeners_.clear();
        cpu_timer_.cancel();
        // Sessions release ports and join tokens into the pool and registry, which outlive them.
        auto all = drivers_;
        for (auto& [s, d] : all) d->stop();
        drivers_.clear();
    }

    std::vector<endpoint> listening() const {
        std::vector<endpoint> v;
        for (const auto& l : listeners_) v.push_back(to_kit(l->bound));
        return v;
    }
    /// Sessions alive (tests and connections still in their handshake).
    std::size_t live_sessions() const noexcept { return drivers_.size(); }
    /// UDP port blocks in use.
    std::size_t udp_blocks_in_use() const noexcept { return pool_.active(); }
    std::size_t pending_joins() const noexcept { return joins_.pending(); }

private:
    class session_driver;

    /// A listening socket; accepting pauses briefly when the process is out of descriptors.
    struct listener {
        listener(event_loop& l, int descriptor)
            : loop(l), fd(descriptor), retry(l, [this] { loop.modify(watch, EPOLLIN); }) {}
        listener(const listener&) = delete;
        listener& operator=(const listener&) = delete;
        ~listener() {
            loop.unwatch(watch);
            ::close(fd);
        }
        event_loop& loop;
        int fd;
        watch_id watch;
        socket_address bound;
        timer retry;
    };

    std::unique_ptr<listener> listen_on(const socket_address& at, std::error_code& ec) {
        const int fd = detail::open_socket(at, SOCK_STREAM);
        if (fd < 0) {
            ec = detail::last_error();
            return nullptr;
        }
        auto l = std::make_unique<listener>(loop_, fd);
        const int one = 1;
        if (at.is_v6()) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, at.data(), at.length) != 0 || ::listen(fd, SOMAXCONN) != 0) {
            ec = detail::last_error();
            return nullptr;
        }
        l->bound = detail::local_address(fd).value_or(at);
        listener* raw = l.get();
        l->watch = loop_.watch(fd, EPOLLIN, [this, raw](std::uint32_t) { accept_all(*raw); });
        if (!l->watch.valid()) {
            ec = detail::last_error();
            return nullptr;
        }
        return l;
    }

    /// §8.1 with real binds: the allocator finds a free block, try_bind binds P on the control
    /// connection's local address (so the client sees datagrams from the address it connected
    /// to). The socket stays here until its test takes it; release() closes it.
    class udp_pool final : public udp_port_pool {
    public:
        udp_pool(event_loop& loop, port_block_allocator::limits l, detail::udp_socket_options o)
            : loop_(loop), alloc_(l), options_(o) {}
        void set_local_address(const socket_address& a) { local_ = a; }
        std::optional<std::uint16_t> acquire(std::uint16_t count) override {
            return alloc_.acquire(count, [&](std::uint16_t p) {
                auto s = detail::open_udp(loop_, local_.with_port(p), options_);
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
        event_loop& loop_;
        port_block_allocator alloc_;
        detail::udp_socket_options options_;
        socket_address local_;
        std::map<std::uint16_t, std::shared_ptr<detail::udp_link>> bound_;
    };

    class session_driver final : public detail::driver {
    public:
        session_driver(server& srv, std::uint64_t id, const socket_address& peer_addr, const socket_address& local,
                       time_point now)
            : driver(srv.loop_, srv.opt_.timer_granularity), srv_(srv), id_(id), peer_addr_(peer_addr), peer_(to_kit(peer_addr)), local_(local),
              session_(std::make_unique<server_session>(srv.opt_.session, srv.services_, peer_, now)) {}

        server_session& session() { return *session_; }
        session_admission::ticket& ticket() { return ticket_; }
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
            if (auto* a = std::get_if<auth_result>(&ev); a && !a->ok)
                srv_.auth_throttle_.record_failure(peer_.address, clock::now());
            if (auto* t = std::get_if<test_started>(&ev); t && t->proto == protocol::udp) {
                if (auto u = srv_.pool_.socket(session_->udp_port())) add_udp(std::move(u));
            }
            if (!refused_) srv_.observer_.on_event(view(), ev);
        }
        std::size_t udp_socket_for(const datagram&) const override { return 0; }
        socket_address udp_destination(const datagram& d) const override {
            return peer_addr_.with_port(d.port);  // the accepted peer's address, IPv6 scope id included
        }
        void on_done() override { srv_.remove(*this); }

    private:
        /// The COMMAND arrived: count this test, or refuse it after HELLO when the server is full
        /// (it was let in as a possible JOIN of a pending test).
        void admit(time_point now) {
            if (srv_.admission_.admit_command(ticket_)) return;
            refused_ = true;
            srv_.observer_.on_refused(peer_, "max sessions reached");
            session_->refuse(now);  // close: no reply word (§12.4)
        }

        server& srv_;
        std::uint64_t id_;
        socket_address peer_addr_;
        endpoint peer_;
        socket_address local_;
        std::unique_ptr<server_session> session_;
        session_admission::ticket ticket_;
        bool refused_ = false;
        bool retired_by_join_ = false;
    };

    void accept_all(listener& l) {
        // A bounded number per wake-up; level-triggered epoll brings us back for the rest.
        for (int i = 0; i < 64 && !stopped_; ++i) {
            socket_address peer;
            peer.length = sizeof peer.storage;
            const int fd = ::accept4(l.fd, peer.data(), &peer.length, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                on_accept(fd, peer);
                continue;
            }
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Out of descriptors: retry shortly instead of spinning.
                loop_.modify(l.watch, 0);
                l.retry.arm(clock::now() + std::chrono::milliseconds(100));
            }
            return;
        }
    }

    void on_accept(int fd, const socket_address& peer_addr) {
        const auto local = detail::local_address(fd);
        if (!local) {
            ::close(fd);
            return;
        }
        const endpoint peer = to_kit(peer_addr);
        // Per source IP: an address that failed to log in too often, or that holds too many
        // connections, is closed before HELLO.
        const char* why = nullptr;
        if (auth_throttle_.blocked(peer.address, clock::now())) why = "too many failed logins from this address";
        else if (!ip_connections_.try_add(peer.address)) why = "too many connections from this address";
        if (why) {
            observer_.on_refused(peer, why);
            ::close(fd);
            return;
        }
        // Counted: the link gives the count back when it is destroyed, whichever way the
        // connection ends (refused, failed, finished, handed to the test it joins).
        auto link = std::make_unique<detail::tcp_link>(loop_, fd);
        link->on_destroy = [this, ip = peer.address] { ip_connections_.remove(ip); };
        session_admission::ticket t;
        // §12.4: over the limit, close instead of HELLO — unless this may be a JOIN of a test
        // waiting for its connections (then the COMMAND check in admit() applies).
        if (!admission_.admit_connection(peer.address, joins_, t)) {
            observer_.on_refused(peer, "max sessions reached");
            return;  // (the link closes the descriptor)
        }
        detail::set_nodelay(fd);
        auto d = std::make_shared<session_driver>(*this, ++next_id_, peer_addr, *local, clock::now());
        d->ticket() = t;
        if (opt_.trace_control) {
            d->set_trace([this, s = d.get()](std::uint32_t conn, bool sent, std::span<const std::byte> b) {
                observer_.on_control(s->view(), conn, sent, b);
            });
        }
        d->attach(0, std::move(link));
        drivers_[&d->session()] = d;
        d->pump();
    }

    /// The connection of `from` was a JOIN: move it into the target session's driver.
    void handoff(session_driver& from, const connection_handoff& h) {
        auto it = drivers_.find(h.target);
        auto link = from.detach(0);
        if (it == drivers_.end() || !link) return;  // (a link left here closes as it goes)
        it->second->attach(h.conn, std::move(link));
        it->second->pump();
    }

    void remove(session_driver& d) {
        admission_.release(d.ticket());
        drivers_.erase(&d.session());
    }

    void tick_cpu() {
        if (stopped_) return;
        if (auto load = cpu_.sample())
            for (auto& [s, d] : drivers_) d->set_cpu(*load);
        cpu_timer_.arm(clock::now() + std::chrono::seconds(1));
    }

    event_loop& loop_;
    server_options opt_;
    entropy& rng_;
    server_observer& observer_;
    join_registry joins_;
    session_admission admission_;
    // Per source IP (before drivers_: the links they own give their counts back on destruction).
    connection_counter ip_connections_;
    auth_throttle auth_throttle_;
    udp_pool pool_;
    server_services services_;
    std::vector<std::unique_ptr<listener>> listeners_;
    std::map<const server_session*, std::shared_ptr<session_driver>> drivers_;
    std::uint64_t next_id_ = 0;
    cpu_sampler cpu_;
    timer cpu_timer_;
    bool stopped_ = true;
};

} // namespace btest::posix
