#include "btest/pro/json_writer.hpp"

#include <cassert>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "btest/pro/user_name.hpp"

namespace btest::pro {

void json_quote(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            // Copy a whole well-formed UTF-8 sequence, or replace one bad byte.
            std::size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
            if (n != 0 && i + n <= s.size() && valid_utf8(s.substr(i, n))) {
                out.append(s.substr(i, n));
                i += n;
            } else {
                out += "\\ufffd";
                ++i;
            }
            continue;
        }
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xf];
            } else {
                out += static_cast<char>(c);
            }
        }
        ++i;
    }
    out += '"';
}

void json_writer::comma() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!first_.empty()) {
        if (!first_.back()) out_ += ',';
        first_.back() = false;
    }
}

json_writer& json_writer::begin_object() {
    comma();
    out_ += '{';
    first_.push_back(true);
    return *this;
}
json_writer& json_writer::end_object() {
    assert(!first_.empty());
    first_.pop_back();
    out_ += '}';
    return *this;
}
json_writer& json_writer::begin_array() {
    comma();
    out_ += '[';
    first_.push_back(true);
    return *this;
}
json_writer& json_writer::end_array() {
    assert(!first_.empty());
    first_.pop_back();
    out_ += ']';
    return *this;
}
json_writer& json_writer::key(std::string_view k) {
    comma();
    json_quote(out_, k);
    out_ += ':';
    after_key_ = true;
    return *this;
}
json_writer& json_writer::string(std::string_view v) {
    comma();
    json_quote(out_, v);
    return *this;
}
json_writer& json_writer::number(std::uint64_t v) {
    comma();
    out_ += std::to_string(v);
    return *this;
}
json_writer& json_writer::number(std::int64_t v) {
    comma();
    out_ += std::to_string(v);
    return *this;
}
json_writer& json_writer::number(double v) {
    comma();
    if (!std::isfinite(v)) {
        out_ += "null";
        return *this;
    }
    // The shortest text that reads back as the same double: 2.049, not 2.0489999999999999.
    char buf[40];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
    return *this;
}
json_writer& json_writer::boolean(bool v) {
    comma();
    out_ += v ? "true" : "false";
    return *this;
}
json_writer& json_writer::null() {
    comma();
    out_ += "null";
    return *this;
}

} // namespace btest::pro
