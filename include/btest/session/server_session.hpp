// The server control state machine — PROTOCOL §4 — for one accepted TCP connection and the test
// it starts (with its joined connections, §7). Shape: feed / poll / next_deadline.
//
//   ACCEPTED ─HELLO→ WAIT_CMD ─JOIN of a pending session→ handed off to that session
//                             ─COMMAND→ AUTH_DECIDE ─none→ prepare, OK ───────┐
//                                                   ─md5→ WAIT_MD5 ─ok→ prepare, OK
//                                                   ─ec-srp5→ WAIT_EC1 → WAIT_EC3 ─ok→ MSG4, prepare, OK
//   PREPARED: TCP single → RUN; TCP N ≥ 2 → WAIT_JOIN (token registered before the OK word);
//             UDP → port block bound before the OK word, PORT, RUN
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
#include "btest/session/detail/session_core.hpp"
#include "btest/session/join_registry.hpp"
#include "btest/session/services.hpp"
#include "btest/wire/auth_word.hpp"
#include "btest/wire/command.hpp"
#include "btest/wire/ec_srp5.hpp"
#include "btest/wire/hello.hpp"
#include "btest/wire/join.hpp"
#include "btest/wire/md5.hpp"
#include "btest/wire/udp_port.hpp"

namespace btest {

/// What a server session borrows from its embedder; must outlive every session using it.
struct server_services {
    entropy& rng;                                         ///< CSPRNG: challenges, tokens, s_b
    const auth::credential_store* credentials = nullptr;  ///< required for md5 / ec_srp5
    udp_port_pool* udp_ports = nullptr;                   ///< without it UDP tests are refused
    join_registry* joins = nullptr;                       ///< without it multi-connection TCP is refused
    /// Per-server secret for EC-SRP5 answers to unknown users (no user enumeration, §6.3.9).
    std::array<std::byte, 32> secret{};
};

class server_session final : public detail::session_core {
public:
    /// A connection from `peer` was accepted at `now`: HELLO is queued on connection 0 and T_hs
    /// armed. `cfg` and `svc` must outlive the session.
    server_session(const server_config& cfg, server_services& svc, const endpoint& peer, time_point now)
        : session_core(detail::role::server, cfg.limits, cfg.report_interval, cfg.udp, svc.rng, peer),
          cfg_(cfg), svc_(svc) {
        add_conn();
        conns()[0].queue(wire::hello);
        conns()[0].phase = phase_wait_cmd;
        arm_handshake(now);
    }
    ~server_session() override { release_all(); }

    /// Bytes received on connection `conn`. Takes all of them; returns the sticky error.
    std::error_code feed(std::uint32_t conn, time_point now, std::span<const std::byte> bytes) {
        return feed_bytes(conn, now, bytes);
    }
    /// Call at or after next_deadline(); early or repeated calls are harmless.
    std::error_code on_timer(time_point now) { return handle_timer(now); }

    /// A server limit refuses this test (§12.4): the session ends now with resource_limit and
    /// nothing it has not yet written goes out (no OK word). For a transport that counts tests
    /// once their COMMAND is known.
    void refuse(time_point now) {
        if (finished()) return;
        fail(now, errc::resource_limit);
    }

    /// The COMMAND of this test, once received.
    const std::optional<wire::command>& command() const noexcept { return cmd_; }
    /// The authenticated (or, without auth, empty) user name.
    const std::string& user() const noexcept { return user_; }
    /// The join token of a multi-connection test (0 otherwise).
    std::uint16_t token() const noexcept { return token_; }
    /// The UDP port P of a UDP test (0 otherwise).
    std::uint16_t udp_port() const noexcept { return udp_port_; }

    /// Kit-internal: attaches a connection that sent this session's JOIN token (called by the
    /// joining connection's session from inside its feed). Queues the `01 HI LO 00` reply,
    /// counts `surplus` (bytes after the JOIN) as test data, and starts the test when the last
    /// connection joined. Returns the new connection's index.
    std::uint32_t adopt(time_point now, std::span<const std::byte> surplus) {
        const auto conn = add_conn();
        auto& c = conns()[conn];
        c.in_test = true;
        c.phase = phase_done;
        c.queue(wire::encode_auth_word({wire::auth_word_kind::ok, token_}));
        ++joined_;
        if (joined_ + 1 >= cmd_->connections()) start_tcp(now);
        if (!surplus.empty()) feed_bytes(conn, now, surplus);
        return conn;
    }

private:
    enum : std::uint8_t { phase_wait_cmd, phase_md5, phase_ec1, phase_ec3, phase_done };

    bool in_handshake(std::uint32_t conn) const override {
        return conn == 0 && conns()[0].phase != phase_done && !closing();
    }
    void handshake_input(std::uint32_t conn, time_point now, std::span<const std::byte>& in) override {
        auto& c = conns()[conn];
        switch (c.phase) {
        case phase_wait_cmd:
            if (!take(c, wire::command_size, in)) return;
            on_first_message(now, in);
            return;
        case phase_md5:
            if (!take(c, wire::md5_reply_size, in)) return;
            on_md5_reply(now);
            return;
        case phase_ec1:
        case phase_ec3: {
            if (!take(c, 1, in)) return;
            const auto len = std::to_integer<std::size_t>(c.frame.bytes()[0]);
            if (!take(c, 1 + len, in)) return;
            if (c.phase == phase_ec1) on_ec_msg1(now);
            else on_ec_msg3(now);
            return;
        }
        default: return;
        }
    }

    void on_first_message(time_point now, std::span<const std::byte>& rest) {
        auto& c = conns()[0];
        const auto msg = c.frame.bytes();
        // A JOIN: bytes 0-1 match a pending session from the same IP that lacks connections.
        if (svc_.joins) {
            const auto token = *wire::decode_join(msg);
            if (auto* target = svc_.joins->claim(token, peer().address); target && target != this) {
                const auto surplus = rest;
                rest = {};
                c.frame.clear();
                const auto conn = target->adopt(now, surplus);
                push_event(connection_handoff{target, conn});
                retire();
                return;
            }
        }
        auto cmd = wire::decode_command(msg);
        c.frame.clear();
        if (!cmd || cmd->connections() > cfg_.max_conn_count) {
            fail(now, errc::invalid_command);
            return;
        }
        cmd_ = *cmd;
        switch (cfg_.auth) {
        case auth_method::none:
            prepare_and_accept(now);
            return;
        case auth_method::md5: {
            if (!svc_.credentials) return fail(now, errc::auth_unsupported_method);
            challenge_ = rng().bytes<wire::md5_challenge_size>();
            c.queue(wire::encode_auth_word({wire::auth_word_kind::md5, 0}));
            c.queue(challenge_);
            c.phase = phase_md5;
            arm_handshake(now);
            return;
        }
        case auth_method::ec_srp5:
            if (!svc_.credentials) return fail(now, errc::auth_unsupported_method);
            c.queue(wire::encode_auth_word({wire::auth_word_kind::ec_srp5, 0}));
            c.phase = phase_ec1;
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
        c.phase = phase_ec3;
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
        prepare_and_accept(now);
    }

    // *prepare* of §4, then the OK word (and PORT): resources are taken before the OK word so
    // that a failure can still be signalled by closing without one.
    void prepare_and_accept(time_point now) {
        const auto& cmd = *cmd_;
        if (cmd.proto == protocol::tcp && cmd.connections() >= 2) conns().reserve(cmd.connections());
        auto& c = conns()[0];
        c.phase = phase_done;
        disarm_handshake();
        if (cmd.proto == protocol::udp) {
            if (!svc_.udp_ports) return fail(now, errc::port_unavailable);
            const auto block = static_cast<std::uint16_t>(cmd.connections());
            const auto port = svc_.udp_ports->acquire(block);
            if (!port) return fail(now, errc::port_unavailable);
            udp_port_ = *port;
            c.queue(wire::ok_word);
            c.queue(wire::encode_udp_port(udp_port_));
            c.in_test = true;
            begin_test(now, params());
            return;
        }
        c.in_test = true;
        if (cmd.connections() >= 2) {
            // Never answer a multi-connection request with a token-less OK (§7).
            if (!svc_.joins) return fail(now, errc::resource_limit);
            auto token = svc_.joins->add(this, peer().address, cmd.connections() - 1, rng());
            if (!token) return fail(now, errc::resource_limit);
            token_ = *token;
            c.queue(wire::encode_auth_word({wire::auth_word_kind::ok, token_}));
            arm_join(now);
            return;
        }
        c.queue(wire::ok_word);
        begin_test(now, params());
    }

    void start_tcp(time_point now) {
        if (running()) return;
        if (svc_.joins) svc_.joins->remove(this);  // the token is forgotten when the test starts
        begin_test(now, params());
    }

    void join_expired(time_point now) override { start_tcp(now); }
    bool random_fill() const noexcept override { return cmd_ && cmd_->random_data; }

    detail::test_params params() const {
        const auto& cmd = *cmd_;
        detail::test_params p;
        p.proto = cmd.proto;
        p.dir = cmd.dir;
        p.streams = cmd.connections();
        p.random_data = cmd.random_data;
        p.tcp_chunk = cmd.tcp_chunk();
        p.udp_size = cmd.tx_size;
        p.tx_cap = cmd.remote_tx_speed;
        if (cfg_.max_tx_rate && (p.tx_cap == 0 || p.tx_cap > cfg_.max_tx_rate)) p.tx_cap = cfg_.max_tx_rate;
        p.udp_port = udp_port_;
        p.udp_single_destination = cfg_.udp_single_destination;
        p.udp_reply_to_source = cfg_.udp_reply_to_source;
        p.user = user_;
        return p;
    }

    void release(time_point) override { release_all(); }
    void release_all() {
        if (svc_.joins) svc_.joins->remove(this);
        if (udp_port_ && svc_.udp_ports && !port_released_) {
            port_released_ = true;
            svc_.udp_ports->release(udp_port_);
        }
        ec_.reset();
    }

    const server_config& cfg_;
    server_services& svc_;
    std::optional<wire::command> cmd_;
    std::array<std::byte, wire::md5_challenge_size> challenge_{};
    std::unique_ptr<auth::ec_srp5::server_exchange> ec_;
    std::string ec_user_;
    std::string user_;
    std::uint16_t token_ = 0;
    std::uint16_t udp_port_ = 0;
    bool port_released_ = false;
    std::uint32_t joined_ = 0;
};

} // namespace btest
