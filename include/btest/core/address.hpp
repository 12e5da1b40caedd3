// Network addresses as plain values. The kit never resolves or binds anything; transports
// translate their own endpoint types into these so that the session can apply the address
// rules of the protocol itself (UDP only from the control peer's IP, JOIN only from the same
// IP, header overhead by family).
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <string>

namespace btest {

enum class ip_family : std::uint8_t { v4, v6 };

struct ip_address {
    ip_family family = ip_family::v4;
    /// v4: bytes 0..3 used, rest zero. v6: all 16, network order.
    std::array<std::uint8_t, 16> bytes{};

    static ip_address v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
        ip_address r;
        r.bytes[0] = a; r.bytes[1] = b; r.bytes[2] = c; r.bytes[3] = d;
        return r;
    }
    static ip_address v6(const std::array<std::uint8_t, 16>& b) {
        ip_address r;
        r.family = ip_family::v6;
        r.bytes = b;
        return r;
    }
    friend bool operator==(const ip_address&, const ip_address&) = default;
    friend auto operator<=>(const ip_address&, const ip_address&) = default;

    std::string to_string() const {
        static constexpr char hex[] = "0123456789abcdef";
        std::string s;
        if (family == ip_family::v4) {
            for (int i = 0; i < 4; ++i) {
                if (i) s += '.';
                s += std::to_string(bytes[static_cast<std::size_t>(i)]);
            }
            return s;
        }
        // Full form with zero-compression of the longest run (RFC 5952 style, good enough for logs).
        int best = -1, best_len = 0;
        for (int i = 0; i < 8;) {
            int j = i;
            while (j < 8 && bytes[static_cast<std::size_t>(2 * j)] == 0 &&
                   bytes[static_cast<std::size_t>(2 * j + 1)] == 0) ++j;
            if (j - i > best_len && j - i >= 2) { best = i; best_len = j - i; }
            i = (j == i) ? i + 1 : j;
        }
        for (int i = 0; i < 8; ++i) {
            if (i == best) { s += (i == 0) ? "::" : ":"; i += best_len - 1; continue; }
            unsigned w = unsigned(bytes[static_cast<std::size_t>(2 * i)]) << 8 |
                         bytes[static_cast<std::size_t>(2 * i + 1)];
            std::string h;
            do { h.insert(h.begin(), hex[w & 0xf]); w >>= 4; } while (w);
            s += h;
            if (i != 7) s += ':';
        }
        return s;
    }
};

struct endpoint {
    ip_address address;
    std::uint16_t port = 0;
    friend bool operator==(const endpoint&, const endpoint&) = default;
};

/// IP + UDP header bytes per datagram (PROTOCOL §8.3): H = 28 (IPv4) or 48 (IPv6).
constexpr std::uint32_t udp_header_overhead(ip_family f) noexcept {
    return f == ip_family::v4 ? 28u : 48u;
}

} // namespace btest
