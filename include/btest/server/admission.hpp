// The max_sessions limit of PROTOCOL §12.4 as plain bookkeeping shared by every transport: how
// many tests run (counted from their COMMAND) and how many accepted connections are still in
// their handshake, and whether one more of either may come in.
//
// Each accepted connection holds a ticket: admit_connection() (on accept: false means close it
// at once, instead of HELLO), admit_command() (its COMMAND arrived: false means refuse the test,
// server_session::refuse()), release() (its session is over, or it was handed off as a JOIN).
// One thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>

#include "btest/core/address.hpp"
#include "btest/server/join_registry.hpp"

namespace btest {

class session_admission {
public:
    struct limits {
        std::size_t max_sessions = 100;     ///< tests at once
        std::size_t handshake_slack = 64;   ///< connections in their handshake beyond max_sessions
    };

    /// What one accepted connection counts as.
    class ticket {
    public:
        bool counts_as_test() const noexcept { return state_ == state::test; }

    private:
        enum class state : std::uint8_t { none, handshake, test };
        state state_ = state::none;
        friend class session_admission;
    };

    session_admission() : session_admission(limits{}) {}
    explicit session_admission(limits l) : limits_(l) {}

    /// A connection from `ip` was accepted: true lets it into its handshake (HELLO). At the test
    /// limit a connection is still let in while a pending multi-connection test from the same IP
    /// awaits connections — it may be a JOIN; if it sends a COMMAND instead, admit_command()
    /// refuses it. Connections in their handshake are capped too (max_sessions + slack).
    bool admit_connection(const ip_address& ip, const join_registry& joins, ticket& t) noexcept {
        return admit_connection(joins.pending_from(ip), t);
    }
    /// The same, with `maybe_join` already known: a pending test from the peer's IP awaits
    /// connections.
    bool admit_connection(bool maybe_join, ticket& t) noexcept {
        release(t);
        if ((tests_ >= limits_.max_sessions && !maybe_join) ||
            handshaking_ >= limits_.max_sessions + limits_.handshake_slack)
            return false;
        ++handshaking_;
        t.state_ = ticket::state::handshake;
        return true;
    }

    /// The connection's COMMAND arrived (it is a test, not a JOIN): true counts it as a test;
    /// false means the server is full — refuse it (no OK word).
    bool admit_command(ticket& t) noexcept {
        if (t.state_ == ticket::state::test) return true;
        release(t);
        if (tests_ >= limits_.max_sessions) return false;
        ++tests_;
        t.state_ = ticket::state::test;
        return true;
    }

    /// The connection's session is over (or it was handed off): it no longer counts.
    void release(ticket& t) noexcept {
        if (t.state_ == ticket::state::handshake) --handshaking_;
        if (t.state_ == ticket::state::test) --tests_;
        t.state_ = ticket::state::none;
    }

    std::size_t tests() const noexcept { return tests_; }
    std::size_t handshaking() const noexcept { return handshaking_; }
    const limits& limit() const noexcept { return limits_; }

private:
    limits limits_;
    std::size_t tests_ = 0;
    std::size_t handshaking_ = 0;
};

} // namespace btest
