// Per-source-IP server policies for a server on the public internet: how many connections one
// address may hold, and a cap on failed authentications (then that address is refused for a
// while). Plain bookkeeping with the time passed in; a transport consults them on accept and
// feeds them the sessions' auth_result events. Memory is bounded. One thread at a time.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "btest/core/address.hpp"
#include "btest/core/time.hpp"

namespace btest {

/// After `max_failures` failed authentications from one IP within `window`, that IP is refused
/// for `block`. Defaults: 10 per minute, then a minute.
class auth_throttle {
public:
    struct limits {
        std::uint32_t max_failures = 10;
        duration window = std::chrono::seconds(60);
        duration block = std::chrono::seconds(60);
        std::size_t max_tracked = 4096;  ///< addresses remembered at once
    };

    auth_throttle() : auth_throttle(limits{}) {}
    explicit auth_throttle(limits l) : limits_(l) { entries_.reserve(std::min<std::size_t>(l.max_tracked, 4096)); }

    /// True while connections from `ip` are to be refused.
    bool blocked(const ip_address& ip, time_point now) const noexcept {
        for (const auto& e : entries_)
            if (e.ip == ip) return now < e.blocked_until;
        return false;
    }

    /// Records one failed authentication from `ip`; returns true when `ip` is now blocked.
    bool record_failure(const ip_address& ip, time_point now) {
        if (limits_.max_failures == 0) return false;  // throttling off
        auto* e = find_or_add(ip, now);
        if (now - e->window_start >= limits_.window) {
            e->window_start = now;
            e->failures = 0;
        }
        if (++e->failures >= limits_.max_failures) {
            e->blocked_until = now + limits_.block;
            e->failures = 0;
            e->window_start = now;
        }
        return now < e->blocked_until;
    }

    std::size_t tracked() const noexcept { return entries_.size(); }

private:
    struct entry {
        ip_address ip;
        std::uint32_t failures = 0;
        time_point window_start{};
        time_point blocked_until{};
    };

    entry* find_or_add(const ip_address& ip, time_point now) {
        for (auto& e : entries_)
            if (e.ip == ip) return &e;
        if (entries_.size() >= limits_.max_tracked && !entries_.empty()) {
            // Forget what no longer matters; if everything still does, the stalest record.
            std::erase_if(entries_, [&](const entry& e) {
                return now >= e.blocked_until && now - e.window_start >= limits_.window;
            });
            if (entries_.size() >= limits_.max_tracked) {
                auto oldest = std::min_element(entries_.begin(), entries_.end(), [](const entry& a, const entry& b) {
                    return std::max(a.window_start, a.blocked_until) < std::max(b.window_start, b.blocked_until);
                });
                entries_.erase(oldest);
            }
        }
        entries_.push_back(entry{ip, 0, now, {}});
        return &entries_.back();
    }

    limits limits_;
    std::vector<entry> entries_;
};

/// Live connections per source IP (default at most 20). try_add() before accepting a
/// connection's session, remove() when its socket closes.
class connection_counter {
public:
    explicit connection_counter(std::size_t max_per_ip = 20) : max_(max_per_ip) {}

    /// Counts a new connection from `ip`; false (nothing counted) when `ip` is at its limit.
    bool try_add(const ip_address& ip) {
        auto& n = counts_[ip];
        if (max_ && n >= max_) {
            if (n == 0) counts_.erase(ip);
            return false;
        }
        ++n;
        return true;
    }
    void remove(const ip_address& ip) noexcept {
        auto it = counts_.find(ip);
        if (it == counts_.end()) return;
        if (--it->second == 0) counts_.erase(it);
    }
    std::size_t count(const ip_address& ip) const noexcept {
        auto it = counts_.find(ip);
        return it == counts_.end() ? 0 : it->second;
    }
    std::size_t addresses() const noexcept { return counts_.size(); }

private:
    std::size_t max_;  ///< 0: unlimited
    std::map<ip_address, std::size_t> counts_;
};

} // namespace btest
