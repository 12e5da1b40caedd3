// Values of the btest command lines: rates, seconds, intervals, authentication methods, and the
// CLI11 validator for integer ranges. Shared by every app that accepts btest's flags.
#pragma once

#include <cctype>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "btest/session/config.hpp"

namespace btest_cli {

/// A bad command line: printed as "btest: <what>" with exit status 1.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// "100M", "1.5G", "500k", "64000": bits per second with decimal K/M/G/T suffixes; an optional
/// trailing "bps"/"bit"/"b"/"/s" is accepted.
inline std::uint64_t parse_rate(std::string_view s, std::string_view flag) {
    std::string t(s);
    auto strip = [&](std::string_view suffix) {
        if (t.size() > suffix.size()) {
            std::string tail = t.substr(t.size() - suffix.size());
            for (auto& c : tail) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (tail == suffix) {
                t.resize(t.size() - suffix.size());
                return true;
            }
        }
        return false;
    };
    strip("/s");
    if (!strip("bps") && !strip("bit")) strip("b");
    double mult = 1;
    if (!t.empty()) {
        switch (std::tolower(static_cast<unsigned char>(t.back()))) {
        case 'k': mult = 1e3; break;
        case 'm': mult = 1e6; break;
        case 'g': mult = 1e9; break;
        case 't': mult = 1e12; break;
        default: break;
        }
        if (mult != 1) t.pop_back();
    }
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(t, &used);
    } catch (const std::logic_error&) {  // invalid_argument, out_of_range
        used = 0;
    }
    if (t.empty() || used != t.size() || !(v >= 0) || v * mult > 1.8e19)
        throw usage_error(fmt::format("invalid rate for {}: '{}' (e.g. 100M, 1.5G, 500k)", flag, s));
    return static_cast<std::uint64_t>(v * mult + 0.5);
}

inline double parse_number(std::string_view s, std::string_view flag) {
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(std::string(s), &used);
    } catch (const std::logic_error&) {
        used = 0;
    }
    if (s.empty() || used != s.size()) throw usage_error(fmt::format("invalid number for {}: '{}'", flag, s));
    return v;
}

/// "0.5", "500ms", "2s" → milliseconds.
inline std::chrono::milliseconds parse_interval(std::string_view s, std::string_view flag) {
    std::string t(s);
    double scale = 1000;
    if (t.size() > 2 && t.substr(t.size() - 2) == "ms") {
        scale = 1;
        t.resize(t.size() - 2);
    } else if (t.size() > 1 && t.back() == 's') {
        t.pop_back();
    }
    const double v = parse_number(t, flag) * scale;
    return std::chrono::milliseconds(static_cast<long long>(v + 0.5));
}

/// "2", "0.5": seconds, > 0 and at most a day → milliseconds.
inline std::chrono::milliseconds parse_seconds(std::string_view s, std::string_view flag) {
    const double v = parse_number(s, flag);
    if (!(v >= 0.001) || v > 86400) throw usage_error(fmt::format("{} must be between 0.001 and 86400 seconds", flag));
    return std::chrono::milliseconds(static_cast<long long>(v * 1000 + 0.5));
}

inline btest::auth_method parse_auth(std::string_view s) {
    if (s == "none") return btest::auth_method::none;
    if (s == "md5") return btest::auth_method::md5;
    if (s == "ecsrp5" || s == "ec-srp5") return btest::auth_method::ec_srp5;
    throw usage_error(fmt::format("--auth must be none, md5 or ecsrp5, not '{}'", s));
}

/// An integer in lo..hi. Its description ("lo..hi") is what --help and the man page show as
/// the option's range, so the range is declared once, here.
inline CLI::Validator integer_in(std::uint64_t lo, std::uint64_t hi) {
    return CLI::Validator(
        [lo, hi](std::string& s) -> std::string {
            std::size_t used = 0;
            unsigned long long v = 0;
            try {
                v = std::stoull(s, &used, 10);
            } catch (const std::logic_error&) {
                used = 0;
            }
            if (s.empty() || s.front() == '-' || used != s.size() || v < lo || v > hi)
                return fmt::format("must be an integer in {}..{}", lo, hi);
            return {};
        },
        fmt::format("{}..{}", lo, hi), "range");
}

} // namespace btest_cli
