// RouterOS's three figures for one direction: current (last second), 10-second average and
// total average. Fed once per second with that second's byte count; 64-bit throughout.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "btest/core/time.hpp"

namespace btest::stats {

class rate_meter {
public:
    static constexpr std::size_t window = 10;

    /// Records one completed second (or a shorter last fragment: `len` ≤ 1 s).
    void push_second(std::uint64_t bytes, duration len = std::chrono::seconds(1)) noexcept {
        ring_[head_] = {bytes, len};
        head_ = (head_ + 1) % window;
        if (filled_ < window) ++filled_;
        total_bytes_ += bytes;
        total_time_ += len;
    }

    /// Bits per second over the last pushed second; 0 before the first.
    std::uint64_t current_bps() const noexcept {
        if (filled_ == 0) return 0;
        const auto& s = ring_[(head_ + window - 1) % window];
        return bps(s.bytes, s.len);
    }
    /// Bits per second over the last (up to) 10 seconds.
    std::uint64_t average10_bps() const noexcept {
        std::uint64_t b = 0;
        duration t{};
        for (std::size_t i = 0; i < filled_; ++i) {
            b += ring_[i].bytes;
            t += ring_[i].len;
        }
        return bps(b, t);
    }
    /// Bits per second over every pushed second.
    std::uint64_t total_average_bps() const noexcept { return bps(total_bytes_, total_time_); }
    std::uint64_t total_bytes() const noexcept { return total_bytes_; }
    duration total_time() const noexcept { return total_time_; }

    static std::uint64_t bps(std::uint64_t bytes, duration t) noexcept {
        if (t.count() <= 0) return 0;
        // bytes·8·1e9 overflows 64 bits above ~2.3 GB: split into whole and remainder parts.
        const auto ns = static_cast<std::uint64_t>(t.count());
        const std::uint64_t whole = bytes / ns;
        const std::uint64_t rest = bytes % ns;  // < ns
        // rest·8e9 fits while ns < 2.3e9 (38 minutes); beyond that, long double is exact enough
        if (ns < 2'000'000'000ULL) return whole * 8'000'000'000ULL + rest * 8'000'000'000ULL / ns;
        return whole * 8'000'000'000ULL +
               static_cast<std::uint64_t>(static_cast<long double>(rest) * 8e9L / static_cast<long double>(ns));
    }

private:
    struct sample {
        std::uint64_t bytes = 0;
        duration len{};
    };
    std::array<sample, window> ring_{};
    std::size_t head_ = 0;
    std::size_t filled_ = 0;
    std::uint64_t total_bytes_ = 0;
    duration total_time_{};
};

} // namespace btest::stats
