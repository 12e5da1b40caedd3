// btest-server-pro: the multi-user btest server (`serve`) and its management commands
// (accounts, quotas, session history).
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "btest/version.hpp"
#include "btest_cli/doc.hpp"
#include "commands.hpp"
#include "serve.hpp"

namespace {

constexpr const char* db_help =
    "Database URL. sqlite:PATH is an SQLite file (created by `user add`; relative paths are taken from the "
    "working directory). postgresql://USER:PASSWORD@HOST:PORT/DBNAME (or postgres://, any libpq connection URI) "
    "is a PostgreSQL database shared by a fleet of servers: the database must exist, its tables are created by "
    "`user add` or `serve`. Given twice, the last wins. Default: sqlite:btest-server.db";

constexpr const char* bytes_help =
    "BYTES take the suffixes K, M, G and T in powers of 1000 (as RouterOS shows bytes): 2G = 2,000,000,000 bytes; "
    "fractions that give whole bytes are fine (1.5G).";

constexpr const char* main_footer = R"(DATABASE
  Every subcommand takes --db URL (default sqlite:btest-server.db; or postgresql://USER:PASSWORD@HOST/DB
  for a fleet of servers sharing one PostgreSQL database). The management commands can run while
  servers use the same database (SQLite in WAL mode, 5 s busy timeout); account changes reach a running
  server at its next login, without a restart. Prefer PGPASSWORD or ~/.pgpass to a password in the URL:
  a command-line argument is visible to other users in the process list.

QUOTAS
  Per user (from the account) and per client IP (from the server's --ip-quota-* flags), in daily,
  weekly and monthly windows. Windows are calendar periods in UTC: days start at 00:00Z, weeks on
  Monday 00:00Z (ISO 8601), months on the 1st. Directions are the server's: in = client -> server,
  out = server -> client, total = both. When a user quota and an IP quota both apply, the tighter
  one wins.

EXIT STATUS
  0  success
  1  usage error: a bad option or value (nothing was changed)
  2  storage error: the database could not be opened, read or written (missing, read-only,
     damaged, newer than this build, or locked past the busy timeout)
  3  the request does not fit the data: no such user, or the name is taken

Examples:
  btest-server-pro user add btest -p btest --md5
  printf '%s\n' "$PASSWORD" | btest-server-pro user add alice --password-stdin --quota-monthly 100G
  btest-server-pro user set alice --quota-daily 5G --quota-monthly none
  btest-server-pro quota show --ip 192.0.2.7
  btest-server-pro sessions --since 24h --json)";

constexpr const char* password_footer = R"(Accounts and passwords:
  Every account logs in with EC-SRP5, and for EC-SRP5 the database stores only a salted validator
  record (salt, x_gamma, parity), never the password: someone who steals the database cannot log in
  with it and must guess each password offline.
  --md5 also allows MD5 challenge-response, which older RouterOS versions (before 6.43) use. MD5
  needs the password itself at every login, so an MD5 account's password is stored in the database
  in the clear: weaker. Use --md5 only for accounts that must serve old clients (e.g. a public
  btest/btest account).
  Prefer --password-stdin (or the prompt, when stdin is a terminal) to -p: a command-line argument
  is visible to other users in the process list.
  User names: 1 to 32 bytes of UTF-8 without control characters (32 bytes is what the MD5 login
  carries), compared exactly.)";

constexpr const char* serve_footer = R"(A PUBLIC SERVER
  Every test a client starts is admitted by the database: its user (after EC-SRP5 or MD5
  authentication, or none with --auth none) and its client address must both have quota left in
  every window (the tighter limit wins); the test then runs with that budget and ends as
  quota_exhausted when it is spent (the client sees the server close the test). Usage is written
  while tests run (every 2 s) and at their end; every test is a row of `btest-server-pro sessions`.
  Tests longer than --max-duration end as max_duration. Account changes (user add/set/del) reach
  a running server within a second, quota changes at the next test: no restart.

  A public server in two commands:
    btest-server-pro user add btest -p btest --md5           # the published account, MD5-capable
    btest-server-pro serve --auth md5 \
        --ip-quota-daily 2G --ip-quota-weekly 8G --ip-quota-monthly 24G
  (EC-SRP5 is safer; --auth md5 serves old RouterOS, and only accounts added with --md5.)

DASHBOARD, API AND METRICS
  --http 127.0.0.1:8080 serves a dashboard (/), a JSON API (/api/v1/info, live, sessions,
  sessions/ID, quota, users) and Prometheus metrics (/metrics). A visitor sees only its own
  address's tests and quota; everything else needs the token of --admin-token-file sent as
  "Authorization: Bearer TOKEN". Reference: docs/dashboard.md.

EXIT STATUS
  0 stopped by SIGINT/SIGTERM; 1 usage error; 2 the database or the listening port could not be used.)";

void add_db(CLI::App* app, std::string& db) {
    db = "sqlite:btest-server.db";
    // The last one wins: the systemd unit names its database and an options file may override it.
    app->add_option("--db", db, db_help)->type_name("URL")->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

void add_quota_flags(CLI::App* app, pro_cli::quota_args& q, bool allow_none) {
    static constexpr const char* windows[3] = {"daily", "weekly", "monthly"};
    static constexpr const char* dirs[3] = {"in", "out", ""};
    for (std::size_t w = 0; w < 3; ++w)
        for (std::size_t d = 0; d < 3; ++d) {
            const std::string flag = d == 2 ? fmt::format("--quota-{}", windows[w])
                                            : fmt::format("--quota-{}-{}", dirs[d], windows[w]);
            std::string help = d == 2 ? fmt::format("{} quota, both directions together", windows[w])
                                      : fmt::format("{} quota of the {} direction ({})", windows[w], dirs[d],
                                                    d == 0 ? "client -> server" : "server -> client");
            if (allow_none) help += "; 'none' removes it";
            auto* opt = app->add_option_function<std::string>(
                flag, [&slot = q[w][d]](const std::string& v) { slot = v; }, help);
            opt->type_name(allow_none ? "BYTES|none" : "BYTES");
        }
}

void add_password_flags(CLI::App* app, pro_cli::password_args& pw) {
    auto* p = app->add_option_function<std::string>(
        "-p,--password", [&pw](const std::string& v) { pw.password = v; },
        "the password (visible in the process list: prefer --password-stdin)");
    p->type_name("PASS");
    auto* s = app->add_flag("--password-stdin", pw.from_stdin, "read the password from the first line of standard input");
    p->excludes(s);
}

} // namespace

int main(int argc, char** argv) {
    CLI::App app{"btest-server-pro: a multi-user MikroTik Bandwidth Test server: accounts, quotas and session history.",
                 "btest-server-pro"};
    app.footer(main_footer);
    app.require_subcommand(1);
    app.set_version_flag("-V,--version", fmt::format("btest-server-pro {} (btestkit)", btest::version_string));
    app.get_formatter()->column_width(34);

    // serve
    pro_serve::serve_args sv;
    auto* serve_cmd = app.add_subcommand(
        "serve", "Run the server: btest tests for the accounts and within the quotas of the database.");
    pro_serve::add_serve_flags(*serve_cmd, sv);
    add_db(serve_cmd, sv.db);
    serve_cmd->footer(std::string(bytes_help) + "\n\n" + serve_footer);
    bool serve_help_man = false;  // hidden: the man page's OPTIONS section (cmake/man.cmake)
    serve_cmd->add_flag("--help-man", serve_help_man, "the man page's OPTIONS section (roff)")->group("");

    // user ...
    auto* user = app.add_subcommand("user", "Manage accounts: add, set, del, list.");
    user->require_subcommand(1);
    user->footer(password_footer);

    pro_cli::user_add_args add;
    auto* add_cmd = user->add_subcommand("add", "Add an account (EC-SRP5 always; MD5 only with --md5).");
    add_cmd->add_option("NAME", add.name, "the user name (1-32 bytes of UTF-8, no control characters)")->required();
    add_password_flags(add_cmd, add.pw);
    add_cmd->add_flag("--md5", add.md5,
                      "also allow MD5 logins (older RouterOS): stores the password in the clear, see below");
    add_quota_flags(add_cmd, add.quotas, false);
    add_db(add_cmd, add.db);
    add_cmd->footer(std::string(bytes_help) + "\n\n" + password_footer +
                    "\n\nWithout a password flag, the password is asked for on the terminal.");

    pro_cli::user_set_args set;
    auto* set_cmd = user->add_subcommand("set", "Change an account's password, MD5 capability or quotas.");
    set_cmd->add_option("NAME", set.name, "the user name")->required();
    add_password_flags(set_cmd, set.pw);
    auto* md5_on = set_cmd->add_flag("--md5", set.md5, "allow MD5 logins (needs the password if none is stored)");
    auto* md5_off = set_cmd->add_flag("--no-md5", set.no_md5, "disallow MD5 logins and forget the stored password");
    md5_on->excludes(md5_off);
    add_quota_flags(set_cmd, set.quotas, true);
    add_db(set_cmd, set.db);
    set_cmd->footer(std::string(bytes_help) +
                    "\nOnly what is given changes. A new password gets a new salt; an MD5 account keeps MD5 with it."
                    "\n\n" + password_footer);

    pro_cli::user_del_args del;
    auto* del_cmd = user->add_subcommand("del", "Delete an account (its usage in the current periods is kept).");
    del_cmd->add_option("NAME", del.name, "the user name")->required();
    add_db(del_cmd, del.db);

    pro_cli::user_list_args list;
    auto* list_cmd = user->add_subcommand("list", "List accounts with their login methods and quotas.");
    list_cmd->add_flag("--json", list.json,
                       "one JSON object per line: name, methods ([\"ecsrp5\"] or [\"ecsrp5\",\"md5\"]), "
                       "quotas {daily|weekly|monthly: {in, out, total}} in bytes (null = no limit), created, updated");
    add_db(list_cmd, list.db);

    // quota show
    auto* quota = app.add_subcommand("quota", "Show quota usage.");
    quota->require_subcommand(1);
    pro_cli::quota_show_args qs;
    auto* show = quota->add_subcommand("show", "Show the limits, usage and what is left of an IP or a user.");
    auto* ip_opt = show->add_option_function<std::string>(
        "--ip", [&qs](const std::string& v) { qs.ip = v; }, "a client address (IPv4 or IPv6)");
    ip_opt->type_name("IP");
    auto* user_opt = show->add_option_function<std::string>(
        "--user", [&qs](const std::string& v) { qs.user = v; }, "an account name");
    user_opt->type_name("NAME");
    ip_opt->excludes(user_opt);
    show->add_flag("--json", qs.json,
                   "one JSON object per (window, direction): ip or user, window (daily/weekly/monthly), direction "
                   "(in/out/total), limit_bytes, used_bytes, reserved_bytes (held by running tests), remaining_bytes "
                   "(null = no limit), period_start, period_end");
    add_db(show, qs.db);
    show->footer("Windows are calendar periods in UTC; weeks start on Monday. remaining = limit - used - reserved. "
                 "IP limits are those the last `serve` stored from its --ip-quota-* flags.");

    // sessions
    pro_cli::sessions_args ss;
    auto* sessions = app.add_subcommand("sessions", "List past and running tests, newest first.");
    sessions->add_option_function<std::string>(
        "--ip", [&ss](const std::string& v) { ss.ip = v; }, "only tests from this client address")->type_name("IP");
    sessions->add_option_function<std::string>(
        "--user", [&ss](const std::string& v) { ss.user = v; }, "only tests of this account")->type_name("NAME");
    sessions->add_option_function<std::string>(
        "--since", [&ss](const std::string& v) { ss.since = v; },
        "only tests that started at or after TIME: ISO 8601 (2024-05-01, 2024-05-01T12:00:00Z, "
        "2024-05-01T14:00+02:00; no offset = UTC) or a time before now (90s, 30m, 24h, 7d, 2w)")->type_name("TIME");
    sessions->add_option("--limit", ss.limit, "at most N rows (0 = all)")->type_name("N");
    sessions->add_flag("--json", ss.json,
                       "one JSON object per line: id, start, end (ISO 8601 UTC; end null while running), duration_s, "
                       "peer (ip:port), user, protocol, direction (client's view), connections, tx_bytes (server -> "
                       "client), rx_bytes, tx_bits_per_second, rx_bits_per_second, lost_packets, ended_by, error, "
                       "refused, tx_speed_requested, rx_speed_requested");
    add_db(sessions, ss.db);
    sessions->footer("ended_by: peer_closed (the client ended it), max_duration, quota_exhausted (cut off, or refused "
                     "at start when refused is true), quota_unavailable, stopped, failure, server_lost (the server "
                     "died; bytes up to its last flush).");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        // Help of the subcommand that was asked for (CLI11 formats the innermost one).
        std::fputs(app.help().c_str(), stdout);
        return pro_cli::exit_ok;
    } catch (const CLI::CallForAllHelp&) {
        std::fputs(app.help("", CLI::AppFormatMode::All).c_str(), stdout);
        return pro_cli::exit_ok;
    } catch (const CLI::CallForVersion& v) {
        std::fputs((std::string(v.what()) + "\n").c_str(), stdout);
        return pro_cli::exit_ok;
    } catch (const btest_cli::usage_error& e) {  // a value the shared flags' parsers refused
        pro_cli::error(e.what());
        fmt::print(stderr, "btest-server-pro: see --help (also after a subcommand: `btest-server-pro serve --help`)\n");
        return pro_cli::exit_usage;
    } catch (const CLI::ParseError& e) {
        pro_cli::error(e.what());
        fmt::print(stderr, "btest-server-pro: see --help (also after a subcommand: `btest-server-pro user add --help`)\n");
        return pro_cli::exit_usage;
    }

    if (serve_help_man) {
        std::fputs(btest_cli::man_options(*serve_cmd).c_str(), stdout);
        return pro_cli::exit_ok;
    }
    if (*serve_cmd) return pro_serve::serve(sv);
    if (*add_cmd) return pro_cli::user_add(add);
    if (*set_cmd) return pro_cli::user_set(set);
    if (*del_cmd) return pro_cli::user_del(del);
    if (*list_cmd) return pro_cli::user_list(list);
    if (*show) return pro_cli::quota_show(qs);
    if (*sessions) return pro_cli::sessions(ss);
    pro_cli::error("no subcommand (see --help)");
    return pro_cli::exit_usage;
}
