// Hex helpers for test data: spec vectors and fixtures are written as hex strings.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <stdexcept>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace test {

/// Parses hex, ignoring spaces; throws std::invalid_argument on a bad digit or odd length.
std::vector<std::byte> unhex(std::string_view s);
std::string hex(std::span<const std::byte> b);

template <std::size_t N>
std::array<std::byte, N> unhex_array(std::string_view s) {
    auto v = unhex(s);
    if (v.size() != N) throw std::invalid_argument("unhex_array: wrong length");
    std::array<std::byte, N> a{};
    std::copy(v.begin(), v.end(), a.begin());
    return a;
}

inline std::vector<std::byte> bytes_of(std::string_view s) {
    auto p = reinterpret_cast<const std::byte*>(s.data());
    return {p, p + s.size()};
}

} // namespace test
