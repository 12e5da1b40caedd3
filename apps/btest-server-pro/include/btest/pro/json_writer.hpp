// A minimal JSON writer for the CLI's `--json` lines (and the HTTP API later). Strings are
// escaped completely: quotes, backslashes and control characters, and bytes that are not valid
// UTF-8 become U+FFFD, so an attacker-chosen string can never break the document.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace btest::pro {

/// Appends `s` to `out` as a JSON string literal, quotes included.
void json_quote(std::string& out, std::string_view s);

/// Builds one JSON value. Commas and nesting are tracked; keys are only valid inside objects
/// (precondition, asserted). Typical use:
///   json_writer j; j.begin_object().key("id").number(7).key("user").string(u).end_object();
class json_writer {
public:
    json_writer& begin_object();
    json_writer& end_object();
    json_writer& begin_array();
    json_writer& end_array();
    json_writer& key(std::string_view k);
    json_writer& string(std::string_view v);
    json_writer& number(std::uint64_t v);
    json_writer& number(std::int64_t v);
    json_writer& number(double v);  ///< non-finite values are written as null
    json_writer& boolean(bool v);
    json_writer& null();
    /// A number, or null when empty.
    json_writer& optional(const std::optional<std::uint64_t>& v) { return v ? number(*v) : null(); }

    /// key(k) then the value: shorthands for flat objects.
    template <class T>
    json_writer& field(std::string_view k, const T& v) {
        key(k);
        return value(v);
    }

    const std::string& str() const noexcept { return out_; }

private:
    json_writer& value(std::string_view v) { return string(v); }
    json_writer& value(const std::string& v) { return string(v); }
    json_writer& value(const char* v) { return string(v); }
    json_writer& value(std::uint64_t v) { return number(v); }
    json_writer& value(std::uint32_t v) { return number(std::uint64_t{v}); }
    json_writer& value(std::uint16_t v) { return number(std::uint64_t{v}); }
    json_writer& value(std::int64_t v) { return number(v); }
    json_writer& value(double v) { return number(v); }
    json_writer& value(bool v) { return boolean(v); }
    json_writer& value(const std::optional<std::uint64_t>& v) { return optional(v); }
    void comma();

    std::string out_;
    std::vector<bool> first_;   ///< per open container: nothing written in it yet
    bool after_key_ = false;
};

} // namespace btest::pro
