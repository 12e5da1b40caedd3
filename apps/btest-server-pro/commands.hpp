// The management subcommands of btest-server-pro, behind the CLI11 front end in main.cpp.
// Each returns the process exit status and prints its own errors.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace pro_cli {

/// Exit statuses (also in --help and the docs).
inline constexpr int exit_ok = 0;
inline constexpr int exit_usage = 1;     ///< bad command line or value; nothing was changed
inline constexpr int exit_storage = 2;   ///< the database could not be opened, read or written
inline constexpr int exit_conflict = 3;  ///< the request does not fit the data: no such user, name taken

/// Quota flags as given: [window][direction], direction 0 in / 1 out / 2 total; text as typed.
using quota_args = std::array<std::array<std::optional<std::string>, 3>, 3>;

struct password_args {
    std::optional<std::string> password;  ///< -p
    bool from_stdin = false;              ///< --password-stdin
};

struct user_add_args {
    std::string db;
    std::string name;
    password_args pw;
    bool md5 = false;
    quota_args quotas;
};
struct user_set_args {
    std::string db;
    std::string name;
    password_args pw;
    bool md5 = false;
    bool no_md5 = false;
    quota_args quotas;
};
struct user_del_args {
    std::string db;
    std::string name;
};
struct user_list_args {
    std::string db;
    bool json = false;
};
struct quota_show_args {
    std::string db;
    std::optional<std::string> ip;
    std::optional<std::string> user;
    bool json = false;
};
struct sessions_args {
    std::string db;
    std::optional<std::string> ip;
    std::optional<std::string> user;
    std::optional<std::string> since;
    std::size_t limit = 0;
    bool json = false;
};

int user_add(const user_add_args& a);
int user_set(const user_set_args& a);
int user_del(const user_del_args& a);
int user_list(const user_list_args& a);
int quota_show(const quota_show_args& a);
int sessions(const sessions_args& a);

/// Prints "btest-server-pro: MESSAGE" on stderr.
void error(const std::string& message);

} // namespace pro_cli
