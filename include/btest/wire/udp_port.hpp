// UDP PORT — PROTOCOL §2.6. Server → client, 2 bytes, u16 BIG-endian, right after the final
// OK word of a UDP test (`01 00 00 00 07 d1` = OK, port 2001).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "btest/core/bytes.hpp"
#include "btest/core/result.hpp"

namespace btest::wire {

inline constexpr std::size_t udp_port_size = 2;

/// Errors: truncated.
inline result<std::uint16_t> decode_udp_port(std::span<const std::byte> in) noexcept {
    if (in.size() < udp_port_size) return errc::truncated;
    return bytes::load_be16(in.data());
}

inline std::array<std::byte, udp_port_size> encode_udp_port(std::uint16_t port) noexcept {
    std::array<std::byte, udp_port_size> out{};
    bytes::store_be16(out.data(), port);
    return out;
}

} // namespace btest::wire
