// MD5 challenge-response frames — PROTOCOL §2.4.
//
// Server → client after `02 00 00 00`:  challenge (16 random bytes)
// Client → server, 48 bytes:            response (16) ‖ username (32, UTF-8, NUL-padded;
//                                       truncated to 32; a 32-byte name has no NUL)
// The hash itself is in auth/md5.hpp.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <string_view>

#include "btest/core/result.hpp"

namespace btest::wire {

inline constexpr std::size_t md5_challenge_size = 16;
inline constexpr std::size_t md5_reply_size = 48;
inline constexpr std::size_t md5_username_field = 32;

struct md5_reply {
    std::array<std::byte, 16> response{};
    std::array<std::byte, md5_username_field> username_field{};

    /// The username: bytes before the first NUL, or all 32 (PROTOCOL §6.2).
    std::string_view username() const noexcept {
        const auto* p = reinterpret_cast<const char*>(username_field.data());
        std::size_t n = 0;
        while (n < md5_username_field && p[n] != '\0') ++n;
        return {p, n};
    }
    friend bool operator==(const md5_reply&, const md5_reply&) = default;
};

/// The username as it travels: truncated to 32 bytes, NUL-padded.
inline std::array<std::byte, md5_username_field> md5_username_field_of(std::string_view user) noexcept {
    std::array<std::byte, md5_username_field> f{};
    const auto n = std::min(user.size(), md5_username_field);
    for (std::size_t i = 0; i < n; ++i) f[i] = std::byte(static_cast<unsigned char>(user[i]));
    return f;
}

/// Decodes the first 48 bytes. Errors: truncated.
inline result<md5_reply> decode_md5_reply(std::span<const std::byte> in) noexcept {
    if (in.size() < md5_reply_size) return errc::truncated;
    md5_reply r;
    std::copy_n(in.begin(), 16, r.response.begin());
    std::copy_n(in.begin() + 16, md5_username_field, r.username_field.begin());
    return r;
}

inline std::array<std::byte, md5_reply_size> encode_md5_reply(std::span<const std::byte, 16> response,
                                                              std::string_view user) noexcept {
    std::array<std::byte, md5_reply_size> out{};
    std::copy(response.begin(), response.end(), out.begin());
    const auto f = md5_username_field_of(user);
    std::copy(f.begin(), f.end(), out.begin() + 16);
    return out;
}

} // namespace btest::wire
