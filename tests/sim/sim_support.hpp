// Helpers for whole tests in the memory world.
#pragma once

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <btest/transport/memory/world.hpp>

namespace sim {

using namespace btest;
using namespace std::chrono_literals;

inline const char* name(protocol p) { return p == protocol::tcp ? "tcp" : "udp"; }
inline const char* name(direction d) {
    return d == direction::transmit ? "transmit" : d == direction::receive ? "receive" : "both";
}
inline const char* name(auth_method a) {
    return a == auth_method::none ? "none" : a == auth_method::md5 ? "md5" : "ec_srp5";
}

/// The last interval report in an event list.
inline std::optional<interval_report> last_report(const std::vector<event>& evs) {
    for (auto it = evs.rbegin(); it != evs.rend(); ++it)
        if (auto* r = std::get_if<interval_report>(&*it)) return *r;
    return std::nullopt;
}
inline std::vector<interval_report> reports(const std::vector<event>& evs) {
    std::vector<interval_report> v;
    for (const auto& e : evs)
        if (auto* r = std::get_if<interval_report>(&e)) v.push_back(*r);
    return v;
}
inline bool has_started(const std::vector<event>& evs) {
    for (const auto& e : evs)
        if (std::holds_alternative<test_started>(e)) return true;
    return false;
}
inline std::optional<session_closed> closed_event(const std::vector<event>& evs) {
    for (const auto& e : evs)
        if (auto* c = std::get_if<session_closed>(&e)) return *c;
    return std::nullopt;
}

/// Bytes of the handshake each way (what the link carries besides data and STATUS).
struct handshake_bytes {
    std::uint64_t up = 0, down = 0;
};
inline handshake_bytes handshake_size(protocol p, auth_method a, const std::string& user) {
    handshake_bytes h{16, 4 + 4};
    if (a == auth_method::md5) {
        h.up += 48;
        h.down += 4 + 16;
    } else if (a == auth_method::ec_srp5) {
        h.up += (1 + user.size() + 34) + 33;
        h.down += 4 + 50 + 33;
    }
    if (p == protocol::udp) h.down += 2;
    return h;
}

/// Nothing of the test is left behind in the world.
inline void check_no_leaks(memory::world& w) {
    CHECK(w.live_server_sessions() == 0);
    CHECK(w.udp_blocks_in_use() == 0);
    CHECK(w.pending_joins() == 0);
    CHECK(w.open_tcp_connections() == 0);
    for (std::size_t i = 0; i < w.client_count(); ++i) CHECK(w.client(i).bound_udp_ports() == 0);
}

} // namespace sim
