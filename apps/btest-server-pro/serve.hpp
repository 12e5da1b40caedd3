// `btest-server-pro serve`: the public multi-user server — the shared server of btest -s (every
// server and data-plane flag of it) over the accounts, quotas and history of the database.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "btest_cli/flags.hpp"

namespace pro_serve {

struct serve_args : btest_cli::shared_flags, btest_cli::server_flags, btest_cli::data_plane_flags, btest_cli::output_flags {
    std::string db;
    /// --ip-quota-…: [window][direction] as typed; direction 0 in, 1 out, 2 total.
    std::array<std::array<std::optional<std::string>, 3>, 3> ip_quotas;
    double max_duration_s = 300;
    std::vector<std::string> allow;
    std::vector<std::string> deny;
    unsigned keep_days = 90;
    std::string lease_slice = "100M";
    double lease_expiry_s = 60;
    std::string server_id;
    std::string http;              ///< --http ADDR:PORT; empty: no HTTP
    std::string admin_token_file;  ///< --admin-token-file
    std::string chart_js = "/usr/share/javascript/chart.js/chart.min.js";
};

/// Declares the subcommand's flags on `cmd`.
void add_serve_flags(CLI::App& cmd, serve_args& a);

/// Runs the server until SIGINT/SIGTERM; returns the exit status.
int serve(serve_args& a);

} // namespace pro_serve
