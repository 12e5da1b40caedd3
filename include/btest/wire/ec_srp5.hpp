// EC-SRP5 frames — PROTOCOL §2.5. Every message is `[len: u8][payload: len bytes]` (no Winbox
// 0x06 byte):
//
//   MSG1 C→S  len = ulen+34   username (ulen ≤ 221, no NUL) ‖ 00 ‖ X_A (32) ‖ PA (1)
//   MSG2 S→C  len = 0x31      X_B (32) ‖ PB (1) ‖ salt (16)
//   MSG3 C→S  len = 0x20      client_proof (32)
//   MSG4 S→C  len = 0x20      server_proof (32)
//
// Points are 32-byte big-endian Montgomery u-coordinates plus a y-parity byte (00/01). This
// header checks framing and the parity byte only; whether u is a valid point is auth/'s job.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "btest/core/result.hpp"

namespace btest::wire {

inline constexpr std::size_t ecsrp5_max_frame = 256;  ///< 1 + 255
inline constexpr std::size_t ecsrp5_max_username = 221;
inline constexpr std::size_t ecsrp5_msg2_len = 49;
inline constexpr std::size_t ecsrp5_proof_len = 32;

using u256_bytes = std::array<std::byte, 32>;

struct ec_point_bytes {
    u256_bytes u{};
    std::uint8_t parity = 0;
    friend bool operator==(const ec_point_bytes&, const ec_point_bytes&) = default;
};

/// A complete frame's payload, viewing the caller's buffer.
struct ecsrp5_frame_view {
    std::span<const std::byte> payload;
    std::size_t frame_size = 0;  ///< 1 + payload.size(): bytes to consume
};

/// Splits one frame off the front of `in`. Errors: truncated (need more bytes).
inline result<ecsrp5_frame_view> decode_ecsrp5_frame(std::span<const std::byte> in) noexcept {
    if (in.empty()) return errc::truncated;
    const auto len = std::to_integer<std::size_t>(in[0]);
    if (in.size() < 1 + len) return errc::truncated;
    return ecsrp5_frame_view{in.subspan(1, len), 1 + len};
}

struct ecsrp5_msg1 {
    std::string_view username;  ///< views the decoded buffer
    ec_point_bytes client_key;
};
struct ecsrp5_msg2 {
    ec_point_bytes server_key;
    std::array<std::byte, 16> salt{};
    friend bool operator==(const ecsrp5_msg2&, const ecsrp5_msg2&) = default;
};
using ecsrp5_proof = std::array<std::byte, ecsrp5_proof_len>;

namespace detail {
inline result<ec_point_bytes> decode_point(std::span<const std::byte> in) noexcept {
    ec_point_bytes p;
    std::copy_n(in.begin(), 32, p.u.begin());
    const auto parity = std::to_integer<std::uint8_t>(in[32]);
    if (parity > 1) return errc::bad_parity;
    p.parity = parity;
    return p;
}
inline void put_point(std::byte* out, const ec_point_bytes& p) noexcept {
    std::copy(p.u.begin(), p.u.end(), out);
    out[32] = std::byte(p.parity);
}
} // namespace detail

/// MSG1 payload. Errors: bad_frame_length (< 34), bad_username (no NUL 33 bytes from the end,
/// a NUL inside the name, or a name longer than 221), bad_parity.
inline result<ecsrp5_msg1> decode_ecsrp5_msg1(std::span<const std::byte> payload) noexcept {
    if (payload.size() < 34) return errc::bad_frame_length;
    const std::size_t ulen = payload.size() - 34;
    if (ulen > ecsrp5_max_username) return errc::bad_username;
    if (payload[ulen] != std::byte{0}) return errc::bad_username;
    for (std::size_t i = 0; i < ulen; ++i)
        if (payload[i] == std::byte{0}) return errc::bad_username;
    auto key = detail::decode_point(payload.subspan(ulen + 1, 33));
    if (!key) return key.error();
    return ecsrp5_msg1{{reinterpret_cast<const char*>(payload.data()), ulen}, *key};
}

/// MSG2 payload. Errors: bad_frame_length (≠ 49), bad_parity.
inline result<ecsrp5_msg2> decode_ecsrp5_msg2(std::span<const std::byte> payload) noexcept {
    if (payload.size() != ecsrp5_msg2_len) return errc::bad_frame_length;
    auto key = detail::decode_point(payload.first(33));
    if (!key) return key.error();
    ecsrp5_msg2 m{*key, {}};
    std::copy_n(payload.begin() + 33, 16, m.salt.begin());
    return m;
}

/// MSG3/MSG4 payload. Errors: bad_frame_length (≠ 32).
inline result<ecsrp5_proof> decode_ecsrp5_proof(std::span<const std::byte> payload) noexcept {
    if (payload.size() != ecsrp5_proof_len) return errc::bad_frame_length;
    ecsrp5_proof p{};
    std::copy(payload.begin(), payload.end(), p.begin());
    return p;
}

/// Frame sizes for callers sizing buffers.
constexpr std::size_t ecsrp5_msg1_frame_size(std::size_t ulen) noexcept { return 1 + ulen + 34; }
inline constexpr std::size_t ecsrp5_msg2_frame_size = 1 + ecsrp5_msg2_len;
inline constexpr std::size_t ecsrp5_proof_frame_size = 1 + ecsrp5_proof_len;

/// Writes MSG1 into `out`; returns the frame size, or 0 if the username is longer than 221
/// bytes, contains a NUL, or `out` is too small.
inline std::size_t encode_ecsrp5_msg1(std::string_view username, const ec_point_bytes& key,
                                      std::span<std::byte> out) noexcept {
    if (username.size() > ecsrp5_max_username || username.find('\0') != std::string_view::npos)
        return 0;
    const std::size_t n = ecsrp5_msg1_frame_size(username.size());
    if (out.size() < n) return 0;
    out[0] = std::byte(n - 1);
    for (std::size_t i = 0; i < username.size(); ++i)
        out[1 + i] = std::byte(static_cast<unsigned char>(username[i]));
    out[1 + username.size()] = std::byte{0};
    detail::put_point(&out[2 + username.size()], key);
    return n;
}

inline std::array<std::byte, ecsrp5_msg2_frame_size> encode_ecsrp5_msg2(const ecsrp5_msg2& m) noexcept {
    std::array<std::byte, ecsrp5_msg2_frame_size> out{};
    out[0] = std::byte(ecsrp5_msg2_len);
    detail::put_point(&out[1], m.server_key);
    std::copy(m.salt.begin(), m.salt.end(), out.begin() + 34);
    return out;
}

inline std::array<std::byte, ecsrp5_proof_frame_size> encode_ecsrp5_proof(const ecsrp5_proof& p) noexcept {
    std::array<std::byte, ecsrp5_proof_frame_size> out{};
    out[0] = std::byte(ecsrp5_proof_len);
    std::copy(p.begin(), p.end(), out.begin() + 1);
    return out;
}

} // namespace btest::wire
