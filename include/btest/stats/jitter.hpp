// Inter-arrival jitter over a UDP stream, after RFC 3550 §6.4.1:
//
//   D(i, j) = (R_j − R_i) − (S_j − S_i),   J += (|D(i, j)| − J) / 16
//
// btest datagrams carry no send timestamp, so the sender's clock S is reconstructed from the
// sequence number and the stream's mean spacing: S_j − S_i = (seq_j − seq_i) · T̂, with T̂ the
// mean inter-arrival time per sequence step since the stream's first datagram. For a paced
// sender T̂ converges to its interval, and J measures how irregularly datagrams arrive around
// that schedule. Reordered datagrams (seq not above the highest) are left out.
#pragma once

#include <cmath>
#include <cstdint>

#include "btest/core/time.hpp"

namespace btest::stats {

class jitter_estimator {
public:
    /// The stream's first datagram, or its first after a sequence restart: the reference point.
    /// The jitter value itself carries over.
    void restart(time_point arrival) noexcept {
        started_ = true;
        first_ = last_ = arrival;
        total_steps_ = 0;
    }
    /// One in-order arrival: `steps` = seq − previous highest seq (≥ 1).
    void on_arrival(time_point arrival, std::uint64_t steps) noexcept {
        if (!started_) {
            restart(arrival);
            return;
        }
        total_steps_ += steps;
        const double mean_step = double((arrival - first_).count()) / double(total_steps_);
        const double d = double((arrival - last_).count()) - double(steps) * mean_step;
        j_ += (std::abs(d) - j_) / 16.0;
        last_ = arrival;
    }
    /// Current jitter estimate in nanoseconds.
    double jitter_ns() const noexcept { return j_; }

private:
    bool started_ = false;
    time_point first_{};
    time_point last_{};
    std::uint64_t total_steps_ = 0;
    double j_ = 0.0;
};

} // namespace btest::stats
