// UDP speed adaptation — PROTOCOL §10.3 (sender side only):
//
//   initial rate = R_cap if R_cap > 0, else unpaced (configurable: a fixed start value)
//   on STATUS:   B = 0 → keep the rate
//                else target = B × 12 (bit/s = bytes × 8 × 1.5), rate = min(target, R_cap) if capped
//
// Arithmetic in 64 bits (B × 12 overflows 32 bits above ~2.86 Gbit/s).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>

namespace btest::pacing {

/// How a UDP sender starts before the first STATUS arrives.
struct initial_rate {
    enum class mode : std::uint8_t { cap_or_unpaced, fixed } kind = mode::cap_or_unpaced;
    std::uint64_t fixed_bits_per_second = 0;  ///< for mode::fixed
};

class rate_adapter {
public:
    /// `cap` = requested rate (0 = unlimited); `adapt` = false keeps the initial rate forever
    /// (TCP senders, and embedders that turn adaptation off).
    explicit rate_adapter(std::uint64_t cap = 0, bool adapt = true, initial_rate init = {}) noexcept
        : cap_(cap), adapt_(adapt) {
        rate_ = cap_;
        if (init.kind == initial_rate::mode::fixed && init.fixed_bits_per_second > 0)
            rate_ = cap_ ? std::min(cap_, init.fixed_bits_per_second) : init.fixed_bits_per_second;
    }

    std::uint64_t cap() const noexcept { return cap_; }
    /// Current rate, bit/s; 0 = unpaced.
    std::uint64_t rate() const noexcept { return rate_; }

    /// Feeds the `bytes` field of a STATUS from the peer; returns the new rate if it changed.
    std::optional<std::uint64_t> on_status(std::uint32_t peer_bytes) noexcept {
        if (!adapt_ || peer_bytes == 0) return std::nullopt;
        std::uint64_t target = std::uint64_t(peer_bytes) * 12u;
        if (cap_) target = std::min(target, cap_);
        if (target == rate_) return std::nullopt;
        rate_ = target;
        return rate_;
    }

private:
    std::uint64_t cap_ = 0;
    bool adapt_ = true;
    std::uint64_t rate_ = 0;
};

} // namespace btest::pacing
