// The memory world's clock: a discrete-event queue (picoquic's one-sim-round). Items are
// handled in time order, and items due at the same instant in the order they were scheduled,
// so a run is the same every time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <vector>

#include "btest/core/time.hpp"

namespace btest::memory {

/// `Item` carries what is due; the scheduler adds the time and the tie-break order.
template <class Item>
class scheduler {
public:
    void at(time_point when, Item item) { queue_.push(entry{when, order_++, std::move(item)}); }

    bool empty() const noexcept { return queue_.empty(); }
    /// When the next item is due; nullopt when none is left.
    std::optional<time_point> next() const {
        if (queue_.empty()) return std::nullopt;
        return queue_.top().when;
    }
    /// Takes the next item; the clock moves to its time (never backwards).
    Item pop() {
        entry e = queue_.top();
        queue_.pop();
        if (e.when > now_) now_ = e.when;
        return std::move(e.item);
    }
    time_point now() const noexcept { return now_; }
    /// Moves the clock to `t` when nothing earlier is left.
    void advance_to(time_point t) noexcept {
        if (t > now_) now_ = t;
    }

private:
    struct entry {
        time_point when;
        std::uint64_t order;
        Item item;
        bool operator>(const entry& o) const { return when != o.when ? when > o.when : order > o.order; }
    };
    std::priority_queue<entry, std::vector<entry>, std::greater<>> queue_;
    std::uint64_t order_ = 0;
    time_point now_{};
};

} // namespace btest::memory
