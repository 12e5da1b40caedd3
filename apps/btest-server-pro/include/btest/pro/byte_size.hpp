// BYTES as operators write them: "2G", "500M", "1.5T", "2000000000". Suffixes K, M, G, T are
// powers of 1000 (as RouterOS shows bytes), case-insensitive, optionally followed by "B".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace btest::pro {

/// The number of bytes `text` denotes, or nullopt with `*why` set (when given) if it is empty,
/// not a number, negative, not a whole number of bytes (e.g. "1.0005K"), has an unknown suffix
/// or does not fit in 64 bits. Accepts: digits, an optional fraction (".5"), an optional suffix
/// K/M/G/T (×10³, ×10⁶, ×10⁹, ×10¹²) and an optional trailing "B"; no spaces, no sign.
std::optional<std::uint64_t> parse_byte_size(std::string_view text, std::string* why = nullptr);

/// The shortest exact form that parse_byte_size reads back to `n`: "2G", "1500K", "999".
std::string format_byte_size(std::uint64_t n);

/// For people: three significant digits and a decimal unit, "2.50 GB", "999 B", "12.3 MB".
std::string format_byte_size_human(std::uint64_t n);

} // namespace btest::pro
