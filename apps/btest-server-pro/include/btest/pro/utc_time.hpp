// Wall-clock time for history, quota windows and the CLI: UTC, millisecond resolution. (The kit
// only knows steady time; the server-pro layer is where calendar time belongs.)
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace btest::pro {

using sys_ms = std::chrono::sys_time<std::chrono::milliseconds>;

/// system_clock::now() truncated to milliseconds.
sys_ms utc_now();

/// Milliseconds since the Unix epoch, as stored in the database, and back.
inline std::int64_t to_unix_ms(sys_ms t) noexcept { return t.time_since_epoch().count(); }
inline sys_ms from_unix_ms(std::int64_t ms) noexcept { return sys_ms{std::chrono::milliseconds{ms}}; }

/// ISO 8601 in UTC with milliseconds: "2024-05-01T12:34:56.789Z".
std::string format_utc(sys_ms t);

/// An ISO 8601 time: "2024-05-01", "2024-05-01T12:34", "2024-05-01T12:34:56",
/// "2024-05-01T12:34:56.789", each optionally followed by "Z" or an offset "+02:00"/"-0500"
/// (without one it is UTC); a space may replace the "T". nullopt (with `*why`) otherwise,
/// including impossible dates (2023-02-29) and years outside 1970–9999.
std::optional<sys_ms> parse_utc(std::string_view text, std::string* why = nullptr);

/// A point in time as `--since` takes it: an ISO 8601 time (parse_utc), or a duration before
/// `now`: a whole number followed by s, m, h, d or w ("90s", "30m", "24h", "7d", "2w").
std::optional<sys_ms> parse_since(std::string_view text, sys_ms now, std::string* why = nullptr);

} // namespace btest::pro
