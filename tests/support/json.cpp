#include "test/json.hpp"

#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace test::json {

const value& value::operator[](const std::string& key) const {
    auto& o = obj();
    auto it = o.find(key);
    if (it == o.end()) throw std::runtime_error("json: no key " + key);
    return it->second;
}

namespace {
struct parser {
    std::string_view s;
    std::size_t i = 0;

    [[noreturn]] void fail(const char* what) {
        throw std::runtime_error(std::string("json: ") + what + " at " + std::to_string(i));
    }
    void ws() { while (i < s.size() && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) ++i; }
    char peek() { ws(); if (i >= s.size()) fail("unexpected end"); return s[i]; }
    void expect(char c) { if (peek() != c) fail("unexpected character"); ++i; }
    bool lit(std::string_view w) {
        if (s.substr(i, w.size()) == w) { i += w.size(); return true; }
        return false;
    }

    value parse_value() {
        char c = peek();
        if (c == '{') return parse_object();
        if (c == '[') return parse_array();
        if (c == '"') return value{parse_string()};
        if (lit("true")) return value{true};
        if (lit("false")) return value{false};
        if (lit("null")) return value{nullptr};
        return value{parse_number()};
    }
    value parse_object() {
        expect('{');
        object o;
        if (peek() == '}') { ++i; return value{o}; }
        for (;;) {
            if (peek() != '"') fail("expected key");
            auto k = parse_string();
            expect(':');
            o.emplace(std::move(k), parse_value());
            if (peek() == ',') { ++i; continue; }
            expect('}');
            return value{o};
        }
    }
    value parse_array() {
        expect('[');
        array a;
        if (peek() == ']') { ++i; return value{a}; }
        for (;;) {
            a.push_back(parse_value());
            if (peek() == ',') { ++i; continue; }
            expect(']');
            return value{a};
        }
    }
    static void put_utf8(std::string& out, unsigned cp) {
        if (cp < 0x80) out += char(cp);
        else if (cp < 0x800) { out += char(0xc0 | cp >> 6); out += char(0x80 | (cp & 0x3f)); }
        else if (cp < 0x10000) { out += char(0xe0 | cp >> 12); out += char(0x80 | ((cp >> 6) & 0x3f)); out += char(0x80 | (cp & 0x3f)); }
        else { out += char(0xf0 | cp >> 18); out += char(0x80 | ((cp >> 12) & 0x3f)); out += char(0x80 | ((cp >> 6) & 0x3f)); out += char(0x80 | (cp & 0x3f)); }
    }
    unsigned hex4() {
        if (i + 4 > s.size()) fail("short \\u escape");
        unsigned v = 0;
        for (int k = 0; k < 4; ++k) {
            char c = s[i++];
            v <<= 4;
            if (c >= '0' && c <= '9') v |= unsigned(c - '0');
            else if (c >= 'a' && c <= 'f') v |= unsigned(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') v |= unsigned(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return v;
    }
    std::string parse_string() {
        expect('"');
        std::string out;
        for (;;) {
            if (i >= s.size()) fail("unterminated string");
            char c = s[i++];
            if (c == '"') return out;
            if (static_cast<unsigned char>(c) < 0x20) fail("control character in string");
            if (c != '\\') { out += c; continue; }
            if (i >= s.size()) fail("unterminated escape");
            char e = s[i++];
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                unsigned cp = hex4();
                if (cp >= 0xd800 && cp < 0xdc00) {
                    if (!lit("\\u")) fail("lone surrogate");
                    unsigned lo = hex4();
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                put_utf8(out, cp);
                break;
            }
            default: fail("bad escape");
            }
        }
    }
    double parse_number() {
        ws();
        std::size_t start = i;
        if (i < s.size() && s[i] == '-') ++i;
        while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.' ||
                                s[i] == 'e' || s[i] == 'E' || s[i] == '+' || s[i] == '-'))
            ++i;
        if (start == i) fail("expected value");
        std::string num(s.substr(start, i - start));
        std::size_t used = 0;
        double d = std::stod(num, &used);
        if (used != num.size() || !std::isfinite(d)) fail("bad number");
        return d;
    }
};
} // namespace

value parse(std::string_view text) {
    parser p{text};
    value v = p.parse_value();
    p.ws();
    if (p.i != text.size()) p.fail("trailing characters");
    return v;
}

value parse_file(const std::string& path) {
    std::ifstream f(path);
    if (!f) throw std::runtime_error("json: cannot open " + path);
    std::stringstream ss;
    ss << f.rdbuf();
    return parse(ss.str());
}

} // namespace test::json
