// A small strict JSON reader for tests: spec vectors, and the CLI's JSON-lines output (the tests
// parse what users' scripts would parse). Throws std::runtime_error on malformed input.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace test::json {

struct value;
using object = std::map<std::string, value>;
using array = std::vector<value>;

struct value {
    std::variant<std::nullptr_t, bool, double, std::string, array, object> v;

    bool is_null() const { return v.index() == 0; }
    bool is_bool() const { return v.index() == 1; }
    bool is_number() const { return v.index() == 2; }
    bool is_string() const { return v.index() == 3; }
    bool is_array() const { return v.index() == 4; }
    bool is_object() const { return v.index() == 5; }

    bool boolean() const { return std::get<bool>(v); }
    double number() const { return std::get<double>(v); }
    const std::string& str() const { return std::get<std::string>(v); }
    const array& arr() const { return std::get<array>(v); }
    const object& obj() const { return std::get<object>(v); }
    bool has(const std::string& key) const { return is_object() && obj().count(key) != 0; }
    const value& operator[](const std::string& key) const;
    const value& operator[](std::size_t i) const { return arr().at(i); }
};

value parse(std::string_view text);
value parse_file(const std::string& path);

} // namespace test::json
