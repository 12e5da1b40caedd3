// The in-memory transport: a discrete-event world on a virtual clock (DESIGN.md, "the test
// bench"). A server host and any number of client hosts, joined per direction by a link with a
// model — rate, delay, drop-tail queue, loss pattern, random loss and reordering from a seeded
// RNG — carry TCP-like byte streams (reliable, in order, windowed) and UDP-like datagrams.
// Sessions are driven exactly as a real transport drives them: read → feed → poll → write →
// arm the timer at next_deadline(). Time jumps from one event to the next, so `run_for(10s)`
// takes milliseconds and gives the same numbers every time.
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
#include <queue>
#include <string>
#include <utility>
#include <vector>

#include "btest/auth/credentials.hpp"
#include "btest/core/address.hpp"
#include "btest/core/bytes.hpp"
#include "btest/core/entropy.hpp"
#include "btest/session/client_session.hpp"
#include "btest/session/port_blocks.hpp"
#include "btest/session/server_session.hpp"

namespace btest::memory {

/// One direction of a host's path to the server.
struct link_model {
    std::uint64_t bits_per_second = 0;          ///< bottleneck rate; 0 = no bottleneck
    duration delay{};                           ///< one-way propagation delay
    std::size_t queue_bytes = 512 * 1024;       ///< drop-tail queue in front of the bottleneck (UDP)
    std::uint64_t nic_bits_per_second = 1'000'000'000ULL;  ///< the sender's interface
    std::size_t send_buffer = 1024 * 1024;      ///< UDP: a sender blocks beyond this NIC backlog
    std::size_t tcp_window = 4 * 1024 * 1024;   ///< TCP: bytes in flight per connection
    std::function<bool(std::uint64_t)> loss;    ///< UDP: drop datagram number n (0-based) if true
    double loss_probability = 0;                ///< UDP: random loss
    double reorder_probability = 0;             ///< UDP: share of datagrams delayed by reorder_delay
    duration reorder_delay = std::chrono::milliseconds(1);
    std::uint64_t seed = 1;
};

/// Drop every n-th datagram (n, 2n, 3n, … counting from 1).
inline std::function<bool(std::uint64_t)> every_nth(std::uint64_t n) {
    return [n](std::uint64_t i) { return (i + 1) % n == 0; };
}

/// What crossed one direction of a link.
struct link_stats {
    std::uint64_t tcp_bytes_written = 0;
    std::uint64_t tcp_bytes_delivered = 0;
    std::uint64_t datagrams_sent = 0;           ///< entered the link
    std::uint64_t datagrams_dropped = 0;        ///< by loss pattern, random loss or a full queue
    std::uint64_t datagrams_delivered = 0;      ///< reached a bound socket (payload ≥ 4 bytes)
    std::uint64_t delivered_bytes = 0;          ///< UDP payload + H of those
    std::uint64_t probes_delivered = 0;         ///< payloads shorter than 4 bytes
    std::uint64_t datagrams_unreachable = 0;    ///< no socket bound at the destination
    std::uint64_t reordered = 0;
    /// Send order (among data datagrams, payload ≥ 4) of the first datagram that reached a
    /// socket and of the highest one; `delivered_before_first` counts those that arrived after
    /// the first but were sent before it (reordered at the very start).
    std::optional<std::uint64_t> first_delivered_index, last_delivered_index;
    std::uint64_t delivered_before_first = 0;
    /// What a receiver tracking one stream from its first datagram must count as lost: the
    /// datagrams of [first, highest] that never arrived (PROTOCOL §8.5).
    std::uint64_t expected_lost() const {
        if (!first_delivered_index) return 0;
        return *last_delivered_index - *first_delivered_index + 1 - (datagrams_delivered - delivered_before_first);
    }
};

struct world_config {
    server_config server{};
    /// (user, password) pairs for md5 / ec_srp5 servers.
    std::vector<std::pair<std::string, std::string>> users;
    ip_address server_address = ip_address::v4(10, 0, 0, 1);
    std::uint64_t seed = 0x5eed;
    std::size_t max_sessions = 100;             ///< transport limit (§12.4): refuse beyond it
    std::uint8_t server_cpu = 0;                ///< CPU load the server sessions report
    join_registry::limits joins{};
    port_block_allocator::limits ports{};
};

class world {
    struct driver;
    struct tcp_conn;

public:
    /// A client host: its session, config and the link models of its two directions.
    class client_host {
    public:
        client_session& session() { return *session_; }
        const client_session& session() const { return *session_; }
        /// The session exists once the simulated TCP connect completed (one round trip).
        bool has_session() const { return session_ != nullptr; }
        bool finished() const { return session_ && session_->finished(); }
        test_summary summary() const { return session_ ? session_->summary() : test_summary{}; }
        const link_stats& up() const { return up_.stats; }
        const link_stats& down() const { return down_.stats; }
        const std::vector<event>& events() const { return events_; }
        const ip_address& address() const { return address_; }
        client_config& config() { return cfg_; }
        std::size_t bound_udp_ports() const { return bound_.size(); }

    private:
        friend class world;
        struct link_state {
            link_model model;
            link_stats stats;
            time_point nic_free{};
            time_point bn_free{};
            std::uint64_t counter = 0;
            std::uint64_t data_counter = 0;
            seeded_entropy rng{1};
        };
        struct binder final : udp_binder {
            client_host* host = nullptr;
            bool bind(std::uint16_t first, std::uint16_t count, std::uint16_t server_port) override {
                return host->owner_->bind_client(*host, first, count, server_port);
            }
            void unbind() override { host->owner_->unbind_client(*host); }
        };

        world* owner_ = nullptr;
        client_config cfg_;
        ip_address address_;
        link_state up_, down_;
        seeded_entropy rng_{1};
        binder binder_;
        client_services services_{rng_, nullptr};
        std::unique_ptr<client_session> session_;
        driver* driver_ = nullptr;
        std::vector<std::uint16_t> bound_;
        std::vector<event> events_;
        std::uint32_t pending_connects_ = 0;
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
        : cfg_(std::move(cfg)), rng_(cfg_.seed), joins_(cfg_.joins), ports_(cfg_.ports), pool_(*this),
          credentials_(rng_), services_{rng_, &credentials_, &pool_, &joins_, {}} {
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
        // Sessions release into the pool and registry, which must outlive them.
        for (auto& d : drivers_) d->server.reset();
        for (auto& c : clients_) c->session_.reset();
    }

    /// Adds a client host that connects now. Addresses default to 10.0.1.N.
    client_host& add_client(const client_config& cfg, link_model up = {}, link_model down = {},
                            std::optional<ip_address> address = std::nullopt) {
        auto h = std::make_unique<client_host>();
        h->owner_ = this;
        h->cfg_ = cfg;
        h->address_ = address ? *address
                              : ip_address::v4(10, 0, 1, static_cast<std::uint8_t>(1 + clients_.size()));
        h->up_.model = std::move(up);
        h->down_.model = std::move(down);
        h->up_.rng = seeded_entropy(h->up_.model.seed);
        h->down_.rng = seeded_entropy(h->down_.model.seed ^ 0xd0d0);
        h->rng_ = seeded_entropy(cfg_.seed + 7919 * (clients_.size() + 1));
        h->binder_.host = h.get();
        h->services_.udp = &h->binder_;
        auto* host = h.get();
        clients_.push_back(std::move(h));
        connect(*host, /*primary=*/true);
        return *host;
    }

    client_host& client(std::size_t i = 0) { return *clients_.at(i); }

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
                c->client->core().on_connection_closed(c->client_idx, now_, reset);
                pump(*c->client);
            }
            if (!c->server_closed && c->server) {
                c->server_closed = true;
                c->server->core().on_connection_closed(c->server_idx, now_, reset);
                pump(*c->server);
            }
            return;
        }
    }
    std::size_t client_count() const { return clients_.size(); }

    /// Opens a raw TCP connection from `from` to the server.
    std::size_t connect_raw(const ip_address& from, link_model link = {}) {
        auto h = std::make_unique<client_host>();
        h->owner_ = this;
        h->address_ = from;
        h->up_.model = link;
        h->down_.model = link;
        raw_hosts_.push_back(std::move(h));
        auto* c = new_conn(*raw_hosts_.back());
        c->raw = raws_.size();
        raws_.push_back(raw_peer{});
        raws_.back().index = raws_.size() - 1;
        schedule(now_ + link.delay, item_kind::accept, c);
        schedule(now_ + 2 * link.delay, item_kind::connected, c);
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
    /// The server session a raw connection belongs to now (after a JOIN: its target) and its
    /// index there; nullopt before it was accepted.
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

    time_point now() const { return now_; }

    /// Runs the world for `d` of virtual time.
    void run_for(duration d) { run_until_time(now_ + d); }

    /// Runs until `done()` or `limit` of virtual time passed; returns done().
    bool run_until(const std::function<bool()>& done, duration limit) {
        const auto end = now_ + limit;
        while (!done()) {
            if (queue_.empty() || queue_.top().at > end) {
                now_ = std::max(now_, end);
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

    /// Every server session ever created (finished ones stay for inspection), in accept order.
    std::vector<const server_session*> server_sessions() const {
        std::vector<const server_session*> v;
        for (const auto& d : drivers_) if (d->server) v.push_back(d->server.get());
        return v;
    }
    /// Server sessions that ran a test (handed-off joiners excluded).
    std::vector<const server_session*> server_tests() const {
        std::vector<const server_session*> v;
        for (const auto& d : drivers_)
            if (d->server && d->server->summary().started) v.push_back(d->server.get());
        return v;
    }
    std::size_t live_server_sessions() const { return live_sessions_; }
    std::size_t refused_connections() const { return refused_; }
    std::size_t udp_blocks_in_use() const { return ports_.active(); }
    std::size_t pending_joins() const { return joins_.pending(); }
    std::size_t open_tcp_connections() const {
        std::size_t n = 0;
        for (const auto& c : conns_) n += (!c->client_closed || !c->server_closed) ? 1 : 0;
        return n;
    }
    const std::vector<event>& server_events() const { return server_events_; }
    server_config& server_cfg() { return cfg_.server; }
    server_services& services() { return services_; }

private:
    enum class item_kind : std::uint8_t { accept, connected, tcp_deliver, tcp_eof, udp_deliver, timer, wake };

    struct item {
        time_point at;
        std::uint64_t order;
        item_kind kind;
        void* target;
        std::uint64_t a = 0;
        std::uint64_t b = 0;
        std::uint64_t c = 0;
        bool operator>(const item& o) const { return at != o.at ? at > o.at : order > o.order; }
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
        driver* server = nullptr;            // server-side driver once accepted
        std::uint32_t server_idx = 0;
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
        std::vector<tcp_conn*> conns;               // by the session's connection index
        std::uint64_t timer_gen = 0;
        std::optional<time_point> armed;
        bool released = false;
        std::optional<time_point> wake_at;          // earliest pending wake-up
        detail::session_core& core() {
            return server ? static_cast<detail::session_core&>(*server)
                          : static_cast<detail::session_core&>(*host->session_);
        }
        void feed(std::uint32_t conn, time_point now, std::span<const std::byte> b) {
            if (server) server->feed(conn, now, b);
            else host->session_->feed(conn, now, b);
        }
        void on_timer(time_point now) {
            if (server) server->on_timer(now);
            else host->session_->on_timer(now);
        }
    };

    struct pool final : udp_port_pool {
        explicit pool(world& w) : w_(w) {}
        std::optional<std::uint16_t> acquire(std::uint16_t count) override {
            return w_.ports_.acquire(count, [&](std::uint16_t p) { return !w_.server_udp_.count(p); });
        }
        void release(std::uint16_t first) override {
            w_.server_udp_.erase(first);
            w_.ports_.release(first);
        }
        world& w_;
    };

    // ---- scheduling ----------------------------------------------------------------------

    void schedule(time_point at, item_kind k, void* target, std::uint64_t a = 0, std::uint64_t b = 0) {
        queue_.push(item{at, order_++, k, target, a, b});
    }

    void run_until_time(time_point end) {
        while (!queue_.empty() && queue_.top().at <= end) step();
        now_ = std::max(now_, end);
    }

    void step() {
        item it = queue_.top();
        queue_.pop();
        now_ = std::max(now_, it.at);
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
            d->on_timer(now_);
            pump(*d);
            break;
        }
        case item_kind::wake: {
            auto* d = static_cast<driver*>(it.target);
            if (d->wake_at != it.at) break;  // superseded by an earlier one
            d->wake_at.reset();
            pump(*d);
            break;
        }
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

    void connect(client_host& h, bool primary) {
        (void)primary;
        auto* c = new_conn(h);
        schedule(now_ + h.up_.model.delay, item_kind::accept, c);
        schedule(now_ + h.up_.model.delay + h.down_.model.delay, item_kind::connected, c);
    }

    void on_accept(tcp_conn& c) {
        if (live_sessions_ >= cfg_.max_sessions) {
            // Over the limit: close instead of HELLO (§12.4).
            ++refused_;
            c.server_closed = true;
            schedule_eof(c, /*to_client=*/true);
            return;
        }
        drivers_.push_back(std::make_unique<driver>());
        auto* d = drivers_.back().get();
        const endpoint peer{c.host->address_, static_cast<std::uint16_t>(40000 + conns_.size())};
        d->server = std::make_unique<server_session>(cfg_.server, services_, peer, now_);
        d->server->set_local_cpu(cfg_.server_cpu);
        d->conns.push_back(&c);
        c.server = d;
        c.server_idx = 0;
        ++live_sessions_;
        pump(*d);
    }

    void on_connected(tcp_conn& c) {
        if (c.raw) {
            raws_[*c.raw].connected = true;
            return;
        }
        auto& h = *c.host;
        if (!h.session_) {
            h.session_ = std::make_unique<client_session>(h.cfg_, h.services_, endpoint{cfg_.server_address, 2000}, now_);
            drivers_.push_back(std::make_unique<driver>());
            h.driver_ = drivers_.back().get();
            h.driver_->host = &h;
            h.driver_->conns.push_back(&c);
            c.client = h.driver_;
            c.client_idx = 0;
        } else {
            if (h.pending_connects_) --h.pending_connects_;
            if (h.session_->finished()) {
                close_side(c, true);
                return;
            }
            c.client = h.driver_;
            c.client_idx = h.session_->add_connection(now_);
            if (h.driver_->conns.size() <= c.client_idx) h.driver_->conns.resize(c.client_idx + 1, nullptr);
            h.driver_->conns[c.client_idx] = &c;
        }
        // Bytes (or EOF) that arrived before we were "connected" are delivered now.
        flush_early(c);
        pump(*h.driver_);
    }

    // ---- TCP ------------------------------------------------------------------------------

    void send_tcp(tcp_conn& c, bool up, std::span<const std::byte> b) {
        auto& link = up ? c.host->up_ : c.host->down_;
        link.stats.tcp_bytes_written += b.size();
        const std::uint64_t rate = link.model.bits_per_second ? link.model.bits_per_second
                                                              : link.model.nic_bits_per_second;
        const time_point start = std::max(now_, link.bn_free);
        const auto ser = duration(static_cast<std::int64_t>(b.size() * 8ULL * 1'000'000'000ULL / std::max<std::uint64_t>(rate, 1)));
        link.bn_free = start + ser;
        link.nic_free = std::max(link.nic_free, link.bn_free);
        const time_point at = link.bn_free + link.model.delay;
        auto& q = up ? c.up : c.down;
        q.push_back(segment{at, {b.begin(), b.end()}});
        (up ? c.up_inflight : c.down_inflight) += b.size();
        schedule(at, item_kind::tcp_deliver, &c, up ? 1 : 0);
    }

    void on_tcp_deliver(tcp_conn& c, bool up) {
        auto& q = up ? c.up : c.down;
        if (q.empty()) return;
        segment s = std::move(q.front());
        q.pop_front();
        (up ? c.up_inflight : c.down_inflight) -= s.bytes.size();
        auto& link = up ? c.host->up_ : c.host->down_;
        if (up) {
            if (c.raw && c.server == nullptr) return;
            if (!c.server_closed && c.server) {
                link.stats.tcp_bytes_delivered += s.bytes.size();
                c.up_delivered += s.bytes.size();
                c.server->feed(c.server_idx, now_, s.bytes);
                pump(*c.server);
            }
            if (c.client && !c.client_closed) wake(*c.client);  // window space
        } else {
            if (c.raw) {
                link.stats.tcp_bytes_delivered += s.bytes.size();
                auto& r = raws_[*c.raw];
                r.received.insert(r.received.end(), s.bytes.begin(), s.bytes.end());
            } else if (!c.client_closed && c.client) {
                link.stats.tcp_bytes_delivered += s.bytes.size();
                c.down_delivered += s.bytes.size();
                c.client->feed(c.client_idx, now_, s.bytes);
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
                c.host->down_.stats.tcp_bytes_delivered += it->second.size();
                c.down_delivered += it->second.size();
                c.client->feed(c.client_idx, now_, it->second);
                it = early_.erase(it);
            } else {
                ++it;
            }
        }
        if (c.eof_to_client && c.client) c.client->core().on_connection_closed(c.client_idx, now_);
    }

    void close_side(tcp_conn& c, bool client_side) {
        if (client_side) {
            if (c.client_closed) return;
            c.client_closed = true;
            schedule_eof(c, /*to_client=*/false);
        } else {
            if (c.server_closed) return;
            c.server_closed = true;
            schedule_eof(c, /*to_client=*/true);
        }
    }

    void schedule_eof(tcp_conn& c, bool to_client) {
        auto& link = to_client ? c.host->down_ : c.host->up_;
        // The FIN follows the data in flight.
        const auto& q = to_client ? c.down : c.up;
        time_point at = now_ + link.model.delay;
        if (!q.empty()) at = std::max(at, q.back().at);
        schedule(at, item_kind::tcp_eof, &c, to_client ? 1 : 0);
    }

    void on_tcp_eof(tcp_conn& c, bool to_client) {
        if (to_client) {
            c.eof_to_client = true;
            if (c.raw) {
                raws_[*c.raw].closed_by_server = true;
                return;
            }
            if (c.client && !c.client_closed) {
                c.client->core().on_connection_closed(c.client_idx, now_);
                pump(*c.client);
            }
        } else {
            c.eof_to_server = true;
            if (c.server && !c.server_closed) {
                c.server->core().on_connection_closed(c.server_idx, now_);
                pump(*c.server);
            }
        }
    }

    // ---- UDP ------------------------------------------------------------------------------

    bool bind_client(client_host& h, std::uint16_t first, std::uint16_t count, std::uint16_t) {
        for (std::uint32_t p = first; p < std::uint32_t(first) + count; ++p)
            if (client_udp_.count({h.address_, static_cast<std::uint16_t>(p)})) return false;
        for (std::uint32_t p = first; p < std::uint32_t(first) + count; ++p) {
            client_udp_[{h.address_, static_cast<std::uint16_t>(p)}] = &h;
            h.bound_.push_back(static_cast<std::uint16_t>(p));
        }
        return true;
    }
    void unbind_client(client_host& h) {
        for (auto p : h.bound_) client_udp_.erase({h.address_, p});
        h.bound_.clear();
    }

    // Can `link` take one more datagram from its sender now? (NIC backlog within the buffer.)
    bool can_send_udp(const client_host::link_state& link) const {
        if (link.nic_free <= now_) return true;
        const auto backlog_ns = static_cast<std::uint64_t>((link.nic_free - now_).count());
        const auto backlog_bytes = backlog_ns * link.model.nic_bits_per_second / 8 / 1'000'000'000ULL;
        return backlog_bytes < link.model.send_buffer;
    }
    time_point when_can_send_udp(const client_host::link_state& link) const {
        const auto buffer_ns = static_cast<std::int64_t>(link.model.send_buffer * 8ULL * 1'000'000'000ULL /
                                                          link.model.nic_bits_per_second);
        return std::max(now_ + duration(1), link.nic_free - duration(buffer_ns) + duration(1));
    }

    // Puts one datagram on `link` (payload length `len`, sequence number `seq`).
    void send_udp(client_host& h, bool up, std::uint32_t len, std::uint32_t seq, std::uint16_t src_port,
                  std::uint16_t dst_port, std::uint32_t header) {
        auto& link = up ? h.up_ : h.down_;
        const std::uint64_t index = link.counter++;
        const std::uint64_t data_index = len >= 4 ? link.data_counter++ : ~0ULL;
        link.stats.datagrams_sent++;
        const std::uint64_t wire = std::uint64_t(len) + header;
        const time_point nic_start = std::max(now_, link.nic_free);
        link.nic_free = nic_start + duration(static_cast<std::int64_t>(wire * 8ULL * 1'000'000'000ULL / link.model.nic_bits_per_second));
        time_point out = link.nic_free;
        bool drop = (link.model.loss && link.model.loss(index));
        if (!drop && link.model.loss_probability > 0) {
            drop = double(link.rng.next() >> 11) * 0x1.0p-53 < link.model.loss_probability;
        }
        if (!drop && link.model.bits_per_second) {
            const time_point arrive = out;
            if (link.bn_free > arrive) {
                const auto backlog_ns = static_cast<std::uint64_t>((link.bn_free - arrive).count());
                const auto backlog_bytes = backlog_ns * link.model.bits_per_second / 8 / 1'000'000'000ULL;
                if (backlog_bytes + wire > link.model.queue_bytes) drop = true;
            }
            if (!drop) {
                link.bn_free = std::max(arrive, link.bn_free) +
                               duration(static_cast<std::int64_t>(wire * 8ULL * 1'000'000'000ULL / link.model.bits_per_second));
                out = link.bn_free;
            }
        }
        if (drop) {
            link.stats.datagrams_dropped++;
            return;
        }
        time_point at = out + link.model.delay;
        if (link.model.reorder_probability > 0 &&
            double(link.rng.next() >> 11) * 0x1.0p-53 < link.model.reorder_probability) {
            at += link.model.reorder_delay;
            link.stats.reordered++;
        }
        // a: seq | len << 32; b: src port | dst port << 16 | up << 32 | header << 40
        const std::uint64_t a = std::uint64_t(seq) | std::uint64_t(len) << 32;
        const std::uint64_t b = std::uint64_t(src_port) | std::uint64_t(dst_port) << 16 | std::uint64_t(up ? 1 : 0) << 32 |
                                std::uint64_t(header) << 40;
        queue_.push(item{at, order_++, item_kind::udp_deliver, &h, a, b, data_index});
    }

    void on_udp_deliver(const item& it) {
        auto& h = *static_cast<client_host*>(it.target);
        const auto seq = static_cast<std::uint32_t>(it.a & 0xffffffffu);
        const auto len = static_cast<std::uint32_t>(it.a >> 32);
        const auto src_port = static_cast<std::uint16_t>(it.b & 0xffff);
        const auto dst_port = static_cast<std::uint16_t>((it.b >> 16) & 0xffff);
        const bool up = ((it.b >> 32) & 1) != 0;
        const auto header = static_cast<std::uint32_t>(it.b >> 40);
        auto& link = up ? h.up_ : h.down_;
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
                link.stats.datagrams_delivered++;
                link.stats.delivered_bytes += std::uint64_t(len) + header;
                r->second(now_, len, header);
                return;
            }
            src = {cfg_.server_address, src_port};
        }
        if (!to) {
            link.stats.datagrams_unreachable++;
            return;
        }
        std::span<std::byte> payload(scratch_.data(), len);
        if (len >= 4) {
            bytes::store_be32(scratch_.data(), seq);
            link.stats.datagrams_delivered++;
            link.stats.delivered_bytes += std::uint64_t(len) + header;
            if (!link.stats.first_delivered_index) link.stats.first_delivered_index = it.c;
            if (it.c < *link.stats.first_delivered_index) link.stats.delivered_before_first++;
            link.stats.last_delivered_index = std::max(link.stats.last_delivered_index.value_or(0), it.c);
        } else {
            link.stats.probes_delivered++;
        }
        to->core().feed_datagram(now_, src, payload, stream);
        if (len >= 4) bytes::store_be32(scratch_.data(), 0);
        pump(*to);
    }

    // ---- the driver loop ------------------------------------------------------------------

    void wake(driver& d, std::optional<time_point> at = std::nullopt) {
        const time_point t = at ? *at : now_;
        if (d.wake_at && *d.wake_at <= t) return;
        d.wake_at = t;
        schedule(t, item_kind::wake, &d);
    }

    void pump(driver& d) {
        auto& s = d.core();
        // Events first: they may change the connection table.
        while (auto ev = s.poll_event()) handle_event(d, *ev);
        if (d.released) return;
        // TCP writes while the window has room.
        for (std::uint32_t i = 0; i < d.conns.size(); ++i) {
            auto* c = d.conns[i];
            if (!c) continue;
            const bool client_side = !d.server;
            if (client_side ? c->client_closed : c->server_closed) continue;
            if (client_side && !d.host->session_->connection_open(i)) {
                close_side(*c, true);
                continue;
            }
            const std::size_t window = client_side ? c->host->up_.model.tcp_window : c->host->down_.model.tcp_window;
            // Like a socket buffer: a write is accepted while the window is not full.
            while ((client_side ? c->up_inflight : c->down_inflight) < window) {
                const auto n = s.write_to(i, now_, write_buf_);
                if (n == 0) break;
                send_tcp(*c, client_side, std::span(write_buf_).first(n));
            }
        }
        // UDP sends while the NIC accepts.
        if (s.running() && s.params().proto == protocol::udp) {
            client_host* h = d.server ? host_of(d) : d.host;
            if (h) {
                auto& link = d.server ? h->down_ : h->up_;
                for (int burst = 0; burst < 4096; ++burst) {
                    if (!can_send_udp(link)) {
                        wake(d, when_can_send_udp(link));
                        break;
                    }
                    auto dg = s.next_datagram(now_, scratch_);
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
        if (s.finished()) {
            finish_driver(d);
            return;
        }
        // Arm the one timer.
        const auto dl = s.next_deadline();
        if (dl != d.armed) {
            d.armed = dl;
            ++d.timer_gen;
            if (dl) schedule(std::max(*dl, now_), item_kind::timer, &d, d.timer_gen);
        }
    }

    client_host* host_of(driver& d) {
        for (auto* c : d.conns) if (c) return c->host;
        return nullptr;
    }

    void handle_event(driver& d, const event& ev) {
        if (d.server) {
            server_events_.push_back(ev);
            if (auto* h = std::get_if<connection_handoff>(&ev)) {
                // Move this driver's only connection to the target session.
                driver* target = nullptr;
                for (auto& other : drivers_) if (other->server.get() == h->target) target = other.get();
                assert(target);
                auto* c = d.conns.at(0);
                c->server = target;
                c->server_idx = h->conn;
                if (target->conns.size() <= h->conn) target->conns.resize(h->conn + 1, nullptr);
                target->conns[h->conn] = c;
                d.conns.clear();
                d.released = true;
                --live_sessions_;
                pump(*target);
                return;
            }
            if (auto* u = std::get_if<test_started>(&ev); u && u->proto == protocol::udp) {
                server_udp_[d.server->udp_port()] = &d;
            }
            return;
        }
        d.host->events_.push_back(ev);
        if (auto* o = std::get_if<open_connections>(&ev)) {
            d.host->pending_connects_ += o->count;
            for (std::uint32_t i = 0; i < o->count; ++i) connect(*d.host, false);
        }
    }

    void finish_driver(driver& d) {
        if (d.released) return;
        d.released = true;
        ++d.timer_gen;
        d.armed.reset();
        if (d.server) {
            --live_sessions_;
            for (auto it = server_udp_.begin(); it != server_udp_.end();)
                it = (it->second == &d) ? server_udp_.erase(it) : std::next(it);
            for (auto* c : d.conns) if (c) close_side(*c, false);
        } else {
            for (auto* c : d.conns) if (c) close_side(*c, true);
        }
    }

    world_config cfg_;
    seeded_entropy rng_;
    join_registry joins_;
    port_block_allocator ports_;
    pool pool_;
    auth::memory_credentials credentials_;
    server_services services_;

    time_point now_{};
    std::uint64_t order_ = 0;
    std::priority_queue<item, std::vector<item>, std::greater<>> queue_;
    std::vector<std::unique_ptr<client_host>> clients_;
    std::vector<std::unique_ptr<client_host>> raw_hosts_;
    std::vector<raw_peer> raws_;
    std::vector<std::unique_ptr<tcp_conn>> conns_;
    std::vector<std::unique_ptr<driver>> drivers_;
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
