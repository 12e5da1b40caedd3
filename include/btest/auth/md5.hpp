// Legacy MD5 challenge-response — PROTOCOL §6.2. Stated once, here:
//
//   inner    = MD5(password ‖ challenge)
//   response = MD5(password ‖ inner)
//   reply    = response ‖ username NUL-padded to 32 bytes (wire/md5.hpp)
//
// The server compares responses in constant time and requires the received username (bytes
// before the first NUL) to equal the configured one truncated to 32 bytes.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include <botan/hash.h>
#include <botan/mem_ops.h>

#include "btest/core/bytes.hpp"
#include "btest/wire/md5.hpp"

namespace btest::auth {

using md5_digest = std::array<std::byte, 16>;

namespace detail {
inline md5_digest md5_of(std::span<const std::byte> a, std::span<const std::byte> b) {
    // Through the public HashFunction interface (botan/md5.h is slated to become internal).
    const auto h = Botan::HashFunction::create_or_throw("MD5");
    h->update(reinterpret_cast<const std::uint8_t*>(a.data()), a.size());
    h->update(reinterpret_cast<const std::uint8_t*>(b.data()), b.size());
    md5_digest out{};
    h->final(reinterpret_cast<std::uint8_t*>(out.data()));
    return out;
}
} // namespace detail

/// MD5(password ‖ challenge).
inline md5_digest md5_inner(std::span<const std::byte> password, std::span<const std::byte, 16> challenge) {
    return detail::md5_of(password, challenge);
}

/// MD5(password ‖ MD5(password ‖ challenge)).
inline md5_digest md5_response(std::span<const std::byte> password,
                               std::span<const std::byte, 16> challenge) {
    auto inner = md5_inner(password, challenge);
    auto r = detail::md5_of(password, inner);
    Botan::secure_scrub_memory(inner.data(), inner.size());
    return r;
}
inline md5_digest md5_response(std::string_view password, std::span<const std::byte, 16> challenge) {
    return md5_response(bytes::of(password), challenge);
}

/// Constant-time equality of two 16-byte responses.
inline bool md5_equal(std::span<const std::byte, 16> a, std::span<const std::byte, 16> b) noexcept {
    return Botan::constant_time_compare(reinterpret_cast<const std::uint8_t*>(a.data()),
                                        reinterpret_cast<const std::uint8_t*>(b.data()), 16);
}

/// The username a server expects in the reply: the configured one truncated to 32 bytes.
constexpr std::string_view md5_wire_username(std::string_view configured) noexcept {
    return configured.substr(0, std::min(configured.size(), wire::md5_username_field));
}

/// Server-side check of a whole reply. Compares the response in constant time whatever the
/// username, so timing does not tell a wrong user from a wrong password.
inline bool md5_verify(const wire::md5_reply& reply, std::string_view user, std::string_view password,
                       std::span<const std::byte, 16> challenge) {
    const auto expected = md5_response(password, challenge);
    const bool response_ok = md5_equal(expected, reply.response);
    const bool user_ok = reply.username() == md5_wire_username(user);
    return response_ok && user_ok;
}

} // namespace btest::auth
