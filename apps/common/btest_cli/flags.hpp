// The flags every btest server accepts, each declared once: its names, value, range, default
// and help text live in one CLI11 declaration, from which parsing, --help and the man page's
// OPTIONS section all come. `btest -s` and `btest-server-pro serve` add the same pieces:
//
//     add_shared_flags(app, o, audience::server_only, "server");  // -P, -a/-p, -b, -4/-6
//     add_server_flags(app, o);                        // --listen ... --threads
//     add_data_plane_flags(app, o);                    // --no-gso, --no-gro, --no-zerocopy, ...
//     add_output_flags(app, o, audience::server_only); // -i, -q, -v, --json, --csv, --syslog
//     app.parse(argc, argv);
//     read_password_from_env(o);
//     check_server_flags(o, o);
//
// An app renders --help with help_formatter and its man page's OPTIONS with man_options()
// (doc.hpp); options in the empty group (a hidden --help-man) appear in neither.
//
// The structs keep the field names the apps have always used, so an app's options struct can
// inherit them (`struct options : shared_flags, server_flags, ... {}`).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "btest/session/config.hpp"
#include "btest_cli/values.hpp"

namespace btest_cli {

/// Flags both a client and a server use, with a meaning per role.
struct shared_flags {
    std::uint16_t port = 2000;
    std::optional<std::string> user;
    std::optional<std::string> password;
    std::optional<std::uint64_t> bandwidth;  ///< -b: client: both caps; server: what it sends. bit/s
    bool only_v4 = false;
    bool only_v6 = false;
};

/// Flags only a server uses.
struct server_flags {
    std::optional<std::string> listen4;  ///< address or "none"
    std::optional<std::string> listen6;  ///< address or "none"
    bool listen6_given = false;
    std::optional<btest::auth_method> auth;
    std::size_t max_sessions = 100;
    std::size_t max_conn_per_ip = 20;     ///< live connections per source IP; 0 = unlimited
    std::uint32_t max_auth_failures = 10; ///< per source IP per minute, then refused for a minute; 0 = off
    std::optional<std::chrono::milliseconds> handshake_timeout;  ///< T_hs (default: the kit's, 10 s)
    std::optional<std::chrono::milliseconds> idle_timeout;       ///< T_idle (default: the kit's, 10 s)
    std::optional<std::size_t> max_pending;  ///< pending multi-connection tests (default: the kit's)
    std::uint16_t udp_port_start = 2001;
    std::optional<std::uint16_t> udp_port_end;
    std::optional<std::size_t> threads;  ///< io threads (default: cores)
};

/// Data-plane knobs of the transports (both roles).
struct data_plane_flags {
    bool no_gso = false;
    bool no_gro = false;
    bool no_zerocopy = false;
    bool zerocopy_everywhere = false;
    bool no_discard = false;
    std::optional<std::uint32_t> timer_granularity_us;  ///< pacing wake-up granularity
};

/// Output of both roles.
struct output_flags {
    std::chrono::milliseconds interval{1000};
    bool quiet = false;
    int verbose = 0;
    bool json = false;
    std::string csv_path;
    std::string syslog;
};

/// Where -p is read from when it is not on the command line.
inline constexpr const char* password_env = "BTEST_PASSWORD";

/// Who reads the shared flags' help: an app with a client and a server (btest), a server only
/// (-a/-p name its one account), or a server whose accounts live elsewhere (no -a/-p).
enum class audience { client_and_server, server_only, server_with_accounts };

/// -P, -a/-p, -b, -4/-6 into `group`.
inline void add_shared_flags(CLI::App& app, shared_flags& o, audience who, const std::string& group) {
    const bool both = who == audience::client_and_server;
    app.option_defaults()->group(group);
    app.add_option("-P,--port", o.port, fmt::format("TCP port{}. Default: {}", both ? " (both modes)" : "", o.port))
        ->type_name("PORT")
        ->check(integer_in(1, 65535));
    if (who != audience::server_with_accounts) {
        app.add_option("-a,--authuser", o.user,
                       both ? "client: user name, if the server asks for authentication (MD5 or EC-SRP5, whichever it "
                              "asks for). Server: the account tests must log in with"
                            : "the account tests must log in with")
            ->type_name("USER");
        // The environment keeps the password off the command line, which every local user can read.
        app.add_option("-p,--authpass", o.password,
                       fmt::format("password of {}; without -p, the environment variable {} is read (default: "
                                   "empty)",
                                   both ? "-a" : "the account of -a", password_env))
            ->type_name("PASS");
    }
    app.add_option_function<std::string>(
           "-b,--bandwidth", [&o](const std::string& s) { o.bandwidth = parse_rate(s, "-b"); },
           both ? "client: cap in bit/s for each direction (K/M/G suffixes: 100M, 1.5G). Server: cap on what the "
                  "server sends. Default: unlimited"
                : "cap in bit/s on what the server sends to each test (K/M/G suffixes: 100M, 1.5G). "
                  "Default: unlimited")
        ->type_name("RATE");
    // One declaration for the pair so that both show as "-4, -6"; the value says which was given.
    app.add_flag("-4{4},-6{6}")->description("use IPv4 / IPv6 only")->each([&o](const std::string& v) {
        (v == "6" ? o.only_v6 : o.only_v4) = true;
    });
}

/// The server-only flags into `group`.
inline void add_server_flags(CLI::App& app, server_flags& o, const std::string& group = "server") {
    app.option_defaults()->group(group);
    app.add_option("--listen", o.listen4, "IPv4 address to listen on, or \"none\". Default: 0.0.0.0")->type_name("ADDR");
    app.add_option("--listen6", o.listen6,
                   "IPv6 address to listen on, or \"none\". Default: :: (skipped with a warning if the host has no "
                   "IPv6, unless given explicitly). -4 / -6: one family only")
        ->type_name("ADDR")
        ->expected(0, 1)
        ->each([&o](const std::string&) { o.listen6_given = true; });  // "--listen6" alone: ::, required
    app.add_option_function<std::string>(
           "--auth", [&o](const std::string& s) { o.auth = parse_auth(s); },
           "authentication asked of clients. Default: ecsrp5 when -a is given (the recommended method; RouterOS "
           ">= 6.43), else none")
        ->type_name("none|md5|ecsrp5");
    app.add_flag_callback("--ecsrp5", [&o] { o.auth = btest::auth_method::ec_srp5; }, "same as --auth ecsrp5");
    app.add_option("--max-sessions", o.max_sessions,
                   fmt::format("tests at once; more are refused by closing the connection. Default: {}", o.max_sessions))
        ->type_name("N")
        ->check(integer_in(1, 100000));
    app.add_option("--max-conn-per-ip", o.max_conn_per_ip,
                   fmt::format("live TCP connections from one source address (a multi-connection test counts each of "
                               "its connections); more are closed before the greeting. Default: {} (0 = unlimited)",
                               o.max_conn_per_ip))
        ->type_name("N")
        ->check(integer_in(0, 1000000));
    app.add_option("--max-auth-failures", o.max_auth_failures,
                   fmt::format("failed logins from one source address within a minute before that address is refused "
                               "for a minute. Default: {} (0 = off)",
                               o.max_auth_failures))
        ->type_name("N")
        ->check(integer_in(0, 1000000));
    app.add_option_function<std::string>(
           "--handshake-timeout",
           [&o](const std::string& s) { o.handshake_timeout = parse_seconds(s, "--handshake-timeout"); },
           "time allowed for each handshake step (command, login, join); a silent or slow client is closed after "
           "it. Default: 10")
        ->type_name("SECONDS");
    app.add_option_function<std::string>(
           "--idle-timeout", [&o](const std::string& s) { o.idle_timeout = parse_seconds(s, "--idle-timeout"); },
           "a running test whose peer sends nothing for this long (no data or, for UDP, no status) is ended. "
           "Default: 10")
        ->type_name("SECONDS");
    app.add_option("--max-pending", o.max_pending,
                   "multi-connection tests waiting for their extra connections, per io thread (at most 4 from one "
                   "address). Default: 64")
        ->type_name("N")
        ->check(integer_in(1, 100000));
    app.add_option("--udp-port-start", o.udp_port_start,
                   fmt::format("first UDP port handed to UDP tests. Default: {}", o.udp_port_start))
        ->type_name("PORT")
        ->check(integer_in(1, 65535 - 256));
    app.add_option("--udp-port-end", o.udp_port_end, "last UDP port handed out. Default: 65279")
        ->type_name("PORT")
        ->check(integer_in(1, 65535 - 256));
    app.add_option("--threads", o.threads,
                   "io threads; sessions are spread over them by client IP address. Default: the number of cores")
        ->type_name("N")
        ->check(integer_in(1, 256));
}

/// --no-gso, --no-gro, --no-zerocopy, --zerocopy-everywhere, --no-discard, --timer-granularity into `group`.
inline void add_data_plane_flags(CLI::App& app, data_plane_flags& o, const std::string& group = "data plane") {
    app.option_defaults()->group(group);
    app.add_flag("--no-gso", o.no_gso, "send UDP datagrams one by one (no UDP segmentation offload)");
    app.add_flag("--no-gro", o.no_gro, "receive UDP datagrams one by one (no UDP receive offload)");
    auto* no_zc = app.add_flag("--no-zerocopy", o.no_zerocopy,
                               "copy every TCP byte sent from user memory (by default zero-filled chunks sent to a "
                               "peer on this host leave by sendfile() from a file of zeros, sent by reference)");
    app.add_flag("--zerocopy-everywhere", o.zerocopy_everywhere,
                 "send zero-filled TCP chunks by reference to peers on other hosts too (by default only to this "
                 "host's own addresses: over a veth pair it was slower than copying)")
        ->excludes(no_zc);
    app.add_flag("--no-discard", o.no_discard,
                 "copy out every TCP byte received (by default chunk payload that cannot hold a STATUS is "
                 "dropped in the kernel with MSG_TRUNC, counted but not copied)");
    app.add_option("--timer-granularity", o.timer_granularity_us,
                   "a paced sender wakes at most this often and sends what fell due meanwhile. Default: 500 (0: "
                   "every deadline)")
        ->type_name("MICROSECONDS")
        ->check(integer_in(0, 100000));
}

/// -i, -q, -v, and (`files`) --json, --csv, --syslog into `group`.
inline void add_output_flags(CLI::App& app, output_flags& o, audience who, const std::string& group = "output",
                             bool files = true) {
    const bool both = who == audience::client_and_server;
    app.option_defaults()->group(group);
    app.add_option_function<std::string>(
           "-i,--interval",
           [&o](const std::string& s) {
               o.interval = parse_interval(s, "--interval");
               if (o.interval < std::chrono::milliseconds(20) || o.interval > std::chrono::milliseconds(5000))
                   throw usage_error("--interval must be between 0.02 and 5 seconds");
           },
           "report interval, 0.02..5 s (\"0.5\", \"500ms\"). Default: 1")
        ->type_name("SECONDS");
    app.add_flag("-q,--quiet", o.quiet,
                 both ? "no per-interval lines (client) / no session lines (server)" : "no session lines");
    app.add_flag("-v,--verbose", o.verbose,
                 "more: connection and session details, server interval lines; -vv also hex-dumps control traffic "
                 "to stderr");
    if (!files) return;
    app.add_flag("--json", o.json,
                 "JSON lines on stdout instead of text: one object per interval per direction, one summary per test, "
                 "and error objects");
    app.add_option("--csv", o.csv_path, "append interval and summary rows to FILE (header written once)")->type_name("FILE");
    app.add_option("--syslog", o.syslog,
                   "RFC 5424 messages over UDP (port 514 if omitted): test start, test end, authentication "
                   "success/failure")
        ->type_name("HOST:PORT");
}

/// After parsing: -a without -p takes the password from the environment (password_env).
inline void read_password_from_env(shared_flags& s) {
    if (!s.user || s.password) return;
    if (const char* p = std::getenv(password_env)) s.password = p;
}

/// Rules between server flags, checked after parsing.
inline void check_server_flags(const shared_flags& s, server_flags& o) {
    if (o.listen6 && o.listen6->empty()) o.listen6.reset();  // "--listen6" without an address
    if (s.only_v4 && s.only_v6) throw usage_error("-4 and -6 exclude each other");
    const auto auth = o.auth.value_or(s.user ? btest::auth_method::ec_srp5 : btest::auth_method::none);
    if (auth != btest::auth_method::none && !s.user) throw usage_error("--auth md5/ecsrp5 needs -a USER and -p PASSWORD");
    if (s.password && !s.user) throw usage_error("-p needs -a USER");
    if (o.udp_port_end && *o.udp_port_end < o.udp_port_start) throw usage_error("--udp-port-end is below --udp-port-start");
}

} // namespace btest_cli
