// A btest server for every transport: listens on IPv4 and/or IPv6, gives each new connection to
// the kit's front end (server/front.hpp) until its first message says what it is, runs one
// server_session per test (PROTOCOL §4) in a basic_driver, attaches JOINs to the test they
// join (§7), binds each UDP test's port from a block pool (§8.1) and applies every server limit
// through the kit's server_policy (§12.4, per-address limits, the address filter). The
// protocol — handshakes, auth, STATUS, pacing, UDP filtering, routing — is the kit's.
//
// Threads: with server_options::threads = 1 (the default) everything runs on the reactor given
// to the constructor. With N > 1 the server adds N − 1 reactors of its own, each on a thread;
// the listeners stay on the given reactor and every accepted connection is routed by its
// peer's IP address to one of the N, so a test stays on one thread and a JOIN (which must come
// from the same IP, §7) always lands on the thread — and the front end and join registry — of
// the test it joins. The policy (one for all threads) and the UDP port allocator are shared
// under locks. Observer calls are serialised (never two at once) but come from any thread.
//
// Thread safety: call start()/stop() from the given reactor's thread (or before it runs); the
// accessors (live_sessions(), counters(), ...) may be called from any thread.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
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
#include <utility>
#include <vector>

#include <sys/socket.h>

#include "btest/auth/credentials.hpp"
#include "btest/core/entropy.hpp"
#include "btest/server/front.hpp"
#include "btest/server/policy.hpp"
#include "btest/server/port_blocks.hpp"
#include "btest/session/server_session.hpp"
#include "btest/transport/cpu_sampler.hpp"
#include "btest/transport/detail/tcp_io.hpp"
#include "btest/transport/driver.hpp"
#include "btest/transport/options.hpp"
#include "btest/transport/reactor.hpp"
#include "btest/transport/socket.hpp"

namespace btest::transport {

template <reactor R>
class basic_server {
public:
    /// `rng` must be a CSPRNG (challenges, tokens, EC-SRP5 secrets); with several threads the
    /// server serialises its use. `credentials` is required for md5/ec_srp5; its lookups may
    /// run on any io thread. All references must outlive the server.
    basic_server(R& r, server_options opt, entropy& rng, const auth::credential_store* credentials,
                 server_observer& observer)
        : r_(r), opt_(std::move(opt)), rng_(rng), credentials_(credentials), observer_(observer),
          policy_(server_policy::limits{{opt_.max_sessions, 64}, opt_.max_connections_per_ip, opt_.auth_failures},
                  opt_.addresses),
          ports_(opt_.udp_ports) {
        opt_.threads = std::max<std::size_t>(opt_.threads, 1);
        multi_ = opt_.threads > 1;
        auto& burst = opt_.session.udp.burst_max;
        burst = std::max(burst, opt_.data_plane.min_udp_burst);
        opt_.session.ask_admission = opt_.admission != nullptr;
        std::array<std::byte, 32> secret{};
        rng_.fill(secret);
        for (std::size_t i = 0; i < opt_.threads; ++i)
            shards_.push_back(std::make_unique<shard>(*this, i == 0 ? nullptr : R::owned(), secret));
    }
    basic_server(const basic_server&) = delete;
    basic_server& operator=(const basic_server&) = delete;
    ~basic_server() {
        stop();
        join();
    }

    /// Opens the listeners and starts accepting. Error: no listener could be opened (the first
    /// failure), or a required one failed.
    std::error_code start() {
        // The file of zeros TCP senders share is made now, not by the first test: a descriptor
        // the server holds from its start, not one that appears with its first test.
        if (opt_.data_plane.tcp_zerocopy) (void)detail::zero_file();
        std::error_code first;
        auto open = [&](const socket_address& at, bool required) {
            std::error_code ec;
            auto fd = listen_tcp(at, ec);
            if (!fd) {
                if (required) {
                    if (!first) first = ec;
                } else {
                    notify([&] { observer_.on_listen_skipped(to_kit(at), ec); });
                }
                return;
            }
            auto l = std::make_unique<listener>(*this, std::move(fd));
            l->bound = local_address(l->fd.get()).value_or(at);
            notify([&] { observer_.on_listening(to_kit(l->bound)); });
            listeners_.push_back(std::move(l));
        };
        // IPv6 is optional when it was only the default and the host has none.
        if (opt_.listen_v4) open(socket_address::from({*opt_.listen_v4, opt_.port}), true);
        if (opt_.listen_v6)
            open(socket_address::from({*opt_.listen_v6, opt_.port}, opt_.listen_v6_scope_id), opt_.require_v6 || !opt_.listen_v4);
        if (first) {
            stop();
            return first;
        }
        if (listeners_.empty()) return std::make_error_code(std::errc::address_not_available);
        join();  // a restart after stop()
        stopped_ = false;
        for (auto& s : shards_) s->start();
        for (auto& l : listeners_) r_.want(l->watch, true, false);
        return {};
    }

    /// Stops accepting and ends every test (each gets its session_closed, reason stopped): at
    /// once for the tests on the calling thread's reactor, soon after for the other threads'
    /// (whose threads then end; join() or the destructor waits for them).
    void stop() {
        stopped_ = true;
        listeners_.clear();
        for (auto& s : shards_) {
            if (!s->own) {
                s->stop_sessions();
            } else if (s->running) {
                s->r.post([p = s.get()] {
                    p->stop_sessions();
                    p->r.stop();
                });
            }
        }
    }

    /// After stop(): waits until the server's own io threads have ended their tests and exited.
    /// Not from one of those threads.
    void join() {
        for (auto& s : shards_) {
            if (s->thread.joinable()) s->thread.join();
            s->running = false;
        }
    }

    std::vector<endpoint> listening() const {
        std::vector<endpoint> v;
        for (const auto& l : listeners_) v.push_back(to_kit(l->bound));
        return v;
    }
    /// Connections alive: tests, and connections the front ends still hold.
    std::size_t live_sessions() const noexcept {
        std::size_t n = 0;
        for (const auto& s : shards_) n += s->live.load(std::memory_order_relaxed);
        return n;
    }
    /// UDP port blocks in use.
    std::size_t udp_blocks_in_use() const {
        std::lock_guard<std::mutex> lk(ports_.m);
        return ports_.alloc.active();
    }
    /// Multi-connection tests still waiting for their JOINs, over all threads.
    std::size_t pending_joins() const noexcept {
        std::size_t n = 0;
        for (const auto& s : shards_) n += s->pending.load(std::memory_order_relaxed);
        return n;
    }
    /// io threads (including the constructor's reactor).
    std::size_t threads() const noexcept { return shards_.size(); }
    /// Live TCP connections from `ip` as the per-IP limit counts them.
    std::size_t connections_from(const ip_address& ip) const {
        std::lock_guard<std::mutex> lk(policy_.m);
        return policy_.inner.connections().count(ip);
    }
    /// Connections alive on each io thread (index 0: the constructor's reactor).
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
    using tcp_link = detail::tcp_link<R>;

    /// The kit's policy, one for all threads, behind a lock.
    struct locked_policy final : front_policy {
        explicit locked_policy(const server_policy::limits& l, address_filter f) : inner(l, std::move(f)) {}
        std::optional<refusal> admit_connection(const ip_address& ip, time_point now, bool maybe_join,
                                                session_admission::ticket& t) override {
            std::lock_guard<std::mutex> lk(m);
            return inner.admit_connection(ip, now, maybe_join, t);
        }
        bool admit_test(session_admission::ticket& t) override {
            std::lock_guard<std::mutex> lk(m);
            return inner.admit_test(t);
        }
        void release(session_admission::ticket& t) override {
            std::lock_guard<std::mutex> lk(m);
            inner.release(t);
        }
        void connection_closed(const ip_address& ip) override {
            std::lock_guard<std::mutex> lk(m);
            inner.connection_closed(ip);
        }
        void auth_failed(const ip_address& ip, time_point now) override {
            std::lock_guard<std::mutex> lk(m);
            inner.auth_failed(ip, now);
        }
        mutable std::mutex m;
        server_policy inner;
    };

    /// The one port allocator of the server (§8.1), shared by the threads.
    struct shared_ports {
        explicit shared_ports(port_block_allocator::limits l) : alloc(l) {}
        mutable std::mutex m;
        port_block_allocator alloc;
    };

    /// The embedder's entropy, one draw at a time across the threads.
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

    /// A listening socket on the constructor's reactor; accepting pauses briefly when the
    /// process is out of descriptors.
    struct listener {
        listener(basic_server& s, unique_fd f)
            : srv(s), fd(std::move(f)), retry(s.r_, [this] { srv.r_.want(watch, true, false); }) {
            watch = srv.r_.watch_fd(fd.get(), [this](std::uint8_t) { srv.accept_all(*this); });
        }
        listener(const listener&) = delete;
        listener& operator=(const listener&) = delete;
        ~listener() { srv.r_.unwatch(watch); }
        basic_server& srv;
        unique_fd fd;
        typename R::watch watch;
        socket_address bound;
        typename R::timer retry;
    };

    /// A connection in the front end: what it needs until its first message is routed.
    struct incoming {
        std::unique_ptr<tcp_link> link;
        std::uint64_t id = 0;
        socket_address peer;
        socket_address local;
    };

    /// One io thread: its reactor, its front end (with its join registry) and its tests.
    struct shard final : detail::tcp_sink<R> {
        shard(basic_server& s, std::unique_ptr<R> own_reactor, const std::array<std::byte, 32>& secret)
            : srv(s), own(std::move(own_reactor)), r(own ? *own : s.r_), rng(s.rng_, s.multi_ ? &s.rng_mutex_ : nullptr),
              front(front_config{s.opt_.session.limits.handshake, s.opt_.session.max_conn_count, s.opt_.joins}, s.policy_),
              services{rng, s.credentials_, &front.joins(), secret}, front_timer(r, [this] { front_fired(); }),
              cpu_timer(r, [this] { tick_cpu(); }) {}
        ~shard() { close_incoming(); }

        basic_server& srv;
        std::unique_ptr<R> own;  // first: outlives every socket and timer below
        R& r;
        std::thread thread;
        bool running = false;
        serialized_entropy rng;
        server_front front;
        server_services services;
        detail::shared_counters counters;
        cpu_sampler cpu;
        typename R::timer front_timer;
        std::optional<time_point> front_armed;
        typename R::timer cpu_timer;
        bool stopped = true;  // this thread's view
        std::atomic<std::size_t> live{0};
        std::atomic<std::size_t> pending{0};
        std::map<conn_id, incoming> waiting;
        std::map<const server_session*, std::shared_ptr<session_driver>> drivers;

        void start() {
            running = true;
            if (own) {
                r.post([this] { begin(); });
                thread = std::thread([this] { r.run(); });
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
            front_timer.cancel();
            front_armed.reset();
            close_incoming();
            auto all = drivers;  // each removes itself as it ends
            for (auto& [s, d] : all) d->stop();
            drivers.clear();
            update_counts();
        }
        void close_incoming() {
            for (auto& [id, in] : waiting) front.closed(id, clock::now());
            waiting.clear();
        }

        void update_counts() {
            live.store(drivers.size() + front.pending(), std::memory_order_relaxed);
            pending.store(front.joins().pending(), std::memory_order_relaxed);
        }

        void tick_cpu() {
            if (stopped) return;
            if (auto load = cpu.sample())
                for (auto& [s, d] : drivers) d->set_cpu(*load);
            cpu_timer.arm(clock::now() + std::chrono::seconds(1));
        }

        // ---- the front end ---------------------------------------------------------------

        /// A connection accepted for this thread.
        void accept(unique_fd fd, const socket_address& peer) {
            if (stopped) return;
            const auto local = local_address(fd.get());
            if (!local) return;
            const auto now = clock::now();
            const auto id = front.accept(now, to_kit(peer));
            incoming in;
            in.id = ++srv.next_id_;
            in.peer = peer;
            in.local = *local;
            set_nodelay(fd.get());
            in.link = std::make_unique<tcp_link>(r, std::move(fd), this);
            in.link->index = id;
            // HELLO (a fresh socket takes four bytes at once); nothing when refused at once.
            std::array<std::byte, 8> hello{};
            if (const auto n = front.write_to(id, now, hello)) {
                trace(in, true, std::span<const std::byte>(hello.data(), n));
                (void)::send(in.link->fd.get(), hello.data(), n, MSG_DONTWAIT | MSG_NOSIGNAL);
            }
            waiting.emplace(id, std::move(in));
            route(now);
        }

        void on_tcp_ready(tcp_link& l, std::uint8_t) override {
            auto it = waiting.find(static_cast<conn_id>(l.index));
            if (it == waiting.end()) return;
            auto& in = it->second;
            const auto now = clock::now();
            const ssize_t n = ::recv(l.fd.get(), l.rbuf.get(), l.rcap, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
            if (n <= 0) {
                // Closed before its first message: the front end forgets it.
                const auto why = n == 0 ? make_error_code(errc::peer_closed) : last_error();
                const connection_view v{in.id, to_kit(in.peer)};
                front.closed(it->first, now);
                waiting.erase(it);
                srv.notify([&] { srv.observer_.on_dropped(v, why); });
                route(now);
                return;
            }
            const std::span<const std::byte> got(l.rbuf.get(), static_cast<std::size_t>(n));
            trace(in, false, got);
            const auto took = front.feed(it->first, now, got);
            surplus = got.subspan(took);
            route(now);
            surplus = {};
        }

        /// Acts on the front end's decisions.
        void route(time_point now) {
            while (auto rt = front.poll_route()) {
                auto it = waiting.find(route_conn(*rt));
                if (it == waiting.end()) continue;
                incoming in = std::move(it->second);
                waiting.erase(it);
                if (auto* t = std::get_if<route_test>(&*rt)) {
                    auto d = std::make_shared<session_driver>(*this, in, t->command, t->ticket, now);
                    drivers[&d->session()] = d;
                    attach(*d, 0, in);
                } else if (auto* j = std::get_if<route_join>(&*rt)) {
                    auto d = drivers.find(j->session);
                    if (d == drivers.end()) {
                        srv.policy_.connection_closed(to_kit(in.peer).address);
                        continue;  // (the link closes as it goes)
                    }
                    attach(*d->second, j->session->join(now), in);
                } else {
                    const auto& c = std::get<route_close>(*rt);
                    const connection_view v{in.id, c.peer};
                    if (c.refused) srv.notify([&] { srv.observer_.on_refused(c.peer, *c.refused); });
                    else srv.notify([&] { srv.observer_.on_dropped(v, c.error); });
                }
            }
            update_counts();
            arm_front();
        }

        /// A routed connection joins its session's driver, with the bytes that came behind its
        /// first message; its socket's per-IP count goes back when it closes.
        void attach(session_driver& d, std::uint32_t index, incoming& in) {
            in.link->on_close = [p = &srv.policy_, ip = to_kit(in.peer).address] { p->connection_closed(ip); };
            auto rest = std::vector<std::byte>(surplus.begin(), surplus.end());
            surplus = {};
            d.attach(index, std::move(in.link));
            d.feed_early(index, rest);
            d.pump();
        }

        void arm_front() {
            const auto dl = front.next_deadline();
            if (dl == front_armed) return;
            front_armed = dl;
            if (dl) front_timer.arm(*dl);
            else front_timer.cancel();
        }
        void front_fired() {
            front_armed.reset();
            front.on_timer(clock::now());
            route(clock::now());
        }

        void trace(const incoming& in, bool sent, std::span<const std::byte> b) {
            if (!srv.opt_.trace_control) return;
            const connection_view v{in.id, to_kit(in.peer)};
            srv.notify([&] { srv.observer_.on_control(v, 0, sent, b); });
        }

        void remove(session_driver& d) {
            drivers.erase(&d.session());
            update_counts();
        }

        std::span<const std::byte> surplus;  ///< bytes behind the first message being routed
    };

    class session_driver final : public basic_driver<R> {
    public:
        session_driver(shard& sh, const incoming& in, const wire::command& cmd, session_admission::ticket ticket,
                       time_point now)
            : basic_driver<R>(sh.r, sh.srv.opt_.data_plane, sh.counters), sh_(sh), srv_(sh.srv), id_(in.id),
              peer_addr_(in.peer), local_(in.local), peer_(to_kit(in.peer)), ticket_(ticket),
              session_(std::make_unique<server_session>(srv_.opt_.session, sh.services, peer_, cmd, now)) {
            if (srv_.opt_.trace_control)
                this->set_trace([this](std::uint32_t conn, bool sent, std::span<const std::byte> b) {
                    srv_.notify([&] { srv_.observer_.on_control(connection_view{id_, peer_}, conn, sent, b); });
                });
        }
        ~session_driver() override { release(); }

        server_session& session() { return *session_; }
        void set_cpu(std::uint8_t load) { session_->set_local_cpu(load); }
        server_test_view view() const { return server_test_view{{id_, peer_}, *session_}; }

    protected:
        btest::session& sess() override { return *session_; }
        void on_event(const event& ev) override {
            if (auto* a = std::get_if<auth_result>(&ev); a && !a->ok) srv_.policy_.auth_failed(peer_.address, clock::now());
            srv_.notify([&] { srv_.observer_.on_event(view(), ev); });
        }
        void on_request(const request& rq) override {
            const auto now = clock::now();
            if (auto* p = std::get_if<udp_port_request>(&rq)) {
                udp_socket sock;
                port_ = srv_.acquire_ports(p->count, local_, sock);
                if (port_) this->add_udp(std::move(sock));
                session_->udp_port_ready(now, port_);
            } else if (std::holds_alternative<admission_request>(rq)) {
                if (!srv_.opt_.admission) {
                    session_->admit(now);
                    return;
                }
                srv_.opt_.admission->admit(admission_query{id_, peer_, session_->user(), session_->command()}, control());
            } else if (std::holds_alternative<budget_request>(rq)) {
                if (srv_.opt_.admission)
                    srv_.opt_.admission->refill(id_, session_->budget_left(), session_->summary(now), control());
            }
        }
        socket_address udp_destination(const datagram& d) const override {
            return peer_addr_.with_port(d.port);  // the accepted peer's address, IPv6 scope id included
        }
        void on_done() override {
            release();
            sh_.remove(*this);
        }

    private:
        /// The admission hook's handle on this test: what it decides runs on this test's thread
        /// (and nowhere once the test is over).
        test_control control() {
            return test_control([w = std::weak_ptr<basic_driver<R>>(this->shared_from_this()), r = &sh_.r](
                                    std::function<void(server_session&)> f) {
                r->post([w, f = std::move(f)] {
                    auto d = w.lock();
                    if (!d || d->done()) return;
                    f(static_cast<session_driver&>(*d).session());
                    d->pump();
                });
            });
        }

        void release() {
            if (port_) {
                srv_.release_ports(*port_);
                port_.reset();
            }
            srv_.policy_.release(ticket_);
        }

        shard& sh_;
        basic_server& srv_;
        std::uint64_t id_;
        socket_address peer_addr_;
        socket_address local_;
        endpoint peer_;
        session_admission::ticket ticket_;
        std::unique_ptr<server_session> session_;
        std::optional<std::uint16_t> port_;
    };

    /// §8.1 with real binds: the shared allocator finds a free block whose first port binds on
    /// the control connection's local address (so the client sees datagrams from the address it
    /// connected to).
    std::optional<std::uint16_t> acquire_ports(std::uint16_t count, const socket_address& local, udp_socket& out) {
        std::lock_guard<std::mutex> lk(ports_.m);
        return ports_.alloc.acquire(count, [&](std::uint16_t p) {
            out = open_udp(local.with_port(p), opt_.data_plane.udp_socket_buffer, opt_.data_plane.udp_gso,
                           opt_.data_plane.udp_gro);
            return static_cast<bool>(out.fd);
        });
    }
    void release_ports(std::uint16_t first) {
        std::lock_guard<std::mutex> lk(ports_.m);
        ports_.alloc.release(first);
    }

    /// Observer calls, one at a time across the threads.
    template <class F>
    void notify(F&& f) {
        if (!multi_) return f();
        std::lock_guard<std::recursive_mutex> lk(observer_mutex_);
        f();
    }

    /// The io thread of a peer: by its IP address, so that its JOINs follow its test.
    shard& shard_for(const ip_address& a) {
        if (shards_.size() == 1) return *shards_[0];
        std::uint32_t h = 2166136261u;
        for (std::size_t i = 0; i < (a.family == ip_family::v4 ? 4u : 16u); ++i) h = (h ^ a.bytes[i]) * 16777619u;
        return *shards_[h % shards_.size()];
    }

    void accept_all(listener& l) {
        // A bounded number per wake-up; then a continuation (the reactor may report edges only).
        for (int i = 0; i < 64; ++i) {
            if (stopped_) return;
            socket_address peer;
            peer.length = sizeof peer.storage;
            unique_fd fd(::accept4(l.fd.get(), peer.data(), &peer.length, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (fd) {
                // A peer that already hung up (a flood of connect-and-drop sits in the backlog
                // behind a real client) is closed here, before it takes a handshake slot: the
                // client speaks only after our HELLO, so anything but "no data yet" or data
                // means EOF or a reset.
                std::byte probe{};
                const auto got = ::recv(fd.get(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) continue;
                route(std::move(fd), peer);
                continue;
            }
            if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                // Out of descriptors: retry shortly instead of spinning.
                r_.want(l.watch, false, false);
                l.retry.arm(clock::now() + std::chrono::milliseconds(100));
            }
            return;
        }
        r_.post([this, &l] {
            for (auto& x : listeners_)
                if (x.get() == &l) return accept_all(l);
        });
    }

    void route(unique_fd fd, const socket_address& peer) {
        shard& t = shard_for(to_kit(peer).address);
        if (&t.r == &r_) return t.accept(std::move(fd), peer);
        auto held = std::make_shared<unique_fd>(std::move(fd));
        t.r.post([&t, held, peer] { t.accept(std::move(*held), peer); });
    }

    R& r_;
    server_options opt_;
    entropy& rng_;
    const auth::credential_store* credentials_;
    server_observer& observer_;
    bool multi_ = false;
    std::mutex rng_mutex_;
    std::recursive_mutex observer_mutex_;  // an observer may stop the server from inside a call
    locked_policy policy_;
    mutable shared_ports ports_;
    std::atomic<std::uint64_t> next_id_{0};
    std::vector<std::unique_ptr<listener>> listeners_;
    std::vector<std::unique_ptr<shard>> shards_;
    bool stopped_ = true;
};

} // namespace btest::transport
