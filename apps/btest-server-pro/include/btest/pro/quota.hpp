// Quota vocabulary: windows, directions and a set of limits.
//
// Windows are calendar periods in UTC: a day starts at 00:00:00Z, a week on Monday 00:00:00Z
// (ISO 8601 weeks), a month on the 1st at 00:00:00Z. Directions are seen from the server:
// `in` is client → server (what the server receives), `out` is server → client (what it
// sends), `total` is both together. Each (window, direction) limit is optional.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "btest/pro/utc_time.hpp"

namespace btest::pro {

enum class window : std::uint8_t { daily = 0, weekly = 1, monthly = 2 };
enum class quota_dir : std::uint8_t { in = 0, out = 1, total = 2 };

inline constexpr std::array<window, 3> all_windows{window::daily, window::weekly, window::monthly};
inline constexpr std::array<quota_dir, 3> all_quota_dirs{quota_dir::in, quota_dir::out, quota_dir::total};

constexpr std::string_view to_string(window w) noexcept {
    switch (w) {
    case window::daily: return "daily";
    case window::weekly: return "weekly";
    case window::monthly: return "monthly";
    }
    return "?";
}
constexpr std::string_view to_string(quota_dir d) noexcept {
    switch (d) {
    case quota_dir::in: return "in";
    case quota_dir::out: return "out";
    case quota_dir::total: return "total";
    }
    return "?";
}

/// The start of the period of `w` that contains `t` (UTC; weeks start on Monday).
sys_ms period_start(window w, sys_ms t) noexcept;
/// The start of the next period (= the end of the one containing `t`, exclusive).
sys_ms period_end(window w, sys_ms t) noexcept;

/// Up to nine limits in bytes: one per (window, direction); nullopt = no limit there.
class quota_limits {
public:
    const std::optional<std::uint64_t>& get(window w, quota_dir d) const noexcept { return v_[idx(w)][idx(d)]; }
    void set(window w, quota_dir d, std::optional<std::uint64_t> bytes) noexcept { v_[idx(w)][idx(d)] = bytes; }
    /// Whether any limit is set in window `w` (then usage in `w` needs a reservation).
    bool any(window w) const noexcept {
        for (auto d : all_quota_dirs)
            if (get(w, d)) return true;
        return false;
    }
    bool any() const noexcept { return any(window::daily) || any(window::weekly) || any(window::monthly); }
    friend bool operator==(const quota_limits&, const quota_limits&) = default;

private:
    template <class E>
    static constexpr std::size_t idx(E e) noexcept { return static_cast<std::size_t>(e); }
    std::array<std::array<std::optional<std::uint64_t>, 3>, 3> v_{};
};

} // namespace btest::pro
