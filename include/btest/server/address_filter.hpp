// Address filters for a public server (RouterOS's allowed-addresses): IPv4 and IPv6 networks in
// CIDR notation, an allow list and a deny list. Pure values: parsing returns an error for
// anything that is not exactly an address with an optional prefix length.
#pragma once

#include <algorithm>
#include <array>
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "btest/core/address.hpp"

namespace btest {

/// An IP network: the addresses whose first `prefix` bits equal `address`'s.
struct ip_network {
    ip_address address;
    std::uint8_t prefix = 32;

    bool contains(const ip_address& a) const noexcept {
        if (a.family != address.family) return false;
        const std::size_t full = prefix / 8u;
        for (std::size_t i = 0; i < full; ++i)
            if (a.bytes[i] != address.bytes[i]) return false;
        if (const unsigned rest = prefix % 8u) {
            const auto mask = static_cast<std::uint8_t>(0xffu << (8u - rest));
            if ((a.bytes[full] & mask) != (address.bytes[full] & mask)) return false;
        }
        return true;
    }

    std::string to_string() const { return address.to_string() + "/" + std::to_string(prefix); }

    /// "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128). Host bits below the
    /// prefix are cleared ("192.0.2.7/24" is 192.0.2.0/24). nullopt: not a network.
    static std::optional<ip_network> parse(std::string_view s) {
        std::optional<std::uint8_t> len;
        if (const auto slash = s.find('/'); slash != std::string_view::npos) {
            const auto digits = s.substr(slash + 1);
            unsigned v = 0;
            const auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
            if (digits.empty() || ec != std::errc{} || p != digits.data() + digits.size() || v > 128) return std::nullopt;
            len = static_cast<std::uint8_t>(v);
            s = s.substr(0, slash);
        }
        auto a = parse_ip(s);
        if (!a) return std::nullopt;
        const std::uint8_t max = a->family == ip_family::v4 ? 32 : 128;
        if (len && *len > max) return std::nullopt;
        ip_network n{*a, len.value_or(max)};
        for (std::size_t bit = n.prefix; bit < max; ++bit)
            n.address.bytes[bit / 8] = static_cast<std::uint8_t>(n.address.bytes[bit / 8] & ~(0x80u >> (bit % 8)));
        return n;
    }

    /// A textual IPv4 (dotted quad) or IPv6 address (RFC 4291 forms, including an embedded
    /// IPv4 tail). nullopt otherwise.
    static std::optional<ip_address> parse_ip(std::string_view s) {
        if (s.find(':') == std::string_view::npos) {
            std::array<std::uint8_t, 4> q{};
            if (!parse_v4(s, q)) return std::nullopt;
            return ip_address::v4(q[0], q[1], q[2], q[3]);
        }
        return parse_v6(s);
    }

private:
    static bool parse_v4(std::string_view s, std::array<std::uint8_t, 4>& out) {
        for (std::size_t i = 0; i < 4; ++i) {
            const auto dot = s.find('.');
            const auto part = i < 3 ? s.substr(0, dot) : s;
            if (i < 3 && dot == std::string_view::npos) return false;
            unsigned v = 0;
            const auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
            if (part.empty() || part.size() > 3 || ec != std::errc{} || p != part.data() + part.size() || v > 255) return false;
            out[i] = static_cast<std::uint8_t>(v);
            if (i < 3) s = s.substr(dot + 1);
        }
        return true;
    }

    static std::optional<ip_address> parse_v6(std::string_view s) {
        std::array<std::uint16_t, 8> words{};
        std::size_t n = 0;
        std::optional<std::size_t> gap;  // where "::" stands
        if (s.starts_with("::")) {
            gap = 0;
            s.remove_prefix(2);
        } else if (s.starts_with(":")) {
            return std::nullopt;
        }
        while (!s.empty()) {
            const auto colon = s.find(':');
            const auto part = s.substr(0, colon);
            if (part.find('.') != std::string_view::npos) {  // an IPv4 tail
                std::array<std::uint8_t, 4> q{};
                if (colon != std::string_view::npos || n > 6 || !parse_v4(part, q)) return std::nullopt;
                words[n++] = static_cast<std::uint16_t>(q[0] << 8 | q[1]);
                words[n++] = static_cast<std::uint16_t>(q[2] << 8 | q[3]);
                break;
            }
            unsigned v = 0;
            const auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v, 16);
            if (part.empty() || part.size() > 4 || ec != std::errc{} || p != part.data() + part.size() || n == 8)
                return std::nullopt;
            words[n++] = static_cast<std::uint16_t>(v);
            if (colon == std::string_view::npos) break;
            s.remove_prefix(colon + 1);
            if (s.starts_with(":")) {
                if (gap) return std::nullopt;  // a second "::"
                gap = n;
                s.remove_prefix(1);
            } else if (s.empty()) {
                return std::nullopt;  // a trailing single ':'
            }
        }
        if (gap) {
            if (n == 8) return std::nullopt;
            std::copy_backward(words.begin() + static_cast<std::ptrdiff_t>(*gap), words.begin() + static_cast<std::ptrdiff_t>(n),
                               words.end());
            std::fill(words.begin() + static_cast<std::ptrdiff_t>(*gap),
                      words.begin() + static_cast<std::ptrdiff_t>(*gap + 8 - n), 0);
        } else if (n != 8) {
            return std::nullopt;
        }
        std::array<std::uint8_t, 16> b{};
        for (std::size_t i = 0; i < 8; ++i) {
            b[2 * i] = static_cast<std::uint8_t>(words[i] >> 8);
            b[2 * i + 1] = static_cast<std::uint8_t>(words[i] & 0xff);
        }
        return ip_address::v6(b);
    }
};

/// Which peers may connect: a deny list wins over the allow list; an empty allow list allows
/// everyone not denied.
class address_filter {
public:
    void allow(const ip_network& n) { allow_.push_back(n); }
    void deny(const ip_network& n) { deny_.push_back(n); }

    bool permits(const ip_address& a) const noexcept {
        const auto in = [&](const std::vector<ip_network>& list) {
            return std::any_of(list.begin(), list.end(), [&](const ip_network& n) { return n.contains(a); });
        };
        if (in(deny_)) return false;
        return allow_.empty() || in(allow_);
    }
    bool empty() const noexcept { return allow_.empty() && deny_.empty(); }

private:
    std::vector<ip_network> allow_;
    std::vector<ip_network> deny_;
};

} // namespace btest
