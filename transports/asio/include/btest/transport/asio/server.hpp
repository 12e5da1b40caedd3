// A btest server over Boost.Asio: listens on IPv4 and/or IPv6, runs one server_session per
// test (PROTOCOL §4), moves JOIN connections to the session they join (§7), binds each UDP
// test's port from a block pool (§8.1) and refuses connections beyond max_sessions (§12.4).
// The protocol itself — handshakes, auth, STATUS, pacing, UDP filtering — is the kit's.
//
// Threads: with server_options::threads = 1 (the default) everything runs on the io_context
// given to the constructor. With N > 1 the server adds N − 1 io threads of its own, each with
// its own io_context; the listeners stay on the given io_context and every accepted connection
// is routed by its peer's IP address to one of the N, so a session stays on one thread and a
// JOIN (which must come from the same IP, §7) always lands on the thread — and the
// join_registry — of the session it joins. Each thread has its own join registry; the UDP port
// blocks come from one allocator shared under a mutex (blocks never overlap across threads), and
// so do the per-source-IP limits (server_limits.hpp: live connections per IP, failed logins per
// IP), which are consulted on accept, before HELLO.
// Observer calls are serialised (never two at once) but come from any of the threads.
//
// Thread safety: call start()/stop() from the given io_context's thread (or before run());
// the accessors (live_sessions(), counters(), ...) may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/udp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "btest/auth/credentials.hpp"
#include "btest/core/entropy.hpp"
#include "btest/session/admission.hpp"
#include "btest/session/join_registry.hpp"
#include "btest/session/port_blocks.hpp"
#include "btest/session/server_limits.hpp"
#include "btest/session/server_session.hpp"
#include "btest/transport/asio/address.hpp"
#include "btest/transport/asio/cpu_sampler.hpp"
#include "btest/transport/asio/detail/driver.hpp"
#include "btest/transport/asio/tuning.hpp"

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
    /// Limits of each io thread's join registry (pending multi-connection tests, §7/§13.10).
    join_registry::limits joins{};
    /// Live TCP connections from one source IP (every connection counts, JOINs included, until
    /// its socket closes); beyond it a connection is closed before HELLO. 0: unlimited.
    std::size_t max_connections_per_ip = 20;
    /// Failed authentications from one source IP within `window` before that IP is refused
    /// (closed before HELLO) for `block`. max_failures 0: off.
    auth_throttle::limits auth_failures{};
    /// Timeouts (T_hs, T_join, T_idle, T_max: session.limits), auth method, caps.
    server_config session{};
    std::size_t udp_socket_buffer = 4u << 20;
    bool trace_control = false;       ///< report control traffic to the observer (-vv)
    bool sample_cpu = true;           ///< /proc/stat once per second into the STATUS cpu byte
    /// io threads sessions are spread over (see the top of this file); 1: only the
    /// constructor's io_context, no thread of the server's own. 0 counts as 1.
    std::size_t threads = 1;
    data_plane_options data_plane{};  ///< GSO/GRO, buffers, timer granularity (tuning.hpp)
};

/// A running or finished test as the observer sees it.
struct server_test_view {
    std::uint64_t id;                 ///< increasing per accepted test connection
    endpoint peer;
    const server_session& session;
};

/// What the server tells its app. Called on one of the server's io threads, one call at a
/// time, never from inside the kit.
class server_observer {
public:
    virtual ~server_observer() = default;
    virtual void on_listening(const net::ip::tcp::endpoint& at) { (void)at; }
    /// A listener could not be opened (and was optional).
    virtual void on_listen_skipped(const net::ip::tcp::endpoint& at, const std::error_code& ec) { (void)at; (void)ec; }
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
    /// `rng` must be a CSPRNG (challenges, tokens, EC-SRP5 secrets); with several threads the
    /// server serialises its use. `credentials` is required for md5/ec_srp5; its lookups may
    /// run on any io thread. All references must outlive the server.
    server(net::io_context& ioc, server_options opt, entropy& rng, const auth::credential_store* credentials,
           server_observer& observer)
        : ioc_(ioc), opt_(std::move(opt)), rng_(rng), credentials_(credentials), observer_(observer),
          ports_(opt_.udp_ports), admission_(session_admission::limits{opt_.max_sessions, 64}),
          ip_limits_(std::make_shared<ip_limits>(opt_.max_connections_per_ip, opt_.auth_failures)) {
        opt_.threads = std::max<std::size_t>(opt_.threads, 1);
        multi_ = opt_.threads > 1;
        auto& burst = opt_.session.udp.burst_max;
        burst = std::max(burst, opt_.data_plane.min_udp_burst);
        std::array<std::byte, 32> secret{};
        rng_.fill(secret);
        for (std::size_t i = 0; i < opt_.threads; ++i)
            shards_.push_back(std::make_unique<shard>(*this, i == 0 ? nullptr : std::make_unique<net::io_context>(1), secret));
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() {
        stop();
        join_threads();
    }

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
                    notify([&] { observer_.on_listen_skipped(at, ec); });
                }
                return;
            }
            auto p = std::make_shared<net::ip::tcp::acceptor>(std::move(acc));
            acceptors_.push_back(p);
            const auto bound = p->local_endpoint(ec);
            notify([&] { observer_.on_listening(ec ? at : bound); });
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
        join_threads();  // a restart after stop()
        for (auto& s : shards_) s->start();
        for (auto& a : acceptors_) accept(a);
        return {};
    }

    /// Stops accepting and ends every test (each gets its session_closed, reason stopped): at
    /// once for the sessions on the calling thread's io_context, soon after for the other
    /// threads' (whose threads then end; the destructor joins them).
    void stop() {
        stopped_ = true;
        for (auto& a : acceptors_) {
            boost::system::error_code ec;
            a->close(ec);
        }
        acceptors_.clear();
        for (auto& s : shards_) {
            if (&s->ioc == &ioc_) {
                s->stop_sessions();
            } else if (s->work) {
                net::post(s->ioc, [p = s.get()] { p->stop_sessions(); });
                s->work.reset();
            }
        }
    }

    /// After stop(): waits until the server's own io threads have ended their sessions and
    /// exited (the destructor does this too). Not from one of those threads.
    void join() { join_threads(); }

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
    std::size_t live_sessions() const noexcept { return live_.load(std::memory_order_relaxed); }
    /// UDP port blocks in use.
    std::size_t udp_blocks_in_use() const {
        std::lock_guard<std::mutex> lk(ports_.m);
        return ports_.alloc.active();
    }
    /// Multi-connection tests still waiting for their JOINs, over all threads.
    std::size_t pending_joins() const noexcept {
        if (!multi_) return shards_[0]->joins.pending();
        std::size_t n = 0;
        for (const auto& s : shards_) n += s->pending.load(std::memory_order_relaxed);
        return n;
    }
    /// io threads (including the constructor's io_context).
    std::size_t threads() const noexcept { return shards_.size(); }
    /// Live TCP connections from `ip` as the per-IP limit counts them.
    std::size_t connections_from(const ip_address& ip) const {
        std::lock_guard<std::mutex> lk(ip_limits_->m);
        return ip_limits_->conns.count(ip);
    }
    /// Sessions alive on each io thread (index 0: the constructor's io_context).
    std::vector<std::size_t> sessions_per_thread() const {
        std::vector<std::size_t> v;
        for (const auto& s : shards_) v.push_back(s->live.load(std::memory_order_relaxed));
        return v;
    }
    /// What the data plane did, summed over the threads.
    io_counters counters() const noexcept {
        io_counters c;
        for (const auto& s : shards_) c += s->counters.snapshot();
        return c;
    }

private:
    class session_driver;
    struct shard;

    /// The one port allocator of the server (§8.1), shared by the threads.
    struct shared_ports {
        explicit shared_ports(port_block_allocator::limits l) : alloc(l) {}
        mutable std::mutex m;
        port_block_allocator alloc;
    };

    /// The entropy of the embedder, one draw at a time across the threads.
    class serialized_entropy final : public entropy {
    public:
        serialized_entropy(entropy& inner, std::mutex* m) : inner_(inner), m_(m) {}
        void fill(std::span<std::byte> out) override {
            if (!m_) return inner_.fill(out);
            std::lock_guard<std::mutex> lk(*m_);
            inner_.fill(out);
        }

    private:
        entropy& inner_;
        std::mutex* m_;
    };

    /// §8.1 with real binds: the shared allocator finds a free block, try_bind binds P on the
    /// control connection's local address (so the client sees datagrams from the address it
    /// connected to) on this thread's io_context. The socket stays here until its test takes
    /// it; release() closes it.
    class udp_pool final : public udp_port_pool {
    public:
        udp_pool(net::io_context& ioc, shared_ports& ports, std::size_t buffer, const data_plane_options& dp)
            : ioc_(ioc), ports_(ports), buffer_(buffer), dp_(dp) {}
        void set_local_address(const net::ip::address& a) { local_ = a; }
        std::optional<std::uint16_t> acquire(std::uint16_t count) override {
            std::lock_guard<std::mutex> lk(ports_.m);
            return ports_.alloc.acquire(count, [&](std::uint16_t p) {
                auto s = detail::open_udp(ioc_, net::ip::udp::endpoint(local_, p), buffer_, dp_);
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
            std::lock_guard<std::mutex> lk(ports_.m);
            ports_.alloc.release(first);
        }
        std::shared_ptr<detail::udp_link> socket(std::uint16_t p) const {
            auto it = bound_.find(p);
            return it == bound_.end() ? nullptr : it->second;
        }

    private:
        net::io_context& ioc_;
        shared_ports& ports_;
        std::size_t buffer_;
        const data_plane_options& dp_;
        net::ip::address local_;
        std::map<std::uint16_t, std::shared_ptr<detail::udp_link>> bound_;
    };

    /// The per-source-IP limits, shared by the threads (under `m`) and by the accepted
    /// connections, whose last reference gives their count back (it may outlive the server).
    struct ip_limits {
        ip_limits(std::size_t max_per_ip, const auth_throttle::limits& l) : conns(max_per_ip), auth(l) {}
        std::mutex m;
        connection_counter conns;
        auth_throttle auth;
    };

    /// A file descriptor in transit between threads; closed if nobody takes it.
    struct fd_holder {
        int fd = -1;
        explicit fd_holder(int f) : fd(f) {}
        fd_holder(const fd_holder&) = delete;
        fd_holder& operator=(const fd_holder&) = delete;
        ~fd_holder() {
            if (fd >= 0) ::close(fd);
        }
        int take() noexcept { return std::exchange(fd, -1); }
    };

    /// One io thread: its io_context, its sessions, its join registry and port sockets.
    struct shard {
        shard(server& s, std::unique_ptr<net::io_context> own_ioc, const std::array<std::byte, 32>& secret)
            : srv(s), own(std::move(own_ioc)), ioc(own ? *own : s.ioc_),
              rng(s.rng_, s.multi_ ? &s.rng_mutex_ : nullptr), joins(s.opt_.joins),
              pool(ioc, s.ports_, s.opt_.udp_socket_buffer, s.opt_.data_plane),
              services{rng, s.credentials_, &pool, &joins, secret}, cpu_timer(ioc) {}

        server& srv;
        std::unique_ptr<net::io_context> own;  // first: outlives every socket and timer below
        net::io_context& ioc;
        std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
        std::thread thread;
        serialized_entropy rng;
        join_registry joins;
        udp_pool pool;
        server_services services;
        detail::shared_counters counters;
        cpu_sampler cpu;
        net::steady_timer cpu_timer;
        bool stopped = true;  // this thread's view
        std::atomic<std::size_t> live{0};
        std::atomic<std::size_t> pending{0};
        std::map<const server_session*, std::shared_ptr<session_driver>> drivers;

        void start() {
            if (own) {
                own->restart();
                work.emplace(own->get_executor());
                net::post(ioc, [this] { begin(); });
                thread = std::thread([this] { own->run(); });
            } else {
                begin();
            }
        }
        void begin() {
            stopped = false;
            if (srv.opt_.sample_cpu) tick_cpu();
        }

        void stop_sessions() {
            stopped = true;
            cpu_timer.cancel();
            // Sessions release ports and join tokens into the pool and registry, which outlive them.
            auto all = drivers;
            for (auto& [s, d] : all) d->stop();
            for (auto& [s, d] : drivers) srv.forget(*this, *d);
            drivers.clear();
            pending.store(joins.pending(), std::memory_order_relaxed);
        }

        void tick_cpu() {
            if (auto load = cpu.sample())
                for (auto& [s, d] : drivers) d->set_cpu(*load);
            cpu_timer.expires_after(std::chrono::seconds(1));
            cpu_timer.async_wait([this](const boost::system::error_code& ec) {
                if (!ec && !stopped) tick_cpu();
            });
        }

        /// A connection accepted for this thread (now on this thread's io_context).
        void accept(net::ip::tcp::socket sock) {
            boost::system::error_code ec;
            const auto remote = sock.remote_endpoint(ec);
            if (ec) return;
            const auto local = sock.local_endpoint(ec);
            if (ec) return;
            if (stopped) return;
            const endpoint peer = to_kit(remote);
            // Per source IP: an address that failed to log in too often, or that holds too many
            // connections, is closed before HELLO.
            const char* why = nullptr;
            {
                auto& lim = *srv.ip_limits_;
                std::lock_guard<std::mutex> lk(lim.m);
                if (lim.auth.blocked(peer.address, clock::now())) why = "too many failed logins from this address";
                else if (!lim.conns.try_add(peer.address)) why = "too many connections from this address";
            }
            if (why) {
                srv.notify([&] { srv.observer_.on_refused(peer, why); });
                sock.close(ec);
                return;
            }
            // Counted: from here on the link's last reference gives the count back, whichever
            // way the connection ends (refused, failed, finished, handed to the test it joins).
            std::shared_ptr<detail::tcp_link> link(new detail::tcp_link(std::move(sock)),
                                                   [lim = srv.ip_limits_, ip = peer.address](detail::tcp_link* l) {
                                                       delete l;
                                                       std::lock_guard<std::mutex> lk(lim->m);
                                                       lim->conns.remove(ip);
                                                   });
            // §12.4: over the limit, close instead of HELLO — unless this may be a JOIN of a test
            // waiting for its connections (then the COMMAND check in admit() applies).
            session_admission::ticket ticket;
            bool admitted = false;
            {
                std::lock_guard<std::mutex> lk(srv.admission_mutex_);
                admitted = srv.admission_.admit_connection(peer.address, joins, ticket);
            }
            if (!admitted) {
                srv.notify([&] { srv.observer_.on_refused(peer, "max sessions reached"); });
                link->close();
                return;
            }
            link->sock.set_option(net::ip::tcp::no_delay(true), ec);
            auto d = std::make_shared<session_driver>(*this, ++srv.next_id_, remote.address(), peer, local.address(),
                                                      clock::now());
            d->ticket_ = ticket;
            if (srv.opt_.trace_control) {
                d->set_trace([this, w = std::weak_ptr<session_driver>(d)](std::uint32_t conn, bool sent, std::span<const std::byte> b) {
                    if (auto s = w.lock()) srv.notify([&] { srv.observer_.on_control(s->view(), conn, sent, b); });
                });
            }
            d->attach(0, std::move(link));
            drivers[&d->session()] = d;
            live.fetch_add(1, std::memory_order_relaxed);
            srv.live_.fetch_add(1);
            d->pump();
        }

        /// The connection of `from` was a JOIN: move it into the target session's driver (on
        /// this same thread: the registry that matched it is this thread's).
        void handoff(session_driver& from, const connection_handoff& h) {
            auto it = drivers.find(h.target);
            auto link = from.detach(0);
            if (it == drivers.end() || !link) {
                if (link) link->close();
                return;
            }
            it->second->attach(h.conn, std::move(link));
            it->second->pump();
        }

        void remove(session_driver& d) {
            if (drivers.erase(&d.session())) srv.forget(*this, d);
            pending.store(joins.pending(), std::memory_order_relaxed);
        }
    };

    class session_driver final : public detail::driver {
    public:
        session_driver(shard& sh, std::uint64_t id, const net::ip::address& peer_ip, const endpoint& peer,
                       const net::ip::address& local, time_point now)
            : driver(sh.ioc, sh.srv.opt_.data_plane, &sh.counters), sh_(sh), srv_(sh.srv), id_(id), peer_ip_(peer_ip),
              peer_(peer), local_(local),
              session_(std::make_unique<server_session>(srv_.opt_.session, sh.services, peer, now)) {}

        server_session& session() { return *session_; }
        const endpoint& peer() const { return peer_; }
        std::uint64_t id() const { return id_; }
        bool counted() const { return ticket_.counts_as_test(); }
        bool refused() const { return refused_; }
        void set_cpu(std::uint8_t load) { session_->set_local_cpu(load); }
        server_test_view view() const { return {id_, peer_, *session_}; }

    protected:
        btest::detail::session_core& core() override { return *session_; }
        void feed(std::uint32_t conn, time_point now, std::span<const std::byte> bytes) override {
            sh_.pool.set_local_address(local_);
            const bool had_command = session_->command().has_value();
            session_->feed(conn, now, bytes);
            if (!had_command && session_->command() && !retired_by_join_) admit(now);
        }
        void timer_fired(time_point now) override { session_->on_timer(now); }
        void on_event(event& ev) override {
            if (auto* h = std::get_if<connection_handoff>(&ev)) {
                retired_by_join_ = true;
                sh_.handoff(*this, *h);
                retire();
                return;
            }
            if (auto* a = std::get_if<auth_result>(&ev); a && !a->ok) {
                auto& lim = *srv_.ip_limits_;
                std::lock_guard<std::mutex> lk(lim.m);
                lim.auth.record_failure(peer_.address, clock::now());
            }
            if (auto* t = std::get_if<test_started>(&ev); t && t->proto == protocol::udp) {
                if (auto u = sh_.pool.socket(session_->udp_port())) udp_.push_back(std::move(u));
            }
            if (!refused_) srv_.notify([&] { srv_.observer_.on_event(view(), ev); });
        }
        std::size_t udp_socket_for(const datagram&) const override { return 0; }
        net::ip::udp::endpoint udp_destination(const datagram& d) const override {
            return {peer_ip_, d.port};  // the accepted peer's address, IPv6 scope id included
        }
        void on_done() override { sh_.remove(*this); }
        void pumped() override {
            if (srv_.multi_) sh_.pending.store(sh_.joins.pending(), std::memory_order_relaxed);
        }

    private:
        /// The COMMAND arrived: count this test, or refuse it after HELLO when the server is full
        /// (it was let in as a possible JOIN of a pending test).
        void admit(time_point now) {
            bool ok = false;
            {
                std::lock_guard<std::mutex> lk(srv_.admission_mutex_);
                ok = srv_.admission_.admit_command(ticket_);
            }
            if (!ok) {
                refused_ = true;
                srv_.notify([&] { srv_.observer_.on_refused(peer_, "max sessions reached"); });
                session_->refuse(now);  // close: no reply word (§12.4)
            }
        }

        shard& sh_;
        server& srv_;
        std::uint64_t id_;
        net::ip::address peer_ip_;
        endpoint peer_;
        net::ip::address local_;
        std::unique_ptr<server_session> session_;
        session_admission::ticket ticket_;   // guarded by the server's admission_mutex_
        bool refused_ = false;
        bool retired_by_join_ = false;

        friend class server;
    };

    /// Observer calls, one at a time across the threads.
    template <class F>
    void notify(F&& f) {
        if (!multi_) return f();
        std::lock_guard<std::recursive_mutex> lk(observer_mutex_);
        f();
    }

    /// A removed session no longer counts.
    void forget(shard& s, session_driver& d) {
        s.live.fetch_sub(1, std::memory_order_relaxed);
        live_.fetch_sub(1);
        std::lock_guard<std::mutex> lk(admission_mutex_);
        admission_.release(d.ticket_);
    }

    /// The io thread of a peer: by its IP address, so that its JOINs follow its test.
    shard& shard_for(const net::ip::address& a) {
        if (shards_.size() == 1) return *shards_[0];
        std::uint32_t h = 2166136261u;
        auto mix = [&](const auto& bytes) {
            for (auto b : bytes) h = (h ^ b) * 16777619u;
        };
        if (a.is_v4()) mix(a.to_v4().to_bytes());
        else mix(a.to_v6().to_bytes());
        return *shards_[h % shards_.size()];
    }

    void accept(const std::shared_ptr<net::ip::tcp::acceptor>& acc) {
        acc->async_accept([this, acc](const boost::system::error_code& ec, net::ip::tcp::socket sock) {
            if (ec == net::error::operation_aborted || !acc->is_open()) return;
            if (!ec) route(std::move(sock));
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

    void route(net::ip::tcp::socket sock) {
        boost::system::error_code ec;
        const auto remote = sock.remote_endpoint(ec);
        if (ec) return;
        shard& t = shard_for(remote.address());
        if (&t.ioc == &ioc_) return t.accept(std::move(sock));
        const auto proto = remote.protocol();
        auto fd = std::make_shared<fd_holder>(sock.release(ec));
        if (ec) return;
        net::post(t.ioc, [&t, fd, proto] {
            net::ip::tcp::socket s(t.ioc);
            boost::system::error_code e;
            s.assign(proto, fd->take(), e);
            if (!e) t.accept(std::move(s));
        });
    }

    void join_threads() {
        for (auto& s : shards_) {
            s->work.reset();
            if (s->thread.joinable()) s->thread.join();
        }
    }

    net::io_context& ioc_;
    server_options opt_;
    entropy& rng_;
    const auth::credential_store* credentials_;
    server_observer& observer_;
    bool multi_ = false;
    std::mutex rng_mutex_;
    std::recursive_mutex observer_mutex_;  // an observer may stop the server from inside a call
    mutable shared_ports ports_;
    std::atomic<std::size_t> live_{0};
    std::mutex admission_mutex_;
    session_admission admission_;   // §12.4 over all threads, under admission_mutex_
    std::shared_ptr<ip_limits> ip_limits_;  // per source IP, over all threads, under its mutex
    std::atomic<std::uint64_t> next_id_{0};
    std::vector<std::shared_ptr<net::ip::tcp::acceptor>> acceptors_;
    std::vector<std::unique_ptr<shard>> shards_;
    bool stopped_ = true;
};

} // namespace btest::asio
