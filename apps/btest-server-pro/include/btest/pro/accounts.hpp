// Account operations over any storage backend: validation, record derivation, and the
// generation bump that tells running servers to reload (db_credentials.hpp), each write in one
// transaction. A rejected request changes nothing.
//
// Every account can log in with EC-SRP5, from its validator record alone: the database never
// holds an EC-SRP5 account's password or anything password-equivalent (a stolen database gives
// an attacker an offline dictionary attack per account, salted, one scalar multiplication per
// guess, but no login). An account created with md5 = true also keeps the password itself,
// because MD5 challenge-response (PROTOCOL §6.2) needs it at every login: stealing the
// database then reveals that password.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "btest/core/entropy.hpp"
#include "btest/pro/storage.hpp"

namespace btest::pro {

enum class account_status {
    ok,
    invalid_name,        ///< user_name_problem() objects
    exists,              ///< add: the name is taken
    not_found,           ///< set/del: no such account
    md5_needs_password,  ///< set --md5 on an account that has no stored password: give it again
    nothing_to_change,   ///< set with no change requested
};

/// The authentication methods an account answers: {"ecsrp5"} or {"ecsrp5", "md5"}.
std::vector<std::string_view> methods(const account& a);

/// A new account: a fresh 16-byte salt from `rng` (a CSPRNG: Botan::System_RNG through
/// auth::botan_entropy) and the EC-SRP5 record derived from it; the password is kept only if
/// `md5`. Does not validate the name.
account make_account(std::string_view name, std::string_view password, bool md5, const quota_limits& quotas,
                     entropy& rng, sys_ms now);

/// Inserts `a` (invalid_name, exists or ok).
account_status add_account(storage& db, const account& a);

/// What `user set` may change. Each field left empty stays as it is.
struct account_change {
    std::optional<std::string> password;  ///< new password: new salt, new record (and MD5 copy if MD5)
    std::optional<bool> md5;              ///< true: keep the password for MD5 (needs it); false: forget it
    /// Per (window, direction): nullopt = unchanged; a value = the new limit, where an inner
    /// nullopt removes the limit.
    std::array<std::array<std::optional<std::optional<std::uint64_t>>, 3>, 3> quotas{};
    bool empty() const noexcept;
};

/// Applies `c` to the account `name` in one transaction (not_found, md5_needs_password,
/// nothing_to_change, invalid_name or ok). `rng` supplies the new salt when the password
/// changes.
account_status change_account(storage& db, std::string_view name, const account_change& c, entropy& rng, sys_ms now);

/// Deletes the account (not_found or ok). Its usage rows stay: re-creating the name does not
/// reset the quota of the current periods.
account_status delete_account(storage& db, std::string_view name);

} // namespace btest::pro
