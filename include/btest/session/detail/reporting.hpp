// What a session reports about its own counters (PROTOCOL §12.2): an interval_report per report
// interval from the difference of two snapshots, and RouterOS's one-second meters (current and
// 10-second average) per direction. Kit-internal; session.hpp feeds it snapshots.
#pragma once

#include <algorithm>
#include <cstdint>

#include "btest/core/time.hpp"
#include "btest/session/event.hpp"
#include "btest/stats/rate_meter.hpp"

namespace btest::detail {

/// A session's counters at one instant.
struct counter_snapshot {
    std::uint64_t tx_bytes = 0;
    std::uint64_t tx_packets = 0;
    std::uint64_t rx_bytes = 0;
    std::uint64_t rx_packets = 0;
    std::uint64_t lost = 0;
    double jitter_ms = 0;
};

class reporting {
public:
    explicit reporting(duration interval) : interval_(interval > duration::zero() ? interval : std::chrono::seconds(1)) {}

    void start(time_point now) noexcept {
        next_report_ = now + interval_;
        last_report_ = now;
    }
    time_point next_report() const noexcept { return next_report_; }
    time_point last_report() const noexcept { return last_report_; }

    /// One second of the test ended with counters `c`: the meters take its bytes.
    void second(const counter_snapshot& c) noexcept { push(c, std::chrono::seconds(1)); }
    /// The test ended `len` into a second: the meters take that fragment, so the 10-second
    /// average covers the end of the test.
    void last_fragment(const counter_snapshot& c, duration len) noexcept {
        if (len > duration::zero()) push(c, len);
    }

    /// The report of [from, to) (offsets from `start`), its numbers from the counters since the
    /// last report; moves the interval on.
    interval_report report(time_point start, time_point from, time_point to, const counter_snapshot& c, bool tx_active,
                           bool rx_active, bool final) noexcept {
        interval_report r;
        r.final = final;
        r.start = from - start;
        r.end = to - start;
        const auto len = to - from;
        r.tx.active = tx_active;
        r.rx.active = rx_active;
        r.tx.bytes = c.tx_bytes - base_.tx_bytes;
        r.tx.packets = c.tx_packets - base_.tx_packets;
        r.rx.bytes = c.rx_bytes - base_.rx_bytes;
        r.rx.packets = c.rx_packets - base_.rx_packets;
        r.rx.lost_packets = c.lost - std::min(c.lost, base_.lost);
        r.rx.jitter_ms = c.jitter_ms;
        r.tx.bits_per_second = stats::rate_meter::bps(r.tx.bytes, len);
        r.rx.bits_per_second = stats::rate_meter::bps(r.rx.bytes, len);
        base_ = c;
        return r;
    }
    /// After a report made by the timer: the next one is one interval on (re-anchored when late).
    void advance(time_point now) noexcept {
        last_report_ = now;
        next_report_ += interval_;
        if (next_report_ <= now) next_report_ = now + interval_;
    }

    const stats::rate_meter& tx_meter() const noexcept { return tx_meter_; }
    const stats::rate_meter& rx_meter() const noexcept { return rx_meter_; }

private:
    void push(const counter_snapshot& c, duration len) noexcept {
        tx_meter_.push_second(c.tx_bytes - second_.tx_bytes, len);
        rx_meter_.push_second(c.rx_bytes - second_.rx_bytes, len);
        second_ = c;
    }

    duration interval_;
    time_point next_report_{};
    time_point last_report_{};
    counter_snapshot base_{};    ///< at the last report
    counter_snapshot second_{};  ///< at the last one-second tick
    stats::rate_meter tx_meter_, rx_meter_;
};

} // namespace btest::detail
