// The in-memory transport: a discrete-event world on a virtual clock (DESIGN.md, "the test
// bench"). A server host and any number of client hosts, joined per direction by a link
// (link.hpp), carry TCP-like byte streams (reliable, in order, windowed) and UDP-like
// datagrams. The server side is the kit's server as a real transport runs it: a front end
// (server/front.hpp) answers HELLO and routes each connection's first message to a new
// server_session or to the test it joins, under the kit's server_policy. Sessions are driven
// exactly as a real transport drives them: read → feed → poll events and requests → write →
// arm the timer at next_deadline(). Time jumps from one event to the next (scheduler.hpp), so
// `run_for(10s)` takes milliseconds and gives the same numbers every time.
//
// Datagrams carry their sequence number and length through the link; the receiver sees the
// right length with the sequence number in front and zero fill behind it (payload contents
// are checked by the wire/ tests, not here).
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "btest/auth/credentials.hpp"
#include "btest/core/address.hpp"
#include "btest/core/bytes.hpp"
#include "btest/core/entropy.hpp"
#include "btest/server/front.hpp"
#include "btest/server/policy.hpp"
#include "btest/server/port_blocks.hpp"
#include "btest/session/client_session.hpp"
#include "btest/session/server_session.hpp"
#include "btest/transport/memory/link.hpp"
#include "btest/transport/memory/scheduler.hpp"

namespace btest::memory {

/// How the world answers a server session's admission_request (server_config::ask_admission).
struct admission_decision {
    bool admit = true;
    byte_budget budget{};
    std::uint64_t refill_below = 0;
    budget_end end = budget_end::quota_exhausted;
    std::error_code refusal = make_error_code(errc::quota_exhausted);
};

struct world_config {
    server_config server{};
    /// (user, password) pairs for md5 / ec_srp5 servers.
    std::vector<std::pair<std::string, std::string>> users;
    ip_address server_address = ip_address::v4(10, 0, 0, 1);
    std::uint64_t seed = 0x5eed;
    std::size_t max_sessions = 100;             ///< the policy's test limit (§12.4)
    std::size_t max_connections_per_ip = 0;     ///< the policy's per-address limit; 0: unlimited
    auth_throttle::limits auth_failures{0};     ///< the policy's login throttle; off by default
    std::uint8_t server_cpu = 0;                ///< CPU load the server sessions report
    join_registry::limits joins{};
    port_block_allocator::limits ports{};
    /// Answers admission requests; empty: admit without a budget.
    std::function<admission_decision(const server_session&)> admission;
    /// Answers budget requests with more budget; empty or nullopt: no more.
    std::function<std::optional<byte_budget>(const server_session&)> refill;
};

class world {
    struct driver;
    struct tcp_conn;

public:
    /// A client host: its session, config and the links of its two directions.
    class client_host {
    public:
        client_session& session() { return *session_; }
        const client_session& session() const { return *session_; }
        /// The session exists once the simulated TCP connect completed (one round trip).
        bool has_session() const { return session_ != nullptr; }
        bool finished() const { return session_ && session_->finished(); }
        test_summary summary() const { return session_ ? session_->summary() : test_summary{}; }
        const link_stats& up() const { return up_.stats(); }
        const link_stats& down() const { return down_.stats(); }
        const std::vector<event>& events() const { return events_; }
        const ip_address& address() const { return address_; }
        client_config& config() { return cfg_; }
        std::size_t bound_udp_ports() const { return bound_.size(); }

    private:
        friend class world;
        client_config cfg_;
        ip_address address_;
        link up_, down_;
        seeded_entropy rng_{1};
        client_services services_{rng_};
        std::unique_ptr<client_session> session_;
        driver* driver_ = nullptr;
        std::vector<std::uint16_t> bound_;
        std::vector<event> events_;
    };

    /// A scripted peer: raw bytes over a TCP connection to the server, for hostile and
    /// protocol-edge tests.
    struct raw_peer {
        std::vector<std::byte> received;
        bool closed_by_server = false;
        bool connected = false;
        std::size_t index = 0;
    };

    explicit world(world_config cfg = {})
        : cfg_(std::move(cfg)), rng_(cfg_.seed),
          policy_(server_policy::limits{{cfg_.max_sessions, 64}, cfg_.max_connections_per_ip, cfg_.auth_failures}),
          front_(front_config{cfg_.server.limits.handshake, cfg_.server.max_conn_count, cfg_.joins}, policy_),
          ports_(cfg_.ports), credentials_(rng_), services_{rng_, &credentials_, &front_.joins(), {}} {
        rng_.fill(services_.secret);
        for (const auto& [u, p] : cfg_.users) credentials_.add(u, p);
        scratch_.resize(max_datagram_payload);
        write_buf_.resize(256 * 1024);
    }

    /// Convenience: one client with the same link model both ways.
    world(const client_config& client, world_config cfg, link_model link = {}) : world(std::move(cfg)) {
        add_client(client, link, link);
    }

    world(const world&) = delete;
    world& operator=(const world&) = delete;
    ~world() {
        // Sessions unregister from the front end's join registry, which must outlive them.
        for (auto& d : drivers_) d->server.reset();
        for (auto& c : clients_) c->session_.reset();
    }

    /// Adds a client host that connects now. Addresses default to 10.0.1.N.
    client_host& add_client(const client_config& cfg, link_model up = {}, link_model down = {},
                            std::optional<ip_address> address = std::nullopt) {
        auto h = std::make_unique<client_host>();
        h->cfg_ = cfg;
        h->address_ = address ? *address
                              : ip_address::v4(10, 0, 1, static_cast<std::uint8_t>(1 + clients_.size()));
        const auto up_seed = up.seed, down_seed = down.seed ^ 0xd0d0;
        h->up_ = link(std::move(up), up_seed);
        h->down_ = link(std::move(down), down_seed);
        h->rng_ = seeded_entropy(cfg_.seed + 7919 * (clients_.size() + 1));
        auto* host = h.get();
        clients_.push_back(std::move(h));
        connect(*host);
        return *host;
    }

    client_host& client(std::size_t i = 0) { return *clients_.at(i); }
    std::size_t client_count() const { return clients_.size(); }

    /// One TCP connection of a client as both sessions index it, with what it delivered.
    struct connection_info {
        std::uint32_t client_conn = 0;
        std::optional<std::uint32_t> server_conn;   ///< index in the server session it belongs to
        const server_session* server = nullptr;
        std::uint64_t up_delivered = 0, down_delivered = 0;
    };
    std::vector<connection_info> connections_of(const client_host& h) const {
        std::vector<connection_info> v;
        for (const auto& c : conns_) {
            if (c->host != &h || c->raw || !c->client) continue;
            connection_info i;
            i.client_conn = c->client_idx;
            if (c->server) {
                i.server_conn = c->server_idx;
                i.server = c->server->server.get();
            }
            i.up_delivered = c->up_delivered;
            i.down_delivered = c->down_delivered;
            v.push_back(i);
        }
        return v;
    }

    /// The network resets client `h`'s connection `client_conn`: both ends see it fail now.
    void reset_connection(client_host& h, std::uint32_t client_conn) {
        for (auto& c : conns_) {
            if (c->host != &h || c->raw || c->client_idx != client_conn || !c->client) continue;
            const std::error_code reset = std::make_error_code(std::errc::connection_reset);
            c->up.clear();
            c->down.clear();
            c->up_inflight = c->down_inflight = 0;
            if (!c->client_closed) {
                c->client_closed = true;
                c->client->core().on_connection_closed(c->client_idx, now(), reset);
                pump(*c->client);
            }
            if (!c->server_closed && c->server) {
                server_socket_closed(*c);
                c->server->core().on_connection_closed(c->server_idx, now(), reset);
                pump(*c->server);
            }
            return;
        }
    }

    /// Opens a raw TCP connection from `from` to the server.
    std::size_t connect_raw(const ip_address& from, link_model l = {}) {
        auto h = std::make_unique<client_host>();
        h->address_ = from;
        h->up_ = link(l, l.seed);
        h->down_ = link(l, l.seed ^ 0xd0d0);
        raw_hosts_.push_back(std::move(h));
        auto* c = new_conn(*raw_hosts_.back());
        c->raw = raws_.size();
        raws_.push_back(raw_peer{});
        raws_.back().index = raws_.size() - 1;
        clock_.at(now() + l.delay, item{item_kind::accept, c});
        clock_.at(now() + 2 * l.delay, item{item_kind::connected, c});
        return raws_.size() - 1;
    }
    raw_peer& raw(std::size_t i) { return raws_.at(i); }
    /// Datagrams for `port` at a raw peer's address go to `sink` (a test's own receiver, e.g.
    /// receiver_model.hpp) with the time, the UDP payload length and the header size H, instead
    /// of being unreachable. The sink must not call back into the world.
    using udp_sink = std::function<void(time_point, std::uint32_t, std::uint32_t)>;
    void bind_raw_udp(const ip_address& address, std::uint16_t port, udp_sink sink) {
        raw_udp_[{address, port}] = std::move(sink);
    }
    void unbind_raw_udp(const ip_address& address, std::uint16_t port) { raw_udp_.erase({address, port}); }
    /// The server session a raw connection belongs to now and its index there; nullopt before
    /// it was routed to one.
    std::optional<std::pair<const server_session*, std::uint32_t>> raw_server_conn(std::size_t i) {
        auto* c = raw_conn(i);
        if (!c || !c->server) return std::nullopt;
        return std::make_pair(static_cast<const server_session*>(c->server->server.get()), c->server_idx);
    }
    void raw_write(std::size_t i, std::span<const std::byte> b) {
        auto* c = raw_conn(i);
        if (c && !c->client_closed) send_tcp(*c, /*up=*/true, b);
    }
    void raw_close(std::size_t i) {
        auto* c = raw_conn(i);
        if (c && !c->client_closed) close_side(*c, /*client_side=*/true);
    }

    time_point now() const { return clock_.now(); }

    /// Runs the world for `d` of virtual time.
    void run_for(duration d) {
        const auto end = now() + d;
        while (!clock_.empty() && *clock_.next() <= end) step();
        clock_.advance_to(end);
    }

    /// Runs until `done()` or `limit` of virtual time passed; returns done().
    bool run_until(const std::function<bool()>& done, duration limit) {
        const auto end = now() + limit;
        while (!done()) {
            if (clock_.empty() || *clock_.next() > end) {
                clock_.advance_to(end);
                return done();
            }
            step();
        }
        return true;
    }

    /// Runs until every client session is finished (or `limit`).
    bool run_until_finished(duration limit) {
        return run_until([&] {
            for (auto& c : clients_) if (!c->finished()) return false;
            return true;
        }, limit);
    }

    // ---- the server side ------------------------------------------------------------------

    /// Every server session ever created (finished ones stay for inspection), in start order.
    std::vector<const server_session*> server_sessions() const {
        std::vector<const server_session*> v;
        for (const auto& d : drivers_) if (d->server) v.push_back(d->server.get());
        return v;
    }
    /// Server sessions that ran a test.
    std::vector<const server_session*> server_tests() const {
        std::vector<const server_session*> v;
        for (const auto& d : drivers_)
            if (d->server && d->server->summary().started) v.push_back(d->server.get());
        return v;
    }
    /// Connections the server holds: sessions alive and connections still in the front end.
    std::size_t live_server_sessions() const { return live_sessions_ + front_.pending(); }
    /// Connections closed by a limit (before HELLO, or a COMMAND at max_sessions).
    std::size_t refused_connections() const { return refused_; }
    std::size_t udp_blocks_in_use() const { return ports_.active(); }
    std::size_t pending_joins() const { return front_.joins().pending(); }
    std::size_t open_tcp_connections() const {
        std::size_t n = 0;
        for (const auto& c : conns_) n += (!c->client_closed || !c->server_closed) ? 1 : 0;
        return n;
    }
    /// Every event of every server session, and a session_closed for each connection the front
    /// end closed for an invalid first message or T_hs (what a server's log shows).
    const std::vector<event>& server_events() const { return server_events_; }
    server_config& server_cfg() { return cfg_.server; }
    server_services& services() { return services_; }
    const server_policy& policy() const { return policy_; }

private:
    enum class item_kind : std::uint8_t { accept, connected, tcp_deliver, tcp_eof, udp_deliver, timer, wake, front_timer };

    struct item {
        item_kind kind;
        void* target = nullptr;
        std::uint64_t a = 0;
        std::uint64_t b = 0;
        std::uint64_t c = 0;
    };

    struct segment {
        time_point at;
        std::vector<std::byte> bytes;
    };

    // A TCP connection between a client host and the server host.
    struct tcp_conn {
        client_host* host = nullptr;
        driver* client = nullptr;            // client-side driver (null for raw peers)
        std::uint32_t client_idx = 0;
        std::optional<conn_id> front;        // in the server's front end, before its route
        driver* server = nullptr;            // server-side driver once routed to a session
        std::uint32_t server_idx = 0;
        bool counted = false;                // the policy counts it until the server closes it
        std::vector<std::byte> front_rest;   // bytes behind the first message, for its session
        endpoint peer;                       // as the server sees it
        std::optional<std::size_t> raw;
        std::deque<segment> up, down;        // in flight
        std::size_t up_inflight = 0, down_inflight = 0;
        bool client_closed = false, server_closed = false;    // that side closed its socket
        bool eof_to_server = false, eof_to_client = false;    // EOF scheduled/delivered
        std::uint64_t up_delivered = 0, down_delivered = 0;  // bytes handed to each session
    };

    // Drives one session: a client_session or a server_session.
    struct driver {
        client_host* host = nullptr;                // client side
        std::unique_ptr<server_session> server;     // server side
        session_admission::ticket ticket;           // server side: counts the test
        std::optional<std::uint16_t> udp_port;      // server side: the port block it holds
        std::vector<tcp_conn*> conns;               // by the session's connection index
        std::uint64_t timer_gen = 0;
        std::optional<time_point> armed;
        bool released = false;
        std::optional<time_point> wake_at;          // earliest pending wake-up
        session& core() { return server ? static_cast<session&>(*server) : static_cast<session&>(*host->session_); }
    };

    // ---- scheduling ----------------------------------------------------------------------

    void step() {
        const item it = clock_.pop();
        switch (it.kind) {
        case item_kind::accept: on_accept(*static_cast<tcp_conn*>(it.target)); break;
        case item_kind::connected: on_connected(*static_cast<tcp_conn*>(it.target)); break;
        case item_kind::tcp_deliver: on_tcp_deliver(*static_cast<tcp_conn*>(it.target), it.a != 0); break;
        case item_kind::tcp_eof: on_tcp_eof(*static_cast<tcp_conn*>(it.target), it.a != 0); break;
        case item_kind::udp_deliver: on_udp_deliver(it); break;
        case item_kind::timer: {
            auto* d = static_cast<driver*>(it.target);
            if (d->timer_gen != it.a) break;  // re-armed since
            d->armed.reset();
            d->core().on_timer(now());
            pump(*d);
            break;
        }
        case item_kind::wake: {
            auto* d = static_cast<driver*>(it.target);
            if (d->wake_at != time_point(duration(static_cast<std::int64_t>(it.b)))) break;  // superseded
            d->wake_at.reset();
            pump(*d);
            break;
        }
        case item_kind::front_timer:
            if (front_gen_ != it.a) break;
            front_armed_.reset();
            front_.on_timer(now());
            route_all();
            break;
        }
    }

    // ---- connections ---------------------------------------------------------------------

    tcp_conn* new_conn(client_host& h) {
        conns_.push_back(std::make_unique<tcp_conn>());
        conns_.back()->host = &h;
        return conns_.back().get();
    }
    tcp_conn* raw_conn(std::size_t i) {
        for (auto& c : conns_) if (c->raw && *c->raw == i) return c.get();
        return nullptr;
    }

    void connect(client_host& h) {
        auto* c = new_conn(h);
        clock_.at(now() + h.up_.model().delay, item{item_kind::accept, c});
        clock_.at(now() + h.up_.model().delay + h.down_.model().delay, item{item_kind::connected, c});
    }

    // The server accepts: the front end takes the connection, writes HELLO (or routes it to
    // close at once).
    void on_accept(tcp_conn& c) {
        c.peer = endpoint{c.host->address_, static_cast<std::uint16_t>(40000 + conns_.size())};
        const conn_id id = front_.accept(now(), c.peer);
        c.front = id;
        front_conns_[id] = &c;
        if (const auto n = front_.write_to(id, now(), write_buf_)) send_tcp(c, /*up=*/false, std::span(write_buf_).first(n));
        route_all();
    }

    void on_connected(tcp_conn& c) {
        if (c.raw) {
            raws_[*c.raw].connected = true;
            return;
        }
        auto& h = *c.host;
        if (!h.session_) {
            h.session_ = std::make_unique<client_session>(h.cfg_, h.services_, endpoint{cfg_.server_address, 2000}, now());
            drivers_.push_back(std::make_unique<driver>());
            h.driver_ = drivers_.back().get();
            h.driver_->host = &h;
            h.driver_->conns.push_back(&c);
            c.client = h.driver_;
            c.client_idx = 0;
        } else {
            if (h.session_->finished()) {
                close_side(c, true);
                return;
            }
            c.client = h.driver_;
            c.client_idx = h.session_->add_connection(now());
            if (h.driver_->conns.size() <= c.client_idx) h.driver_->conns.resize(c.client_idx + 1, nullptr);
            h.driver_->conns[c.client_idx] = &c;
        }
        // Bytes (or EOF) that arrived before we were "connected" are delivered now.
        flush_early(c);
        pump(*h.driver_);
    }

    // ---- the front end ---------------------------------------------------------------------

    void route_all() {
        while (auto r = front_.poll_route()) {
            auto it = front_conns_.find(route_conn(*r));
            assert(it != front_conns_.end());
            tcp_conn& c = *it->second;
            front_conns_.erase(it);
            c.front.reset();
            if (auto* t = std::get_if<route_test>(&*r)) {
                drivers_.push_back(std::make_unique<driver>());
                auto* d = drivers_.back().get();
                d->server = std::make_unique<server_session>(cfg_.server, services_, t->peer, t->command, now());
                d->server->set_local_cpu(cfg_.server_cpu);
                d->ticket = t->ticket;
                attach(*d, 0, c);
                ++live_sessions_;
            } else if (auto* j = std::get_if<route_join>(&*r)) {
                driver* target = nullptr;
                for (auto& other : drivers_) if (other->server.get() == j->session) target = other.get();
                assert(target);
                attach(*target, j->session->join(now()), c);
            } else {
                const auto& cl = std::get<route_close>(*r);
                if (cl.refused) ++refused_;
                else server_events_.push_back(session_closed{end_reason::failure, cl.error});
                c.front_rest.clear();
                close_side(c, /*client_side=*/false);
            }
        }
        arm_front();
    }

    void attach(driver& d, std::uint32_t idx, tcp_conn& c) {
        if (d.conns.size() <= idx) d.conns.resize(idx + 1, nullptr);
        d.conns[idx] = &c;
        c.server = &d;
        c.server_idx = idx;
        c.counted = true;
        // Bytes that came behind the first message are the session's.
        if (!c.front_rest.empty()) {
            auto rest = std::move(c.front_rest);
            c.front_rest.clear();
            feed_server(c, rest);
        }
        pump(d);
    }

    void arm_front() {
        const auto dl = front_.next_deadline();
        if (dl == front_armed_) return;
        front_armed_ = dl;
        ++front_gen_;
        if (dl) clock_.at(std::max(*dl, now()), item{item_kind::front_timer, nullptr, front_gen_});
    }

    // ---- TCP ------------------------------------------------------------------------------

    void send_tcp(tcp_conn& c, bool up, std::span<const std::byte> b) {
        auto& l = up ? c.host->up_ : c.host->down_;
        const time_point at = l.tcp_send(now(), b.size());
        auto& q = up ? c.up : c.down;
        q.push_back(segment{at, {b.begin(), b.end()}});
        (up ? c.up_inflight : c.down_inflight) += b.size();
        clock_.at(at, item{item_kind::tcp_deliver, &c, up ? 1u : 0u});
    }

    // Feeds bytes to the server side of `c`: the front end first, then its session, which
    // reads no more than its read_limit() (a byte budget) — the rest is not delivered.
    void feed_server(tcp_conn& c, std::span<const std::byte> b) {
        auto& l = c.host->up_;
        if (c.front) {
            const auto n = front_.feed(*c.front, now(), b);
            l.stats().tcp_bytes_delivered += n;
            c.up_delivered += n;
            if (n < b.size()) c.front_rest.assign(b.begin() + static_cast<std::ptrdiff_t>(n), b.end());
            route_all();
            return;
        }
        if (!c.server) return;
        auto& s = c.server->core();
        while (!b.empty() && !s.finished()) {
            auto n = std::min(b.size(), s.read_limit(c.server_idx));
            if (n == 0) {  // a budget refill on its way: the world answers it now, then reads on
                pump(*c.server);
                if (!c.server || s.finished()) break;
                n = std::min(b.size(), s.read_limit(c.server_idx));
                if (n == 0) break;  // (an answered refill always leaves room, or one byte)
            }
            l.stats().tcp_bytes_delivered += n;
            c.up_delivered += n;
            s.feed(c.server_idx, now(), b.first(n));
            b = b.subspan(n);
        }
        pump(*c.server);
    }

    void on_tcp_deliver(tcp_conn& c, bool up) {
        auto& q = up ? c.up : c.down;
        if (q.empty()) return;
        segment s = std::move(q.front());
        q.pop_front();
        (up ? c.up_inflight : c.down_inflight) -= s.bytes.size();
        if (up) {
            if (!c.server_closed && (c.front || c.server)) feed_server(c, s.bytes);
            if (c.client && !c.client_closed) wake(*c.client);  // window space
        } else {
            auto& l = c.host->down_;
            if (c.raw) {
                l.stats().tcp_bytes_delivered += s.bytes.size();
                auto& r = raws_[*c.raw];
                r.received.insert(r.received.end(), s.bytes.begin(), s.bytes.end());
            } else if (!c.client_closed && c.client) {
                l.stats().tcp_bytes_delivered += s.bytes.size();
                c.down_delivered += s.bytes.size();
                c.client->core().feed(c.client_idx, now(), s.bytes);
                pump(*c.client);
            } else if (!c.client_closed && !c.client) {
                early_.push_back({&c, std::move(s.bytes)});
            }
            if (c.server && !c.server_closed) wake(*c.server);
        }
    }

    void flush_early(tcp_conn& c) {
        for (auto it = early_.begin(); it != early_.end();) {
            if (it->first == &c) {
                c.host->down_.stats().tcp_bytes_delivered += it->second.size();
                c.down_delivered += it->second.size();
                c.client->core().feed(c.client_idx, now(), it->second);
                it = early_.erase(it);
            } else {
                ++it;
            }
        }
        if (c.eof_to_client && c.client) c.client->core().on_connection_closed(c.client_idx, now());
    }

    void close_side(tcp_conn& c, bool client_side) {
        if (client_side) {
            if (c.client_closed) return;
            c.client_closed = true;
            schedule_eof(c, /*to_client=*/false);
        } else {
            if (c.server_closed) return;
            server_socket_closed(c);
            schedule_eof(c, /*to_client=*/true);
        }
    }

    // The server closes its socket of `c`: the policy's count of the address goes back.
    void server_socket_closed(tcp_conn& c) {
        c.server_closed = true;
        if (c.counted) {
            c.counted = false;
            policy_.connection_closed(c.peer.address);
        }
    }

    void schedule_eof(tcp_conn& c, bool to_client) {
        const auto& l = to_client ? c.host->down_ : c.host->up_;
        // The FIN follows the data in flight.
        const auto& q = to_client ? c.down : c.up;
        time_point at = now() + l.model().delay;
        if (!q.empty()) at = std::max(at, q.back().at);
        clock_.at(at, item{item_kind::tcp_eof, &c, to_client ? 1u : 0u});
    }

    void on_tcp_eof(tcp_conn& c, bool to_client) {
        if (to_client) {
            c.eof_to_client = true;
            if (c.raw) {
                raws_[*c.raw].closed_by_server = true;
                return;
            }
            if (c.client && !c.client_closed) {
                c.client->core().on_connection_closed(c.client_idx, now());
                pump(*c.client);
            }
        } else {
            c.eof_to_server = true;
            if (c.server_closed) return;
            if (c.front) {
                // Closed before its first message was complete: the front end forgets it.
                front_conns_.erase(*c.front);
                front_.closed(*c.front, now());
                c.front.reset();
                server_events_.push_back(session_closed{end_reason::failure, make_error_code(errc::peer_closed)});
                close_side(c, /*client_side=*/false);
                arm_front();
            } else if (c.server) {
                c.server->core().on_connection_closed(c.server_idx, now());
                pump(*c.server);
            }
        }
    }

    // ---- UDP ------------------------------------------------------------------------------

    bool bind_client(client_host& h, const udp_bind_request& r) {
        for (std::uint32_t p = r.first; p < std::uint32_t(r.first) + r.count; ++p)
            if (client_udp_.count({h.address_, static_cast<std::uint16_t>(p)})) return false;
        for (std::uint32_t p = r.first; p < std::uint32_t(r.first) + r.count; ++p) {
            client_udp_[{h.address_, static_cast<std::uint16_t>(p)}] = &h;
            h.bound_.push_back(static_cast<std::uint16_t>(p));
        }
        return true;
    }
    void unbind_client(client_host& h) {
        for (auto p : h.bound_) client_udp_.erase({h.address_, p});
        h.bound_.clear();
    }

    // Puts one datagram on a link (payload length `len`, sequence number `seq`).
    void send_udp(client_host& h, bool up, std::uint32_t len, std::uint32_t seq, std::uint16_t src_port,
                  std::uint16_t dst_port, std::uint32_t header) {
        auto& l = up ? h.up_ : h.down_;
        const auto sent = l.udp_send(now(), len, header);
        if (!sent.arrives) return;
        // a: seq | len << 32; b: src port | dst port << 16 | up << 32 | header << 40
        const std::uint64_t a = std::uint64_t(seq) | std::uint64_t(len) << 32;
        const std::uint64_t b = std::uint64_t(src_port) | std::uint64_t(dst_port) << 16 | std::uint64_t(up ? 1 : 0) << 32 |
                                std::uint64_t(header) << 40;
        clock_.at(*sent.arrives, item{item_kind::udp_deliver, &h, a, b, sent.data_index});
    }

    void on_udp_deliver(const item& it) {
        auto& h = *static_cast<client_host*>(it.target);
        const auto seq = static_cast<std::uint32_t>(it.a & 0xffffffffu);
        const auto len = static_cast<std::uint32_t>(it.a >> 32);
        const auto src_port = static_cast<std::uint16_t>(it.b & 0xffff);
        const auto dst_port = static_cast<std::uint16_t>((it.b >> 16) & 0xffff);
        const bool up = ((it.b >> 32) & 1) != 0;
        const auto header = static_cast<std::uint32_t>(it.b >> 40);
        auto& l = up ? h.up_ : h.down_;
        driver* to = nullptr;
        endpoint src;
        std::uint32_t stream = 0;
        if (up) {
            auto s = server_udp_.find(dst_port);
            if (s != server_udp_.end()) to = s->second;
            src = {h.address_, src_port};
        } else {
            auto s = client_udp_.find({h.address_, dst_port});
            if (s != client_udp_.end()) {
                to = s->second->driver_;
                stream = static_cast<std::uint32_t>(dst_port - h.bound_.front());
            } else if (auto r = raw_udp_.find({h.address_, dst_port}); r != raw_udp_.end() && len >= 4) {
                l.stats().datagrams_delivered++;
                l.stats().delivered_bytes += std::uint64_t(len) + header;
                r->second(now(), len, header);
                return;
            }
            src = {cfg_.server_address, src_port};
        }
        if (!to) {
            l.stats().datagrams_unreachable++;
            return;
        }
        std::span<std::byte> payload(scratch_.data(), len);
        if (len >= 4) {
            bytes::store_be32(scratch_.data(), seq);
            l.stats().delivered(it.c, std::uint64_t(len) + header);
        } else {
            l.stats().probes_delivered++;
        }
        to->core().feed_datagram(now(), src, payload, stream);
        if (len >= 4) bytes::store_be32(scratch_.data(), 0);
        pump(*to);
    }

    // ---- the driver loop ------------------------------------------------------------------

    void wake(driver& d, std::optional<time_point> at = std::nullopt) {
        const time_point t = at ? *at : now();
        if (d.wake_at && *d.wake_at <= t) return;
        d.wake_at = t;
        clock_.at(t, item{item_kind::wake, &d, 0, static_cast<std::uint64_t>(t.time_since_epoch().count())});
    }

    // Events and requests, until neither is left; true when a request was answered.
    bool drain(driver& d) {
        auto& s = d.core();
        bool answered = false;
        for (bool more = true; more;) {
            more = false;
            while (auto ev = s.poll_event()) {
                handle_event(d, *ev);
                more = true;
            }
            while (auto rq = s.poll_request()) {
                handle_request(d, *rq);
                more = answered = true;
            }
        }
        return answered;
    }

    void pump(driver& d) {
        auto& s = d.core();
        // Events and requests first: they may change the connection table.
        drain(d);
        if (d.released) return;
        // TCP writes while the window has room.
        const bool client_side = !d.server;
        for (std::uint32_t i = 0; i < d.conns.size(); ++i) {
            auto* c = d.conns[i];
            if (!c) continue;
            if (client_side ? c->client_closed : c->server_closed) continue;
            if (client_side && !d.host->session_->connection_open(i)) {
                close_side(*c, true);
                continue;
            }
            const std::size_t window = client_side ? c->host->up_.model().tcp_window : c->host->down_.model().tcp_window;
            // Like a socket buffer: a write is accepted while the window is not full.
            while ((client_side ? c->up_inflight : c->down_inflight) < window) {
                const auto n = s.write_to(i, now(), write_buf_);
                if (n == 0) break;
                send_tcp(*c, client_side, std::span(write_buf_).first(n));
            }
        }
        // UDP sends while the NIC accepts.
        if (s.running() && s.params().proto == protocol::udp) {
            if (client_host* h = d.server ? host_of(d) : d.host) {
                auto& l = d.server ? h->down_ : h->up_;
                for (int burst = 0; burst < 4096; ++burst) {
                    if (!l.udp_writable(now())) {
                        wake(d, l.udp_writable_at(now()));
                        break;
                    }
                    auto dg = s.next_datagram(now(), scratch_);
                    if (!dg) break;
                    const auto seq = dg->size >= 4 ? bytes::load_be32(scratch_.data()) : 0u;
                    const auto src_port = d.server ? s.params().udp_port
                                                   : static_cast<std::uint16_t>(s.params().udp_port + 256u + dg->stream);
                    send_udp(*h, !d.server, static_cast<std::uint32_t>(dg->size), seq, src_port, dg->port,
                             udp_header_overhead(h->address_.family));
                    if (burst == 4095) wake(d);  // let other events interleave with an unpaced sender
                }
            }
        }
        // Sending may have spent a byte budget: a refill asked for, or the end of the test.
        const bool answered = drain(d);
        if (s.finished()) {
            finish_driver(d);
            return;
        }
        if (answered) wake(d);
        // Arm the one timer.
        const auto dl = s.next_deadline();
        if (dl != d.armed) {
            d.armed = dl;
            ++d.timer_gen;
            if (dl) clock_.at(std::max(*dl, now()), item{item_kind::timer, &d, d.timer_gen});
        }
    }

    client_host* host_of(driver& d) {
        for (auto* c : d.conns) if (c) return c->host;
        return nullptr;
    }

    void handle_event(driver& d, const event& ev) {
        if (d.server) {
            server_events_.push_back(ev);
            if (auto* a = std::get_if<auth_result>(&ev); a && !a->ok) policy_.auth_failed(d.server->peer().address, now());
            return;
        }
        d.host->events_.push_back(ev);
        if (auto* o = std::get_if<open_connections>(&ev))
            for (std::uint32_t i = 0; i < o->count; ++i) connect(*d.host);
    }

    void handle_request(driver& d, const request& r) {
        if (auto* p = std::get_if<udp_port_request>(&r)) {
            auto port = ports_.acquire(p->count, [&](std::uint16_t q) { return !server_udp_.count(q); });
            if (port) {
                d.udp_port = *port;
                server_udp_[*port] = &d;
            }
            d.server->udp_port_ready(now(), port);
        } else if (auto* b = std::get_if<udp_bind_request>(&r)) {
            d.host->session_->udp_bound(now(), bind_client(*d.host, *b));
        } else if (std::holds_alternative<admission_request>(r)) {
            const auto a = cfg_.admission ? cfg_.admission(*d.server) : admission_decision{};
            if (a.admit) d.server->admit(now(), a.budget, a.refill_below, a.end);
            else d.server->refuse(now(), a.refusal);
        } else if (std::holds_alternative<budget_request>(r)) {
            auto more = cfg_.refill ? cfg_.refill(*d.server) : std::nullopt;
            d.core().add_budget(now(), more.value_or(byte_budget{}));
        }
    }

    void finish_driver(driver& d) {
        if (d.released) return;
        d.released = true;
        ++d.timer_gen;
        d.armed.reset();
        if (d.server) {
            --live_sessions_;
            policy_.release(d.ticket);
            if (d.udp_port) {
                server_udp_.erase(*d.udp_port);
                ports_.release(*d.udp_port);
                d.udp_port.reset();
            }
            for (auto* c : d.conns) if (c) close_side(*c, false);
        } else {
            unbind_client(*d.host);
            for (auto* c : d.conns) if (c) close_side(*c, true);
        }
    }

    world_config cfg_;
    seeded_entropy rng_;
    server_policy policy_;
    server_front front_;
    port_block_allocator ports_;
    auth::memory_credentials credentials_;
    server_services services_;

    scheduler<item> clock_;
    std::optional<time_point> front_armed_;
    std::uint64_t front_gen_ = 0;
    std::vector<std::unique_ptr<client_host>> clients_;
    std::vector<std::unique_ptr<client_host>> raw_hosts_;
    std::vector<raw_peer> raws_;
    std::vector<std::unique_ptr<tcp_conn>> conns_;
    std::vector<std::unique_ptr<driver>> drivers_;
    std::map<conn_id, tcp_conn*> front_conns_;
    std::vector<std::pair<tcp_conn*, std::vector<std::byte>>> early_;
    std::map<std::uint16_t, driver*> server_udp_;
    std::map<std::pair<ip_address, std::uint16_t>, client_host*> client_udp_;
    std::map<std::pair<ip_address, std::uint16_t>, udp_sink> raw_udp_;
    std::vector<event> server_events_;
    std::vector<std::byte> scratch_;
    std::vector<std::byte> write_buf_;
    std::size_t live_sessions_ = 0;
    std::size_t refused_ = 0;
};

} // namespace btest::memory
