#include "probe/config.hpp"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <toml.hpp>

#include "probe/target.hpp"

namespace btest_probe {

namespace {

// std::map tables: keys come out sorted, so the first error reported is the same every time.
using tvalue = toml::basic_value<toml::discard_comments, std::map, std::vector>;

std::string where(const tvalue& v) {
    const auto loc = v.location();
    return loc.file_name() + ":" + std::to_string(loc.line()) + ": ";
}

[[noreturn]] void fail(const tvalue& at, const std::string& what) { throw config_error(where(at) + what); }

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

const std::string& need_string(const tvalue& v, const std::string& key) {
    if (!v.is_string()) fail(v, key + ": expected a string");
    return v.as_string().str;
}

std::int64_t need_integer(const tvalue& v, const std::string& key, std::int64_t lo, std::int64_t hi) {
    if (!v.is_integer()) fail(v, key + ": expected an integer");
    const auto n = v.as_integer();
    if (n < lo || n > hi) fail(v, key + ": " + std::to_string(n) + " is out of range " + std::to_string(lo) + ".." + std::to_string(hi));
    return n;
}

std::chrono::milliseconds need_duration(const tvalue& v, const std::string& key) {
    std::optional<std::chrono::milliseconds> d;
    if (v.is_string()) d = parse_duration(v.as_string().str);
    else if (v.is_integer()) d = std::chrono::milliseconds(v.as_integer() * 1000);
    else if (v.is_floating() && std::isfinite(v.as_floating()) && v.as_floating() >= 0 && v.as_floating() < 1e7)
        d = std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(v.as_floating() * 1000)));
    if (!d) fail(v, key + ": expected a duration such as \"5s\", \"500ms\" or \"1m\"");
    return *d;
}

module_config parse_module(const std::string& name, const tvalue& t) {
    if (!t.is_table()) fail(t, "modules." + name + ": expected a table ([modules." + name + "])");
    if (name.empty() || name.size() > 64 ||
        name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.") != std::string::npos)
        fail(t, "module name '" + name + "': use 1..64 of A-Z a-z 0-9 _ - .");
    module_config m;
    m.name = name;
    const std::string p = "modules." + name + ".";
    const tvalue* tx_size = nullptr;
    for (const auto& [key, v] : t.as_table()) {
        const std::string k = p + key;
        if (key == "protocol") {
            const auto s = lower(need_string(v, k));
            if (s == "tcp") m.proto = btest::protocol::tcp;
            else if (s == "udp") m.proto = btest::protocol::udp;
            else fail(v, k + ": '" + s + "' is not tcp or udp");
        } else if (key == "direction") {
            const auto s = lower(need_string(v, k));
            if (s == "receive") m.dir = btest::direction::receive;
            else if (s == "transmit") m.dir = btest::direction::transmit;
            else if (s == "both") m.dir = btest::direction::both;
            else fail(v, k + ": '" + s + "' is not receive, transmit or both");
        } else if (key == "duration") {
            m.duration = need_duration(v, k);
            if (m.duration < std::chrono::milliseconds(100) || m.duration > std::chrono::hours(1))
                fail(v, k + ": must be between 100ms and 1h");
        } else if (key == "bandwidth") {
            std::optional<std::uint64_t> r;
            if (v.is_string()) r = parse_rate(v.as_string().str);
            else if (v.is_integer() && v.as_integer() >= 0) r = static_cast<std::uint64_t>(v.as_integer());
            if (!r) fail(v, k + ": expected a rate in bit/s such as \"100M\", \"1.5G\" or \"0\" (unlimited)");
            m.bandwidth = *r;
        } else if (key == "connection_count") {
            m.connection_count = static_cast<std::uint32_t>(need_integer(v, k, 1, 255));
        } else if (key == "tx_size") {
            tx_size = &v;
            m.tx_size = static_cast<std::uint16_t>(need_integer(v, k, 1, 65535));
        } else if (key == "random_data") {
            if (!v.is_boolean()) fail(v, k + ": expected true or false");
            m.random_data = v.as_boolean();
        } else if (key == "user") {
            m.user = need_string(v, k);
            if (m.user.empty() || m.user.size() > 255) fail(v, k + ": 1..255 characters");
        } else if (key == "password") {
            m.password = need_string(v, k);
        } else if (key == "connect_timeout") {
            m.connect_timeout = need_duration(v, k);
            if (m.connect_timeout < std::chrono::milliseconds(100) || m.connect_timeout > std::chrono::minutes(1))
                fail(v, k + ": must be between 100ms and 1m");
        } else if (key == "family") {
            const auto s = lower(need_string(v, k));
            if (s == "any") m.family = address_family::any;
            else if (s == "ipv4") m.family = address_family::ipv4;
            else if (s == "ipv6") m.family = address_family::ipv6;
            else fail(v, k + ": '" + s + "' is not any, ipv4 or ipv6");
        } else {
            fail(v, "unknown key '" + k + "' (known: protocol, direction, duration, bandwidth, connection_count, "
                    "tx_size, random_data, user, password, connect_timeout, family)");
        }
    }
    if (tx_size && m.proto == btest::protocol::udp && (*m.tx_size < 28 || *m.tx_size > 64000))
        fail(*tx_size, p + "tx_size: a UDP datagram is 28..64000 bytes (IP and UDP headers included)");
    if (m.user.empty() && !m.password.empty()) fail(t, "modules." + name + ": password without user");
    return m;
}

} // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
    std::string t(s);
    double mult = 1000;   // seconds by default
    auto ends = [&](std::string_view suffix) {
        if (t.size() > suffix.size() && t.compare(t.size() - suffix.size(), suffix.size(), suffix) == 0) {
            t.resize(t.size() - suffix.size());
            return true;
        }
        return false;
    };
    if (ends("ms")) mult = 1;
    else if (ends("s")) mult = 1000;
    else if (ends("m")) mult = 60'000;
    else if (ends("h")) mult = 3'600'000;
    if (t.empty() || t.find_first_not_of("0123456789.") != std::string::npos) return std::nullopt;
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(t, &used);
    } catch (...) {
        return std::nullopt;
    }
    if (used != t.size() || !(v >= 0) || v * mult > 1e10) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(v * mult)));
}

std::optional<std::uint64_t> parse_rate(std::string_view s) {
    std::string t(s);
    double mult = 1;
    if (!t.empty()) {
        switch (std::tolower(static_cast<unsigned char>(t.back()))) {
        case 'k': mult = 1e3; break;
        case 'm': mult = 1e6; break;
        case 'g': mult = 1e9; break;
        case 't': mult = 1e12; break;
        default: break;
        }
        if (mult != 1) t.pop_back();
    }
    if (t.empty() || t.find_first_not_of("0123456789.") != std::string::npos) return std::nullopt;
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(t, &used);
    } catch (...) {
        return std::nullopt;
    }
    if (used != t.size() || !(v >= 0) || v * mult > 1.8e19) return std::nullopt;
    return static_cast<std::uint64_t>(v * mult + 0.5);
}

std::optional<allow_entry> parse_allow_entry(std::string_view s, std::string& error) {
    allow_entry e;
    e.text = std::string(s);
    std::string addr(s);
    std::optional<unsigned> prefix;
    if (const auto slash = addr.find('/'); slash != std::string::npos) {
        const auto bits = addr.substr(slash + 1);
        addr.resize(slash);
        if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos) {
            error = "'" + e.text + "': bad prefix length";
            return std::nullopt;
        }
        prefix = static_cast<unsigned>(std::stoul(bits));
    }
    boost::system::error_code ec;
    const auto a = boost::asio::ip::make_address(addr, ec);
    if (!ec && addr.find('%') == std::string::npos) {
        const auto n = normalize(a);
        const unsigned max = n.is_v4() ? 32 : 128;
        const unsigned p = prefix.value_or(max);
        // A mapped v4 network keeps its meaning: ::ffff:192.0.2.0/120 is 192.0.2.0/24.
        const unsigned shift = (a.is_v6() && n.is_v4()) ? 96 : 0;
        if (p > max + shift || p < shift) {
            error = "'" + e.text + "': prefix length out of range 0.." + std::to_string(max);
            return std::nullopt;
        }
        e.network = n;
        e.prefix = p - shift;
        if (masked(n, e.prefix) != n) {
            error = "'" + e.text + "': address has bits set beyond the /" + std::to_string(e.prefix) + " prefix (did you mean " +
                    masked(n, e.prefix).to_string() + "/" + std::to_string(e.prefix) + "?)";
            return std::nullopt;
        }
        return e;
    }
    if (prefix || !valid_hostname(addr)) {
        error = "'" + e.text + "' is neither an address, a network (address/prefix) nor a host name";
        return std::nullopt;
    }
    e.host = normalize_host(addr);
    return e;
}

probe_config parse_config(std::istream& in, const std::string& filename) {
    tvalue root;
    try {
        root = toml::parse<toml::discard_comments, std::map, std::vector>(in, filename);
    } catch (const toml::exception& e) {
        throw config_error(filename + ":" + std::to_string(e.location().line()) + ": TOML syntax error\n" + e.what());
    }
    probe_config cfg;
    bool have_allow = false;
    for (const auto& [key, v] : root.as_table()) {
        if (key == "allow") {
            have_allow = true;
            if (!v.is_table()) fail(v, "allow: expected a table ([allow])");
            for (const auto& [k, list] : v.as_table()) {
                if (k != "targets") fail(list, "unknown key 'allow." + k + "' (known: targets)");
                if (!list.is_array()) fail(list, "allow.targets: expected an array of strings");
                for (const auto& item : list.as_array()) {
                    std::string error;
                    auto e = parse_allow_entry(need_string(item, "allow.targets"), error);
                    if (!e) fail(item, "allow.targets: " + error);
                    cfg.allow.push_back(std::move(*e));
                }
                if (list.as_array().empty()) fail(list, "allow.targets is empty: every probe would be refused");
            }
        } else if (key == "modules") {
            if (!v.is_table()) fail(v, "modules: expected tables ([modules.NAME])");
            for (const auto& [name, t] : v.as_table()) cfg.modules.emplace(name, parse_module(name, t));
        } else {
            fail(v, "unknown table or key '" + key + "' (known: [allow], [modules.NAME])");
        }
    }
    if (!have_allow || cfg.allow.empty())
        throw config_error(filename + ": no [allow] targets: list the hosts or networks the probe may test");
    if (cfg.modules.empty()) throw config_error(filename + ": no modules: define at least one [modules.NAME]");
    return cfg;
}

probe_config load_config(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error(path + ": cannot open: " + std::strerror(errno));
    return parse_config(in, path);
}

const char* to_string(btest::protocol p) noexcept { return p == btest::protocol::udp ? "udp" : "tcp"; }

const char* to_string(btest::direction d) noexcept {
    switch (d) {
    case btest::direction::transmit: return "transmit";
    case btest::direction::both: return "both";
    default: return "receive";
    }
}

} // namespace btest_probe
