// A fixed ring of pending events: no allocation per event. A session produces a handful of
// events per call (STATUS floods produce none), and the embedder drains after every call, so
// the ring never fills in correct use; if it does, the oldest report is dropped, and the final
// session_closed always gets a slot.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <utility>
#include <variant>

#include "btest/session/event.hpp"

namespace btest::detail {

class event_queue {
public:
    static constexpr std::size_t capacity = 16;

    void push(event e) {
        if (size_ == capacity) drop_one();
        ring_[(head_ + size_) % capacity] = std::move(e);
        ++size_;
    }
    std::optional<event> pop() {
        if (size_ == 0) return std::nullopt;
        event e = std::move(ring_[head_]);
        head_ = (head_ + 1) % capacity;
        --size_;
        return e;
    }
    std::size_t size() const noexcept { return size_; }

private:
    // Drops the oldest interval report, or failing that the oldest event.
    void drop_one() {
        std::size_t victim = 0;
        for (std::size_t i = 0; i < size_; ++i) {
            if (std::holds_alternative<interval_report>(ring_[(head_ + i) % capacity])) {
                victim = i;
                break;
            }
        }
        for (std::size_t i = victim; i + 1 < size_; ++i)
            ring_[(head_ + i) % capacity] = std::move(ring_[(head_ + i + 1) % capacity]);
        --size_;
    }

    std::array<event, capacity> ring_{};
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

} // namespace btest::detail
