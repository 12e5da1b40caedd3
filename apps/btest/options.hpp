// Command line of the btest CLI: flags compatible with the common btest tools, plus RouterOS's
// own vocabulary. Each flag is declared once (CLI11): its declaration gives parsing, --help, the
// man page's OPTIONS and its mode (the group it is declared in). Parsing only; no I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "btest_cli/doc.hpp"
#include "btest_cli/flags.hpp"
#include "btest_cli/values.hpp"

namespace btest_cli {

enum class run_mode { none, server, client };

struct options : shared_flags, server_flags, data_plane_flags, output_flags {
    run_mode mode = run_mode::none;
    std::string host;
    bool transmit = false;
    bool receive = false;
    bool udp = false;
    std::optional<std::uint64_t> local_tx_speed;
    std::optional<std::uint64_t> remote_tx_speed;
    bool nat = false;
    double duration_s = 10;
    std::uint32_t connection_count = 1;
    std::optional<std::uint16_t> tx_size;
    bool random_data = false;
    bool help = false;
    bool help_man = false;  ///< hidden: print the man page's OPTIONS section (roff)
    bool version = false;
};

// The groups are the mode rules: options of group_client are refused with -s, those of
// group_server with -c; the others work in both modes.
inline constexpr const char* group_mode = "mode";
inline constexpr const char* group_client = "test (client)";
inline constexpr const char* group_both = "client and server";
inline constexpr const char* group_server = "server";
inline constexpr const char* group_data_plane = "data plane (both modes)";
inline constexpr const char* group_output = "output (both modes)";

inline constexpr const char* usage_text =
    "usage: btest -c HOST [options]     run a test against a btest server (e.g. /tool bandwidth-server)\n"
    "       btest -s [options]          serve tests (e.g. for /tool bandwidth-test)\n";

inline constexpr const char* exit_status_text =
    "exit status: 0 test ran to its end (duration or Ctrl-C), 1 usage error,\n"
    "             2 connection/handshake failure or test cut short, 3 authentication failure\n";

/// The whole btest command line, bound to `o`.
class command_line {
public:
    command_line() : app_(usage_text, "btest") {
        app_.formatter(std::make_shared<help_formatter>());
        app_.footer(exit_status_text);
        app_.set_help_flag();  // -h is an ordinary flag below, so that it is listed in its group
        app_.allow_extras();   // unknown options are reported in btest's words (parse())
        app_.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
        options& o = opt_;

        app_.option_defaults()->group(group_mode);
        client_ = app_.add_option("-c,--client", o.host,
                                  "connect to HOST (name, IPv4 or IPv6 address; [::1] works too)")
                      ->type_name("HOST");
        server_ = app_.add_flag("-s,--server")->description("listen for tests");

        app_.option_defaults()->group(group_client);
        app_.add_flag("-t,--transmit", o.transmit, "this side sends (RouterOS direction=transmit)");
        app_.add_flag("-r,--receive", o.receive,
                      "the server sends (direction=receive); -t -r = both directions. Default: receive");
        app_.add_flag("-u,--udp", o.udp, "UDP test (default: TCP)");
        app_.add_option_function<std::string>(
                "--local-tx-speed", [&o](const std::string& s) { o.local_tx_speed = parse_rate(s, "--local-tx-speed"); },
                "cap on what this client sends, bit/s (overrides -b)")
            ->type_name("RATE");
        app_.add_option_function<std::string>(
                "--remote-tx-speed",
                [&o](const std::string& s) { o.remote_tx_speed = parse_rate(s, "--remote-tx-speed"); },
                "cap asked of the server's sending, bit/s (overrides -b)")
            ->type_name("RATE");
        app_.add_option_function<std::string>(
                "-d,--duration",
                [&o](const std::string& s) {
                    o.duration_s = parse_number(s, "--duration");
                    if (o.duration_s < 0) throw usage_error("--duration must be ≥ 0 (0 = until Ctrl-C)");
                },
                fmt::format("test length in seconds; 0 = until Ctrl-C. Default: {:g}", o.duration_s))
            ->type_name("SECONDS");
        app_.add_option("--connection-count", o.connection_count,
                        fmt::format("TCP connections (joined with a token) or UDP streams. Default: {} (RouterOS "
                                    "uses 20)",
                                    o.connection_count))
            ->type_name("N")
            ->check(integer_in(1, 255));
        app_.add_option("--tx-size", o.tx_size,
                        "UDP: datagram size incl. IP and UDP headers, both ways (default 1500). TCP: chunk size "
                        "(default 32768)")
            ->type_name("BYTES")
            ->check(integer_in(28, 64000));
        app_.add_flag("--random-data", o.random_data, "random payload instead of zeros (RouterOS random-data=yes)");
        app_.add_flag("-n,--nat", o.nat, "send one empty datagram per UDP stream first, to open NAT state");

        add_shared_flags(app_, o, audience::client_and_server, group_both);
        add_server_flags(app_, o, group_server);
        add_data_plane_flags(app_, o, group_data_plane);
        add_output_flags(app_, o, audience::client_and_server, group_output);
        app_.add_flag("-h,--help", o.help, "this help");
        app_.add_flag("-V,--version", o.version, "version, revision, build and data-plane features");
        app_.add_flag("--help-man", o.help_man, "the man page's OPTIONS section (roff)")->group("");
    }
    command_line(const command_line&) = delete;
    command_line& operator=(const command_line&) = delete;

    /// Parses and checks argv; throws usage_error (or a CLI::ParseError, see usage_message()).
    const options& parse(int argc, const char* const* argv) {
        app_.parse(argc, argv);
        if (const auto extra = app_.remaining(); !extra.empty())
            throw usage_error(extra.front().rfind('-', 0) == 0 ? "unknown option '" + extra.front() + "'"
                                                               : "unexpected argument '" + extra.front() + "'");
        options& o = opt_;
        if (o.help || o.version || o.help_man) return o;
        if (server_->count() && client_->count()) throw usage_error("-s and -c exclude each other");
        o.mode = server_->count() ? run_mode::server : client_->count() ? run_mode::client : run_mode::none;
        if (o.mode == run_mode::none) throw usage_error("choose a mode: -s (server) or -c HOST (client)");
        // A flag of the other mode's group is a mistake worth naming.
        const char* other = o.mode == run_mode::server ? group_client : group_server;
        for (const CLI::Option* opt : app_.get_options())
            if (opt->count() && opt->get_group() == other)
                throw usage_error(fmt::format("{} is a {} option", display_name(*opt),
                                              o.mode == run_mode::server ? "client (-c)" : "server (-s)"));
        if (o.only_v4 && o.only_v6) throw usage_error("-4 and -6 exclude each other");
        read_password_from_env(o);
        if (o.mode == run_mode::client) {
            if (o.host.empty()) throw usage_error("-c needs a host");
            if (o.password && !o.user) throw usage_error("-p needs -a USER");
        } else {
            check_server_flags(o, o);
        }
        return o;
    }

    std::string help() const { return app_.help(); }
    std::string man_options() const { return btest_cli::man_options(app_); }

    /// btest's wording for a CLI11 parse error (a value missing, a value out of range, ...).
    static std::string usage_message(const CLI::ParseError& e) {
        const std::string what = e.what();
        if (dynamic_cast<const CLI::ArgumentMismatch*>(&e)) {
            // "--client: 1 required HOST missing"
            return "option " + what.substr(0, what.find(':')) + " needs a value";
        }
        return what;
    }

private:
    static std::string display_name(const CLI::Option& o) {
        std::string n;
        for (const auto& s : o.get_snames()) n += (n.empty() ? "-" : "/-") + s;
        for (const auto& l : o.get_lnames()) n += (n.empty() ? "--" : "/--") + l;
        return n;
    }

    options opt_;
    CLI::App app_;
    CLI::Option* client_ = nullptr;
    CLI::Option* server_ = nullptr;
};

} // namespace btest_cli
