// HELLO — PROTOCOL §2.1. Server → client, 4 bytes, on every accepted connection:
//
//   01 00 00 00
#pragma once

#include <array>
#include <cstddef>
#include <span>
#include <system_error>

#include "btest/core/error.hpp"

namespace btest::wire {

inline constexpr std::size_t hello_size = 4;
inline constexpr std::array<std::byte, hello_size> hello{std::byte{1}, std::byte{0}, std::byte{0},
                                                        std::byte{0}};

/// Checks the first 4 bytes of `in`. Errors: truncated, bad_hello.
inline std::error_code decode_hello(std::span<const std::byte> in) noexcept {
    if (in.size() < hello_size) return errc::truncated;
    for (std::size_t i = 0; i < hello_size; ++i)
        if (in[i] != hello[i]) return errc::bad_hello;
    return {};
}

} // namespace btest::wire
