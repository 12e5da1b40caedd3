// A bounded accumulator for one handshake frame (PROTOCOL §13.1): fixed messages are buffered
// to their exact size, EC-SRP5 frames to at most 256 bytes. It never grows.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>

namespace btest::wire {

template <std::size_t Capacity>
class frame_buffer {
public:
    /// Appends up to `want - size()` bytes of `in` (want ≤ Capacity); returns how many it took.
    std::size_t fill_to(std::size_t want, std::span<const std::byte> in) noexcept {
        if (want > Capacity) want = Capacity;
        if (size_ >= want) return 0;
        const std::size_t take = std::min(want - size_, in.size());
        for (std::size_t i = 0; i < take; ++i) data_[size_ + i] = in[i];
        size_ += take;
        return take;
    }
    std::span<const std::byte> bytes() const noexcept { return {data_.data(), size_}; }
    std::size_t size() const noexcept { return size_; }
    void clear() noexcept { size_ = 0; }
    static constexpr std::size_t capacity() noexcept { return Capacity; }

private:
    std::array<std::byte, Capacity> data_{};
    std::size_t size_ = 0;
};

} // namespace btest::wire
