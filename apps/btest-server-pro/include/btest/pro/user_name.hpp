// Which account names the server accepts. A name must reach the server intact over both
// authentication methods:
//  - MD5 carries it in a 32-byte NUL-padded field (PROTOCOL §2.4): a longer name arrives
//    truncated, and two names sharing their first 32 bytes could not be told apart;
//  - EC-SRP5 carries ≤ 221 bytes of UTF-8 with no NUL (§2.5, §6.3.9), and the name is hashed
//    into the validator, so it must be the exact bytes the client types.
// Any account can be made MD5-capable later (`user set --md5`), so every name is held to the
// stricter MD5 limit. Names are also shown in terminals, logs and a web page: no control
// characters, and valid UTF-8 (the protocol's text encoding, §6.1), compared byte for byte
// (no normalisation).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace btest::pro {

inline constexpr std::size_t max_user_name_bytes = 32;

/// nullopt when `name` is acceptable; otherwise why not, as a sentence fragment for an error
/// message ("is empty", "is 40 bytes long; at most 32 bytes fit the MD5 username field",
/// "contains a control character (byte 3)", "is not valid UTF-8 (byte 0)").
std::optional<std::string> user_name_problem(std::string_view name);

/// Whether `s` is well-formed UTF-8 (no overlong forms, no surrogates, ≤ U+10FFFF).
bool valid_utf8(std::string_view s) noexcept;

} // namespace btest::pro
