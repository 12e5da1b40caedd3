// STATUS — PROTOCOL §2.8. 12 bytes, both directions, on TCP:
//
//   off size type    field
//    0   1   u8      type   07
//    1   1   u8      cpu    0x80 | load (0..100)
//    2   2   —       reserved 00 00
//    4   4   u32 LE  seq    1 for the first status of a connection, +1 each
//    8   4   u32 LE  bytes  bytes the sender RECEIVED during its last interval
//
// Decoding validates byte 0 only: load = cpu & 0x7F clamped to 100 whether bit 7 is set or
// not (a RouterOS server sends it clear), bytes 2..7 are informational.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "btest/core/bytes.hpp"
#include "btest/core/result.hpp"

namespace btest::wire {

inline constexpr std::size_t status_size = 12;
inline constexpr std::byte status_type{0x07};

struct status {
    std::uint8_t cpu_load = 0;  ///< 0..100
    std::uint32_t seq = 0;
    std::uint32_t bytes = 0;

    /// `bytes` for a 64-bit interval count, saturated at 0xFFFFFFFF (§13.11).
    static constexpr std::uint32_t saturate(std::uint64_t n) noexcept {
        return n > 0xffffffffULL ? 0xffffffffu : static_cast<std::uint32_t>(n);
    }
    friend bool operator==(const status&, const status&) = default;
};

/// Errors: truncated, bad_status_type.
inline result<status> decode_status(std::span<const std::byte> in) noexcept {
    if (in.size() < status_size) return errc::truncated;
    if (in[0] != status_type) return errc::bad_status_type;
    status s;
    s.cpu_load = std::min<std::uint8_t>(std::to_integer<std::uint8_t>(in[1]) & 0x7f, 100);
    s.seq = bytes::load_le32(&in[4]);
    s.bytes = bytes::load_le32(&in[8]);
    return s;
}

inline std::array<std::byte, status_size> encode_status(const status& s) noexcept {
    std::array<std::byte, status_size> out{};
    out[0] = status_type;
    out[1] = std::byte(0x80 | std::min<std::uint8_t>(s.cpu_load, 100));
    bytes::store_le32(&out[4], s.seq);
    bytes::store_le32(&out[8], s.bytes);
    return out;
}

} // namespace btest::wire
