// IP addresses and CIDR blocks as operators write them (--allow/--deny, --ip filters).
// Addresses are btest::ip_address, the value type the transports hand to the server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "btest/core/address.hpp"

namespace btest::pro {

/// `a` with an IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports for
/// an IPv4 peer) turned into the IPv4 address; any other address unchanged. Quotas, filters
/// and history key addresses in this form, so one client is one subject whichever socket it
/// came in on.
ip_address canonical(const ip_address& a) noexcept;

/// A textual IPv4 ("192.0.2.1") or IPv6 ("2001:db8::1", "::ffff:192.0.2.1") address, returned
/// in canonical() form; nullopt (with `*why`) for anything else (names are not resolved; no
/// brackets, ports, zone ids or prefixes).
std::optional<ip_address> parse_ip(std::string_view text, std::string* why = nullptr);

/// An address block: `prefix_len` leading bits of `network` (the rest are zero).
class cidr {
public:
    /// "10.0.0.0/8", "2001:db8::/32", or a single address ("192.0.2.1" = /32, "::1" = /128).
    /// Host bits set below the prefix ("10.1.2.3/8") are an error, since the operator probably
    /// meant something else. IPv4-mapped IPv6 blocks (::ffff:0:0/96 and longer) become the
    /// equivalent IPv4 block. nullopt (with `*why`) on any malformed input.
    static std::optional<cidr> parse(std::string_view text, std::string* why = nullptr);

    /// Whether `a` (any form: mapped addresses match IPv4 blocks) lies in the block. An IPv4
    /// address never matches an IPv6 block other than through the mapping, and vice versa.
    bool contains(const ip_address& a) const noexcept;

    const ip_address& network() const noexcept { return network_; }
    unsigned prefix_len() const noexcept { return prefix_len_; }
    /// "10.0.0.0/8", "2001:db8::/32".
    std::string to_string() const;

    friend bool operator==(const cidr&, const cidr&) = default;

private:
    cidr(const ip_address& n, unsigned len) noexcept : network_(n), prefix_len_(len) {}
    ip_address network_;
    unsigned prefix_len_ = 0;
};

/// "192.0.2.1:2000", "[2001:db8::1]:2000" (the peer form of `btest --json`).
std::string format_endpoint(const ip_address& a, std::uint16_t port);

} // namespace btest::pro
