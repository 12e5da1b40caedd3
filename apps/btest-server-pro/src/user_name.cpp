#include "btest/pro/user_name.hpp"

#include <cstdint>

namespace btest::pro {

namespace {

/// Length of the UTF-8 sequence at s[i] and its code point, or 0 when it is malformed.
std::size_t decode_utf8(std::string_view s, std::size_t i, char32_t& cp) noexcept {
    const auto b = [&](std::size_t k) { return static_cast<std::uint8_t>(s[k]); };
    const std::uint8_t c = b(i);
    std::size_t n = 0;
    char32_t min = 0;
    if (c < 0x80) { cp = c; return 1; }
    if ((c & 0xe0) == 0xc0) { n = 2; cp = c & 0x1fu; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { n = 3; cp = c & 0x0fu; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { n = 4; cp = c & 0x07u; min = 0x10000; }
    else return 0;
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b(i + k) & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return n;
}

} // namespace

bool valid_utf8(std::string_view s) noexcept {
    char32_t cp = 0;
    for (std::size_t i = 0; i < s.size();) {
        const std::size_t n = decode_utf8(s, i, cp);
        if (n == 0) return false;
        i += n;
    }
    return true;
}

std::optional<std::string> user_name_problem(std::string_view name) {
    if (name.empty()) return std::string("is empty");
    if (name.size() > max_user_name_bytes)
        return "is " + std::to_string(name.size()) + " bytes long; at most " + std::to_string(max_user_name_bytes) +
               " bytes fit the MD5 username field";
    char32_t cp = 0;
    for (std::size_t i = 0; i < name.size();) {
        const std::size_t n = decode_utf8(name, i, cp);
        if (n == 0) return "is not valid UTF-8 (byte " + std::to_string(i) + ")";
        // C0 controls (NUL included), DEL and the C1 controls.
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) return "contains a control character (byte " + std::to_string(i) + ")";
        i += n;
    }
    return std::nullopt;
}

} // namespace btest::pro
