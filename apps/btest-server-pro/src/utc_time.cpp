#include "btest/pro/utc_time.hpp"

#include <charconv>
#include <cstdio>

namespace btest::pro {

using namespace std::chrono;

sys_ms utc_now() { return time_point_cast<milliseconds>(system_clock::now()); }

std::string format_utc(sys_ms t) {
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{t - day};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
    return buf;
}

namespace {

/// Reads exactly `n` digits at s[pos].
bool digits(std::string_view s, std::size_t& pos, std::size_t n, int& out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[pos + i];
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    pos += n;
    out = v;
    return true;
}

std::optional<sys_ms> fail(std::string* why, std::string_view text, const char* reason) {
    if (why) *why = "invalid time '" + std::string(text) + "': " + reason;
    return std::nullopt;
}

constexpr const char* iso_help = "expected ISO 8601 like 2024-05-01, 2024-05-01T12:00:00Z or 2024-05-01T14:00:00+02:00";

} // namespace

std::optional<sys_ms> parse_utc(std::string_view s, std::string* why) {
    std::size_t p = 0;
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, sec = 0, ms = 0;
    if (!digits(s, p, 4, y) || p >= s.size() || s[p++] != '-' || !digits(s, p, 2, mo) || p >= s.size() ||
        s[p++] != '-' || !digits(s, p, 2, d))
        return fail(why, s, iso_help);
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) return fail(why, s, "no such date");
    if (y < 1970) return fail(why, s, "years before 1970 are not supported");
    if (p < s.size() && (s[p] == 'T' || s[p] == 't' || s[p] == ' ')) {
        ++p;
        if (!digits(s, p, 2, h) || p >= s.size() || s[p++] != ':' || !digits(s, p, 2, mi)) return fail(why, s, iso_help);
        if (p < s.size() && s[p] == ':') {
            ++p;
            if (!digits(s, p, 2, sec)) return fail(why, s, iso_help);
            if (p < s.size() && (s[p] == '.' || s[p] == ',')) {
                ++p;
                // Milliseconds from the first three fraction digits; further digits are read
                // and dropped (time is kept in ms).
                int scale = 100;
                const std::size_t start = p;
                while (p < s.size() && s[p] >= '0' && s[p] <= '9') {
                    ms += (s[p] - '0') * scale;
                    scale /= 10;
                    ++p;
                }
                if (p == start) return fail(why, s, iso_help);
            }
        }
        if (h > 23 || mi > 59 || sec > 59) return fail(why, s, "no such time of day");
    }
    minutes offset{0};
    if (p < s.size()) {
        if (s[p] == 'Z' || s[p] == 'z') {
            ++p;
        } else if (s[p] == '+' || s[p] == '-') {
            const int sign = s[p++] == '-' ? -1 : 1;
            int oh = 0, om = 0;
            if (!digits(s, p, 2, oh)) return fail(why, s, iso_help);
            if (p < s.size() && s[p] == ':') ++p;
            if (!digits(s, p, 2, om) || oh > 23 || om > 59) return fail(why, s, "bad UTC offset");
            offset = minutes{sign * (oh * 60 + om)};
        }
    }
    if (p != s.size()) return fail(why, s, iso_help);
    return sys_ms{sys_days{ymd}} + hours{h} + minutes{mi} + seconds{sec} + milliseconds{ms} - offset;
}

std::optional<sys_ms> parse_since(std::string_view s, sys_ms now, std::string* why) {
    if (!s.empty() && s.size() >= 2) {
        const char unit = s.back();
        std::int64_t mult = 0;
        switch (unit) {
        case 's': mult = 1; break;
        case 'm': mult = 60; break;
        case 'h': mult = 3600; break;
        case 'd': mult = 86400; break;
        case 'w': mult = 7 * 86400; break;
        default: break;
        }
        if (mult != 0) {
            const std::string_view num = s.substr(0, s.size() - 1);
            std::int64_t n = 0;
            const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
            if (ec == std::errc{} && end == num.data() + num.size() && num.front() != '-') {
                // Bounded so the subtraction cannot overflow: about 290 years.
                if (n > INT64_MAX / 1000 / mult / 1000) return fail(why, s, "too far back");
                return now - milliseconds{n * mult * 1000};
            }
        }
    }
    std::string iso_why;
    if (auto t = parse_utc(s, &iso_why)) return t;
    if (s.size() > 4 && s[4] == '-') {  // it looks like a date: say what is wrong with it
        if (why) *why = iso_why;
        return std::nullopt;
    }
    return fail(why, s, "expected a duration before now (90s, 30m, 24h, 7d, 2w) or ISO 8601 like 2024-05-01T12:00:00Z");
}

} // namespace btest::pro
