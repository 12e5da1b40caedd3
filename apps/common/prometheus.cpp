#include "common/prometheus.hpp"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace btest_app::prom {

namespace {

bool name_char(char c, bool first, bool colon) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
    return alpha || (!first && c >= '0' && c <= '9');
}

const char* type_name(metric_type t) {
    switch (t) {
    case metric_type::counter: return "counter";
    case metric_type::gauge: return "gauge";
    case metric_type::histogram: return "histogram";
    case metric_type::untyped: return "untyped";
    }
    return "untyped";
}

/// Length of the valid UTF-8 sequence at s[i], or 0 (RFC 3629: no overlongs, no surrogates,
/// nothing above U+10FFFF).
std::size_t utf8_sequence(std::string_view s, std::size_t i) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    const unsigned char c = b(i);
    if (c < 0x80) return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf;   // bounds of the second byte
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
    } else
        return 0;
    if (i + n > s.size()) return 0;
    if (b(i + 1) < lo || b(i + 1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
        if (b(i + k) < 0x80 || b(i + k) > 0xbf) return 0;
    return n;
}

template <class Escape>
std::string escaped(std::string_view v, Escape esc) {
    std::string out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size();) {
        const auto n = utf8_sequence(v, i);
        if (n == 0) {
            out += "\xef\xbf\xbd";   // U+FFFD
            ++i;
        } else if (n == 1) {
            esc(out, v[i]);
            ++i;
        } else {
            out.append(v.substr(i, n));
            i += n;
        }
    }
    return out;
}

} // namespace

bool valid_metric_name(std::string_view name) noexcept {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, true)) return false;
    return true;
}

bool valid_label_name(std::string_view name) noexcept {
    if (name.empty() || name.starts_with("__")) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, false)) return false;
    return true;
}

std::string sanitize_utf8(std::string_view s) {
    return escaped(s, [](std::string& out, char c) { out += c; });
}

std::string escape_label_value(std::string_view v) {
    return escaped(v, [](std::string& out, char c) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    });
}

std::string escape_help(std::string_view v) {
    return escaped(v, [](std::string& out, char c) {
        if (c == '\\') out += "\\\\";
        else if (c == '\n') out += "\\n";
        else out += c;
    });
}

std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

// ---- histogram ----------------------------------------------------------------------------

histogram::histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
    for (std::size_t i = 0; i < bounds_.size(); ++i)
        if (!std::isfinite(bounds_[i]) || (i > 0 && !(bounds_[i] > bounds_[i - 1])))
            throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    buckets_ = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
    for (std::size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double v) noexcept {
    std::size_t i = 0;
    while (i < bounds_.size() && !(v <= bounds_[i])) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(v, std::memory_order_relaxed);
}

histogram_snapshot histogram::snapshot() const {
    histogram_snapshot s;
    s.upper_bounds = bounds_;
    std::uint64_t running = 0;
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
        running += buckets_[i].load(std::memory_order_relaxed);
        s.cumulative.push_back(running);
    }
    s.count = running;
    s.sum = sum_.load(std::memory_order_relaxed);
    return s;
}

// ---- writer -------------------------------------------------------------------------------

text_writer& text_writer::family(std::string_view name, metric_type type, std::string_view help) {
    if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name: " + std::string(name));
    if (!families_.insert(std::string(name)).second)
        throw std::invalid_argument("metric family written twice: " + std::string(name));
    family_ = name;
    type_ = type;
    series_.clear();
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += escape_help(help);
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type_name(type);
    out_ += '\n';
    return *this;
}

void text_writer::write_series(std::string_view name, std::span<const label> labels, const label* extra, double value) {
    std::string line(name);
    std::set<std::string_view> seen;
    auto add = [&](const label& l, bool first) {
        if (!valid_label_name(l.name)) throw std::invalid_argument("invalid label name: " + std::string(l.name));
        if (!seen.insert(l.name).second) throw std::invalid_argument("label given twice: " + std::string(l.name));
        line += first ? '{' : ',';
        line += l.name;
        line += "=\"";
        line += escape_label_value(l.value);
        line += '"';
    };
    for (std::size_t i = 0; i < labels.size(); ++i) add(labels[i], i == 0);
    if (extra) add(*extra, labels.empty());
    if (!labels.empty() || extra) line += '}';
    if (!series_.insert(line).second) throw std::invalid_argument("series written twice: " + line);
    out_ += line;
    out_ += ' ';
    out_ += format_value(value);
    out_ += '\n';
}

text_writer& text_writer::sample(std::span<const label> labels, double value) {
    if (family_.empty()) throw std::invalid_argument("sample before any family");
    if (type_ == metric_type::histogram) throw std::invalid_argument("histogram family takes histogram_sample(): " + family_);
    write_series(family_, labels, nullptr, value);
    return *this;
}

text_writer& text_writer::histogram_sample(std::span<const label> labels, const histogram_snapshot& h) {
    if (type_ != metric_type::histogram) throw std::invalid_argument("not a histogram family: " + family_);
    if (h.cumulative.size() != h.upper_bounds.size() + 1) throw std::invalid_argument("histogram snapshot malformed");
    for (const auto& l : labels)
        if (l.name == "le") throw std::invalid_argument("a histogram's own label 'le' given: " + family_);
    const std::string bucket = family_ + "_bucket";
    for (std::size_t i = 0; i <= h.upper_bounds.size(); ++i) {
        const std::string le = i < h.upper_bounds.size() ? format_value(h.upper_bounds[i]) : "+Inf";
        const label l{"le", le};
        write_series(bucket, labels, &l, static_cast<double>(h.cumulative[i]));
    }
    write_series(family_ + "_sum", labels, nullptr, h.sum);
    write_series(family_ + "_count", labels, nullptr, static_cast<double>(h.count));
    return *this;
}

} // namespace btest_app::prom
