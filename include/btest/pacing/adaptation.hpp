// UDP speed adaptation — PROTOCOL §10.3 (sender side only):
//
//   initial rate = R_cap if R_cap > 0, else unpaced (configurable: a fixed start value)
//   on STATUS:   B = 0 → keep the rate
//                else target = B × 12 (bit/s = bytes × 8 × 1.5), rate = min(target, R_cap) if capped
//                (a STATUS that ends a silence S > 1.5 s — 2 s for the first, S counted from the
//                start — reports B over S: target = B × 12 × 1 s / S)
//
// and when the receiver's STATUS stop or lag ([Design], §10.3 "Silent receiver"):
//
//   silence      = now − arrival of the latest STATUS (before the first: now − start − 0.5 s)
//   silence > 1.5 s, and again at every further 1 s of it:
//                rate = max(floor, min(rate, sent) / 2)     sent = what went out in the last second
//                (a rate already at or below the floor stays; unpaced counts as sent)
//   the next STATUS ends the silence and sets the rate by the rule above.
//
// Arithmetic in 64 bits (B × 12 overflows 32 bits above ~2.86 Gbit/s). Time is a parameter.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

#include "btest/core/time.hpp"

namespace btest::pacing {

/// How a UDP sender starts before the first STATUS arrives.
struct initial_rate {
    enum class mode : std::uint8_t { cap_or_unpaced, fixed } kind = mode::cap_or_unpaced;
    std::uint64_t fixed_bits_per_second = 0;  ///< for mode::fixed
};

/// What a UDP sender does while its receiver's STATUS messages are missing (PROTOCOL §10.3):
/// evidence that the receiver is drowning, has crashed or lost its control path, so the sender
/// backs off instead of flooding it until T_idle. Defaults are the protocol's; both intervals
/// assume the one-second STATUS cadence of §10.1 (as the B × 12 rule does).
struct silence_policy {
    duration grace = std::chrono::milliseconds(1500);  ///< silence before the first halving
    /// Extra allowance for the first STATUS of a test: the peer starts half a round trip after
    /// us and its STATUS needs the other half to come back.
    duration first_extra = std::chrono::milliseconds(500);
    duration step = std::chrono::seconds(1);            ///< one more halving per step of silence
    std::uint64_t floor = 1'000'000;                    ///< bit/s; halving stops here
};

class rate_adapter {
public:
    /// `cap` = requested rate (0 = unlimited); `adapt` = false keeps the initial rate forever
    /// (TCP senders, and embedders that turn adaptation off: no back-off either).
    explicit rate_adapter(std::uint64_t cap = 0, bool adapt = true, initial_rate init = {},
                          silence_policy silence = {}) noexcept
        : cap_(cap), adapt_(adapt), silence_(silence) {
        rate_ = cap_;
        if (init.kind == initial_rate::mode::fixed && init.fixed_bits_per_second > 0)
            rate_ = cap_ ? std::min(cap_, init.fixed_bits_per_second) : init.fixed_bits_per_second;
        if (silence_.step <= duration::zero()) silence_.step = std::chrono::seconds(1);
    }

    std::uint64_t cap() const noexcept { return cap_; }
    /// Current rate, bit/s; 0 = unpaced.
    std::uint64_t rate() const noexcept { return rate_; }
    /// Halvings since the latest STATUS (0 while STATUS arrive on time).
    std::uint32_t backoffs() const noexcept { return backoffs_; }

    /// The test (and its silence clock) starts at `now`.
    void start(time_point now) noexcept {
        has_status_ = false;
        started_ = now;
        backoffs_ = 0;
        deadline_ = now + silence_.grace + silence_.first_extra;
    }

    /// Feeds the `bytes` field of a STATUS from the peer, received at `now`; ends any silence.
    /// Returns the new rate if it changed.
    std::optional<std::uint64_t> on_status(time_point now, std::uint32_t peer_bytes) noexcept {
        // What this STATUS's bytes cover: since the previous one, or the start of the test.
        const time_point since = has_status_ ? last_status_ : started_;
        const duration allowed = has_status_ ? silence_.grace : silence_.grace + silence_.first_extra;
        has_status_ = true;
        last_status_ = now;
        backoffs_ = 0;
        deadline_ = now + silence_.grace;
        if (!adapt_ || peer_bytes == 0) return std::nullopt;
        std::uint64_t target = std::uint64_t(peer_bytes) * 12u;
        // A late STATUS covers the whole silence since the previous one (§2.8: bytes since the
        // previous STATUS): count it per second, or a lagging receiver would be offered a
        // multiple of what it takes.
        if (now - since > allowed) {
            const auto span_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - since).count();
            target = static_cast<std::uint64_t>(static_cast<long double>(target) * 1e9L / static_cast<long double>(span_ns));
        }
        if (cap_) target = std::min(target, cap_);
        target = std::max<std::uint64_t>(target, 1);
        if (target == rate_) return std::nullopt;
        rate_ = target;
        return rate_;
    }

    /// When the current silence next halves the rate; nullopt when adaptation is off or the rate
    /// cannot go lower (already at or below the floor). Call on_timer() at or after it.
    std::optional<time_point> next_backoff() const noexcept {
        if (!adapt_ || !deadline_) return std::nullopt;
        if (rate_ != 0 && rate_ <= silence_.floor) return std::nullopt;
        return deadline_;
    }

    /// Applies the halvings due by `now`: one for each step of silence past the grace (a late
    /// call catches up). `sent_bps` is what the sender actually sent in its last second (0 if
    /// unknown): the base when it is below the rate, and the only base an unpaced sender has.
    /// Returns the new rate if it changed. Early or repeated calls are harmless.
    std::optional<std::uint64_t> on_timer(time_point now, std::uint64_t sent_bps) noexcept {
        const auto due = next_backoff();
        if (!due || now < *due) return std::nullopt;
        const auto missed = static_cast<std::uint64_t>((now - *due) / silence_.step) + 1;
        deadline_ = *due + silence_.step * static_cast<std::int64_t>(missed);
        std::uint64_t base = rate_;
        if (sent_bps > 0 && (base == 0 || sent_bps < base)) base = sent_bps;
        std::uint64_t next = base;
        for (std::uint64_t i = 0; i < missed && next > silence_.floor; ++i) next /= 2;
        next = std::max(next, silence_.floor);
        if (cap_) next = std::min(next, cap_);
        backoffs_ += static_cast<std::uint32_t>(std::min<std::uint64_t>(missed, 0xffffffffu - backoffs_));
        if (next == rate_) return std::nullopt;
        rate_ = next;
        return rate_;
    }

private:
    std::uint64_t cap_ = 0;
    bool adapt_ = true;
    silence_policy silence_{};
    std::uint64_t rate_ = 0;
    bool has_status_ = false;
    time_point started_{};
    time_point last_status_{};
    std::optional<time_point> deadline_;  ///< next halving (set by start() and every STATUS)
    std::uint32_t backoffs_ = 0;
};

} // namespace btest::pacing
