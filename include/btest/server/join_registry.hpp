// Pending multi-connection sessions — PROTOCOL §7 and §13.10. A server keeps one registry per
// listener (or per io thread, with connections spread by peer IP so that a JOIN always lands
// where its session lives). Plain data: one thread at a time.
//
// Tokens: HI ∉ {00, 01} (a JOIN can never look like a COMMAND), LO ≠ 00, unique among pending
// sessions, drawn from the embedder's entropy. A session registers before it sends its OK word
// and is removed when its test starts or it ends; a claim reserves one of its missing slots.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "btest/core/address.hpp"
#include "btest/core/entropy.hpp"

namespace btest {

class server_session;

class join_registry {
public:
    struct limits {
        std::size_t max_pending = 64;        ///< pending sessions in total
        std::size_t max_pending_per_ip = 4;  ///< pending sessions from one peer IP
        std::size_t max_pending_connections = 1024;  ///< connections all pending sessions still await
    };

    join_registry() : join_registry(limits{}) {}
    explicit join_registry(limits l) : limits_(l) { entries_.reserve(l.max_pending); }
    join_registry(const join_registry&) = delete;
    join_registry& operator=(const join_registry&) = delete;

    /// Registers `s` (from `ip`, lacking `missing` connections) and returns its token; nullopt
    /// when a limit is reached.
    std::optional<std::uint16_t> add(server_session* s, const ip_address& ip, std::uint32_t missing,
                                     entropy& rng) {
        if (entries_.size() >= limits_.max_pending) return std::nullopt;
        const auto same_ip = std::count_if(entries_.begin(), entries_.end(),
                                           [&](const entry& e) { return e.ip == ip; });
        if (static_cast<std::size_t>(same_ip) >= limits_.max_pending_per_ip) return std::nullopt;
        std::size_t awaited = missing;
        for (const auto& e : entries_) awaited += e.missing;
        if (awaited > limits_.max_pending_connections) return std::nullopt;
        // 254·255 valid tokens and at most max_pending taken: a few draws always suffice; the
        // bound only keeps a broken entropy source from looping forever.
        for (int attempt = 0; attempt < 1024; ++attempt) {
            const auto b = rng.bytes<2>();
            const auto hi = std::to_integer<std::uint8_t>(b[0]);
            const auto lo = std::to_integer<std::uint8_t>(b[1]);
            if (hi < 2 || lo == 0) continue;
            const auto token = static_cast<std::uint16_t>(hi << 8 | lo);
            if (find(token) != entries_.end()) continue;
            entries_.push_back({s, ip, token, missing});
            return token;
        }
        return std::nullopt;
    }

    /// A fresh connection from `ip` sent 16 bytes starting with `token`: returns the pending
    /// session that still lacks connections and reserves one slot; nullptr otherwise (unknown
    /// token, another IP, or full).
    server_session* claim(std::uint16_t token, const ip_address& ip) noexcept {
        auto it = find(token);
        if (it == entries_.end() || it->ip != ip || it->missing == 0) return nullptr;
        --it->missing;
        return it->session;
    }

    /// Forgets `s` (its test started or it ended). Safe to call for an unregistered session.
    void remove(const server_session* s) noexcept {
        std::erase_if(entries_, [&](const entry& e) { return e.session == s; });
    }

    std::size_t pending() const noexcept { return entries_.size(); }
    /// A pending session from `ip` still awaits connections: a new connection from there may
    /// be a JOIN, which a server at its session limit must still let in (§12.4).
    bool pending_from(const ip_address& ip) const noexcept {
        return std::any_of(entries_.begin(), entries_.end(),
                           [&](const entry& e) { return e.ip == ip && e.missing > 0; });
    }

private:
    struct entry {
        server_session* session;
        ip_address ip;
        std::uint16_t token;
        std::uint32_t missing;
    };
    std::vector<entry>::iterator find(std::uint16_t token) noexcept {
        return std::find_if(entries_.begin(), entries_.end(), [&](const entry& e) { return e.token == token; });
    }

    limits limits_;
    std::vector<entry> entries_;
};

} // namespace btest
