// Command line of the btest CLI: flags compatible with the common btest tools, plus RouterOS's
// own vocabulary. Parsing only; no I/O besides the exception a bad flag raises.
#pragma once

#include <cctype>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "btest/session/config.hpp"

namespace btest_cli {

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

enum class run_mode { none, server, client };

struct options {
    run_mode mode = run_mode::none;
    std::string host;
    bool transmit = false;
    bool receive = false;
    bool udp = false;
    std::optional<std::uint64_t> bandwidth;          ///< -b: both caps, bit/s
    std::optional<std::uint64_t> local_tx_speed;
    std::optional<std::uint64_t> remote_tx_speed;
    std::uint16_t port = 2000;
    std::optional<std::string> listen4;              ///< address or "none"
    std::optional<std::string> listen6;              ///< address or "none"
    bool listen6_given = false;
    std::optional<std::string> user;
    std::optional<std::string> password;
    bool nat = false;
    double duration_s = 10;
    std::string csv_path;
    bool quiet = false;
    std::string syslog;
    int verbose = 0;
    std::uint32_t connection_count = 1;
    std::optional<std::uint16_t> tx_size;
    bool random_data = false;
    std::chrono::milliseconds interval{1000};
    bool only_v4 = false;
    bool only_v6 = false;
    bool json = false;
    std::optional<btest::auth_method> auth;
    std::size_t max_sessions = 100;
    std::size_t max_conn_per_ip = 20;                 ///< live connections per source IP; 0 = unlimited
    std::uint32_t max_auth_failures = 10;             ///< per source IP per minute, then refused for a minute; 0 = off
    std::optional<std::chrono::milliseconds> handshake_timeout;  ///< T_hs (default: the kit's, 10 s)
    std::optional<std::chrono::milliseconds> idle_timeout;       ///< T_idle (default: the kit's, 10 s)
    std::optional<std::size_t> max_pending;           ///< pending multi-connection tests (default: the kit's)
    std::uint16_t udp_port_start = 2001;
    std::optional<std::uint16_t> udp_port_end;
    std::optional<std::size_t> threads;               ///< server io threads (default: cores)
    std::optional<std::uint32_t> timer_granularity_us;  ///< pacing wake-up granularity
    bool no_gso = false;
    bool no_gro = false;
    bool help = false;
    bool version = false;
};

/// "100M", "1.5G", "500k", "64000": bits per second with decimal K/M/G/T suffixes; an optional
/// trailing "bps"/"bit"/"b"/"/s" is accepted.
inline std::uint64_t parse_rate(std::string_view s, const char* flag) {
    std::string t(s);
    auto strip = [&](std::string_view suffix) {
        if (t.size() > suffix.size()) {
            std::string tail = t.substr(t.size() - suffix.size());
            for (auto& c : tail) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (tail == suffix) {
                t.resize(t.size() - suffix.size());
                return true;
            }
        }
        return false;
    };
    strip("/s");
    if (!strip("bps") && !strip("bit")) strip("b");
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
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(t, &used);
    } catch (...) {
        used = 0;
    }
    if (t.empty() || used != t.size() || !(v >= 0) || v * mult > 1.8e19)
        throw usage_error(std::string("invalid rate for ") + flag + ": '" + std::string(s) + "' (e.g. 100M, 1.5G, 500k)");
    return static_cast<std::uint64_t>(v * mult + 0.5);
}

inline double parse_number(std::string_view s, const char* flag) {
    std::size_t used = 0;
    double v = 0;
    try {
        v = std::stod(std::string(s), &used);
    } catch (...) {
        used = 0;
    }
    if (s.empty() || used != s.size()) throw usage_error(std::string("invalid number for ") + flag + ": '" + std::string(s) + "'");
    return v;
}

inline std::uint64_t parse_uint(std::string_view s, const char* flag, std::uint64_t lo, std::uint64_t hi) {
    const double v = parse_number(s, flag);
    if (v < double(lo) || v > double(hi) || v != double(static_cast<std::uint64_t>(v)))
        throw usage_error(std::string(flag) + " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
    return static_cast<std::uint64_t>(v);
}

/// "0.5", "500ms", "2s" → milliseconds.
inline std::chrono::milliseconds parse_interval(std::string_view s, const char* flag) {
    std::string t(s);
    double scale = 1000;
    if (t.size() > 2 && t.substr(t.size() - 2) == "ms") {
        scale = 1;
        t.resize(t.size() - 2);
    } else if (t.size() > 1 && t.back() == 's') {
        t.pop_back();
    }
    const double v = parse_number(t, flag) * scale;
    return std::chrono::milliseconds(static_cast<long long>(v + 0.5));
}

/// "2", "0.5": seconds, > 0 and at most a day → milliseconds.
inline std::chrono::milliseconds parse_seconds(std::string_view s, const char* flag) {
    const double v = parse_number(s, flag);
    if (!(v >= 0.001) || v > 86400) throw usage_error(std::string(flag) + " must be between 0.001 and 86400 seconds");
    return std::chrono::milliseconds(static_cast<long long>(v * 1000 + 0.5));
}

inline btest::auth_method parse_auth(std::string_view s) {
    if (s == "none") return btest::auth_method::none;
    if (s == "md5") return btest::auth_method::md5;
    if (s == "ecsrp5" || s == "ec-srp5") return btest::auth_method::ec_srp5;
    throw usage_error("--auth must be none, md5 or ecsrp5, not '" + std::string(s) + "'");
}

inline options parse(int argc, const char* const* argv) {
    options o;
    std::vector<std::string> args(argv + 1, argv + argc);
    bool client_flags = false;  // a flag that only a client uses was given
    bool server_flags = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string a = args[i];
        std::optional<std::string> inline_value;
        if (a.rfind("--", 0) == 0) {
            if (auto eq = a.find('='); eq != std::string::npos) {
                inline_value = a.substr(eq + 1);
                a = a.substr(0, eq);
            }
        } else if (a.size() > 2 && a[0] == '-' && a[1] != '-') {
            // -tru → -t -r -u; -b100M → -b 100M
            static const std::string with_value = "cbPapdi";
            if (with_value.find(a[1]) != std::string::npos) {
                inline_value = a.substr(2);
                a = a.substr(0, 2);
            } else {
                for (std::size_t k = a.size() - 1; k >= 2; --k)
                    args.insert(args.begin() + static_cast<std::ptrdiff_t>(i) + 1, std::string("-") + a[k]);
                a = a.substr(0, 2);
            }
        }
        auto value = [&]() -> std::string {
            if (inline_value) return *inline_value;
            if (i + 1 >= args.size()) throw usage_error("option " + a + " needs a value");
            return args[++i];
        };
        auto no_value = [&] {
            if (inline_value) throw usage_error("option " + a + " takes no value");
        };
        if (a == "-h" || a == "--help") { o.help = true; }
        else if (a == "-V" || a == "--version") { o.version = true; }
        else if (a == "-s" || a == "--server") { no_value(); if (o.mode == run_mode::client) throw usage_error("-s and -c exclude each other"); o.mode = run_mode::server; }
        else if (a == "-c" || a == "--client") { if (o.mode == run_mode::server) throw usage_error("-s and -c exclude each other"); o.mode = run_mode::client; o.host = value(); }
        else if (a == "-t" || a == "--transmit") { no_value(); o.transmit = true; client_flags = true; }
        else if (a == "-r" || a == "--receive") { no_value(); o.receive = true; client_flags = true; }
        else if (a == "-u" || a == "--udp") { no_value(); o.udp = true; client_flags = true; }
        else if (a == "-b" || a == "--bandwidth") { o.bandwidth = parse_rate(value(), "-b"); }
        else if (a == "--local-tx-speed") { o.local_tx_speed = parse_rate(value(), "--local-tx-speed"); client_flags = true; }
        else if (a == "--remote-tx-speed") { o.remote_tx_speed = parse_rate(value(), "--remote-tx-speed"); client_flags = true; }
        else if (a == "-P" || a == "--port") { o.port = static_cast<std::uint16_t>(parse_uint(value(), "--port", 1, 65535)); }
        else if (a == "--listen") { o.listen4 = value(); server_flags = true; }
        else if (a == "--listen6") {
            o.listen6_given = true;
            server_flags = true;
            if (inline_value) o.listen6 = *inline_value;
            else if (i + 1 < args.size() && (args[i + 1] == "none" || args[i + 1].find(':') != std::string::npos)) o.listen6 = args[++i];
        }
        else if (a == "-a" || a == "--authuser") { o.user = value(); }
        else if (a == "-p" || a == "--authpass") { o.password = value(); }
        else if (a == "-n" || a == "--nat") { no_value(); o.nat = true; client_flags = true; }
        else if (a == "-d" || a == "--duration") {
            o.duration_s = parse_number(value(), "--duration");
            if (o.duration_s < 0) throw usage_error("--duration must be ≥ 0 (0 = until Ctrl-C)");
            client_flags = true;
        }
        else if (a == "--csv") { o.csv_path = value(); }
        else if (a == "-q" || a == "--quiet") { no_value(); o.quiet = true; }
        else if (a == "--syslog") { o.syslog = value(); }
        else if (a == "-v" || a == "--verbose") { no_value(); ++o.verbose; }
        else if (a == "-vv") { o.verbose += 2; }
        else if (a == "--connection-count") { o.connection_count = static_cast<std::uint32_t>(parse_uint(value(), "--connection-count", 1, 255)); client_flags = true; }
        else if (a == "--tx-size") { o.tx_size = static_cast<std::uint16_t>(parse_uint(value(), "--tx-size", 28, 64000)); client_flags = true; }
        else if (a == "--random-data") { no_value(); o.random_data = true; client_flags = true; }
        else if (a == "-i" || a == "--interval") {
            o.interval = parse_interval(value(), "--interval");
            if (o.interval < std::chrono::milliseconds(20) || o.interval > std::chrono::milliseconds(5000))
                throw usage_error("--interval must be between 0.02 and 5 seconds");
        }
        else if (a == "-4") { no_value(); o.only_v4 = true; }
        else if (a == "-6") { no_value(); o.only_v6 = true; }
        else if (a == "--json") { no_value(); o.json = true; }
        else if (a == "--auth") { o.auth = parse_auth(value()); server_flags = true; }
        else if (a == "--ecsrp5") { no_value(); o.auth = btest::auth_method::ec_srp5; server_flags = true; }
        else if (a == "--max-sessions") { o.max_sessions = static_cast<std::size_t>(parse_uint(value(), "--max-sessions", 1, 100000)); server_flags = true; }
        else if (a == "--max-conn-per-ip") { o.max_conn_per_ip = static_cast<std::size_t>(parse_uint(value(), "--max-conn-per-ip", 0, 1000000)); server_flags = true; }
        else if (a == "--max-auth-failures") { o.max_auth_failures = static_cast<std::uint32_t>(parse_uint(value(), "--max-auth-failures", 0, 1000000)); server_flags = true; }
        else if (a == "--handshake-timeout") { o.handshake_timeout = parse_seconds(value(), "--handshake-timeout"); server_flags = true; }
        else if (a == "--idle-timeout") { o.idle_timeout = parse_seconds(value(), "--idle-timeout"); server_flags = true; }
        else if (a == "--max-pending") { o.max_pending = static_cast<std::size_t>(parse_uint(value(), "--max-pending", 1, 100000)); server_flags = true; }
        else if (a == "--udp-port-start") { o.udp_port_start = static_cast<std::uint16_t>(parse_uint(value(), "--udp-port-start", 1, 65535 - 256)); server_flags = true; }
        else if (a == "--threads") { o.threads = static_cast<std::size_t>(parse_uint(value(), "--threads", 1, 256)); server_flags = true; }
        else if (a == "--timer-granularity") { o.timer_granularity_us = static_cast<std::uint32_t>(parse_uint(value(), "--timer-granularity", 0, 100000)); }
        else if (a == "--no-gso") { no_value(); o.no_gso = true; }
        else if (a == "--no-gro") { no_value(); o.no_gro = true; }
        else if (a == "--udp-port-end") { o.udp_port_end = static_cast<std::uint16_t>(parse_uint(value(), "--udp-port-end", 1, 65535 - 256)); server_flags = true; }
        else throw usage_error("unknown option '" + a + "'");
    }
    if (o.help || o.version) return o;
    if (o.mode == run_mode::none) throw usage_error("choose a mode: -s (server) or -c HOST (client)");
    if (o.only_v4 && o.only_v6) throw usage_error("-4 and -6 exclude each other");
    if (o.mode == run_mode::server && client_flags)
        throw usage_error("-t/-r/-u/-d/-n, --connection-count, --tx-size, --random-data and the speed options are client options");
    if (o.mode == run_mode::client && server_flags)
        throw usage_error("--listen, --listen6, --auth, --ecsrp5, --max-sessions, --max-conn-per-ip, --max-auth-failures, "
                          "--handshake-timeout, --idle-timeout, --max-pending, --threads and --udp-port-* are server options");
    if (o.mode == run_mode::client) {
        if (o.host.empty()) throw usage_error("-c needs a host");
        if (o.password && !o.user) throw usage_error("-p needs -a USER");
    }
    if (o.mode == run_mode::server) {
        const auto auth = o.auth.value_or(o.user ? btest::auth_method::ec_srp5 : btest::auth_method::none);
        if (auth != btest::auth_method::none && !o.user) throw usage_error("--auth md5/ecsrp5 needs -a USER and -p PASSWORD");
        if (o.password && !o.user) throw usage_error("-p needs -a USER");
        if (o.udp_port_end && *o.udp_port_end < o.udp_port_start) throw usage_error("--udp-port-end is below --udp-port-start");
    }
    return o;
}

} // namespace btest_cli
