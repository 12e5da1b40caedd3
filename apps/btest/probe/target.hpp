// The `target` of a probe request (HOST, HOST:PORT, [V6]:PORT), the allow-list check and name
// resolution with a deadline.
//
// DNS: a name is resolved once per probe; every address it resolves to must be allowed (a name
// listed in the allow-list is trusted as such), and the test connects to one of exactly those
// checked addresses — the client is never given the name, so no second lookup can return a
// different answer between the check and the connection (DNS rebinding).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "probe/config.hpp"

namespace btest_probe {

using address = boost::asio::ip::address;

inline constexpr std::uint16_t default_port = 2000;

struct target {
    std::string host;                  ///< a host name (lower case, no trailing dot) or the literal's text
    std::optional<address> literal;    ///< set when the target is an IP address
    std::uint16_t port = default_port;
};

/// nullopt (with `error` set to a message fit for a 400 answer) if malformed.
std::optional<target> parse_target(std::string_view s, std::string& error);

/// RFC 1123 host name: labels of [A-Za-z0-9-_] (1..63, no leading/trailing '-'), at most 253
/// characters, an optional trailing dot, and a last label that is not all digits (so that
/// "10.1" or "0x7f.1" are not taken for names).
bool valid_hostname(std::string_view s);
std::string normalize_host(std::string_view s);

/// IPv4-mapped IPv6 (::ffff:a.b.c.d) as the IPv4 address it is; anything else unchanged.
address normalize(const address& a);
/// `a` with every bit past `prefix` cleared.
address masked(const address& a, unsigned prefix);
/// `a` lies in `net`/`prefix` (same family after normalize()).
bool in_network(const address& a, const address& net, unsigned prefix);

/// Is this address allowed (by a network or address entry)?
bool address_allowed(const std::vector<allow_entry>& allow, const address& a);
/// Is this host name listed by name?
bool host_listed(const std::vector<allow_entry>& allow, std::string_view host);

struct resolution {
    std::vector<address> addresses;    ///< normalized, in the resolver's order, no duplicates
    std::string error;                 ///< set when nothing was resolved
    bool timed_out = false;
};

/// getaddrinfo() on a helper thread, waited for at most `timeout` (the lookup is abandoned, not
/// cancelled, after that: the thread ends on its own when the resolver answers).
resolution resolve(const std::string& host, std::chrono::milliseconds timeout);

} // namespace btest_probe
