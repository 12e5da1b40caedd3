#include "btest/pro/cidr.hpp"

#include <algorithm>
#include <charconv>

#include <arpa/inet.h>

namespace btest::pro {

namespace {

bool is_v4_mapped(const ip_address& a) noexcept {
    if (a.family != ip_family::v6) return false;
    for (std::size_t i = 0; i < 10; ++i)
        if (a.bytes[i] != 0) return false;
    return a.bytes[10] == 0xff && a.bytes[11] == 0xff;
}

template <class T>
std::optional<T> fail(std::string* why, std::string_view what, std::string_view text, const char* reason) {
    if (why) *why = "invalid " + std::string(what) + " '" + std::string(text) + "': " + reason;
    return std::nullopt;
}

// inet_pton on a bounded copy: the input is not NUL-terminated, and its length is checked
// first so that no absurd string is copied.
std::optional<ip_address> pton(std::string_view text) {
    if (text.empty() || text.size() > 45) return std::nullopt;  // INET6_ADDRSTRLEN - 1
    char buf[46] = {};
    std::copy(text.begin(), text.end(), buf);
    ip_address a;
    if (text.find(':') == std::string_view::npos) {
        if (::inet_pton(AF_INET, buf, a.bytes.data()) != 1) return std::nullopt;
        a.family = ip_family::v4;
        return a;
    }
    if (::inet_pton(AF_INET6, buf, a.bytes.data()) != 1) return std::nullopt;
    a.family = ip_family::v6;
    return a;
}

} // namespace

ip_address canonical(const ip_address& a) noexcept {
    if (!is_v4_mapped(a)) return a;
    return ip_address::v4(a.bytes[12], a.bytes[13], a.bytes[14], a.bytes[15]);
}

std::optional<ip_address> parse_ip(std::string_view text, std::string* why) {
    auto a = pton(text);
    if (!a) return fail<ip_address>(why, "IP address", text, "expected an IPv4 or IPv6 address");
    return canonical(*a);
}

std::optional<cidr> cidr::parse(std::string_view text, std::string* why) {
    const auto slash = text.find('/');
    const std::string_view addr_text = text.substr(0, slash);
    auto a = pton(addr_text);
    if (!a) return fail<cidr>(why, "CIDR block", text, "expected ADDRESS or ADDRESS/PREFIX (IPv4 or IPv6)");
    const unsigned max_len = a->family == ip_family::v4 ? 32 : 128;
    unsigned len = max_len;
    if (slash != std::string_view::npos) {
        const std::string_view p = text.substr(slash + 1);
        unsigned v = 0;
        const auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
        if (p.empty() || ec != std::errc{} || end != p.data() + p.size() || p.front() == '+')
            return fail<cidr>(why, "CIDR block", text, "the prefix length must be a number");
        if (v > max_len)
            return fail<cidr>(why, "CIDR block", text,
                              a->family == ip_family::v4 ? "an IPv4 prefix is at most 32 bits"
                                                         : "an IPv6 prefix is at most 128 bits");
        len = v;
    }
    const unsigned used = a->family == ip_family::v4 ? 4 : 16;
    for (unsigned bit = len; bit < used * 8; ++bit) {
        if (a->bytes[bit / 8] & (0x80u >> (bit % 8)))
            return fail<cidr>(why, "CIDR block", text, "host bits are set below the prefix length");
    }
    if (is_v4_mapped(*a) && len >= 96) return cidr{canonical(*a), len - 96};
    return cidr{*a, len};
}

bool cidr::contains(const ip_address& addr) const noexcept {
    const ip_address a = canonical(addr);
    if (a.family != network_.family) return false;
    const unsigned full = prefix_len_ / 8, rest = prefix_len_ % 8;
    for (unsigned i = 0; i < full; ++i)
        if (a.bytes[i] != network_.bytes[i]) return false;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xffu << (8 - rest));
    return (a.bytes[full] & mask) == (network_.bytes[full] & mask);
}

std::string cidr::to_string() const { return network_.to_string() + "/" + std::to_string(prefix_len_); }

std::string format_endpoint(const ip_address& a, std::uint16_t port) {
    if (a.family == ip_family::v6) return "[" + a.to_string() + "]:" + std::to_string(port);
    return a.to_string() + ":" + std::to_string(port);
}

} // namespace btest::pro
