// A server's admission policy — PROTOCOL §12.4 and the per-address rules of a public server —
// in one place: which connections get a HELLO, which COMMANDs may start a test, and what an
// address has done lately. The front end (front.hpp) consults it for every new connection; the
// transport tells it when tests and connections end and when a login failed.
//
// server_policy is the kit's policy: plain bookkeeping, one thread at a time. A transport that
// runs a front end per io thread shares one policy between them behind a lock of its own (an
// implementation of front_policy that locks and forwards), so the kit stays free of threads.
#pragma once

#include <cstdint>
#include <optional>

#include "btest/core/address.hpp"
#include "btest/core/time.hpp"
#include "btest/server/address_filter.hpp"
#include "btest/server/admission.hpp"
#include "btest/server/join_registry.hpp"
#include "btest/server/limits.hpp"

namespace btest {

/// Why a connection was closed before it got a HELLO (or, for max_sessions on a connection
/// let in as a possible JOIN, before its COMMAND was answered).
enum class refusal : std::uint8_t {
    max_sessions,        ///< the server runs max_sessions tests (§12.4)
    connections_per_ip,  ///< the address holds its maximum of live connections
    auth_failures,       ///< the address failed to log in too often lately
    address_denied,      ///< the address filter does not allow it
};

inline const char* to_string(refusal r) noexcept {
    switch (r) {
    case refusal::max_sessions: return "max sessions reached";
    case refusal::connections_per_ip: return "too many connections from this address";
    case refusal::auth_failures: return "too many failed logins from this address";
    case refusal::address_denied: return "address not allowed";
    }
    return "?";
}

/// What the front end asks, and what the transport reports. Every connection admitted by
/// admit_connection() gets exactly one connection_closed() when its socket closes; every
/// ticket is released exactly once (the front end releases those of connections it closes or
/// hands to a test as JOINs; the transport releases a test's when its session is over).
class front_policy {
public:
    virtual ~front_policy() = default;
    /// A connection from `ip` arrives; `maybe_join`: a multi-connection test from `ip` awaits
    /// connections here. nullopt lets it in (counted, its ticket in its handshake).
    virtual std::optional<refusal> admit_connection(const ip_address& ip, time_point now, bool maybe_join,
                                                    session_admission::ticket& t) = 0;
    /// Its first message is a COMMAND: true counts it as a test; false: max_sessions.
    virtual bool admit_test(session_admission::ticket& t) = 0;
    /// The connection's handshake or test is over (or it joined another test).
    virtual void release(session_admission::ticket& t) = 0;
    /// A connection let in by admit_connection() closed.
    virtual void connection_closed(const ip_address& ip) = 0;
    /// A login from `ip` failed (the session's auth_result).
    virtual void auth_failed(const ip_address& ip, time_point now) = 0;
};

/// The kit's policy: max_sessions (session_admission), live connections per address
/// (connection_counter), failed logins per address (auth_throttle) and an address filter.
class server_policy final : public front_policy {
public:
    struct limits {
        session_admission::limits sessions{};
        std::size_t max_connections_per_ip = 20;  ///< 0: unlimited
        auth_throttle::limits auth_failures{};
    };

    server_policy() : server_policy(limits{}) {}
    explicit server_policy(const limits& l, address_filter filter = {})
        : admission_(l.sessions), conns_(l.max_connections_per_ip), throttle_(l.auth_failures), filter_(std::move(filter)) {}

    std::optional<refusal> admit_connection(const ip_address& ip, time_point now, bool maybe_join,
                                            session_admission::ticket& t) override {
        if (!filter_.permits(ip)) return refusal::address_denied;
        if (throttle_.blocked(ip, now)) return refusal::auth_failures;
        if (!conns_.try_add(ip)) return refusal::connections_per_ip;
        if (!admission_.admit_connection(maybe_join, t)) {
            conns_.remove(ip);
            return refusal::max_sessions;
        }
        return std::nullopt;
    }
    bool admit_test(session_admission::ticket& t) override { return admission_.admit_command(t); }
    void release(session_admission::ticket& t) override { admission_.release(t); }
    void connection_closed(const ip_address& ip) override { conns_.remove(ip); }
    void auth_failed(const ip_address& ip, time_point now) override { throttle_.record_failure(ip, now); }

    const session_admission& admission() const noexcept { return admission_; }
    const connection_counter& connections() const noexcept { return conns_; }
    const auth_throttle& throttle() const noexcept { return throttle_; }

private:
    session_admission admission_;
    connection_counter conns_;
    auth_throttle throttle_;
    address_filter filter_;
};

} // namespace btest
