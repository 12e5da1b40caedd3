#include "test/hex.hpp"

#include <stdexcept>

namespace test {

std::vector<std::byte> unhex(std::string_view s) {
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        throw std::invalid_argument(std::string("unhex: bad digit ") + c);
    };
    std::vector<std::byte> out;
    int hi = -1;
    for (char c : s) {
        if (c == ' ' || c == '\n' || c == '\t') continue;
        int v = nibble(c);
        if (hi < 0) { hi = v; continue; }
        out.push_back(std::byte(hi << 4 | v));
        hi = -1;
    }
    if (hi >= 0) throw std::invalid_argument("unhex: odd length");
    return out;
}

std::string hex(std::span<const std::byte> b) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string s;
    s.reserve(b.size() * 2);
    for (auto x : b) {
        s += digits[std::to_integer<int>(x) >> 4];
        s += digits[std::to_integer<int>(x) & 0xf];
    }
    return s;
}

} // namespace test
