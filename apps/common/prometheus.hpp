// The Prometheus text exposition format (version 0.0.4), written by hand: HELP and TYPE lines,
// label escaping, counters, gauges and histograms. Shared by the apps that serve metrics
// (`btest probe`, the multi-user server's /metrics); nothing here touches a socket.
//
// The writer is strict on what the program controls (metric and label names, a family written
// twice, a series written twice, a sample outside its family: std::invalid_argument, a bug) and
// forgiving on what users control (label values and help text are escaped, and invalid UTF-8 in
// them becomes U+FFFD, since Prometheus rejects a whole scrape over one bad byte).
#pragma once

#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace btest_app::prom {

/// The exposition format's content type.
inline constexpr const char* content_type = "text/plain; version=0.0.4; charset=utf-8";

enum class metric_type : std::uint8_t { counter, gauge, histogram, untyped };

struct label {
    std::string_view name;
    std::string_view value;
};

/// [a-zA-Z_:][a-zA-Z0-9_:]*
bool valid_metric_name(std::string_view name) noexcept;
/// [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" (reserved for Prometheus itself)
bool valid_label_name(std::string_view name) noexcept;
/// Replaces every invalid UTF-8 sequence by U+FFFD.
std::string sanitize_utf8(std::string_view s);
/// A label value between the quotes: `\` → `\\`, `"` → `\"`, newline → `\n`; valid UTF-8.
std::string escape_label_value(std::string_view v);
/// HELP text: `\` → `\\`, newline → `\n`; valid UTF-8.
std::string escape_help(std::string_view v);
/// Shortest text that reads back as the same double; NaN, +Inf, -Inf as Prometheus spells them.
std::string format_value(double v);

/// A histogram as written: cumulative counts per upper bound, +Inf last (== count).
struct histogram_snapshot {
    std::vector<double> upper_bounds;        ///< finite, increasing
    std::vector<std::uint64_t> cumulative;   ///< one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
};

/// A histogram that threads observe into (relaxed atomics; no lock on the recording path).
class histogram {
public:
    /// `upper_bounds`: finite and strictly increasing (std::invalid_argument otherwise).
    explicit histogram(std::vector<double> upper_bounds);
    void observe(double v) noexcept;
    /// _count equals the +Inf bucket even while other threads observe.
    histogram_snapshot snapshot() const;

private:
    std::vector<double> bounds_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;   // per bucket (not cumulative), +Inf last
    std::atomic<double> sum_{0};
};

/// Builds one exposition: families in the order written, each with its HELP and TYPE.
class text_writer {
public:
    /// Starts a family (HELP, TYPE). Every sample until the next family() belongs to it.
    text_writer& family(std::string_view name, metric_type type, std::string_view help);
    /// A sample of the current counter/gauge/untyped family.
    text_writer& sample(std::span<const label> labels, double value);
    text_writer& sample(std::initializer_list<label> labels, double value) {
        return sample(std::span<const label>(labels.begin(), labels.size()), value);
    }
    text_writer& sample(double value) { return sample(std::span<const label>{}, value); }
    /// One series of the current histogram family: _bucket{le=…} lines, _sum, _count.
    text_writer& histogram_sample(std::span<const label> labels, const histogram_snapshot& h);
    text_writer& histogram_sample(const histogram_snapshot& h) { return histogram_sample(std::span<const label>{}, h); }

    /// A family with one unlabelled sample.
    text_writer& single(std::string_view name, metric_type type, std::string_view help, double value) {
        return family(name, type, help).sample(value);
    }

    const std::string& text() const noexcept { return out_; }
    std::string take() { return std::move(out_); }

private:
    void write_series(std::string_view name, std::span<const label> labels, const label* extra, double value);

    std::string out_;
    std::string family_;
    metric_type type_ = metric_type::untyped;
    std::set<std::string> families_;   // every family written so far
    std::set<std::string> series_;     // every series of the current family
};

} // namespace btest_app::prom
