// --help text and the man page's OPTIONS section, both rendered from an app's CLI11
// declarations: groups in the order they were declared, each option with its names, value name,
// range (from its integer_in validator) and description. Options in the empty group are hidden
// from both (e.g. --help-man itself).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace btest_cli {

namespace doc_detail {

struct option_doc {
    std::vector<std::string> names;  ///< "-c", "--client" (shorts first)
    std::string value;               ///< "HOST", "[ADDR]" or empty for a flag
    std::string text;                ///< description, with the range appended
};

inline option_doc describe(const CLI::Option& o) {
    option_doc d;
    for (const auto& s : o.get_snames()) d.names.push_back("-" + s);
    for (const auto& l : o.get_lnames()) d.names.push_back("--" + l);
    // get_type_name() is "NAME", or "NAME:lo..hi" with an integer_in() validator; empty for flags.
    d.value = o.get_type_name();
    std::string range;
    if (const auto colon = d.value.rfind(':'); colon != std::string::npos) {
        const std::string tail = d.value.substr(colon + 1);
        if (tail.find("..") != std::string::npos && tail.find_first_not_of("0123456789.") == std::string::npos) {
            range = tail;
            d.value.resize(colon);
        }
    }
    if (!d.value.empty() && o.get_expected_min() == 0) d.value = "[" + d.value + "]";
    d.text = o.get_description();
    if (!range.empty()) d.text += "; range " + range;
    return d;
}

/// Groups (named, in declaration order) and their options.
inline std::vector<std::pair<std::string, std::vector<const CLI::Option*>>> groups(const CLI::App& app) {
    std::vector<std::pair<std::string, std::vector<const CLI::Option*>>> out;
    for (const CLI::Option* o : app.get_options()) {
        const auto& g = o->get_group();
        if (g.empty()) continue;
        auto it = std::find_if(out.begin(), out.end(), [&](const auto& p) { return p.first == g; });
        if (it == out.end()) it = out.insert(out.end(), {g, {}});
        it->second.push_back(o);
    }
    return out;
}

/// `text` wrapped at `width` columns; lines after the first start with `indent` spaces, the first
/// continues at column `first_col`.
inline std::string wrap(std::string_view text, std::size_t first_col, std::size_t indent, std::size_t width) {
    std::string out;
    std::size_t col = first_col;
    bool line_start = true;
    while (!text.empty()) {
        const auto sp = text.find(' ');
        const std::string_view word = text.substr(0, sp);
        text = sp == std::string_view::npos ? std::string_view{} : text.substr(sp + 1);
        if (word.empty()) continue;
        if (!line_start && col + 1 + word.size() > width) {
            out += "\n" + std::string(indent, ' ');
            col = indent;
            line_start = true;
        }
        if (!line_start) {
            out += ' ';
            ++col;
        }
        out += word;
        col += word.size();
        line_start = false;
    }
    return out;
}

/// Roff text: backslashes and hyphens escaped, no line starting with a control character.
inline std::string roff(std::string_view s) {
    std::string out;
    for (const char c : s) {
        if (c == '\\') out += "\\e";
        else if (c == '-') out += "\\-";
        else out += c;
    }
    if (!out.empty() && (out.front() == '.' || out.front() == '\'')) out.insert(0, "\\&");
    return out;
}

} // namespace doc_detail

/// --help: the app's description (its usage lines), each group with its options, the footer.
class help_formatter final : public CLI::FormatterBase {
public:
    std::string make_help(const CLI::App* app, std::string, CLI::AppFormatMode) const override {
        constexpr std::size_t col = 27, width = 100;
        std::string out = app->get_description();
        for (const auto& [group, opts] : doc_detail::groups(*app)) {
            out += "\n" + group + "\n";
            for (const CLI::Option* o : opts) {
                const auto d = doc_detail::describe(*o);
                // Long-only options line up under the long names of the others.
                std::string head = d.names.front().size() == 2 ? "  " : "      ";
                for (std::size_t i = 0; i < d.names.size(); ++i) head += (i ? ", " : "") + d.names[i];
                if (!d.value.empty()) head += " " + d.value;
                if (head.size() + 1 < col) head.resize(col, ' ');
                else head += "  ";
                out += head + doc_detail::wrap(d.text, head.size(), col, width) + "\n";
            }
        }
        const auto footer = app->get_footer();
        if (!footer.empty()) out += "\n" + footer;
        return out;
    }
};

/// The OPTIONS section of a man page in roff: one .SS per group, one .TP per option.
inline std::string man_options(const CLI::App& app) {
    std::string out;
    for (const auto& [group, opts] : doc_detail::groups(app)) {
        out += fmt::format(".SS \"{}\"\n", group);
        for (const CLI::Option* o : opts) {
            const auto d = doc_detail::describe(*o);
            std::string head;
            for (std::size_t i = 0; i < d.names.size(); ++i)
                head += fmt::format("{}\\fB{}\\fR", i ? ", " : "", doc_detail::roff(d.names[i]));
            if (!d.value.empty()) head += fmt::format(" \\fI{}\\fR", doc_detail::roff(d.value));
            out += ".TP\n" + head + "\n" + doc_detail::roff(d.text) + "\n";
        }
    }
    return out;
}

} // namespace btest_cli
