// A client session and a server (the kit's front end routing the primary and the joining
// connections to its sessions, which share the front end's join registry and a port pool)
// talking through in-process pipes: the fuzzer chooses
// the configurations of both, how much each side writes and when, how the bytes are chunked on
// delivery (and sometimes corrupts one), which datagrams land, in what order, and the clock.
// Sessions that finish have their connections closed as a transport would (pending bytes are
// delivered, then the peer sees EOF). Every call is followed by the invariant checks of
// fuzz/session.hpp. Without corruption neither side may see a protocol error.
#include <algorithm>
#include <cstdio>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include <btest/server/front.hpp>
#include <btest/server/join_registry.hpp>
#include <btest/server/policy.hpp>
#include <btest/session/client_session.hpp>
#include <btest/session/server_session.hpp>

#include "fuzz/pair_ops.hpp"
#include "fuzz/session.hpp"

namespace {

using namespace btest;
using namespace fuzz::pair_ops;
using fuzz::call;

/// Bytes in flight on one direction of a connection. Reads take from the front without moving
/// the rest (a vector erased at its front cost the target more time than the sessions did), and
/// the storage goes back to a pool for the next input instead of to the allocator (growing a
/// fresh megabyte per input was mostly page faults).
class byte_pipe {
public:
    byte_pipe() {
        auto& pool = spares();
        if (!pool.empty()) {
            buf_ = std::move(pool.back());
            pool.pop_back();
        }
    }
    byte_pipe(byte_pipe&& o) noexcept : buf_(std::move(o.buf_)), head_(std::exchange(o.head_, 0)) { o.buf_.clear(); }
    byte_pipe& operator=(byte_pipe&&) = delete;
    ~byte_pipe() {
        if (buf_.capacity() == 0) return;
        buf_.clear();
        auto& pool = spares();
        if (pool.size() < 16) pool.push_back(std::move(buf_));
    }

    std::size_t size() const noexcept { return buf_.size() - head_; }
    void append(const std::uint8_t* p, std::size_t n) { buf_.insert(buf_.end(), p, p + n); }
    /// The first `n` bytes (fewer if there are fewer), to read or corrupt before pop().
    std::span<std::uint8_t> front(std::size_t n) noexcept {
        return std::span(buf_).subspan(head_, std::min(n, size()));
    }
    void pop(std::size_t n) noexcept {
        head_ += std::min(n, size());
        if (head_ == buf_.size()) clear();
        else if (head_ > buf_.size() / 2) {
            buf_.erase(buf_.begin(), buf_.begin() + std::ptrdiff_t(head_));
            head_ = 0;
        }
    }
    void clear() noexcept {
        buf_.clear();
        head_ = 0;
    }

private:
    static std::vector<std::vector<std::uint8_t>>& spares() {
        static std::vector<std::vector<std::uint8_t>> pool;
        return pool;
    }

    std::vector<std::uint8_t> buf_;
    std::size_t head_ = 0;
};

/// What the sessions are fed from: see fuzz::reused_copy (kept across inputs).
fuzz::reused_copy& feed_copy() {
    static fuzz::reused_copy c;
    return c;
}

struct link {
    std::optional<conn_id> front;       ///< the server end is in the front end…
    std::optional<std::size_t> server;  ///< … or routed to this server session
    std::uint32_t server_conn = 0;
    std::uint32_t client_conn = 0;
    byte_pipe c2s, s2c;
    bool alive = true;
};

struct air_datagram {
    bool to_server = false;
    endpoint src;
    std::uint16_t dst_port = 0;
    std::vector<std::uint8_t> payload;
};

struct server_entry {
    std::unique_ptr<server_session> s;
    std::unique_ptr<fuzz::checker<server_session>> check;
    std::optional<std::uint16_t> port;
    session_admission::ticket ticket;
    bool settled = false;
};

constexpr std::size_t pipe_limit = 1 << 20;  // a socket buffer: no writes beyond it

class harness {
public:
    harness(FuzzedDataProvider& in, FuzzedDataProvider& rng_in)
        : in_(in), rng_(rng_in), scfg_(fuzz::read_server_config(in)), ccfg_(fuzz::read_client_config(in)),
          pool_(in), binder_(in), policy_(server_policy::limits{{}, 0, {}}), front_(front_config{scfg_.limits.handshake, scfg_.max_conn_count, {}}, policy_),
          svc_{rng_, &fuzz::credentials(), &front_.joins(), {}}, csvc_{rng_} {
        c_ = std::make_unique<client_session>(ccfg_, csvc_, endpoint{server_ip_, 2000}, now_);
        ccheck_ = std::make_unique<fuzz::checker<client_session>>(*c_);
        connect(0);
        after(std::nullopt, call::input, true);
    }

    ~harness() {
        ccheck_->final_check();
        for (auto& e : servers_) e.check->final_check();
        for (auto& l : links_)
            if (l.front) front_.closed(*l.front, now_);
        for (auto& e : servers_) {
            e.s->stop(now_);
            if (e.port && !e.settled) pool_.release(*e.port);
        }
        ccheck_.reset();
        c_.reset();
        servers_.clear();
        pool_.check_all_released();
        FUZZ_CHECK(front_.joins().pending() == 0);
        FUZZ_CHECK(front_.pending() == 0);
    }

    void run() {
        while (in_.remaining_bytes() > 0) step();
    }

private:
    // ---- operations ------------------------------------------------------------------------

    void step() {
        const auto o = static_cast<op>(in_.ConsumeIntegralInRange<int>(0, static_cast<int>(op::op_last)));
        if (fuzz::tracing())
            std::fprintf(stderr, "t=%lldus op %d\n", static_cast<long long>(now_.time_since_epoch().count() / 1000), static_cast<int>(o));
        std::optional<std::size_t> server;  // the server session called, if any
        bool client = false;
        call kind = call::input;
        switch (o) {
        case op::advance: now_ += fuzz::read_step(in_); return;
        case op::fire_timer: {
            if (in_.ConsumeIntegralInRange<int>(0, 3) == 0) {  // the front end's timer
                if (auto d = front_.next_deadline()) now_ = std::max(now_, *d);
                front_.on_timer(now_);
                route({});
                after(std::nullopt, call::none, false);
                return;
            }
            const auto who = pick_party();
            if (!who) {
                if (auto d = c_->next_deadline()) now_ = std::max(now_, *d);
                ccheck_->before();
                c_->on_timer(now_);
                client = true;
            } else {
                auto& e = servers_[*who];
                if (auto d = e.s->next_deadline()) now_ = std::max(now_, *d);
                e.check->before();
                e.s->on_timer(now_);
                server = who;
            }
            kind = call::timer;
            break;
        }
        case op::pump: {
            auto& l = links_[pick_link()];
            const bool from_client = in_.ConsumeBool();
            const auto out = out_.get(fuzz::read_out_size(in_));
            const auto times = in_.ConsumeIntegralInRange<int>(1, 8);
            if (!from_client && !l.server) {  // the front end writes HELLO
                for (int i = 0; i < times && l.front && l.alive; ++i) {
                    const auto n = front_.write_to(*l.front, now_, out);
                    l.s2c.append(reinterpret_cast<const std::uint8_t*>(out.data()), n);
                    if (n == 0) break;
                }
                return;
            }
            if (from_client) {
                ccheck_->before();
                client = true;
            } else {
                servers_[*l.server].check->before();
                server = l.server;
            }
            for (int i = 0; i < times; ++i) {
                auto& pipe = from_client ? l.c2s : l.s2c;
                if (pipe.size() > pipe_limit) break;
                std::size_t n = 0;
                if (from_client) {
                    const bool was = c_->finished();
                    n = c_->write_to(l.client_conn, now_, out);
                    ccheck_->wrote(n, out.size(), was);
                } else {
                    auto& e = servers_[*l.server];
                    const bool was = e.s->finished();
                    n = e.s->write_to(l.server_conn, now_, out);
                    e.check->wrote(n, out.size(), was);
                }
                if (!l.alive) n = 0;  // the socket is gone: bytes go nowhere
                const auto* p = reinterpret_cast<const std::uint8_t*>(out.data());
                pipe.append(p, n);
                if (n == 0) break;
            }
            break;
        }
        case op::deliver:
        case op::deliver_corrupt: {
            auto& l = links_[pick_link()];
            const bool to_server = in_.ConsumeBool();
            const auto n = in_.ConsumeBool() ? in_.ConsumeIntegralInRange<std::size_t>(0, 64)
                                             : in_.ConsumeIntegralInRange<std::size_t>(0, 200'000);
            std::optional<std::pair<std::size_t, std::uint8_t>> flip;
            if (o == op::deliver_corrupt) flip = {in_.ConsumeIntegral<std::uint16_t>(), in_.ConsumeIntegralInRange<std::uint8_t>(1, 255)};
            deliver_bytes(l, to_server, n, flip, server, client);
            break;
        }
        case op::send_datagrams: {
            const auto who = pick_party();
            const auto out = out_.get(fuzz::read_out_size(in_));
            const auto times = in_.ConsumeIntegralInRange<int>(1, 64);
            if (!who) {
                ccheck_->before();
                client = true;
            } else {
                servers_[*who].check->before();
                server = who;
            }
            for (int i = 0; i < times; ++i) {
                std::optional<datagram> d;
                air_datagram a;
                if (!who) {
                    const bool was = c_->finished();
                    d = c_->next_datagram(now_, out);
                    ccheck_->datagram(d, out.size(), was);
                    if (d) a = {true, {client_ip_, static_cast<std::uint16_t>(binder_.first() + d->stream)}, d->port, {}};
                } else {
                    auto& e = servers_[*who];
                    const bool was = e.s->finished();
                    d = e.s->next_datagram(now_, out);
                    e.check->datagram(d, out.size(), was);
                    if (d) a = {false, {server_ip_, e.s->udp_port()}, d->port, {}};
                }
                if (!d) break;
                if (air_.size() < 256) {
                    const auto* first = reinterpret_cast<const std::uint8_t*>(out.data());
                    a.payload.assign(first, first + d->size);
                    air_.push_back(std::move(a));
                }
            }
            break;
        }
        case op::land_datagrams: {
            const auto times = in_.ConsumeIntegralInRange<int>(1, 64);
            for (int i = 0; i < times && !air_.empty(); ++i) {
                const auto idx = in_.ConsumeBool() ? 0 : in_.ConsumeIntegralInRange<std::size_t>(0, std::min<std::size_t>(air_.size() - 1, 7));
                auto a = std::move(air_[idx]);
                air_.erase(air_.begin() + std::ptrdiff_t(idx));
                if (in_.ConsumeIntegralInRange<int>(0, 15) == 0) continue;  // lost
                land(a);
            }
            after(std::nullopt, call::none, true);
            return;
        }
        case op::close: {
            auto& l = links_[pick_link()];
            if (!l.alive) return;
            const bool client_side = in_.ConsumeBool();
            const bool reset = in_.ConsumeBool();
            close_link(l, client_side, reset ? std::make_error_code(std::errc::connection_reset) : std::error_code{});
            after(std::nullopt, call::none, true);
            return;
        }
        case op::stop: {
            const auto who = pick_party();
            if (!who) {
                ccheck_->before();
                c_->stop(now_);
                client = true;
            } else {
                servers_[*who].check->before();
                servers_[*who].s->stop(now_);
                server = who;
            }
            break;
        }
        case op::connect_extra:
        case op::extra_failed: {
            if (extra_used_ >= extra_asked_) return;
            ++extra_used_;
            ccheck_->before();
            client = true;
            if (o == op::connect_extra && links_.size() < max_server_sessions) {
                connect(c_->add_connection(now_));
            } else {
                c_->connection_failed(now_);
            }
            break;
        }
        case op::cpu: {
            const auto who = pick_party();
            const auto load = in_.ConsumeIntegral<std::uint8_t>();
            if (!who) c_->set_local_cpu(load);
            else servers_[*who].s->set_local_cpu(load);
            after(std::nullopt, call::none, false);
            return;
        }
        }
        // One party was called at now_ (deliveries may have called both: see deliver_bytes).
        after(server, kind, client);
    }

    void deliver_bytes(link& l, bool to_server, std::size_t n, std::optional<std::pair<std::size_t, std::uint8_t>> flip,
                       std::optional<std::size_t>& server, bool& client) {
        auto& pipe = to_server ? l.c2s : l.s2c;
        const auto bytes = pipe.front(n);
        if (flip && !bytes.empty()) {
            bytes[flip->first % bytes.size()] ^= flip->second;
            corrupted_ = true;
        }
        if (!l.alive) {
            pipe.pop(n);
            return;
        }
        fuzz::trace_bytes("feed", bytes);
        const auto b = feed_copy().hold(bytes.data(), bytes.size());
        pipe.pop(n);
        if (to_server) {
            if (l.front) {
                const auto took = front_.feed(*l.front, now_, b.span());
                route(b.span().subspan(took), &l);
                return;
            }
            if (!l.server) return;
            auto& e = servers_[*l.server];
            e.check->before();
            e.s->feed(l.server_conn, now_, b.span());
            server = l.server;
        } else {
            ccheck_->before();
            c_->feed(l.client_conn, now_, b.span());
            client = true;
        }
    }

    void land(const air_datagram& a) {
        const fuzz::exact_copy p(a.payload.data(), a.payload.size());
        if (a.to_server) {
            for (auto& e : servers_)
                if (e.s->udp_port() == a.dst_port && !e.s->finished()) e.s->feed_datagram(now_, a.src, p.span());
        } else if (binder_.bound() && a.dst_port >= binder_.first() &&
                   std::uint32_t(a.dst_port) < std::uint32_t(binder_.first()) + binder_.count()) {
            c_->feed_datagram(now_, a.src, p.span());
        }
    }

    /// One side's transport reports the connection closed; the other side sees EOF once the
    /// bytes in flight towards it have arrived (a reset discards them).
    void close_link(link& l, bool client_side, std::error_code ec) {
        l.alive = false;
        if (!l.server) {  // the server end is still in the front end (or was closed by it)
            if (l.front) front_.closed(*l.front, now_);
            l.front.reset();
            c_->on_connection_closed(l.client_conn, now_, ec);
            l.c2s.clear();
            l.s2c.clear();
            return;
        }
        auto& e = servers_[*l.server];
        if (client_side) {
            c_->on_connection_closed(l.client_conn, now_, ec);
            if (!ec) {
                const auto rest = l.c2s.front(l.c2s.size());
                const auto b = feed_copy().hold(rest.data(), rest.size());
                e.s->feed(l.server_conn, now_, b.span());
            }
            e.s->on_connection_closed(l.server_conn, now_, ec);
        } else {
            e.s->on_connection_closed(l.server_conn, now_, ec);
            if (!ec) {
                const auto rest = l.s2c.front(l.s2c.size());
                const auto b = feed_copy().hold(rest.data(), rest.size());
                c_->feed(l.client_conn, now_, b.span());
            }
            c_->on_connection_closed(l.client_conn, now_, ec);
        }
        l.c2s.clear();
        l.s2c.clear();
    }

    // ---- checks and bookkeeping -----------------------------------------------------------

    void after(std::optional<std::size_t> server, call kind, bool client) {
        for (;;) {
            ccheck_->after(now_, client ? kind : call::none, [&](const event& ev) { on_client_event(ev); },
                           [&](const request& rq) { on_client_request(rq); });
            for (std::size_t i = 0; i < servers_.size(); ++i) {
                servers_[i].check->after(now_, server == i ? kind : call::none,
                                         [&](const event& ev) { on_server_event(i, ev); },
                                         [&](const request& rq) { on_server_request(i, rq); });
                auto& e = servers_[i];
                if (e.s->finished() && !e.settled) {  // its port block and its ticket go back
                    e.settled = true;
                    if (e.port) pool_.release(*e.port);
                    policy_.release(e.ticket);
                }
            }
            // A transport closes the connections of a finished session; its peer sees EOF.
            bool closed_any = false;
            for (auto& l : links_) {
                if (!l.alive) continue;
                if (c_->finished()) {
                    close_link(l, true, {});
                    closed_any = true;
                } else if (l.server && servers_[*l.server].s->finished()) {
                    close_link(l, false, {});
                    closed_any = true;
                }
            }
            if (!closed_any) break;
            server.reset();
            client = false;
        }
        std::size_t live = 0;
        for (const auto& e : servers_) live += e.s->finished() ? 0 : 1;
        FUZZ_CHECK(front_.joins().pending() <= live);
        if (!corrupted_) {
            FUZZ_CHECK(c_->error() != errc::protocol_error);
            FUZZ_CHECK(c_->error() != errc::bad_server_key);
            for (const auto& e : servers_) FUZZ_CHECK(e.s->error() != errc::protocol_error);
        }
    }

    void on_client_event(const event& ev) {
        if (fuzz::tracing()) std::fprintf(stderr, "  client event %zu\n", ev.index());
        if (const auto* oc = std::get_if<open_connections>(&ev)) {
            FUZZ_CHECK(extra_asked_ == 0);
            extra_asked_ = oc->count;
        }
    }

    void on_server_event(std::size_t from, const event& ev) {
        if (fuzz::tracing()) std::fprintf(stderr, "  server %zu event %zu\n", from, ev.index());
    }

    void on_server_request(std::size_t i, const request& rq) {
        auto& e = servers_[i];
        if (auto* p = std::get_if<udp_port_request>(&rq)) {
            e.port = pool_.acquire(p->count);
            e.s->udp_port_ready(now_, e.port);
        } else if (std::holds_alternative<admission_request>(rq)) {
            fuzz::answer_admission(in_, *e.s, now_);
        } else if (std::holds_alternative<budget_request>(rq)) {
            byte_budget more;
            more.tx = more.rx = more.total = in_.ConsumeIntegralInRange<std::uint64_t>(0, 1'000'000);
            e.s->add_budget(now_, more);
            e.check->refilled();
        } else {
            FUZZ_CHECK(false);
        }
    }

    void on_client_request(const request& rq) {
        const auto* b = std::get_if<udp_bind_request>(&rq);
        FUZZ_CHECK(b != nullptr);
        c_->udp_bound(now_, binder_.bind(*b));
    }

    /// A client connection reaches the server: the front end takes it (and may refuse it).
    void connect(std::uint32_t client_conn) {
        link l;
        l.client_conn = client_conn;
        l.front = front_.accept(now_, endpoint{client_ip_, static_cast<std::uint16_t>(40000 + links_.size())});
        links_.push_back(std::move(l));
        route({});
    }

    /// Follows the front end's routes; `rest` (the bytes behind a first message) goes to the
    /// session the connection of `from` is routed to.
    void route(std::span<const std::byte> rest, link* from = nullptr) {
        while (auto r = front_.poll_route()) {
            link* l = nullptr;
            for (auto& x : links_)
                if (x.front == route_conn(*r)) l = &x;
            FUZZ_CHECK(l != nullptr);
            l->front.reset();
            if (auto* t = std::get_if<route_test>(&*r)) {
                server_entry e;
                e.s = std::make_unique<server_session>(scfg_, svc_, t->peer, t->command, now_);
                e.check = std::make_unique<fuzz::checker<server_session>>(*e.s);
                e.ticket = t->ticket;
                servers_.push_back(std::move(e));
                l->server = servers_.size() - 1;
                l->server_conn = 0;
            } else if (auto* j = std::get_if<route_join>(&*r)) {
                std::optional<std::size_t> target;
                for (std::size_t i = 0; i < servers_.size(); ++i)
                    if (servers_[i].s.get() == j->session) target = i;
                FUZZ_CHECK(target.has_value());
                servers_[*target].check->before();
                l->server = *target;
                l->server_conn = servers_[*target].s->join(now_);
            } else {
                // Closed by the front end: the client sees EOF once the bytes in flight arrive.
                l->alive = false;
                const auto bytes = l->s2c.front(l->s2c.size());
                const auto b = feed_copy().hold(bytes.data(), bytes.size());
                l->s2c.clear();
                l->c2s.clear();
                c_->feed(l->client_conn, now_, b.span());
                c_->on_connection_closed(l->client_conn, now_, {});
                continue;
            }
            if (l == from && !rest.empty()) {
                auto& e = servers_[*l->server];
                e.s->feed(l->server_conn, now_, rest);
            }
        }
    }

    /// nullopt: the client; otherwise a server session.
    std::optional<std::size_t> pick_party() {
        const auto i = in_.ConsumeIntegralInRange<std::size_t>(0, servers_.size());
        if (i == 0) return std::nullopt;
        return i - 1;
    }
    std::size_t pick_link() { return in_.ConsumeIntegralInRange<std::size_t>(0, links_.size() - 1); }

    FuzzedDataProvider& in_;
    fuzz::provider_entropy rng_;
    server_config scfg_;
    client_config ccfg_;
    fuzz::checking_pool pool_;
    fuzz::checking_binder binder_;
    server_policy policy_;
    server_front front_;
    server_services svc_;
    client_services csvc_;
    ip_address server_ip_ = ip_address::v4(10, 0, 0, 1);
    ip_address client_ip_ = ip_address::v4(10, 0, 0, 2);
    std::vector<server_entry> servers_;
    std::unique_ptr<client_session> c_;
    std::unique_ptr<fuzz::checker<client_session>> ccheck_;
    std::vector<link> links_;
    std::vector<air_datagram> air_;
    fuzz::out_buffer out_;
    time_point now_{};
    bool corrupted_ = false;
    std::uint32_t extra_asked_ = 0;
    std::uint32_t extra_used_ = 0;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const auto pool = in.ConsumeBytes<std::uint8_t>(in.ConsumeIntegralInRange<std::size_t>(0, entropy_pool_max));
    FuzzedDataProvider rng_in(pool.data(), pool.size());
    harness h(in, rng_in);
    h.run();
    return 0;
}
