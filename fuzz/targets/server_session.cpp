// A whole server: sessions for the connections it accepts (from the peer's IP and from
// others), sharing a join registry and a UDP port pool, driven by the fuzzer's choice of bytes,
// chunking, clock steps, timer firings (due, early and late), datagrams, closes, stops and
// randomness. Every call is followed by the invariant checks of fuzz/session.hpp; a JOIN that
// moves a connection to another session is followed as a transport would (the socket now
// belongs to the target). At the end every port block must have been released and every
// registration removed.
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
#include <btest/server/join_registry.hpp>
#include <btest/session/server_session.hpp>

#include "fuzz/server_ops.hpp"
#include "fuzz/session.hpp"

namespace {

using namespace btest;
using namespace fuzz::server_ops;
using fuzz::call;

struct socket_state {
    std::size_t session = 0;
    std::uint32_t conn = 0;
    bool open = true;
    std::vector<std::uint8_t> seen;  ///< the first bytes the server wrote on it
    std::unique_ptr<auth::ec_srp5::client_exchange> ec;
    std::vector<std::uint8_t> msg1;  ///< the MSG1 frame sent for `ec`
};

struct session_entry {
    std::unique_ptr<server_session> s;
    std::unique_ptr<fuzz::checker<server_session>> check;
};

class harness {
public:
    harness(FuzzedDataProvider& in, FuzzedDataProvider& rng_in)
        : in_(in), rng_(rng_in), cfg_(fuzz::read_server_config(in)), pool_(in),
          joins_(join_registry::limits{in.ConsumeIntegralInRange<std::size_t>(0, 4),
                                       in.ConsumeIntegralInRange<std::size_t>(0, 3)}),
          svc_{rng_, &fuzz::credentials(), &pool_, &joins_, {}} {
        if (in.ConsumeIntegralInRange<int>(0, 15) == 0) svc_.credentials = nullptr;
        if (in.ConsumeIntegralInRange<int>(0, 15) == 0) svc_.udp_ports = nullptr;
        if (in.ConsumeIntegralInRange<int>(0, 15) == 0) svc_.joins = nullptr;
        if (in.ConsumeBool()) {
            peer_ip_ = ip_address::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10});
            other_ip_ = ip_address::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x66});
        }
        accept(peer_ip_);
    }

    ~harness() {
        for (auto& e : sessions_) e.check->final_check();
        sessions_.clear();  // destructors release ports and registrations
        pool_.check_all_released();
        FUZZ_CHECK(joins_.pending() == 0);
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
            const auto j = pick_session();
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
            auto& sk = sockets_[pick_socket()];
            const auto bytes = o == op::feed_raw ? in_.ConsumeBytes<std::uint8_t>(in_.ConsumeIntegralInRange<std::size_t>(0, 300))
                                             : canned_message(sk);
            auto& e = sessions_[sk.session];
            e.check->before();
            fuzz::trace_bytes("feed", bytes);
            const fuzz::exact_copy b(bytes.data(), bytes.size());
            const auto ec = e.s->feed(sk.conn, now_, b.span());
            FUZZ_CHECK(ec == e.s->error());
            called = sk.session;
            break;
        }
        case op::write: {
            auto& sk = sockets_[pick_socket()];
            auto& e = sessions_[sk.session];
            const auto out = out_.get(fuzz::read_out_size(in_));
            const auto times = in_.ConsumeIntegralInRange<int>(1, 8);
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
            auto& e = sessions_[sk.session];
            std::error_code ec;
            switch (in_.ConsumeIntegralInRange<int>(0, 2)) {
            case 0: break;  // EOF
            case 1: ec = std::make_error_code(std::errc::connection_reset); break;
            default: ec = make_error_code(errc::transport_error); break;
            }
            e.check->before();
            e.s->on_connection_closed(sk.conn, now_, ec);
            sk.open = false;
            called = sk.session;
            break;
        }
        case op::stop: {
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
            const auto j = pick_session();
            sessions_[j].s->set_local_cpu(in_.ConsumeIntegral<std::uint8_t>());
            break;
        }
        }
        after(called, kind);
    }

    /// Drains every session's events (a JOIN may have started another session's test from
    /// inside the call) and checks the invariants; deadlines only for the session called.
    void after(std::optional<std::size_t> called, call kind) {
        for (std::size_t i = 0; i < sessions_.size(); ++i) {
            sessions_[i].check->after(now_, called == i ? kind : call::none,
                                      [&](const event& ev) { on_event(i, ev); });
        }
        std::size_t live = 0;
        for (const auto& e : sessions_) live += e.s->finished() ? 0 : 1;
        FUZZ_CHECK(joins_.pending() <= live);
    }

    void on_event(std::size_t from, const event& ev) {
        if (fuzz::tracing()) std::fprintf(stderr, "  session %zu event %zu\n", from, ev.index());
        if (const auto* h = std::get_if<connection_handoff>(&ev)) {
            FUZZ_CHECK(sessions_[from].s->finished());
            std::optional<std::size_t> target;
            for (std::size_t i = 0; i < sessions_.size(); ++i)
                if (sessions_[i].s.get() == h->target) target = i;
            FUZZ_CHECK(target && *target != from);
            FUZZ_CHECK(h->conn < sessions_[*target].s->connection_count());
            FUZZ_CHECK(sessions_[*target].s->peer().address == sessions_[from].s->peer().address);
            for (auto& sk : sockets_) {
                if (sk.session == from && sk.conn == 0) {
                    sk.session = *target;
                    sk.conn = h->conn;
                    sk.seen.clear();
                }
            }
        }
    }

    void accept(const ip_address& ip) {
        const endpoint peer{ip, static_cast<std::uint16_t>(50000 + sessions_.size())};
        session_entry e;
        e.s = std::make_unique<server_session>(cfg_, svc_, peer, now_);
        e.check = std::make_unique<fuzz::checker<server_session>>(*e.s);
        sessions_.push_back(std::move(e));
        socket_state sk;
        sk.session = sessions_.size() - 1;
        sockets_.push_back(std::move(sk));
        after(sessions_.size() - 1, call::input);
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
            const auto j = pick_session();
            put(wire::encode_join(sessions_[j].s->token()));
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
    join_registry joins_;
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
