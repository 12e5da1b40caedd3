#include "btest/pro/byte_size.hpp"

#include <array>
#include <cstdio>

namespace btest::pro {

namespace {

bool fail(std::string* why, std::string_view text, const char* reason) {
    if (why) *why = "invalid byte size '" + std::string(text) + "': " + reason;
    return false;
}

constexpr std::array<std::uint64_t, 5> powers{1, 1'000, 1'000'000, 1'000'000'000, 1'000'000'000'000};
constexpr std::array<char, 5> suffixes{'\0', 'K', 'M', 'G', 'T'};

} // namespace

std::optional<std::uint64_t> parse_byte_size(std::string_view text, std::string* why) {
    std::string_view s = text;
    if (s.empty()) return fail(why, text, "empty"), std::nullopt;
    if (s.front() == '-') return fail(why, text, "must not be negative"), std::nullopt;
    if (s.back() == 'B' || s.back() == 'b') s.remove_suffix(1);
    std::uint64_t mult = 1;
    if (!s.empty()) {
        const char c = static_cast<char>(s.back() & ~0x20);  // upper case for letters
        for (std::size_t i = 1; i < suffixes.size(); ++i)
            if (c == suffixes[i]) {
                mult = powers[i];
                s.remove_suffix(1);
                break;
            }
    }
    std::size_t i = 0;
    std::uint64_t whole = 0;
    bool digits = false;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        const auto d = static_cast<std::uint64_t>(s[i] - '0');
        if (whole > (UINT64_MAX - d) / 10) return fail(why, text, "too large"), std::nullopt;
        whole = whole * 10 + d;
        digits = true;
    }
    // The fraction, as an exact decimal: frac / 10^frac_digits.
    std::uint64_t frac = 0, frac_scale = 1;
    if (i < s.size() && s[i] == '.') {
        for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
            if (frac_scale >= 1'000'000'000'000'000ULL) return fail(why, text, "too many decimals"), std::nullopt;
            frac = frac * 10 + static_cast<std::uint64_t>(s[i] - '0');
            frac_scale *= 10;
            digits = true;
        }
    }
    if (!digits) return fail(why, text, "expected a number with an optional K/M/G/T suffix"), std::nullopt;
    if (i != s.size()) return fail(why, text, "expected a number with an optional K/M/G/T suffix"), std::nullopt;
    if (whole > UINT64_MAX / mult) return fail(why, text, "too large"), std::nullopt;
    std::uint64_t value = whole * mult;
    if (frac != 0) {
        // frac·mult/frac_scale must be whole: frac < frac_scale ≤ 10^18 and mult ≤ 10^12, so
        // divide by the common power of ten first to stay in range.
        std::uint64_t m = mult, scale = frac_scale;
        while (scale > 1 && m % 10 == 0) {
            m /= 10;
            scale /= 10;
        }
        if (frac % scale != 0) return fail(why, text, "not a whole number of bytes"), std::nullopt;
        const std::uint64_t part = (frac / scale) * m;
        if (value > UINT64_MAX - part) return fail(why, text, "too large"), std::nullopt;
        value += part;
    }
    return value;
}

std::string format_byte_size(std::uint64_t n) {
    for (std::size_t i = powers.size() - 1; i > 0; --i)
        if (n != 0 && n % powers[i] == 0) return std::to_string(n / powers[i]) + suffixes[i];
    return std::to_string(n);
}

std::string format_byte_size_human(std::uint64_t n) {
    static constexpr std::array<const char*, 7> units{"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    if (n < 1000) return std::to_string(n) + " B";
    double v = static_cast<double>(n);
    std::size_t u = 0;
    while (v >= 999.5 && u + 1 < units.size()) {
        v /= 1000;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, v < 9.995 ? "%.2f %s" : v < 99.95 ? "%.1f %s" : "%.0f %s", v, units[u]);
    return buf;
}

} // namespace btest::pro
