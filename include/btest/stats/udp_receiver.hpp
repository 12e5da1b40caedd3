// UDP receive accounting — PROTOCOL §8.5, per stream (§8.6). A stream is identified by the
// receiving socket and the source port: a server's one socket sees the client's N source
// ports; a client's N sockets each see the server's port P with its own sequence.
//
//   payload < 4 bytes             → ignored entirely (NAT / neighbour-discovery probes)
//   bytes += payload + H          (headers counted, matching the sender's S)
//   first datagram of a source    → highest = seq
//   d = (seq − highest) mod 2^32
//     0 < d < 2^31                → lost += d − 1 (d − 1 > 1 000 000: a restart, resync only);
//                                   highest = seq
//     otherwise (older/duplicate) → a reordered arrival; if lost > 0: lost −= 1
//
// Sources live in a table sized once at construction; a datagram from a source beyond the
// table's capacity still counts bytes and packets but not loss (bounded memory under a flood
// of source ports).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "btest/core/time.hpp"
#include "btest/stats/jitter.hpp"
#include "btest/wire/payload.hpp"

namespace btest::stats {

inline constexpr std::uint32_t loss_restart_gap = 1'000'000;

/// Loss state of one source, the rules above.
struct loss_tracker {
    bool seen = false;
    std::uint32_t highest = 0;
    std::uint64_t lost = 0;
    std::uint64_t reordered = 0;

    enum class arrival : std::uint8_t { first, in_order, restart, reordered };

    /// Applies one sequence number; `steps` receives seq − previous highest for in-order ones.
    arrival on_seq(std::uint32_t seq, std::uint32_t& steps) noexcept {
        steps = 0;
        if (!seen) {
            seen = true;
            highest = seq;
            return arrival::first;
        }
        const std::uint32_t d = seq - highest;  // modular
        if (d != 0 && d < 0x8000'0000u) {
            highest = seq;
            if (d - 1 > loss_restart_gap) return arrival::restart;
            lost += d - 1;
            steps = d;
            return arrival::in_order;
        }
        ++reordered;
        if (lost > 0) --lost;
        return arrival::reordered;
    }
};

class udp_receiver {
public:
    explicit udp_receiver(std::size_t max_sources = 256) { sources_.reserve(max_sources); }

    /// Accounts one datagram's UDP payload from `src_port`, received on local socket
    /// `socket` (0 for a single socket); `header` = H of §8.3. Returns false (and changes
    /// nothing) for a payload shorter than 4 bytes.
    bool on_datagram(time_point now, std::uint16_t src_port, std::span<const std::byte> payload,
                     std::uint32_t header, std::uint32_t socket = 0) noexcept {
        const auto seq = wire::udp_packet_seq(payload);
        if (!seq) return false;
        bytes_ += payload.size() + header;
        interval_bytes_ += payload.size() + header;
        ++packets_;
        if (auto* s = find(socket << 16 | src_port)) {
            s->bytes += payload.size() + header;
            ++s->packets;
            const auto lost_before = s->loss.lost;
            std::uint32_t steps = 0;
            switch (s->loss.on_seq(*seq, steps)) {
            case loss_tracker::arrival::first:
            case loss_tracker::arrival::restart: s->jitter.restart(now); break;
            case loss_tracker::arrival::in_order: s->jitter.on_arrival(now, steps); break;
            case loss_tracker::arrival::reordered: break;
            }
            lost_ += s->loss.lost;
            lost_ -= lost_before;
        }
        return true;
    }

    std::uint64_t bytes() const noexcept { return bytes_; }
    std::uint64_t packets() const noexcept { return packets_; }
    std::uint64_t lost() const noexcept { return lost_; }
    std::uint64_t reordered() const noexcept {
        std::uint64_t r = 0;
        for (const auto& s : sources_) r += s.loss.reordered;
        return r;
    }
    std::size_t sources() const noexcept { return sources_.size(); }

    /// What one source (a local socket and a peer's source port) delivered: a UDP test's
    /// stream. Sources beyond the receiver's capacity count only in the totals.
    struct source_view {
        std::uint32_t socket = 0;
        std::uint16_t port = 0;
        std::uint64_t bytes = 0;
        std::uint64_t packets = 0;
        std::uint64_t lost = 0;
        double jitter_ns = 0;
    };
    /// Source `i` (0 ≤ i < sources()), in order of first arrival.
    source_view source(std::size_t i) const {
        const auto& s = sources_.at(i);
        return {s.key >> 16, static_cast<std::uint16_t>(s.key & 0xffff), s.bytes, s.packets, s.loss.lost,
                s.jitter.jitter_ns()};
    }
    /// Mean jitter over the sources that have one, in nanoseconds.
    double jitter_ns() const noexcept {
        double sum = 0;
        std::size_t n = 0;
        for (const auto& s : sources_) {
            if (s.loss.seen) {
                sum += s.jitter.jitter_ns();
                ++n;
            }
        }
        return n ? sum / double(n) : 0.0;
    }
    /// Bytes since the last call (the STATUS interval counter of §10.1).
    std::uint64_t take_interval_bytes() noexcept {
        const auto b = interval_bytes_;
        interval_bytes_ = 0;
        return b;
    }

private:
    struct source_state {
        std::uint32_t key = 0;  // socket << 16 | source port
        std::uint64_t bytes = 0;
        std::uint64_t packets = 0;
        loss_tracker loss;
        jitter_estimator jitter;
    };
    source_state* find(std::uint32_t key) noexcept {
        if (last_ < sources_.size() && sources_[last_].key == key) return &sources_[last_];
        for (std::size_t i = 0; i < sources_.size(); ++i) {
            if (sources_[i].key == key) {
                last_ = i;
                return &sources_[i];
            }
        }
        if (sources_.size() == sources_.capacity()) return nullptr;  // never reallocates
        sources_.push_back(source_state{key, 0, 0, {}, {}});
        last_ = sources_.size() - 1;
        return &sources_.back();
    }

    std::vector<source_state> sources_;
    std::size_t last_ = 0;
    std::uint64_t bytes_ = 0;
    std::uint64_t interval_bytes_ = 0;
    std::uint64_t packets_ = 0;
    std::uint64_t lost_ = 0;
};

} // namespace btest::stats
