#include "commands.hpp"

#include <cstdio>
#include <iostream>
#include <memory>
#include <vector>

#include <botan/mem_ops.h>
#include <botan/system_rng.h>
#include <fmt/core.h>
#include <termios.h>
#include <unistd.h>

#include "btest/auth/botan_entropy.hpp"
#include "btest/pro/accounts.hpp"
#include "btest/pro/byte_size.hpp"
#include "btest/pro/cidr.hpp"
#include "btest/pro/json_rows.hpp"
#include "btest/pro/json_writer.hpp"
#include "btest/pro/ledger.hpp"
#include "btest/pro/storage.hpp"
#include "btest/pro/user_name.hpp"
#include "btest/pro/utc_time.hpp"

namespace pro_cli {

namespace pro = btest::pro;

void error(const std::string& message) { fmt::print(stderr, "btest-server-pro: {}\n", message); }

namespace {

/// A string that wipes itself (passwords read from the user).
struct secret {
    std::string value;
    secret() = default;
    secret(const secret&) = delete;
    secret& operator=(const secret&) = delete;
    ~secret() { Botan::secure_scrub_memory(value.data(), value.size()); }
};

constexpr std::size_t max_password_bytes = 1024;

/// Text from the database or the user, safe to print on a terminal: control characters and
/// bytes that are not UTF-8 are shown as escapes.
std::string printable(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            std::size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
            if (n && i + n <= s.size() && pro::valid_utf8(s.substr(i, n))) {
                out.append(s.substr(i, n));
                i += n;
                continue;
            }
        }
        if (c < 0x20 || c == 0x7f || c >= 0x80)
            out += fmt::format("\\x{:02x}", c);
        else
            out += static_cast<char>(c);
        ++i;
    }
    return out;
}

std::unique_ptr<pro::storage> open_db(const std::string& url, bool create) {
    pro::open_options o;
    o.create = create;
    return pro::open_storage(url, o);
}

/// Runs `body`, turning a storage_error into its message and exit_storage.
template <class F>
int guarded(F&& body) {
    try {
        return body();
    } catch (const pro::storage_error& e) {
        error(e.what());
        if (e.code() == pro::storage_errc::not_found)
            fmt::print(stderr, "btest-server-pro: (create it with `btest-server-pro user add` or `serve`, or pass --db)\n");
        return exit_storage;
    }
}

bool check_name(std::string_view name) {
    if (auto why = pro::user_name_problem(name)) {
        error(fmt::format("invalid user name '{}': it {}", printable(name), *why));
        return false;
    }
    return true;
}

/// Parses the quota flags: into `limits` (add) or `change` (set, where "none" removes a limit).
bool parse_quotas(const quota_args& args, bool allow_none, pro::quota_limits* limits, pro::account_change* change) {
    static constexpr const char* flag[3][3] = {
        {"--quota-in-daily", "--quota-out-daily", "--quota-daily"},
        {"--quota-in-weekly", "--quota-out-weekly", "--quota-weekly"},
        {"--quota-in-monthly", "--quota-out-monthly", "--quota-monthly"},
    };
    for (std::size_t w = 0; w < 3; ++w)
        for (std::size_t d = 0; d < 3; ++d) {
            const auto& text = args[w][d];
            if (!text) continue;
            std::optional<std::uint64_t> value;
            if (*text == "none") {
                if (!allow_none) {
                    error(fmt::format("{} none: 'none' removes a limit with `user set`; leave the flag out here",
                                      flag[w][d]));
                    return false;
                }
            } else {
                std::string why;
                value = pro::parse_byte_size(*text, &why);
                if (!value) {
                    error(fmt::format("{}: {}", flag[w][d], why));
                    return false;
                }
            }
            if (limits) limits->set(static_cast<pro::window>(w), static_cast<pro::quota_dir>(d), value);
            if (change) change->quotas[w][d] = value;
        }
    return true;
}

/// One line from stdin or the terminal: the password. false (with a message) on failure.
bool read_password(const password_args& a, std::string_view name, bool required, secret& out, bool& given) {
    given = false;
    if (a.password && a.from_stdin) {
        error("give the password either with -p or with --password-stdin, not both");
        return false;
    }
    if (a.password) {
        out.value = *a.password;
        given = true;
    } else if (a.from_stdin) {
        std::string line;
        int c = 0;
        bool any = false;
        while ((c = std::getchar()) != EOF) {
            any = true;
            if (c == '\n') break;
            line += static_cast<char>(c);
            if (line.size() > max_password_bytes) break;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        out.value = std::move(line);
        Botan::secure_scrub_memory(line.data(), line.size());
        if (!any) {
            error("--password-stdin: nothing on standard input (an empty password is an empty line)");
            return false;
        }
        given = true;
    } else if (required) {
        if (!::isatty(STDIN_FILENO)) {
            error("no password: give one with --password-stdin (recommended: not visible in the process list) or -p");
            return false;
        }
        // Interactive: twice, without echo.
        auto ask = [](const std::string& prompt, std::string& into) {
            fmt::print(stderr, "{}", prompt);
            std::fflush(stderr);
            termios old{};
            const bool tty = ::tcgetattr(STDIN_FILENO, &old) == 0;
            if (tty) {
                termios quiet = old;
                quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
                ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
            }
            int c = 0;
            while ((c = std::getchar()) != EOF && c != '\n' && into.size() <= max_password_bytes) into += static_cast<char>(c);
            if (tty) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
            fmt::print(stderr, "\n");
        };
        secret again;
        ask(fmt::format("password for {}: ", printable(name)), out.value);
        ask("again: ", again.value);
        if (out.value != again.value) {
            error("the passwords differ; nothing was changed");
            return false;
        }
        given = true;
    }
    if (given && out.value.size() > max_password_bytes) {
        error(fmt::format("the password is longer than {} bytes", max_password_bytes));
        return false;
    }
    return true;
}

std::string limits_text(const pro::quota_limits& q) {
    std::string s;
    for (auto w : pro::all_windows)
        for (auto d : pro::all_quota_dirs)
            if (auto v = q.get(w, d)) {
                if (!s.empty()) s += ", ";
                s += fmt::format("{}{} {}", pro::to_string(w), d == pro::quota_dir::total ? "" : fmt::format(" {}", pro::to_string(d)),
                                 pro::format_byte_size(*v));
            }
    return s.empty() ? "-" : s;
}

std::string rate_text(std::uint64_t bps) { return fmt::format("{:.2f} Mbit/s", static_cast<double>(bps) / 1e6); }

} // namespace

int user_add(const user_add_args& a) {
    if (!check_name(a.name)) return exit_usage;
    pro::quota_limits limits;
    if (!parse_quotas(a.quotas, false, &limits, nullptr)) return exit_usage;
    secret pw;
    bool given = false;
    if (!read_password(a.pw, a.name, true, pw, given)) return exit_usage;
    return guarded([&] {
        auto db = open_db(a.db, true);
        Botan::System_RNG sys;
        btest::auth::botan_entropy rng{sys};
        auto acc = pro::make_account(a.name, pw.value, a.md5, limits, rng, pro::utc_now());
        const auto st = pro::add_account(*db, acc);
        if (acc.md5_password) Botan::secure_scrub_memory(acc.md5_password->data(), acc.md5_password->size());
        if (st == pro::account_status::exists) {
            error(fmt::format("user '{}' already exists (change it with `user set`)", printable(a.name)));
            return exit_conflict;
        }
        fmt::print("added user '{}' ({}), quota: {}\n", printable(a.name), a.md5 ? "EC-SRP5 and MD5" : "EC-SRP5",
                   limits_text(limits));
        return exit_ok;
    });
}

int user_set(const user_set_args& a) {
    if (!check_name(a.name)) return exit_usage;
    if (a.md5 && a.no_md5) {
        error("--md5 and --no-md5 contradict each other");
        return exit_usage;
    }
    pro::account_change change;
    if (!parse_quotas(a.quotas, true, nullptr, &change)) return exit_usage;
    if (a.md5) change.md5 = true;
    if (a.no_md5) change.md5 = false;
    secret pw;
    bool given = false;
    if (!read_password(a.pw, a.name, false, pw, given)) return exit_usage;
    if (given) change.password = pw.value;
    if (change.empty()) {
        error("nothing to change: give a new password, --md5/--no-md5 or quota flags (see `user set --help`)");
        if (change.password) Botan::secure_scrub_memory(change.password->data(), change.password->size());
        return exit_usage;
    }
    const int rc = guarded([&] {
        auto db = open_db(a.db, false);
        Botan::System_RNG sys;
        btest::auth::botan_entropy rng{sys};
        switch (pro::change_account(*db, a.name, change, rng, pro::utc_now())) {
        case pro::account_status::ok: break;
        case pro::account_status::not_found:
            error(fmt::format("no user '{}'", printable(a.name)));
            return exit_conflict;
        case pro::account_status::md5_needs_password:
            error(fmt::format("user '{}' has no stored password: --md5 needs the password again (-p or --password-stdin)",
                              printable(a.name)));
            return exit_usage;
        default:
            error("nothing to change");
            return exit_usage;
        }
        auto acc = db->find_account(a.name);
        fmt::print("changed user '{}' ({}), quota: {}\n", printable(a.name),
                   acc && acc->md5() ? "EC-SRP5 and MD5" : "EC-SRP5", acc ? limits_text(acc->quotas) : "-");
        return exit_ok;
    });
    if (change.password) Botan::secure_scrub_memory(change.password->data(), change.password->size());
    return rc;
}

int user_del(const user_del_args& a) {
    if (!check_name(a.name)) return exit_usage;
    return guarded([&] {
        auto db = open_db(a.db, false);
        if (pro::delete_account(*db, a.name) == pro::account_status::not_found) {
            error(fmt::format("no user '{}'", printable(a.name)));
            return exit_conflict;
        }
        fmt::print("deleted user '{}'\n", printable(a.name));
        return exit_ok;
    });
}

int user_list(const user_list_args& a) {
    return guarded([&] {
        auto db = open_db(a.db, false);
        const auto accounts = db->list_accounts();
        if (a.json) {
            for (const auto& acc : accounts) {
                pro::json_writer j;
                pro::write_account(j, acc);
                fmt::print("{}\n", j.str());
            }
            return exit_ok;
        }
        if (accounts.empty()) {
            fmt::print("no users\n");
            return exit_ok;
        }
        fmt::print("{:<32}  {:<10}  {}\n", "NAME", "METHODS", "QUOTA");
        for (const auto& acc : accounts) {
            std::string m;
            for (auto x : pro::methods(acc)) m += (m.empty() ? "" : ",") + std::string(x);
            fmt::print("{:<32}  {:<10}  {}\n", printable(acc.name), m, limits_text(acc.quotas));
        }
        return exit_ok;
    });
}

int quota_show(const quota_show_args& a) {
    if (a.ip.has_value() == a.user.has_value()) {
        error("quota show needs exactly one of --ip IP or --user NAME");
        return exit_usage;
    }
    pro::subject who;
    if (a.ip) {
        std::string why;
        auto ip = pro::parse_ip(*a.ip, &why);
        if (!ip) {
            error(why);
            return exit_usage;
        }
        who = {pro::subject_kind::ip, ip->to_string()};
    } else {
        if (!check_name(*a.user)) return exit_usage;
        who = {pro::subject_kind::user, *a.user};
    }
    return guarded([&] {
        auto db = open_db(a.db, false);
        pro::ledger l{pro::ledger_config{}};
        auto lines = l.quota_report(*db, who, pro::utc_now());
        if (!lines) {
            error(fmt::format("no user '{}'", printable(who.key)));
            return exit_conflict;
        }
        const char* kind = who.kind == pro::subject_kind::ip ? "ip" : "user";
        if (a.json) {
            for (const auto& q : *lines) {
                pro::json_writer j;
                pro::write_quota_line(j, who, q);
                fmt::print("{}\n", j.str());
            }
            return exit_ok;
        }
        fmt::print("{} {} (windows in UTC; weeks start on Monday)\n", kind, printable(who.key));
        fmt::print("{:<8} {:<5}  {:>10}  {:>10}  {:>10}  {:>10}  {}\n", "WINDOW", "DIR", "LIMIT", "USED", "RESERVED",
                   "REMAINING", "PERIOD (UTC)");
        for (const auto& q : *lines) {
            fmt::print("{:<8} {:<5}  {:>10}  {:>10}  {:>10}  {:>10}  {} .. {}\n", pro::to_string(q.win),
                       pro::to_string(q.dir), q.limit ? pro::format_byte_size_human(*q.limit) : "-",
                       pro::format_byte_size_human(q.used), pro::format_byte_size_human(q.reserved),
                       q.remaining ? pro::format_byte_size_human(*q.remaining) : "-",
                       pro::format_utc(q.period_start).substr(0, 10), pro::format_utc(q.period_end).substr(0, 10));
        }
        return exit_ok;
    });
}

int sessions(const sessions_args& a) {
    pro::session_filter f;
    f.limit = a.limit;
    if (a.ip) {
        std::string why;
        auto ip = pro::parse_ip(*a.ip, &why);
        if (!ip) {
            error(why);
            return exit_usage;
        }
        f.ip = *ip;
    }
    if (a.user) {
        if (!check_name(*a.user)) return exit_usage;
        f.user = *a.user;
    }
    if (a.since) {
        std::string why;
        auto t = pro::parse_since(*a.since, pro::utc_now(), &why);
        if (!t) {
            error("--since: " + why);
            return exit_usage;
        }
        f.since = *t;
    }
    return guarded([&] {
        auto db = open_db(a.db, false);
        const auto rows = db->list_sessions(f);
        if (a.json) {
            for (const auto& r : rows) {
                pro::json_writer j;
                pro::write_session_fields(j, r);
                j.end_object();
                fmt::print("{}\n", j.str());
            }
            return exit_ok;
        }
        if (rows.empty()) {
            fmt::print("no sessions\n");
            return exit_ok;
        }
        fmt::print("{:>6}  {:<24}  {:>8}  {:<22}  {:<12}  {:<3} {:<8} {:>4}  {:>10}  {:>10}  {:>14}  {:>14}  {:>6}  {}\n", "ID",
                   "START (UTC)", "SECONDS", "PEER", "USER", "PRO", "DIR", "CONN", "TX", "RX", "TX RATE", "RX RATE",
                   "LOST", "ENDED BY");
        for (const auto& r : rows) {
            fmt::print("{:>6}  {:<24}  {:>8}  {:<22}  {:<12}  {:<3} {:<8} {:>4}  {:>10}  {:>10}  {:>14}  {:>14}  {:>6}  {}\n",
                       r.id, pro::format_utc(r.start),
                       r.end ? fmt::format("{:.1f}", static_cast<double>((*r.end - r.start).count()) / 1000.0) : "running",
                       pro::format_endpoint(r.peer_ip, r.peer_port), r.user.empty() ? "-" : printable(r.user),
                       printable(r.protocol), printable(r.direction), r.connections,
                       pro::format_byte_size_human(r.tx_bytes), pro::format_byte_size_human(r.rx_bytes),
                       rate_text(r.tx_bits_per_second), rate_text(r.rx_bits_per_second), r.lost_packets,
                       r.ended_by.empty() ? "-" : (r.refused ? "refused: " : "") + printable(r.ended_by));
        }
        return exit_ok;
    });
}

} // namespace pro_cli
