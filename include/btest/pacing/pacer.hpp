// Send schedule — PROTOCOL §11. For a rate R (bit/s) and a unit of S bytes (UDP: the whole IP
// datagram; TCP: one chunk):
//
//   interval_ns = floor(1e9 · S · 8 / R)     u64: the maximum, 65535·8e9, is ≈ 5.2e14
//   interval_ns > 0.5 s → 1 s                (fewer than two units a second: one a second)
//   interval_ns = 0     → 1
//
//   while now ≥ next and burst < BURST_MAX:  send one unit; next += interval
//   if next + interval < now: next = now     (more than two units behind: no catch-up burst)
//
// A new rate sets next = now. Rate 0 is "unpaced": always due; the transport sends as fast as
// its socket accepts.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

#include "btest/core/time.hpp"

namespace btest::pacing {

inline constexpr std::uint32_t default_burst_max = 64;

/// interval_ns of §11 with both clamps. `bits_per_second` must be > 0.
constexpr std::uint64_t interval_ns(std::uint64_t bits_per_second, std::uint32_t unit_bytes) noexcept {
    // 1e9 · 8 · unit fits 64 bits for any unit below 2^31 (the protocol's sizes are u16).
    const std::uint64_t unit = std::min<std::uint32_t>(unit_bytes, 0x7fffffffu);
    const std::uint64_t raw = 1'000'000'000ULL * 8u * unit / bits_per_second;
    if (raw > 500'000'000ULL) return 1'000'000'000ULL;
    return raw == 0 ? 1 : raw;
}

/// One sending socket's or connection's schedule. Value type; one thread at a time.
class pacer {
public:
    pacer() = default;
    explicit pacer(std::uint32_t burst_max) : burst_max_(std::max<std::uint32_t>(1, burst_max)) {}

    /// Sets the rate (0 = unpaced) and unit size; the schedule restarts at `now` (§10.3, §11).
    void set_rate(std::uint64_t bits_per_second, std::uint32_t unit_bytes, time_point now) noexcept {
        rate_ = bits_per_second;
        unit_ = std::max<std::uint32_t>(1, unit_bytes);
        interval_ = rate_ ? duration(static_cast<std::int64_t>(interval_ns(rate_, unit_))) : duration::zero();
        next_ = now;
        burst_at_ = now;
        burst_ = 0;
    }

    std::uint64_t rate() const noexcept { return rate_; }
    bool unpaced() const noexcept { return rate_ == 0; }
    duration interval() const noexcept { return interval_; }
    std::uint32_t unit_bytes() const noexcept { return unit_; }

    /// Takes up to `max` units that are due at `now` and returns how many. Calls with the same
    /// `now` belong to one poll of §11: together they take at most BURST_MAX units, and when a
    /// poll ends on BURST_MAX more than two units behind, the schedule restarts at `now` (the
    /// drift clamp: no catch-up burst). Unpaced: always `max`.
    std::uint32_t take(time_point now, std::uint32_t max = 1) noexcept {
        if (rate_ == 0) return max;
        if (now != burst_at_) {
            burst_at_ = now;
            burst_ = 0;
        }
        std::uint32_t n = 0;
        while (n < max && burst_ < burst_max_ && now >= next_) {
            next_ += interval_;
            ++n;
            ++burst_;
        }
        if (burst_ >= burst_max_ && next_ + interval_ < now) next_ = now;
        return n;
    }

    /// When the next unit falls due; nullopt when unpaced (always due, not a timer matter).
    /// After a burst was exhausted at `burst_at_`, the next due time is strictly later than that
    /// instant, so a driver re-arming its timer always makes progress.
    std::optional<time_point> next_due() const noexcept {
        if (rate_ == 0) return std::nullopt;
        if (burst_ >= burst_max_ && next_ <= burst_at_) return burst_at_ + duration(1);
        return next_;
    }

private:
    std::uint64_t rate_ = 0;
    std::uint32_t unit_ = 1;
    std::uint32_t burst_max_ = default_burst_max;
    duration interval_{};
    time_point next_{};
    time_point burst_at_{};
    std::uint32_t burst_ = 0;
};

} // namespace btest::pacing
