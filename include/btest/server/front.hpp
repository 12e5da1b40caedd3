// A btest server's front end (STYLE §12): it owns each new TCP connection until its first
// message says what it is, the way a QUIC server routes packets by connection ID before any
// connection state exists. It answers HELLO (PROTOCOL §4), reads the 16-byte first message
// and routes the connection:
//
//   a JOIN of a pending multi-connection test from the same address (§7)
//                                            → join:  attach it with server_session::join()
//   a COMMAND the server accepts (§2.2, §13.3) → test:  create a server_session with it
//   anything else, T_hs, a server limit      → close: close the socket (nothing more is sent)
//
// Every limit that applies before a session exists is decided here, through the policy
// (policy.hpp): max_sessions, live connections and failed logins per address, the address
// filter. A connection refused on accept gets no HELLO.
//
// Shape: accept / feed / closed / on_timer in; write_to, poll_route, next_deadline out. Unlike
// a session, feed() stops at the end of the first message and returns how much it took: the
// rest of the bytes belong to whatever the connection is routed to.
//
// Thread safety: one thread at a time (a multi-threaded server runs one front end per io
// thread, with its own join_registry; connections from one address go to one thread).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <span>
#include <system_error>
#include <utility>
#include <variant>
#include <vector>

#include "btest/core/address.hpp"
#include "btest/core/error.hpp"
#include "btest/core/time.hpp"
#include "btest/server/join_registry.hpp"
#include "btest/server/policy.hpp"
#include "btest/wire/command.hpp"
#include "btest/wire/hello.hpp"
#include "btest/wire/join.hpp"

namespace btest {

class server_session;

struct front_config {
    duration handshake = std::chrono::seconds(10);  ///< T_hs: HELLO to the end of the first message
    std::uint32_t max_conn_count = 255;             ///< largest conn_count a COMMAND may ask for (§13.3)
    join_registry::limits joins{};
};

/// A connection in the front end. Valid from accept() until its route is polled.
using conn_id = std::uint32_t;

/// The first message is a COMMAND the server accepts: create a session for the test. The
/// ticket counts the test; the transport releases it (front_policy::release) when the session
/// is over.
struct route_test {
    conn_id conn = 0;
    endpoint peer;
    wire::command command;
    session_admission::ticket ticket;
};
/// The first message is a JOIN of `session`'s token: attach the connection with
/// session->join(now).
struct route_join {
    conn_id conn = 0;
    endpoint peer;
    server_session* session = nullptr;
};
/// Close the connection: refused by a limit (`refused`; no HELLO was sent if it was refused on
/// accept), an invalid first message, or T_hs (`error`). The policy is already settled.
struct route_close {
    conn_id conn = 0;
    endpoint peer;
    std::optional<refusal> refused;
    std::error_code error;
};
using route = std::variant<route_test, route_join, route_close>;

inline conn_id route_conn(const route& r) noexcept {
    return std::visit([](const auto& x) { return x.conn; }, r);
}

class server_front {
public:
    /// `policy` must outlive the front end (and every route_test's ticket).
    server_front(const front_config& cfg, front_policy& policy) : cfg_(cfg), policy_(policy), joins_(cfg.joins) {}
    server_front(const server_front&) = delete;
    server_front& operator=(const server_front&) = delete;

    /// A TCP connection from `peer` was accepted at `now`. Poll routes next: one the policy
    /// refuses is routed to close at once, with nothing to write.
    conn_id accept(time_point now, const endpoint& peer) {
        const conn_id id = alloc();
        auto& s = slots_[id];
        s.peer = peer;
        if (auto why = policy_.admit_connection(peer.address, now, joins_.pending_from(peer.address), s.ticket)) {
            s.counted = false;
            decide(id, route_close{id, peer, *why, make_error_code(errc::resource_limit)});
            return id;
        }
        s.counted = true;
        s.hello_left = static_cast<std::uint8_t>(wire::hello.size());
        timeouts_.push_back({now + cfg_.handshake, id, s.gen});
        return id;
    }

    /// HELLO, once (it may be taken in pieces); 0 afterwards or for an unknown connection.
    std::size_t write_to(conn_id id, time_point now, std::span<std::byte> out) {
        (void)now;
        if (!live(id)) return 0;
        auto& s = slots_[id];
        const std::size_t n = std::min<std::size_t>(s.hello_left, out.size());
        if (n == 0) return 0;  // (an empty span may have no storage at all)
        std::memcpy(out.data(), wire::hello.data() + (wire::hello.size() - s.hello_left), n);
        s.hello_left = static_cast<std::uint8_t>(s.hello_left - n);
        return n;
    }

    /// Bytes received on connection `id`: takes those of the first message and returns how
    /// many; once the message is complete its route is ready (poll_route()) and the rest of
    /// `in` belongs to the route's session.
    std::size_t feed(conn_id id, time_point now, std::span<const std::byte> in) {
        (void)now;
        if (!live(id) || slots_[id].decided) return 0;
        auto& s = slots_[id];
        const std::size_t n = std::min<std::size_t>(in.size(), s.msg.size() - s.have);
        if (n == 0) return 0;
        std::memcpy(s.msg.data() + s.have, in.data(), n);
        s.have = static_cast<std::uint8_t>(s.have + n);
        if (s.have == s.msg.size()) on_first_message(id);
        return n;
    }

    /// The peer closed or reset connection `id` before its route was polled: it is forgotten
    /// (the policy settled), and no route follows.
    void closed(conn_id id, time_point now) {
        (void)now;
        if (!live(id)) return;
        auto& s = slots_[id];
        if (s.decided) {
            // Its route is waiting: drop it. A test's ticket and count, and a join's count, were
            // handed to the route; they come back here.
            for (auto it = routes_.begin(); it != routes_.end(); ++it) {
                if (route_conn(*it) != id) continue;
                if (auto* t = std::get_if<route_test>(&*it)) policy_.release(t->ticket);
                if (!std::holds_alternative<route_close>(*it)) policy_.connection_closed(s.peer.address);
                routes_.erase(it);
                break;
            }
        } else {
            settle(s);
        }
        free(id);
    }

    /// The next routing decision; after it the connection's id is no longer the front end's.
    std::optional<route> poll_route() {
        if (routes_.empty()) return std::nullopt;
        route r = std::move(routes_.front());
        routes_.pop_front();
        free(route_conn(r));
        return r;
    }

    /// The earliest T_hs of a connection still in its first message; nullopt: none.
    std::optional<time_point> next_deadline() const {
        for (const auto& t : timeouts_)
            if (waiting(t)) return t.at;
        return std::nullopt;
    }

    /// Closes the connections whose T_hs passed (routes to close with handshake_timeout).
    void on_timer(time_point now) {
        while (!timeouts_.empty()) {
            const auto t = timeouts_.front();
            if (waiting(t)) {
                if (t.at > now) break;
                settle(slots_[t.id]);
                decide(t.id, route_close{t.id, slots_[t.id].peer, std::nullopt, make_error_code(errc::handshake_timeout)});
            }
            timeouts_.pop_front();
        }
    }

    /// The pending multi-connection tests of this front end (sessions register their tokens
    /// through server_services::joins).
    join_registry& joins() noexcept { return joins_; }
    const join_registry& joins() const noexcept { return joins_; }
    /// Connections not yet routed.
    std::size_t pending() const noexcept { return live_; }
    /// The peer of a connection not yet routed.
    const endpoint& peer(conn_id id) const { return slots_.at(id).peer; }

private:
    struct slot {
        bool used = false;
        bool decided = false;   ///< its route is queued
        bool counted = false;   ///< the policy counts it (admit_connection let it in)
        std::uint32_t gen = 0;
        endpoint peer;
        std::uint8_t hello_left = 0;
        std::uint8_t have = 0;
        std::array<std::byte, wire::command_size> msg{};
        session_admission::ticket ticket;
    };
    struct timeout {
        time_point at;
        conn_id id;
        std::uint32_t gen;
    };

    bool live(conn_id id) const noexcept { return id < slots_.size() && slots_[id].used; }
    bool waiting(const timeout& t) const noexcept {
        const auto& s = slots_[t.id];
        return s.used && s.gen == t.gen && !s.decided;
    }

    conn_id alloc() {
        conn_id id;
        if (!free_.empty()) {
            id = free_.back();
            free_.pop_back();
        } else {
            id = static_cast<conn_id>(slots_.size());
            slots_.emplace_back();
        }
        auto& s = slots_[id];
        const auto gen = s.gen + 1;
        s = slot{};
        s.used = true;
        s.gen = gen;
        ++live_;
        return id;
    }
    void free(conn_id id) {
        if (!live(id)) return;
        slots_[id].used = false;
        free_.push_back(id);
        --live_;
    }

    void decide(conn_id id, route r) {
        slots_[id].decided = true;
        slots_[id].hello_left = 0;
        routes_.push_back(std::move(r));
    }

    /// The connection is closed by the front end (or its peer): its handshake slot and its
    /// place in the per-address count go back.
    void settle(slot& s) {
        if (!s.counted) return;
        s.counted = false;
        policy_.release(s.ticket);
        policy_.connection_closed(s.peer.address);
    }

    void on_first_message(conn_id id) {
        auto& s = slots_[id];
        // A JOIN: bytes 0-1 match a pending test from the same address that lacks connections.
        if (auto* target = joins_.claim(*wire::decode_join(s.msg), s.peer.address)) {
            policy_.release(s.ticket);   // it belongs to a counted test now
            s.counted = false;           // ... and its socket's count moves with it
            decide(id, route_join{id, s.peer, target});
            return;
        }
        auto cmd = wire::decode_command(s.msg);
        if (!cmd || cmd->connections() > cfg_.max_conn_count) {
            settle(s);
            decide(id, route_close{id, s.peer, std::nullopt, make_error_code(errc::invalid_command)});
            return;
        }
        if (!policy_.admit_test(s.ticket)) {
            // Let in as a possible JOIN at the limit, but a COMMAND: no reply word (§12.4).
            settle(s);
            decide(id, route_close{id, s.peer, refusal::max_sessions, make_error_code(errc::resource_limit)});
            return;
        }
        s.counted = false;  // ticket and count go with the test (the transport settles them)
        decide(id, route_test{id, s.peer, *cmd, s.ticket});
    }

    front_config cfg_;
    front_policy& policy_;
    join_registry joins_;
    std::vector<slot> slots_;
    std::vector<conn_id> free_;
    std::deque<route> routes_;
    std::deque<timeout> timeouts_;
    std::size_t live_ = 0;
};

} // namespace btest
