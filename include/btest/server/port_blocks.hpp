// UDP port blocks on the server — PROTOCOL §8.1. Pure bookkeeping, shared by every transport:
// a UDP test with N streams takes K = max(1, N) consecutive ports P … P+K−1 that overlap no
// active block, with P + 256 + K − 1 ≤ 65535; candidates ascend from the last block handed out
// (as RouterOS hands out ascending ports) and wrap to the base. Only P is bound, by the
// transport, through the `try_bind` callback; a port it cannot bind is skipped.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace btest {

class port_block_allocator {
public:
    struct limits {
        std::uint16_t base = 2001;        ///< first port handed out
        std::uint16_t last = 65535 - 256; ///< highest usable P (P + 256 must fit)
        std::size_t max_blocks = 1024;    ///< concurrent UDP tests
    };

    port_block_allocator() : port_block_allocator(limits{}) {}
    explicit port_block_allocator(limits l) : limits_(l), next_(l.base) { blocks_.reserve(std::min<std::size_t>(l.max_blocks, 4096)); }

    /// Finds a free block of `count` ports whose first port `try_bind(P)` manages to bind.
    /// Returns P, or nullopt when no block is free, the block limit is reached or every
    /// candidate failed to bind.
    template <class TryBind>
    std::optional<std::uint16_t> acquire(std::uint16_t count, TryBind&& try_bind) {
        count = std::max<std::uint16_t>(count, 1);
        if (blocks_.size() >= limits_.max_blocks) return std::nullopt;
        const std::uint32_t lo = limits_.base;
        // P + 256 + K − 1 ≤ 65535, and P ≤ limits_.last.
        const std::uint32_t hi = std::min<std::uint32_t>(limits_.last, 65535u - 256u - (count - 1u));
        if (lo > hi) return std::nullopt;
        const std::uint32_t span = hi - lo + 1;
        std::uint32_t start = std::clamp<std::uint32_t>(next_, lo, hi);
        std::uint32_t tried = 0;
        std::uint32_t p = start;
        while (tried < span) {
            if (auto clash = overlapping(p, count)) {
                // Jump past the block we collided with.
                const std::uint32_t after = std::uint32_t(clash->first) + clash->count;
                const std::uint32_t jump = after > p ? after - p : 1;
                tried += jump;
                p += jump;
                if (p > hi) p = lo + (p - hi - 1) % span;
                continue;
            }
            if (try_bind(static_cast<std::uint16_t>(p))) {
                blocks_.push_back({static_cast<std::uint16_t>(p), count});
                next_ = p + count > hi ? lo : p + count;
                return static_cast<std::uint16_t>(p);
            }
            ++tried;
            p = p + 1 > hi ? lo : p + 1;
        }
        return std::nullopt;
    }

    /// Returns a block to the pool (unknown ports are ignored).
    void release(std::uint16_t first) noexcept {
        std::erase_if(blocks_, [&](const block& b) { return b.first == first; });
    }

    std::size_t active() const noexcept { return blocks_.size(); }
    bool in_use(std::uint16_t port) const noexcept { return overlapping(port, 1).has_value(); }

private:
    struct block {
        std::uint16_t first;
        std::uint16_t count;
    };
    std::optional<block> overlapping(std::uint32_t p, std::uint32_t count) const noexcept {
        for (const auto& b : blocks_)
            if (p < std::uint32_t(b.first) + b.count && std::uint32_t(b.first) < p + count) return b;
        return std::nullopt;
    }

    limits limits_;
    std::uint32_t next_;
    std::vector<block> blocks_;
};

} // namespace btest
