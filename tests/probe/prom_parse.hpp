// A strict reader of the Prometheus text exposition format (0.0.4), for tests: it accepts what
// Prometheus accepts from a well-behaved exporter and says which line breaks a rule otherwise.
// Rules checked: line syntax, metric and label names, the only escapes (\\ \" \n), UTF-8,
// values (floats, NaN, ±Inf), HELP/TYPE at most once per family and before its samples, a
// family's samples contiguous and named after it (_bucket/_sum/_count for histograms), no
// series twice, histograms with increasing `le`, non-decreasing counts, +Inf == _count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace prom_parse {

struct sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct family {
    std::string type = "untyped";
    std::optional<std::string> help;
    bool type_seen = false;
    std::vector<sample> samples;
};

struct exposition {
    std::map<std::string, family> families;
    std::string error;   ///< "line N: what", empty when the text is valid

    /// The value of the one sample `name` with exactly these labels; nullopt if absent.
    std::optional<double> value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
        for (const auto& [fname, f] : families)
            for (const auto& s : f.samples)
                if (s.name == name && s.labels == labels) return s.value;
        return std::nullopt;
    }
    bool has(const std::string& family_name) const { return families.count(family_name) > 0; }
};

namespace detail {

inline bool name_ok(std::string_view n, bool colon) {
    if (n.empty()) return false;
    for (std::size_t i = 0; i < n.size(); ++i) {
        const char c = n[i];
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok) return false;
    }
    return true;
}

inline bool utf8_ok(std::string_view s) {
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (n == 0 || i + n > s.size() || (n == 2 && c < 0xc2)) return false;
        std::uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
        for (std::size_t k = 1; k < n; ++k) {
            const auto b = static_cast<unsigned char>(s[i + k]);
            if ((b >> 6) != 2) return false;
            cp = (cp << 6) | (b & 0x3f);
        }
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n;
    }
    return true;
}

inline std::optional<double> parse_value(std::string_view v) {
    if (v == "NaN") return std::nan("");
    if (v == "+Inf" || v == "Inf") return INFINITY;
    if (v == "-Inf") return -INFINITY;
    if (v.empty() || v.find_first_not_of("0123456789.eE+-") != std::string_view::npos) return std::nullopt;
    const std::string s(v);
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (end != s.c_str() + s.size()) return std::nullopt;
    return d;
}

/// The family a sample name belongs to, given the current family and its type.
inline bool belongs(const std::string& sample, const std::string& fam, const std::string& type) {
    if (sample == fam) return type != "histogram" && type != "summary";
    if (type == "histogram")
        return sample == fam + "_bucket" || sample == fam + "_sum" || sample == fam + "_count";
    if (type == "summary") return sample == fam + "_sum" || sample == fam + "_count";
    return false;
}

} // namespace detail

inline exposition parse(std::string_view text) {
    exposition out;
    std::string current;               // family whose samples are being read
    std::set<std::string> closed;      // families whose samples are over
    std::set<std::string> series;
    std::size_t line_no = 0;
    auto fail = [&](const std::string& what) {
        out.error = "line " + std::to_string(line_no) + ": " + what;
        return out;
    };
    if (!text.empty() && text.back() != '\n') {
        line_no = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1;
        return fail("the text must end with a newline");
    }
    if (!detail::utf8_ok(text)) return fail("not valid UTF-8");
    auto enter = [&](const std::string& fam) -> bool {
        if (fam == current) return true;
        if (closed.count(fam)) return false;   // interleaved families
        if (!current.empty()) closed.insert(current);
        current = fam;
        return true;
    };
    while (!text.empty()) {
        ++line_no;
        const auto nl = text.find('\n');
        const std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
        if (line.empty()) continue;
        if (line.front() == '#') {
            if (line.rfind("# HELP ", 0) != 0 && line.rfind("# TYPE ", 0) != 0) continue;   // a comment
            const bool is_help = line[2] == 'H';
            auto rest = line.substr(7);
            const auto sp = rest.find(' ');
            const std::string name(rest.substr(0, sp));
            if (!detail::name_ok(name, true)) return fail("bad metric name in " + std::string(is_help ? "HELP" : "TYPE"));
            if (!enter(name)) return fail("family " + name + " appears twice");
            auto& f = out.families[name];
            const std::string_view arg = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
            if (is_help) {
                if (f.help) return fail("second HELP for " + name);
                std::string h;
                for (std::size_t i = 0; i < arg.size(); ++i) {
                    if (arg[i] != '\\') {
                        h += arg[i];
                        continue;
                    }
                    if (++i == arg.size()) return fail("HELP ends in a lone backslash");
                    if (arg[i] == '\\') h += '\\';
                    else if (arg[i] == 'n') h += '\n';
                    else return fail("bad escape in HELP");
                }
                f.help = h;
            } else {
                static const std::set<std::string> types{"counter", "gauge", "histogram", "summary", "untyped"};
                if (!types.count(std::string(arg))) return fail("bad TYPE '" + std::string(arg) + "'");
                if (!f.samples.empty()) return fail("TYPE after samples of " + name);
                if (f.type_seen) return fail("second TYPE for " + name);
                f.type_seen = true;
                f.type = std::string(arg);
            }
            continue;
        }
        // name{labels} value [timestamp]
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
        sample s;
        s.name = std::string(line.substr(0, i));
        if (!detail::name_ok(s.name, true)) return fail("bad metric name '" + s.name + "'");
        if (i < line.size() && line[i] == '{') {
            ++i;
            for (;;) {
                if (i < line.size() && line[i] == '}') {
                    ++i;
                    break;
                }
                std::size_t j = i;
                while (j < line.size() && line[j] != '=') ++j;
                const std::string lname(line.substr(i, j - i));
                if (!detail::name_ok(lname, false) || lname.rfind("__", 0) == 0) return fail("bad label name '" + lname + "'");
                if (j + 1 >= line.size() || line[j + 1] != '"') return fail("label value must be quoted");
                std::string v;
                std::size_t k = j + 2;
                for (;; ++k) {
                    if (k >= line.size()) return fail("unterminated label value");
                    if (line[k] == '"') break;
                    if (line[k] == '\\') {
                        if (++k >= line.size()) return fail("unterminated escape");
                        if (line[k] == '\\') v += '\\';
                        else if (line[k] == '"') v += '"';
                        else if (line[k] == 'n') v += '\n';
                        else return fail("bad escape in label value");
                    } else {
                        v += line[k];
                    }
                }
                if (!s.labels.emplace(lname, v).second) return fail("label " + lname + " twice");
                i = k + 1;
                if (i < line.size() && line[i] == ',') ++i;
                else if (i >= line.size() || line[i] != '}') return fail("expected ',' or '}' after a label");
            }
        }
        if (i >= line.size() || line[i] != ' ') return fail("expected a space before the value");
        auto rest = line.substr(i + 1);
        const auto sp = rest.find(' ');
        const auto value = detail::parse_value(rest.substr(0, sp));
        if (!value) return fail("bad value '" + std::string(rest.substr(0, sp)) + "'");
        if (sp != std::string_view::npos) {
            const auto ts = rest.substr(sp + 1);
            if (ts.empty() || ts.find_first_not_of("-0123456789") != std::string_view::npos) return fail("bad timestamp");
        }
        s.value = *value;
        // Which family? The current one if the name fits it, else the sample's own (untyped).
        std::string fam = s.name;
        if (!current.empty() && detail::belongs(s.name, current, out.families[current].type)) fam = current;
        else if (out.families.count(s.name) && out.families[s.name].type != "untyped" && s.name != current)
            return fail(s.name + " outside its family's block");
        if (!enter(fam)) return fail("samples of " + fam + " are not contiguous");
        auto& f = out.families[fam];
        if (!detail::belongs(s.name, fam, f.type)) return fail(s.name + " does not belong to " + f.type + " " + fam);
        if (f.type == "histogram" && s.name == fam + "_bucket" && !s.labels.count("le")) return fail("bucket without le");
        std::string key = s.name;
        for (const auto& [k, v] : s.labels) key += "\x01" + k + "=" + v;
        if (!series.insert(key).second) return fail("series written twice: " + s.name);
        f.samples.push_back(std::move(s));
    }
    // Histograms: per series (labels without le), increasing le, cumulative counts, +Inf == _count.
    for (const auto& [name, f] : out.families) {
        if (f.type != "histogram") continue;
        std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
        std::map<std::map<std::string, std::string>, double> counts;
        for (const auto& s : f.samples) {
            auto labels = s.labels;
            if (s.name == name + "_bucket") {
                const auto le = detail::parse_value(labels["le"]);
                if (!le) return line_no = 0, fail("histogram " + name + ": bad le");
                labels.erase("le");
                buckets[labels].emplace_back(*le, s.value);
            } else if (s.name == name + "_count") {
                counts[labels] = s.value;
            }
        }
        for (const auto& [labels, b] : buckets) {
            for (std::size_t k = 1; k < b.size(); ++k)
                if (!(b[k].first > b[k - 1].first) || b[k].second < b[k - 1].second)
                    return line_no = 0, fail("histogram " + name + ": le not increasing or counts decreasing");
            if (b.empty() || !std::isinf(b.back().first)) return line_no = 0, fail("histogram " + name + ": no +Inf bucket");
            if (!counts.count(labels) || counts[labels] != b.back().second)
                return line_no = 0, fail("histogram " + name + ": _count differs from the +Inf bucket");
        }
    }
    return out;
}

} // namespace prom_parse
