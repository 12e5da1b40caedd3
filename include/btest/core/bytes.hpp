// Byte-order helpers on std::byte spans. The protocol mixes little- and big-endian fields
// (PROTOCOL §0); every codec names the order it uses through these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace btest::bytes {

constexpr std::uint16_t load_le16(const std::byte* p) noexcept {
    return static_cast<std::uint16_t>(std::uint16_t(p[0]) | std::uint16_t(p[1]) << 8);
}
constexpr std::uint16_t load_be16(const std::byte* p) noexcept {
    return static_cast<std::uint16_t>(std::uint16_t(p[0]) << 8 | std::uint16_t(p[1]));
}
constexpr std::uint32_t load_le32(const std::byte* p) noexcept {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 |
           std::uint32_t(p[3]) << 24;
}
constexpr std::uint32_t load_be32(const std::byte* p) noexcept {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 |
           std::uint32_t(p[3]);
}
constexpr void store_le16(std::byte* p, std::uint16_t v) noexcept {
    p[0] = std::byte(v & 0xff);
    p[1] = std::byte(v >> 8);
}
constexpr void store_be16(std::byte* p, std::uint16_t v) noexcept {
    p[0] = std::byte(v >> 8);
    p[1] = std::byte(v & 0xff);
}
constexpr void store_le32(std::byte* p, std::uint32_t v) noexcept {
    p[0] = std::byte(v & 0xff);
    p[1] = std::byte((v >> 8) & 0xff);
    p[2] = std::byte((v >> 16) & 0xff);
    p[3] = std::byte(v >> 24);
}
constexpr void store_be32(std::byte* p, std::uint32_t v) noexcept {
    p[0] = std::byte(v >> 24);
    p[1] = std::byte((v >> 16) & 0xff);
    p[2] = std::byte((v >> 8) & 0xff);
    p[3] = std::byte(v & 0xff);
}

/// Bytes of a string (UTF-8 is taken as is, PROTOCOL §6.1).
inline std::span<const std::byte> of(std::string_view s) noexcept {
    return std::as_bytes(std::span<const char>(s.data(), s.size()));
}

} // namespace btest::bytes
