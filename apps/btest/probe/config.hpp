// `btest probe`'s configuration file (TOML, read with toml11): the target allow-list and the
// modules — named sets of test parameters, secrets included, that /probe?module=NAME selects.
// Everything is validated when the file is loaded; an error names the file and line.
#pragma once

#include <chrono>
#include <cstdint>
#include <istream>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/asio/ip/address.hpp>

#include "btest/wire/command.hpp"

namespace btest_probe {

/// Thrown by the loaders: "FILE:LINE: what is wrong".
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class address_family : std::uint8_t { any, ipv4, ipv6 };

struct module_config {
    std::string name;
    btest::protocol proto = btest::protocol::tcp;
    btest::direction dir = btest::direction::receive;      ///< from the probe's side: receive = the target sends
    std::chrono::milliseconds duration{5000};
    std::uint64_t bandwidth = 0;                           ///< bit/s cap, each direction; 0 = unlimited
    std::uint32_t connection_count = 1;                    ///< 1..255
    std::optional<std::uint16_t> tx_size;                  ///< UDP datagram size / TCP chunk size
    bool random_data = false;
    std::string user;                                      ///< empty: no credentials
    std::string password;
    std::chrono::milliseconds connect_timeout{3000};
    address_family family = address_family::any;           ///< which resolved address to test
};

/// One allow-list entry: a network (an address is a /32 or /128) or a host name.
struct allow_entry {
    std::optional<boost::asio::ip::address> network;
    unsigned prefix = 0;
    std::string host;                                      ///< lower case, no trailing dot
    std::string text;                                      ///< as written
};

struct probe_config {
    std::vector<allow_entry> allow;
    std::map<std::string, module_config> modules;
};

/// Parses TOML text; `filename` is used in messages.
probe_config parse_config(std::istream& in, const std::string& filename);
probe_config load_config(const std::string& path);

/// "5s", "500ms", "1.5s", "2m", or a bare number of seconds. nullopt if malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s);
/// "100M", "1.5G", "500k", "0": bit/s, decimal suffixes. nullopt if malformed.
std::optional<std::uint64_t> parse_rate(std::string_view s);
/// An allow-list entry ("192.0.2.0/24", "2001:db8::/32", "192.0.2.7", "router1.example.net").
/// nullopt (with `error` set) if malformed.
std::optional<allow_entry> parse_allow_entry(std::string_view s, std::string& error);

const char* to_string(btest::protocol p) noexcept;
const char* to_string(btest::direction d) noexcept;

} // namespace btest_probe
