// The server control state machine — PROTOCOL §4 — for one test, from its COMMAND on. The
// server's front end (server/front.hpp) answers HELLO and reads each new connection's first
// message; a COMMAND creates a server_session, a JOIN of this session's token is attached to
// it with join().
//
//   COMMAND ─none→ ADMIT ──────────────────────────────┐
//           ─md5→ MD5_REPLY ─ok→ ADMIT                  │   (ADMIT: an admission_request when
//           ─ec-srp5→ EC_MSG1 → EC_MSG3 ─ok→ MSG4, ADMIT│    server_config::ask_admission)
//   ADMIT ─→ PREPARE: TCP single → OK, RUN; TCP N ≥ 2 → token registered, OK+token, joins → RUN;
//                     UDP → udp_port_request → UDP_PORT ─port→ OK, PORT, RUN
//
// Resources are taken before the OK word, so that a failure can still be signalled by closing
// without one (§4, §12.4).
//
// Thread safety: one thread at a time per session, and per join_registry.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "btest/auth/credentials.hpp"
#include "btest/auth/ec_srp5.hpp"
#include "btest/auth/md5.hpp"
#include "btest/server/join_registry.hpp"
#include "btest/session/session.hpp"
#include "btest/wire/auth_word.hpp"
#include "btest/wire/command.hpp"
#include "btest/wire/ec_srp5.hpp"
#include "btest/wire/md5.hpp"
#include "btest/wire/udp_port.hpp"

namespace btest {

/// What a server session borrows from its embedder; must outlive every session using it.
struct server_services {
    entropy& rng;                                         ///< CSPRNG: challenges, tokens, s_b
    const auth::credential_store* credentials = nullptr;  ///< required for md5 / ec_srp5
    join_registry* joins = nullptr;                       ///< without it multi-connection TCP is refused
    /// Per-server secret for EC-SRP5 answers to unknown users (no user enumeration, §6.3.9).
    std::array<std::byte, 32> secret{};
};

class server_session final : public session {
public:
    /// The front end routed a connection from `peer` whose first message is `cmd` (already
    /// validated) at `now`: the session starts with it as connection 0 — the auth word (or,
    /// without auth, the next step) is queued. `cfg` and `svc` must outlive the session.
    server_session(const server_config& cfg, server_services& svc, const endpoint& peer, const wire::command& cmd,
                   time_point now)
        : session(detail::role::server, cfg.limits, cfg.report_interval, cfg.udp, svc.rng, peer), cfg_(cfg), svc_(svc),
          cmd_(cmd) {
        add_conn();
        start(now);
    }
    ~server_session() override { on_end(); }

    /// A connection the front end routed here as a JOIN of this session's token (§7): it
    /// becomes connection N (returned; feed its bytes with feed(N, …)). Queues the
    /// `01 HI LO 00` reply and starts the test when it is the last one awaited.
    std::uint32_t join(time_point now) {
        const auto conn = add_conn();
        auto& c = conns()[conn];
        c.in_test = true;
        c.phase = static_cast<std::uint8_t>(phase::done);
        c.queue(wire::encode_auth_word({wire::auth_word_kind::ok, token_}));
        follow_chunk_grid(conn, cmd_.tcp_chunk());  // the client may send before the others join
        ++joined_;
        if (joined_ + 1 >= cmd_.connections()) start_tcp(now);
        return conn;
    }

    /// Answers an admission_request: the test may start, with `budget` (nothing limited: no
    /// budget); below `refill_below` bytes left a budget_request follows (0: never). `end`
    /// says how the test ends when the budget runs out. Ignored in any other state.
    std::error_code admit(time_point now, const byte_budget& budget = {}, std::uint64_t refill_below = 0,
                          budget_end end = budget_end::quota_exhausted) {
        if (finished() || closing() || phase_of(0) != phase::admission) return error();
        grant_budget(budget, refill_below, end, cmd_.proto == protocol::tcp && client_sends(cmd_.dir));
        prepare(now);
        return error();
    }

    /// Refuses the test (a server limit, a spent quota, §12.4, §12.5): the session ends now
    /// with `why`, and no OK word is ever sent. The answer to an admission_request that says
    /// no: what the login queued still goes out first — EC-SRP5's MSG4, the server's proof,
    /// by which a client tells a refused test from a failed login.
    std::error_code refuse(time_point now, std::error_code why = make_error_code(errc::resource_limit)) {
        if (finished() || closing()) return error();
        if (phase_of(0) == phase::admission) finish(now, end_reason::failure, why, /*flush=*/true);
        else fail(now, why);
        return error();
    }

    /// Answers a udp_port_request: P of the block bound, or nullopt (none free, bind failed):
    /// the session then closes without an OK word (port_unavailable).
    std::error_code udp_port_ready(time_point now, std::optional<std::uint16_t> port) {
        if (finished() || closing() || phase_of(0) != phase::udp_port) return error();
        if (!port) {
            fail(now, errc::port_unavailable);
            return error();
        }
        udp_port_ = *port;
        auto& c = conns()[0];
        c.phase = static_cast<std::uint8_t>(phase::done);
        c.queue(wire::ok_word);
        c.queue(wire::encode_udp_port(udp_port_));
        c.in_test = true;
        begin_test(now, params_for_test());
        return error();
    }

    /// The COMMAND of this test.
    const wire::command& command() const noexcept { return cmd_; }
    /// The authenticated (or, without auth, empty) user name.
    const std::string& user() const noexcept { return user_; }
    /// The join token of a multi-connection test (0 otherwise).
    std::uint16_t token() const noexcept { return token_; }
    /// The UDP port P of a UDP test (0 otherwise).
    std::uint16_t udp_port() const noexcept { return udp_port_; }

private:
    /// Handshake states of connection 0 (joined connections are `done` from the start).
    enum class phase : std::uint8_t { md5_reply, ec_msg1, ec_msg3, admission, udp_port, done };

    phase phase_of(std::uint32_t conn) const noexcept { return static_cast<phase>(conns()[conn].phase); }
    void set_phase(phase p) noexcept { conns()[0].phase = static_cast<std::uint8_t>(p); }

    bool in_handshake(std::uint32_t conn) const override {
        const auto p = phase_of(conn);
        return conn == 0 && (p == phase::md5_reply || p == phase::ec_msg1 || p == phase::ec_msg3) && !closing();
    }
    void handshake_input(std::uint32_t conn, time_point now, std::span<const std::byte>& in) override {
        auto& c = conns()[conn];
        switch (phase_of(conn)) {
        case phase::md5_reply:
            if (!take(c, wire::md5_reply_size, in)) return;
            on_md5_reply(now);
            return;
        case phase::ec_msg1:
        case phase::ec_msg3: {
            if (!take(c, 1, in)) return;
            const auto len = std::to_integer<std::size_t>(c.frame.bytes()[0]);
            if (!take(c, 1 + len, in)) return;
            if (phase_of(conn) == phase::ec_msg1) on_ec_msg1(now);
            else on_ec_msg3(now);
            return;
        }
        default: return;
        }
    }
    /// Bytes before the OK word that are not part of a handshake message (a client that does
    /// not wait for its answer) are kept for the test: in_handshake() is false while admission
    /// or a UDP port is pending, so they reach the stream scanner like early test data.

    void start(time_point now) {
        auto& c = conns()[0];
        switch (cfg_.auth) {
        case auth_method::none:
            after_auth(now);
            return;
        case auth_method::md5:
            if (!svc_.credentials) return fail(now, errc::auth_unsupported_method);
            challenge_ = rng().bytes<wire::md5_challenge_size>();
            c.queue(wire::encode_auth_word({wire::auth_word_kind::md5, 0}));
            c.queue(challenge_);
            set_phase(phase::md5_reply);
            arm_handshake(now);
            return;
        case auth_method::ec_srp5:
            if (!svc_.credentials) return fail(now, errc::auth_unsupported_method);
            c.queue(wire::encode_auth_word({wire::auth_word_kind::ec_srp5, 0}));
            set_phase(phase::ec_msg1);
            arm_handshake(now);
            return;
        }
    }

    void on_md5_reply(time_point now) {
        auto& c = conns()[0];
        const auto reply = *wire::decode_md5_reply(c.frame.bytes());
        c.frame.clear();
        const std::string name(reply.username());
        // Unknown users cost the same hash and compare as known ones.
        const auto password = svc_.credentials->md5_password(name);
        const bool ok = auth::md5_verify(reply, name, password.value_or(std::string{}), challenge_) &&
                        password.has_value();
        auth_done(now, ok, name);
    }

    void on_ec_msg1(time_point now) {
        auto& c = conns()[0];
        auto frame = *wire::decode_ecsrp5_frame(c.frame.bytes());
        auto msg1 = wire::decode_ecsrp5_msg1(frame.payload);
        if (!msg1) {
            c.frame.clear();
            fail(now, errc::protocol_error);
            return;
        }
        ec_user_ = std::string(msg1->username);
        // Unknown users get a decoy derived from the server secret, as fast as a stored record,
        // and fail at the proof step like a wrong password (no user enumeration, §6.3.9 step 2).
        const auto prepared = auth::ecsrp5_login_record(*svc_.credentials, ec_user_, svc_.secret);
        ec_ = std::make_unique<auth::ec_srp5::server_exchange>(rng());
        auto msg2 = ec_->on_msg1(*msg1, prepared);
        c.frame.clear();
        if (!msg2) {
            auth_done(now, false, ec_user_);
            return;
        }
        c.queue(wire::encode_ecsrp5_msg2(*msg2));
        set_phase(phase::ec_msg3);
        arm_handshake(now);
    }

    void on_ec_msg3(time_point now) {
        auto& c = conns()[0];
        auto frame = *wire::decode_ecsrp5_frame(c.frame.bytes());
        auto proof = wire::decode_ecsrp5_proof(frame.payload);
        c.frame.clear();
        if (!proof) {
            auth_done(now, false, ec_user_);
            return;
        }
        auto msg4 = ec_->on_msg3(*proof);
        ec_.reset();
        if (!msg4) {
            auth_done(now, false, ec_user_);
            return;
        }
        c.queue(wire::encode_ecsrp5_proof(*msg4));
        auth_done(now, true, ec_user_);
    }

    void auth_done(time_point now, bool ok, const std::string& name) {
        push_event(auth_result{ok, name});
        if (!ok) {
            fail(now, errc::auth_failed, wire::failed_word);
            return;
        }
        user_ = name;
        after_auth(now);
    }

    void after_auth(time_point now) {
        if (cfg_.ask_admission) {
            set_phase(phase::admission);
            arm_handshake(now);  // a transport that never answers does not hold the connection
            push_request(admission_request{user_});
            return;
        }
        prepare(now);
    }

    // *prepare* of §4, then the OK word (and PORT).
    void prepare(time_point now) {
        // Room for every connection first: `c` must not move under us.
        if (cmd_.proto == protocol::tcp && cmd_.connections() >= 2) conns().reserve(cmd_.connections());
        auto& c = conns()[0];
        if (cmd_.proto == protocol::udp) {
            set_phase(phase::udp_port);
            arm_handshake(now);
            push_request(udp_port_request{static_cast<std::uint16_t>(cmd_.connections())});
            return;
        }
        set_phase(phase::done);
        disarm_handshake();
        c.in_test = true;
        if (cmd_.connections() >= 2) {
            // Never answer a multi-connection request with a token-less OK (§7).
            if (!svc_.joins) return fail(now, errc::resource_limit);
            auto token = svc_.joins->add(this, peer().address, cmd_.connections() - 1, rng());
            if (!token) return fail(now, errc::resource_limit);
            token_ = *token;
            c.queue(wire::encode_auth_word({wire::auth_word_kind::ok, token_}));
            follow_chunk_grid(0, cmd_.tcp_chunk());
            arm_join(now);
            return;
        }
        c.queue(wire::ok_word);
        begin_test(now, params_for_test());
    }

    void start_tcp(time_point now) {
        if (running()) return;
        if (svc_.joins) svc_.joins->remove(this);  // the token is forgotten when the test starts
        begin_test(now, params_for_test());
    }

    void join_expired(time_point now) override { start_tcp(now); }
    bool random_fill() const noexcept override { return cmd_.random_data; }

    test_params params_for_test() const {
        test_params p;
        p.proto = cmd_.proto;
        p.dir = cmd_.dir;
        p.streams = cmd_.connections();
        p.random_data = cmd_.random_data;
        p.tcp_chunk = cmd_.tcp_chunk();
        p.udp_size = cmd_.tx_size;
        p.tx_cap = cmd_.remote_tx_speed;
        if (cfg_.max_tx_rate && (p.tx_cap == 0 || p.tx_cap > cfg_.max_tx_rate)) p.tx_cap = cfg_.max_tx_rate;
        p.udp_port = udp_port_;
        p.udp_single_destination = cfg_.udp_single_destination;
        p.udp_reply_to_source = cfg_.udp_reply_to_source;
        p.user = user_;
        return p;
    }

    void on_end() override {
        if (svc_.joins) svc_.joins->remove(this);
        ec_.reset();
    }

    const server_config& cfg_;
    server_services& svc_;
    wire::command cmd_;
    std::array<std::byte, wire::md5_challenge_size> challenge_{};
    std::unique_ptr<auth::ec_srp5::server_exchange> ec_;
    std::string ec_user_;
    std::string user_;
    std::uint16_t token_ = 0;
    std::uint16_t udp_port_ = 0;
    std::uint32_t joined_ = 0;
};

} // namespace btest
