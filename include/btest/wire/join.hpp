// JOIN — PROTOCOL §2.7. Client → server on an extra TCP connection, 16 bytes:
//
//   off size field
//    0   1   token HI   (byte 1 of the primary's OK word)
//    1   1   token LO   (byte 2)
//    2  14   rest       we send 02 00 + 12 zero bytes; a server ignores all 14
//
// The server's reply, `01 HI LO 00`, is an OK word (auth_word.hpp) and optional on the wire.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "btest/core/result.hpp"

namespace btest::wire {

inline constexpr std::size_t join_size = 16;

/// Reads the token of a 16-byte message (any 16 bytes "decode"; whether they are a JOIN is
/// decided by the server's pending-session table). Errors: truncated.
inline result<std::uint16_t> decode_join(std::span<const std::byte> in) noexcept {
    if (in.size() < join_size) return errc::truncated;
    return static_cast<std::uint16_t>(std::to_integer<unsigned>(in[0]) << 8 |
                                      std::to_integer<unsigned>(in[1]));
}

inline std::array<std::byte, join_size> encode_join(std::uint16_t token) noexcept {
    std::array<std::byte, join_size> out{};
    out[0] = std::byte(token >> 8);
    out[1] = std::byte(token & 0xff);
    out[2] = std::byte{2};
    return out;
}

} // namespace btest::wire
