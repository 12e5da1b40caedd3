// The client control state machine — PROTOCOL §5 — for one test: the primary connection's
// handshake (no auth, MD5 or EC-SRP5, whichever the server asks for), the extra connections
// of a multi-connection TCP test (§7), the UDP port and the test itself.
//
//   WAIT_HELLO ─01 00 00 00→ COMMAND → WAIT_AUTHWORD ─OK→ POST_AUTH
//                                                    ─02→ WAIT_CHALLENGE → reply → WAIT_RESULT
//                                                    ─03→ MSG1 → WAIT_EC2 → MSG3 → WAIT_EC4 → WAIT_RESULT
//   POST_AUTH: UDP → WAIT_PORT → udp_bind_request → WAIT_BIND → RUN;  TCP N ≥ 2 with a token → JOINING → RUN;
//              TCP N ≥ 2 without a token → notice, RUN with one;  TCP single → RUN
//
// Thread safety: one thread at a time per session.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "btest/auth/ec_srp5.hpp"
#include "btest/auth/md5.hpp"
#include "btest/session/session.hpp"
#include "btest/wire/auth_word.hpp"
#include "btest/wire/command.hpp"
#include "btest/wire/ec_srp5.hpp"
#include "btest/wire/hello.hpp"
#include "btest/wire/join.hpp"
#include "btest/wire/md5.hpp"
#include "btest/wire/udp_port.hpp"

namespace btest {

/// What a client session borrows from its embedder; must outlive the session.
struct client_services {
    entropy& rng;                     ///< CSPRNG for EC-SRP5's s_a; payload ring for random data
};

class client_session final : public session {
public:
    /// The primary TCP connection to `server` is established at `now` (connection 0). T_hs is
    /// armed; the server speaks first. `cfg` and `svc` must outlive the session.
    client_session(const client_config& cfg, client_services& svc, const endpoint& server, time_point now)
        : session(detail::role::client, cfg.limits, cfg.report_interval, cfg.udp, svc.rng, server), cfg_(cfg) {
        add_conn();
        set_phase(0, phase::wait_hello);
        arm_handshake(now);
    }
    ~client_session() override { on_end(); }

    /// Multi-connection TCP, after open_connections: an extra connection is established.
    /// Returns its index for feed()/write_to()/on_connection_closed().
    std::uint32_t add_connection(time_point now) {
        const auto conn = add_conn();
        set_phase(conn, phase::extra_hello);
        // Too late (the test is over or already running without it): close it again.
        if (finished() || closing() || running()) conns()[conn].open = false;
        (void)now;
        return conn;
    }
    /// Multi-connection TCP: one of the extra connections could not be opened (reported, not
    /// fatal, §5).
    std::error_code connection_failed(time_point now) {
        if (finished() || closing() || running()) return error();
        ++join_failed_;
        maybe_start_joined(now);
        return error();
    }

    /// Answers a udp_bind_request: true when every socket is bound; false ends the session with
    /// port_unavailable.
    std::error_code udp_bound(time_point now, bool ok) {
        if (finished() || closing() || phase_of(0) != phase::wait_bind) return error();
        if (!ok) {
            fail(now, errc::port_unavailable);
            return error();
        }
        set_phase(0, phase::done);
        conns()[0].in_test = true;
        if (cfg_.nat_probe) set_nat_probes(stream_count());
        begin_test(now, params_for_test());
        return error();
    }
    /// False for a connection the session gave up on (a failed join): close its socket.
    bool connection_open(std::uint32_t conn) const noexcept {
        return conn < conns().size() && conns()[conn].open;
    }

    /// The COMMAND this client sends (PROTOCOL §2.2).
    wire::command command() const noexcept {
        wire::command c;
        c.proto = cfg_.proto;
        c.dir = cfg_.dir;
        c.random_data = cfg_.random_data;
        const auto n = std::clamp<std::uint32_t>(cfg_.connection_count, 1, 255);
        c.conn_count = n == 1 ? 0 : static_cast<std::uint8_t>(n);
        c.tx_size = cfg_.tx_size ? cfg_.tx_size
                                 : (cfg_.proto == protocol::tcp ? wire::default_tcp_chunk : std::uint16_t{1500});
        c.buf_size = 0;
        c.remote_tx_speed = clamp32(cfg_.remote_tx_speed);
        c.local_tx_speed = clamp32(cfg_.local_tx_speed);
        return c;
    }
    /// The token of a multi-connection test (0: none).
    std::uint16_t token() const noexcept { return token_; }
    /// The server's UDP port P of a UDP test (0 before it is known).
    std::uint16_t udp_port() const noexcept { return udp_port_; }
    /// Which authentication the server asked for.
    wire::auth_word_kind auth_asked() const noexcept { return asked_; }

private:
    /// Handshake states: connection 0 goes from wait_hello to done; an extra connection of a
    /// multi-connection test from extra_hello to done.
    enum class phase : std::uint8_t {
        wait_hello, wait_authword, wait_challenge, wait_ec2, wait_ec4, wait_result, wait_port, wait_bind, done,
        extra_hello, extra_reply,
    };

    phase phase_of(std::uint32_t conn) const noexcept { return static_cast<phase>(conns()[conn].phase); }
    void set_phase(std::uint32_t conn, phase p) noexcept { conns()[conn].phase = static_cast<std::uint8_t>(p); }
    std::uint32_t stream_count() const noexcept { return std::clamp<std::uint32_t>(cfg_.connection_count, 1, 255); }

    static std::uint32_t clamp32(std::uint64_t v) noexcept {
        return v > 0xffffffffULL ? 0xffffffffu : static_cast<std::uint32_t>(v);
    }

    bool in_handshake(std::uint32_t conn) const override {
        const auto p = phase_of(conn);
        return p != phase::done && p != phase::wait_bind && !closing();
    }

    void handshake_input(std::uint32_t conn, time_point now, std::span<const std::byte>& in) override {
        auto& c = conns()[conn];
        switch (phase_of(conn)) {
        case phase::wait_hello:
            if (!take(c, wire::hello_size, in)) return;
            if (wire::decode_hello(c.frame.bytes())) return fail(now, errc::not_a_btest_server);
            c.frame.clear();
            c.queue(wire::encode_command(command()));
            set_phase(conn, phase::wait_authword);
            arm_handshake(now);
            return;
        case phase::wait_authword: {
            if (!take(c, wire::auth_word_size, in)) return;
            auto w = wire::decode_auth_word(c.frame.bytes(), wire::word_position::first);
            c.frame.clear();
            if (!w) return fail(now, errc::protocol_error);
            asked_ = w->kind;
            on_auth_word(now, *w);
            return;
        }
        case phase::wait_challenge: {
            if (!take(c, wire::md5_challenge_size, in)) return;
            std::array<std::byte, 16> challenge{};
            std::copy_n(c.frame.bytes().begin(), 16, challenge.begin());
            c.frame.clear();
            const auto response = auth::md5_response(cfg_.password, challenge);
            c.queue(wire::encode_md5_reply(response, cfg_.user));
            set_phase(conn, phase::wait_result);
            arm_handshake(now);
            return;
        }
        case phase::wait_ec2:
        case phase::wait_ec4: {
            if (!take(c, 1, in)) return;
            const auto len = std::to_integer<std::size_t>(c.frame.bytes()[0]);
            if (!take(c, 1 + len, in)) return;
            const auto payload = wire::decode_ecsrp5_frame(c.frame.bytes())->payload;
            if (phase_of(conn) == phase::wait_ec2) on_ec_msg2(now, payload);
            else on_ec_msg4(now, payload);
            c.frame.clear();
            return;
        }
        case phase::wait_result: {
            if (!take(c, wire::auth_word_size, in)) return;
            auto w = wire::decode_auth_word(c.frame.bytes(), wire::word_position::after_auth);
            c.frame.clear();
            if (!w) return fail(now, errc::protocol_error);
            if (w->kind == wire::auth_word_kind::failed) {
                push_event(auth_result{false, cfg_.user});
                return fail(now, errc::auth_failed);
            }
            push_event(auth_result{true, cfg_.user});
            post_auth(now, w->token);
            return;
        }
        case phase::wait_port: {
            if (!take(c, wire::udp_port_size, in)) return;
            udp_port_ = *wire::decode_udp_port(c.frame.bytes());
            c.frame.clear();
            start_udp(now);
            return;
        }
        case phase::extra_hello:
            if (!take(c, wire::hello_size, in)) return;
            if (wire::decode_hello(c.frame.bytes())) {
                c.frame.clear();
                c.open = false;  // not a btest server on this connection: a failed join
                ++join_failed_;
                maybe_start_joined(now);
                return;
            }
            c.frame.clear();
            c.queue(wire::encode_join(token_));
            c.in_test = true;   // joined at once: never wait for a reply (§2.7)
            set_phase(conn, phase::extra_reply);
            ++joined_;
            maybe_start_joined(now);
            return;
        case phase::extra_reply: {
            // An optional `01 HI LO 00` as the very first bytes is the server's reply; anything
            // else is test data or STATUS and goes to the scanner.
            if (!take(c, wire::auth_word_size, in)) return;
            const auto b = c.frame.bytes();
            const auto reply = wire::encode_auth_word({wire::auth_word_kind::ok, token_});
            const bool is_reply = std::equal(b.begin(), b.end(), reply.begin());
            std::array<std::byte, wire::auth_word_size> held{};
            std::copy(b.begin(), b.end(), held.begin());
            c.frame.clear();
            set_phase(conn, phase::done);
            follow_chunk_grid(conn, command().tcp_chunk());  // the server's data may come before our start
            if (!is_reply) feed(conn, now, held);
            return;
        }
        default: return;
        }
    }

    void on_auth_word(time_point now, const wire::auth_word& w) {
        auto& c = conns()[0];
        switch (w.kind) {
        case wire::auth_word_kind::ok: post_auth(now, w.token); return;
        case wire::auth_word_kind::failed: return fail(now, errc::auth_failed);
        case wire::auth_word_kind::md5:
            if (cfg_.user.empty()) return fail(now, errc::auth_required);
            set_phase(0, phase::wait_challenge);
            arm_handshake(now);
            return;
        case wire::auth_word_kind::ec_srp5: {
            if (cfg_.user.empty()) return fail(now, errc::auth_required);
            ec_ = std::make_unique<auth::ec_srp5::client_exchange>(cfg_.user, cfg_.password, rng());
            std::array<std::byte, wire::ecsrp5_max_frame> frame{};
            const auto n = wire::encode_ecsrp5_msg1(cfg_.user, ec_->client_key(), frame);
            if (n == 0) return fail(now, errc::auth_failed);  // a name EC-SRP5 cannot carry
            c.queue(std::span(frame).first(n));
            set_phase(0, phase::wait_ec2);
            arm_handshake(now);
            return;
        }
        }
    }

    void on_ec_msg2(time_point now, std::span<const std::byte> payload) {
        auto& c = conns()[0];
        auto m = wire::decode_ecsrp5_msg2(payload);
        if (!m) return fail(now, errc::auth_failed);  // a rejecting server may answer anything
        auto proof = ec_->on_msg2(*m);
        if (!proof) return fail(now, proof.error());
        c.queue(wire::encode_ecsrp5_proof(*proof));
        set_phase(0, phase::wait_ec4);
        arm_handshake(now);
    }

    void on_ec_msg4(time_point now, std::span<const std::byte> payload) {
        auto p = wire::decode_ecsrp5_proof(payload);
        if (!p || ec_->on_msg4(*p)) return fail(now, errc::auth_failed);
        ec_.reset();
        server_proved_ = true;
        set_phase(0, phase::wait_result);
        arm_handshake(now);
    }

    void post_auth(time_point now, std::uint16_t token) {
        auto& c = conns()[0];
        ec_.reset();
        if (cfg_.proto == protocol::udp) {
            set_phase(0, phase::wait_port);
            arm_handshake(now);
            return;
        }
        set_phase(0, phase::done);
        c.in_test = true;
        disarm_handshake();
        const auto n = std::clamp<std::uint32_t>(cfg_.connection_count, 1, 255);
        if (n >= 2 && token != 0) {
            token_ = token;
            follow_chunk_grid(0, command().tcp_chunk());
            conns().reserve(n);
            push_event(open_connections{n - 1, token});
            arm_join(now);
            return;
        }
        if (n >= 2) push_event(notice{make_error_code(errc::multi_connection_refused),
                                      "server refused multi-connection; using 1"});
        begin_test(now, params_for_test());
    }

    /// PORT received: ask the transport for the sockets at P+256… (§8.2).
    void start_udp(time_point now) {
        const auto n = stream_count();
        const auto first = static_cast<std::uint32_t>(udp_port_) + 256u;
        if (first + n - 1 > 65535u) return fail(now, errc::port_unavailable);
        set_phase(0, phase::wait_bind);
        push_request(udp_bind_request{static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(n), udp_port_});
    }

    void maybe_start_joined(time_point now) {
        if (running() || finished() || closing() || token_ == 0) return;
        const auto wanted = std::clamp<std::uint32_t>(cfg_.connection_count, 1, 255) - 1;
        if (joined_ + join_failed_ >= wanted) start_joined(now);
    }

    void start_joined(time_point now) {
        for (auto& c : conns())
            if (!c.in_test && c.open) c.open = false;  // still handshaking: give up on it
        if (join_failed_ || joined_ + 1 < cfg_.connection_count)
            push_event(notice{make_error_code(errc::multi_connection_refused),
                              "only " + std::to_string(joined_ + 1) + " of " +
                                  std::to_string(cfg_.connection_count) + " connections joined"});
        begin_test(now, params_for_test());
    }

    void join_expired(time_point now) override { start_joined(now); }
    bool random_fill() const noexcept override { return cfg_.random_data; }

    void on_extra_connection_lost(std::uint32_t conn, time_point now) override {
        (void)conn;
        ++join_failed_;
        maybe_start_joined(now);
    }

    void handshake_closed(std::uint32_t conn, time_point now, std::error_code) override {
        if (conn != 0) {  // a joined connection lost before the start: a failed join
            if (conns()[conn].in_test) --joined_;
            conns()[conn].in_test = false;
            ++join_failed_;
            maybe_start_joined(now);
            return;
        }
        // EOF while waiting for the auth result or the EC-SRP5 proof is "authentication failed"
        // (§5) — unless the server has proven with MSG4 that it accepted our proof: then it
        // refused the test itself (a server limit, a spent quota; [Design] §12.5). Anywhere else
        // it is the peer closing.
        const auto p = phase_of(0);
        if (p == phase::wait_result && server_proved_) return fail(now, errc::test_refused);
        if (p == phase::wait_result || p == phase::wait_ec2 || p == phase::wait_ec4) return fail(now, errc::auth_failed);
        // Before HELLO too: a server that closes at once (e.g. at its session limit, §12.4) is
        // not shown to be anything but closed.
        fail(now, errc::peer_closed);
    }

    test_params params_for_test() const {
        test_params p;
        const auto cmd = command();
        p.proto = cfg_.proto;
        p.dir = cfg_.dir;
        p.streams = std::clamp<std::uint32_t>(cfg_.connection_count, 1, 255);
        p.random_data = cfg_.random_data;
        p.tcp_chunk = cmd.tcp_chunk();
        p.udp_size = cfg_.local_udp_tx_size;
        p.tx_cap = cfg_.local_tx_speed;
        p.udp_port = udp_port_;
        p.duration_limit = cfg_.test_duration;
        p.user = cfg_.user;
        return p;
    }

    void on_end() override { ec_.reset(); }

    const client_config& cfg_;
    std::unique_ptr<auth::ec_srp5::client_exchange> ec_;
    wire::auth_word_kind asked_ = wire::auth_word_kind::ok;
    std::uint16_t token_ = 0;
    std::uint16_t udp_port_ = 0;
    std::uint32_t joined_ = 0;
    std::uint32_t join_failed_ = 0;
    bool server_proved_ = false;  ///< EC-SRP5: the server's MSG4 proof checked out
};

} // namespace btest
