// AUTH / OK words — PROTOCOL §2.3. Server → client, 4 bytes:
//
//   01 00 00 00   OK (no token)             02 00 00 00   MD5 required, challenge follows
//   01 HI LO 00   OK with join token HI LO  03 00 00 00   EC-SRP5 required
//   00 00 00 00   authentication failed
//
// The token is carried as the 16-bit value HI·256 + LO; 0 means "no token".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "btest/core/result.hpp"

namespace btest::wire {

inline constexpr std::size_t auth_word_size = 4;

enum class auth_word_kind : std::uint8_t { ok, md5, ec_srp5, failed };

struct auth_word {
    auth_word_kind kind = auth_word_kind::ok;
    std::uint16_t token = 0;  ///< OK only
    friend bool operator==(const auth_word&, const auth_word&) = default;
};

/// Where the word sits: the first word after the COMMAND may ask for MD5 or EC-SRP5; the word
/// after an authentication exchange may only be OK or failed.
enum class word_position : std::uint8_t { first, after_auth };

/// Errors: truncated, bad_auth_word.
inline result<auth_word> decode_auth_word(std::span<const std::byte> in, word_position pos) noexcept {
    if (in.size() < auth_word_size) return errc::truncated;
    const auto b0 = std::to_integer<std::uint8_t>(in[0]);
    const auto b1 = std::to_integer<std::uint8_t>(in[1]);
    const auto b2 = std::to_integer<std::uint8_t>(in[2]);
    const auto b3 = std::to_integer<std::uint8_t>(in[3]);
    if (b0 == 1 && b3 == 0) return auth_word{auth_word_kind::ok, std::uint16_t(b1 << 8 | b2)};
    const bool rest_zero = b1 == 0 && b2 == 0 && b3 == 0;
    if (rest_zero && b0 == 0) return auth_word{auth_word_kind::failed, 0};
    if (rest_zero && pos == word_position::first) {
        if (b0 == 2) return auth_word{auth_word_kind::md5, 0};
        if (b0 == 3) return auth_word{auth_word_kind::ec_srp5, 0};
    }
    return errc::bad_auth_word;
}

inline constexpr std::array<std::byte, auth_word_size> encode_auth_word(auth_word w) noexcept {
    switch (w.kind) {
    case auth_word_kind::ok:
        return {std::byte{1}, std::byte(w.token >> 8), std::byte(w.token & 0xff), std::byte{0}};
    case auth_word_kind::md5: return {std::byte{2}, std::byte{0}, std::byte{0}, std::byte{0}};
    case auth_word_kind::ec_srp5: return {std::byte{3}, std::byte{0}, std::byte{0}, std::byte{0}};
    case auth_word_kind::failed: break;
    }
    return {std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}};
}

inline constexpr auto ok_word = encode_auth_word({auth_word_kind::ok, 0});
inline constexpr auto failed_word = encode_auth_word({auth_word_kind::failed, 0});

} // namespace btest::wire
