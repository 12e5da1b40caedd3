// One direction of a host's path in the memory world: its model (rate, delay, drop-tail queue,
// loss pattern, random loss, reordering from a seeded RNG), the state of the sender's NIC and
// of the bottleneck, and what crossed it. It only computes when things arrive and whether they
// are dropped; the world (world.hpp) moves the bytes.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "btest/core/entropy.hpp"
#include "btest/core/time.hpp"

namespace btest::memory {

struct link_model {
    std::uint64_t bits_per_second = 0;          ///< bottleneck rate; 0 = no bottleneck
    duration delay{};                           ///< one-way propagation delay
    std::size_t queue_bytes = 512 * 1024;       ///< drop-tail queue in front of the bottleneck (UDP)
    std::uint64_t nic_bits_per_second = 1'000'000'000ULL;  ///< the sender's interface
    std::size_t send_buffer = 1024 * 1024;      ///< UDP: a sender blocks beyond this NIC backlog
    std::size_t tcp_window = 4 * 1024 * 1024;   ///< TCP: bytes in flight per connection
    std::function<bool(std::uint64_t)> loss;    ///< UDP: drop datagram number n (0-based) if true
    double loss_probability = 0;                ///< UDP: random loss
    double reorder_probability = 0;             ///< UDP: share of datagrams delayed by reorder_delay
    duration reorder_delay = std::chrono::milliseconds(1);
    std::uint64_t seed = 1;
};

/// Drop every n-th datagram (n, 2n, 3n, … counting from 1).
inline std::function<bool(std::uint64_t)> every_nth(std::uint64_t n) {
    return [n](std::uint64_t i) { return (i + 1) % n == 0; };
}

/// What crossed one direction of a link.
struct link_stats {
    std::uint64_t tcp_bytes_written = 0;
    std::uint64_t tcp_bytes_delivered = 0;
    std::uint64_t datagrams_sent = 0;           ///< entered the link
    std::uint64_t datagrams_dropped = 0;        ///< by loss pattern, random loss or a full queue
    std::uint64_t datagrams_delivered = 0;      ///< reached a bound socket (payload ≥ 4 bytes)
    std::uint64_t delivered_bytes = 0;          ///< UDP payload + H of those
    std::uint64_t probes_delivered = 0;         ///< payloads shorter than 4 bytes
    std::uint64_t datagrams_unreachable = 0;    ///< no socket bound at the destination
    std::uint64_t reordered = 0;
    /// Send order (among data datagrams, payload ≥ 4) of the first datagram that reached a
    /// socket and of the highest one; `delivered_before_first` counts those that arrived after
    /// the first but were sent before it (reordered at the very start).
    std::optional<std::uint64_t> first_delivered_index, last_delivered_index;
    std::uint64_t delivered_before_first = 0;
    /// What a receiver tracking one stream from its first datagram must count as lost: the
    /// datagrams of [first, highest] that never arrived (PROTOCOL §8.5).
    std::uint64_t expected_lost() const {
        if (!first_delivered_index) return 0;
        return *last_delivered_index - *first_delivered_index + 1 - (datagrams_delivered - delivered_before_first);
    }
    /// A data datagram sent as number `index` reached its socket.
    void delivered(std::uint64_t index, std::uint64_t bytes) {
        datagrams_delivered++;
        delivered_bytes += bytes;
        if (!first_delivered_index) first_delivered_index = index;
        if (index < *first_delivered_index) delivered_before_first++;
        last_delivered_index = std::max(last_delivered_index.value_or(0), index);
    }
};

class link {
public:
    link() = default;
    link(link_model m, std::uint64_t seed) : model_(std::move(m)), rng_(seed) {}

    const link_model& model() const noexcept { return model_; }
    const link_stats& stats() const noexcept { return stats_; }
    link_stats& stats() noexcept { return stats_; }

    /// TCP: `n` bytes written at `now` arrive at the returned time (serialised behind what the
    /// bottleneck, or else the NIC, still carries).
    time_point tcp_send(time_point now, std::size_t n) {
        stats_.tcp_bytes_written += n;
        const std::uint64_t rate = model_.bits_per_second ? model_.bits_per_second : model_.nic_bits_per_second;
        const time_point start = std::max(now, bn_free_);
        bn_free_ = start + transmit(n, rate);
        nic_free_ = std::max(nic_free_, bn_free_);
        return bn_free_ + model_.delay;
    }

    /// UDP: whether the sender's socket takes one more datagram at `now` (its NIC backlog is
    /// within the send buffer), and when it will if not.
    bool udp_writable(time_point now) const {
        if (nic_free_ <= now) return true;
        const auto backlog_ns = static_cast<std::uint64_t>((nic_free_ - now).count());
        const auto backlog_bytes = backlog_ns * model_.nic_bits_per_second / 8 / 1'000'000'000ULL;
        return backlog_bytes < model_.send_buffer;
    }
    time_point udp_writable_at(time_point now) const {
        const auto buffer_ns = static_cast<std::int64_t>(model_.send_buffer * 8ULL * 1'000'000'000ULL /
                                                          model_.nic_bits_per_second);
        return std::max(now + duration(1), nic_free_ - duration(buffer_ns) + duration(1));
    }

    /// A datagram leaves the sender at `now` (`len` payload bytes, `header` H): when it
    /// arrives, or nullopt when the loss model or a full queue drops it. `data_index` numbers
    /// data datagrams (payload ≥ 4) for link_stats::delivered().
    struct sent {
        std::optional<time_point> arrives;
        std::uint64_t data_index = ~0ULL;
    };
    sent udp_send(time_point now, std::uint32_t len, std::uint32_t header) {
        sent r;
        const std::uint64_t index = counter_++;
        if (len >= 4) r.data_index = data_counter_++;
        stats_.datagrams_sent++;
        const std::uint64_t wire = std::uint64_t(len) + header;
        nic_free_ = std::max(now, nic_free_) + transmit(wire, model_.nic_bits_per_second);
        time_point out = nic_free_;
        bool drop = model_.loss && model_.loss(index);
        if (!drop && model_.loss_probability > 0) drop = uniform() < model_.loss_probability;
        if (!drop && model_.bits_per_second) {
            if (bn_free_ > out) {
                const auto backlog_ns = static_cast<std::uint64_t>((bn_free_ - out).count());
                const auto backlog_bytes = backlog_ns * model_.bits_per_second / 8 / 1'000'000'000ULL;
                if (backlog_bytes + wire > model_.queue_bytes) drop = true;
            }
            if (!drop) {
                bn_free_ = std::max(out, bn_free_) + transmit(wire, model_.bits_per_second);
                out = bn_free_;
            }
        }
        if (drop) {
            stats_.datagrams_dropped++;
            return r;
        }
        time_point at = out + model_.delay;
        if (model_.reorder_probability > 0 && uniform() < model_.reorder_probability) {
            at += model_.reorder_delay;
            stats_.reordered++;
        }
        r.arrives = at;
        return r;
    }

private:
    static duration transmit(std::uint64_t bytes, std::uint64_t bits_per_second) {
        return duration(static_cast<std::int64_t>(bytes * 8ULL * 1'000'000'000ULL / std::max<std::uint64_t>(bits_per_second, 1)));
    }
    double uniform() { return double(rng_.next() >> 11) * 0x1.0p-53; }

    link_model model_;
    link_stats stats_;
    time_point nic_free_{};
    time_point bn_free_{};
    std::uint64_t counter_ = 0;
    std::uint64_t data_counter_ = 0;
    seeded_entropy rng_{1};
};

} // namespace btest::memory
