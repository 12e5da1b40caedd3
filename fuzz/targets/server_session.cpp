// A whole server: the kit's front end routing the connections it accepts (from the peer's IP
// and from others) under a server_policy, and sessions for the tests they start, sharing the
// front end's join registry and a UDP port pool, driven by the fuzzer's choice of bytes,
// chunking, clock steps, timer firings (due, early and late), datagrams, closes, stops,
// admission answers and randomness. The harness plays the transport: it follows every route
// (a JOIN's socket now belongs to its test), answers requests, and settles with the policy as
// connections and tests end. Every call is followed by the invariant checks of
// fuzz/session.hpp and of the front end's routing. At the end every port block must have been
// released, every registration removed and the policy's counts back at zero.
#include <algorithm>
#include <cstdio>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

#include <btest/auth/ec_srp5.hpp>
#include <btest/auth/md5.hpp>
#include <btest/server/front.hpp>
#include <btest/server/join_registry.hpp>
#include <btest/server/policy.hpp>
#include <btest/session/server_session.hpp>

#include "fuzz/server_ops.hpp"
#include "fuzz/session.hpp"

namespace {

using namespace btest;
using namespace fuzz::server_ops;
using fuzz::call;

struct socket_state {
    endpoint peer;
    std::optional<conn_id> front;    ///< in the front end, before its route
    std::optional<std::size_t> session;  ///< routed to this session…
    std::uint32_t conn = 0;          ///< … as this connection
    bool open = true;
    bool counted = false;            ///< routed: the policy counts it until it closes
    std::vector<std::uint8_t> seen;  ///< the first bytes the server wrote on it
    std::unique_ptr<auth::ec_srp5::client_exchange> ec;
    std::vector<std::uint8_t> msg1;  ///< the MSG1 frame sent for `ec`
};

struct session_entry {
    std::unique_ptr<server_session> s;
    std::unique_ptr<fuzz::checker<server_session>> check;
    session_admission::ticket ticket;
    std::optional<std::uint16_t> port;
    bool settled = false;  ///< its end was seen: port, ticket and sockets given back
};

class harness {
public:
    harness(FuzzedDataProvider& in, FuzzedDataProvider& rng_in)
        : in_(in), rng_(rng_in), cfg_(fuzz::read_server_config(in)), pool_(in), policy_(read_policy(in)),
          front_(front_config{cfg_.limits.handshake, cfg_.max_conn_count,
                              join_registry::limits{in.ConsumeIntegralInRange<std::size_t>(0, 4),
                                                    in.ConsumeIntegralInRange<std::size_t>(0, 3)}},
                 policy_),
          svc_{rng_, &fuzz::credentials(), &front_.joins(), {}} {
        if (in.ConsumeIntegralInRange<int>(0, 15) == 0) svc_.credentials = nullptr;
        if (in.ConsumeIntegralInRange<int>(0, 15) == 0) svc_.joins = nullptr;
        if (in.ConsumeBool()) {
            peer_ip_ = ip_address::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10});
            other_ip_ = ip_address::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x66});
        }
        accept(peer_ip_);
    }

    ~harness() {
        for (auto& e : sessions_) e.check->final_check();
        // The transport goes away: sockets in the front end close, every test ends.
        for (auto& sk : sockets_)
            if (sk.front) front_.closed(*sk.front, now_);
        for (std::size_t i = 0; i < sessions_.size(); ++i) {
            sessions_[i].s->stop(now_);
            settle(i, /*gone=*/true);  // (one still flushing a last word is dropped with the rest)
        }
        sessions_.clear();  // destructors remove registrations
        pool_.check_all_released();
        FUZZ_CHECK(front_.joins().pending() == 0);
        FUZZ_CHECK(front_.pending() == 0);
        FUZZ_CHECK(policy_.admission().tests() == 0);
        FUZZ_CHECK(policy_.admission().handshaking() == 0);
        FUZZ_CHECK(policy_.connections().addresses() == 0);
    }

    void run() {
        while (in_.remaining_bytes() > 0) step();
    }

private:
    void step() {
        const auto o = static_cast<op>(in_.ConsumeIntegralInRange<int>(0, static_cast<int>(op::op_last)));
        if (fuzz::tracing())
            std::fprintf(stderr, "t=%lldus op %d\n", static_cast<long long>(now_.time_since_epoch().count() / 1000), static_cast<int>(o));
        std::optional<std::size_t> called;
        call kind = call::input;
        switch (o) {
        case op::advance: now_ += fuzz::read_step(in_); return;
        case op::fire_timer:
        case op::timer_now: {
            const auto j = in_.ConsumeIntegralInRange<std::size_t>(0, sessions_.size());
            if (j == sessions_.size()) {  // the front end's timer
                if (o == op::fire_timer)
                    if (auto d = front_.next_deadline()) now_ = std::max(now_, *d);
                front_.on_timer(now_);
                if (auto d = front_.next_deadline()) FUZZ_CHECK(*d > now_);
                route(std::nullopt, {});
                return;
            }
            auto& e = sessions_[j];
            if (o == op::fire_timer)
                if (auto d = e.s->next_deadline()) now_ = std::max(now_, *d);
            e.check->before();
            const auto ec = e.s->on_timer(now_);
            FUZZ_CHECK(ec == e.s->error());
            called = j;
            kind = call::timer;
            break;
        }
        case op::feed_raw:
        case op::feed_canned: {
            const auto k = pick_socket();
            auto& sk = sockets_[k];
            const auto bytes = o == op::feed_raw ? in_.ConsumeBytes<std::uint8_t>(in_.ConsumeIntegralInRange<std::size_t>(0, 300))
                                             : canned_message(sk);
            fuzz::trace_bytes("feed", bytes);
            const fuzz::exact_copy b(bytes.data(), bytes.size());
            if (sk.front) {
                const auto took = front_.feed(*sk.front, now_, b.span());
                FUZZ_CHECK(took <= bytes.size());
                route(k, b.span().subspan(took));
                return;
            }
            if (!sk.session) return;  // closed by the front end
            auto& e = sessions_[*sk.session];
            e.check->before();
            const auto ec = e.s->feed(sk.conn, now_, b.span());
            FUZZ_CHECK(ec == e.s->error());
            called = sk.session;
            break;
        }
        case op::write: {
            auto& sk = sockets_[pick_socket()];
            const auto out = out_.get(fuzz::read_out_size(in_));
            const auto times = in_.ConsumeIntegralInRange<int>(1, 8);
            if (sk.front) {  // HELLO, in as many pieces as the buffer makes
                for (int i = 0; i < times; ++i) {
                    const auto n = front_.write_to(*sk.front, now_, out);
                    FUZZ_CHECK(n <= out.size());
                    for (std::size_t q = 0; q < n && sk.seen.size() < 128; ++q)
                        sk.seen.push_back(std::to_integer<std::uint8_t>(out[q]));
                    if (n == 0) break;
                }
                FUZZ_CHECK(sk.seen.size() <= 4);
                return;
            }
            if (!sk.session) return;
            auto& e = sessions_[*sk.session];
            e.check->before();
            for (int i = 0; i < times; ++i) {
                const bool was_finished = e.s->finished();
                const auto n = e.s->write_to(sk.conn, now_, out);
                e.check->wrote(n, out.size(), was_finished);
                for (std::size_t k = 0; k < n && sk.seen.size() < 128; ++k)
                    sk.seen.push_back(std::to_integer<std::uint8_t>(out[k]));
                if (n == 0) break;
            }
            called = sk.session;
            break;
        }
        case op::datagrams: {
            if (sessions_.empty()) return;
            const auto j = pick_session();
            auto& e = sessions_[j];
            const auto out = out_.get(fuzz::read_out_size(in_));
            const auto times = in_.ConsumeIntegralInRange<int>(1, 64);
            e.check->before();
            for (int i = 0; i < times; ++i) {
                const bool was_finished = e.s->finished();
                const auto d = e.s->next_datagram(now_, out);
                e.check->datagram(d, out.size(), was_finished);
                if (!d) break;
            }
            called = j;
            break;
        }
        case op::feed_datagram: {
            if (sessions_.empty()) return;
            const auto j = pick_session();
            auto& e = sessions_[j];
            endpoint src{in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? other_ip_ : peer_ip_, 0};
            src.port = in_.ConsumeBool() ? static_cast<std::uint16_t>(e.s->udp_port() + 256 +
                                                                      in_.ConsumeIntegralInRange<int>(0, 3))
                                         : in_.ConsumeIntegral<std::uint16_t>();
            std::vector<std::uint8_t> payload;
            if (in_.ConsumeBool()) {
                payload.assign(in_.ConsumeIntegralInRange<std::size_t>(0, 1600), 0);
                const std::uint32_t seq = in_.ConsumeBool() ? ++udp_seq_ : in_.ConsumeIntegral<std::uint32_t>();
                for (std::size_t i = 0; i < 4 && i < payload.size(); ++i)
                    payload[i] = static_cast<std::uint8_t>(seq >> (24 - 8 * i));
            } else {
                payload = in_.ConsumeBytes<std::uint8_t>(in_.ConsumeIntegralInRange<std::size_t>(0, 64));
            }
            e.check->before();
            const fuzz::exact_copy p(payload.data(), payload.size());
            e.s->feed_datagram(now_, src, p.span());
            called = j;
            break;
        }
        case op::close: {
            auto& sk = sockets_[pick_socket()];
            std::error_code ec;
            switch (in_.ConsumeIntegralInRange<int>(0, 2)) {
            case 0: break;  // EOF
            case 1: ec = std::make_error_code(std::errc::connection_reset); break;
            default: ec = make_error_code(errc::transport_error); break;
            }
            if (sk.front) {  // before its first message: the front end forgets it
                front_.closed(*sk.front, now_);
                sk.front.reset();
                sk.open = false;
                check_front();
                return;
            }
            if (!sk.session) return;
            auto& e = sessions_[*sk.session];
            e.check->before();
            e.s->on_connection_closed(sk.conn, now_, ec);
            close_socket(sk);
            called = sk.session;
            break;
        }
        case op::stop: {
            if (sessions_.empty()) return;
            const auto j = pick_session();
            sessions_[j].check->before();
            sessions_[j].s->stop(now_);
            called = j;
            break;
        }
        case op::accept:
            if (sessions_.size() < max_sessions) accept(in_.ConsumeIntegralInRange<int>(0, 3) == 0 ? other_ip_ : peer_ip_);
            return;
        case op::cpu: {
            if (sessions_.empty()) return;
            const auto j = pick_session();
            sessions_[j].s->set_local_cpu(in_.ConsumeIntegral<std::uint8_t>());
            break;
        }
        }
        after(called, kind);
    }

    /// Drains every session's events and requests and checks the invariants; deadlines only
    /// for the session called. A session seen finished for the first time is settled as a
    /// transport would: its port block and its ticket go back, its sockets close.
    void after(std::optional<std::size_t> called, call kind) {
        for (std::size_t i = 0; i < sessions_.size(); ++i) {
            sessions_[i].check->after(
                now_, called == i ? kind : call::none, [&](const event& ev) { on_event(i, ev); },
                [&](const request& rq) { on_request(i, rq); });
            if (sessions_[i].s->finished()) settle(i);
        }
        std::size_t live = 0;
        for (const auto& e : sessions_) live += e.s->finished() ? 0 : 1;
        FUZZ_CHECK(front_.joins().pending() <= live);
        check_front();
    }

    void on_event(std::size_t from, const event& ev) {
        if (fuzz::tracing()) std::fprintf(stderr, "  session %zu event %zu\n", from, ev.index());
        if (auto* a = std::get_if<auth_result>(&ev); a && !a->ok) policy_.auth_failed(sessions_[from].s->peer().address, now_);
    }

    void on_request(std::size_t i, const request& rq) {
        auto& e = sessions_[i];
        if (auto* p = std::get_if<udp_port_request>(&rq)) {
            FUZZ_CHECK(e.s->command().proto == protocol::udp);
            FUZZ_CHECK(!e.port);
            e.port = pool_.acquire(p->count);
            e.s->udp_port_ready(now_, e.port);
        } else if (std::holds_alternative<admission_request>(rq)) {
            FUZZ_CHECK(cfg_.ask_admission);
            fuzz::answer_admission(in_, *e.s, now_);
        } else if (std::holds_alternative<budget_request>(rq)) {
            if (in_.ConsumeBool()) return;  // no answer (yet): the session spends what it has
            byte_budget more;
            if (in_.ConsumeBool()) more.tx = in_.ConsumeIntegralInRange<std::uint64_t>(0, 10'000'000);
            if (in_.ConsumeBool()) more.rx = in_.ConsumeIntegralInRange<std::uint64_t>(0, 10'000'000);
            if (in_.ConsumeBool()) more.total = in_.ConsumeIntegralInRange<std::uint64_t>(0, 10'000'000);
            e.s->add_budget(now_, more, in_.ConsumeBool() ? budget_end::quota_exhausted : budget_end::quota_unavailable);
            e.check->refilled();
        } else {
            FUZZ_CHECK(false);  // a client's request from a server session
        }
    }

    /// What a transport does when a test is over: closes its sockets (each counted one back to
    /// the policy), gives its port block and its ticket back.
    void settle(std::size_t i, bool gone = false) {
        auto& e = sessions_[i];
        if (e.settled || !(e.s->finished() || gone)) return;
        e.settled = true;
        if (e.port) pool_.release(*e.port);
        e.port.reset();
        policy_.release(e.ticket);
        for (auto& sk : sockets_)
            if (sk.session == i) close_socket(sk);
    }
    void close_socket(socket_state& sk) {
        sk.open = false;
        if (sk.counted) policy_.connection_closed(sk.peer.address);
        sk.counted = false;
    }

    /// Follows the front end's routes. `from`/`rest`: the socket just fed and the bytes behind
    /// its first message, which belong to whatever it is routed to.
    void route(std::optional<std::size_t> from, std::span<const std::byte> rest) {
        while (auto r = front_.poll_route()) {
            const auto id = route_conn(*r);
            std::optional<std::size_t> k;
            for (std::size_t i = 0; i < sockets_.size(); ++i)
                if (sockets_[i].front == id) k = i;
            FUZZ_CHECK(k.has_value());  // a route for a connection the front end holds
            auto& sk = sockets_[*k];
            sk.front.reset();
            const auto surplus = k == from ? rest : std::span<const std::byte>{};
            if (auto* t = std::get_if<route_test>(&*r)) {
                FUZZ_CHECK(t->peer == sk.peer);
                FUZZ_CHECK(t->command.connections() <= cfg_.max_conn_count);
                FUZZ_CHECK(t->ticket.counts_as_test());
                session_entry e;
                e.s = std::make_unique<server_session>(cfg_, svc_, sk.peer, t->command, now_);
                e.check = std::make_unique<fuzz::checker<server_session>>(*e.s);
                e.ticket = t->ticket;
                sessions_.push_back(std::move(e));
                sk.session = sessions_.size() - 1;
                sk.conn = 0;
                sk.counted = true;  // (`seen` keeps HELLO: the canned answers read behind it)
            } else if (auto* j = std::get_if<route_join>(&*r)) {
                std::optional<std::size_t> target;
                for (std::size_t i = 0; i < sessions_.size(); ++i)
                    if (sessions_[i].s.get() == j->session) target = i;
                FUZZ_CHECK(target.has_value());
                auto& e = sessions_[*target];
                FUZZ_CHECK(!e.s->finished());
                FUZZ_CHECK(e.s->peer().address == sk.peer.address);  // JOINs only from the test's address (§7)
                FUZZ_CHECK(e.s->token() != 0);
                e.check->before();
                sk.conn = e.s->join(now_);
                FUZZ_CHECK(sk.conn < e.s->connection_count());
                sk.session = *target;
                sk.counted = true;
                sk.seen.clear();
            } else {
                sk.open = false;  // the front end settled with the policy
            }
            if (sk.session) {
                auto& e = sessions_[*sk.session];
                if (!std::holds_alternative<route_join>(*r)) e.check->before();
                if (!surplus.empty()) e.s->feed(sk.conn, now_, surplus);
                after(sk.session, call::input);
            }
        }
        check_front();
    }

    /// The front end holds exactly the sockets that await their route.
    void check_front() {
        std::size_t waiting = 0;
        for (const auto& sk : sockets_) waiting += sk.front ? 1 : 0;
        FUZZ_CHECK(front_.pending() == waiting);
        FUZZ_CHECK(policy_.admission().handshaking() <= waiting);
    }

    void accept(const ip_address& ip) {
        socket_state sk;
        sk.peer = endpoint{ip, static_cast<std::uint16_t>(50000 + sockets_.size())};
        sk.front = front_.accept(now_, sk.peer);
        sockets_.push_back(std::move(sk));
        route(std::nullopt, {});
    }

    static server_policy read_policy(FuzzedDataProvider& in) {
        server_policy::limits l;
        if (in.ConsumeBool()) return server_policy(l);
        l.sessions.max_sessions = in.ConsumeIntegralInRange<std::size_t>(0, 4);
        l.sessions.handshake_slack = in.ConsumeIntegralInRange<std::size_t>(0, 3);
        l.max_connections_per_ip = in.ConsumeIntegralInRange<std::size_t>(0, 4);
        l.auth_failures.max_failures = in.ConsumeIntegralInRange<std::uint32_t>(0, 3);
        address_filter f;
        if (in.ConsumeIntegralInRange<int>(0, 7) == 0) f.deny(ip_network{ip_address::v4(198, 51, 100, 0), 24});
        return server_policy(l, f);
    }

    std::size_t pick_session() { return in_.ConsumeIntegralInRange<std::size_t>(0, sessions_.size() - 1); }
    std::size_t pick_socket() { return in_.ConsumeIntegralInRange<std::size_t>(0, sockets_.size() - 1); }

    std::vector<std::uint8_t> canned_message(socket_state& sk) {
        std::vector<std::uint8_t> out;
        auto put = [&](std::span<const std::byte> b) {
            for (auto x : b) out.push_back(std::to_integer<std::uint8_t>(x));
        };
        switch (static_cast<canned>(in_.ConsumeIntegralInRange<int>(0, static_cast<int>(canned::canned_last)))) {
        case canned::command: {
            wire::command c;
            c.proto = in_.ConsumeBool() ? protocol::tcp : protocol::udp;
            c.dir = static_cast<direction>(in_.ConsumeIntegralInRange<int>(1, 3));
            c.random_data = in_.ConsumeBool();
            c.conn_count = in_.ConsumeBool() ? in_.ConsumeIntegralInRange<std::uint8_t>(0, 4) : in_.ConsumeIntegral<std::uint8_t>();
            switch (in_.ConsumeIntegralInRange<int>(0, 3)) {
            case 0: c.tx_size = c.proto == protocol::tcp ? 32768 : 1500; break;
            case 1: c.tx_size = in_.ConsumeIntegralInRange<std::uint16_t>(0, 64); break;
            default: c.tx_size = in_.ConsumeIntegral<std::uint16_t>(); break;
            }
            c.remote_tx_speed = static_cast<std::uint32_t>(std::min<std::uint64_t>(fuzz::read_rate(in_), 0xffffffffu));
            c.local_tx_speed = in_.ConsumeIntegral<std::uint32_t>();
            put(wire::encode_command(c));
            break;
        }
        case canned::md5_reply: {
            const auto l = fuzz::read_login(in_);
            std::array<std::byte, 16> challenge{};
            // HELLO, then `02 00 00 00` and the challenge.
            if (sk.seen.size() >= 24 && sk.seen[4] == 2)
                for (std::size_t i = 0; i < 16; ++i) challenge[i] = std::byte(sk.seen[8 + i]);
            put(wire::encode_md5_reply(auth::md5_response(l.password, challenge), l.user));
            break;
        }
        case canned::ec_msg1: {
            const auto l = fuzz::read_login(in_);
            if (sk.ec) {
                // A second MSG1 on this socket before MSG3 repeats the first (as a confused
                // client would) instead of paying for another key generation.
                out = sk.msg1;
                break;
            }
            sk.ec = std::make_unique<auth::ec_srp5::client_exchange>(l.user, l.password, rng_);
            std::array<std::byte, wire::ecsrp5_max_frame> f{};
            const auto n = wire::encode_ecsrp5_msg1(l.user, sk.ec->client_key(), f);
            put(std::span(f).first(n));
            sk.msg1 = out;
            break;
        }
        case canned::ec_msg3: {
            // HELLO, `03 00 00 00`, then MSG2 (50 bytes).
            if (sk.ec && sk.seen.size() >= 58 && sk.seen[4] == 3 && sk.seen[8] == 0x31) {
                std::array<std::byte, 49> payload{};
                for (std::size_t i = 0; i < 49; ++i) payload[i] = std::byte(sk.seen[9 + i]);
                if (auto m2 = wire::decode_ecsrp5_msg2(payload)) {
                    if (auto proof = sk.ec->on_msg2(*m2)) put(wire::encode_ecsrp5_proof(*proof));
                }
                sk.ec.reset();
            }
            if (out.empty()) {
                out.push_back(0x20);
                const auto junk = in_.ConsumeBytes<std::uint8_t>(32);
                out.insert(out.end(), junk.begin(), junk.end());
            }
            break;
        }
        case canned::join: {
            const std::uint16_t token =
                sessions_.empty() || in_.ConsumeIntegralInRange<int>(0, 7) == 0 ? in_.ConsumeIntegral<std::uint16_t>()
                                                                                : sessions_[pick_session()].s->token();
            put(wire::encode_join(token));
            break;
        }
        case canned::status: {
            wire::status s;
            s.cpu_load = in_.ConsumeIntegralInRange<std::uint8_t>(0, 100);
            s.seq = in_.ConsumeIntegral<std::uint32_t>();
            s.bytes = in_.ConsumeBool() ? in_.ConsumeIntegralInRange<std::uint32_t>(0, 2'000'000) : in_.ConsumeIntegral<std::uint32_t>();
            put(wire::encode_status(s));
            break;
        }
        case canned::zeros: out.assign(in_.ConsumeIntegralInRange<std::size_t>(0, 70'000), 0); break;
        case canned::frame: {
            const auto len = in_.ConsumeIntegral<std::uint8_t>();
            out.push_back(len);
            const auto body = in_.ConsumeBytes<std::uint8_t>(len);
            out.insert(out.end(), body.begin(), body.end());
            break;
        }
        }
        return out;
    }

    FuzzedDataProvider& in_;
    fuzz::provider_entropy rng_;
    server_config cfg_;
    fuzz::checking_pool pool_;
    server_policy policy_;
    server_front front_;
    server_services svc_;
    ip_address peer_ip_ = ip_address::v4(192, 0, 2, 10);
    ip_address other_ip_ = ip_address::v4(198, 51, 100, 7);
    std::vector<session_entry> sessions_;
    std::vector<socket_state> sockets_;
    fuzz::out_buffer out_;
    time_point now_{};
    std::uint32_t udp_seq_ = 0;
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
