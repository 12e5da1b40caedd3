#include "btest/pro/accounts.hpp"

#include "btest/auth/ec_srp5.hpp"
#include "btest/pro/user_name.hpp"

namespace btest::pro {

std::vector<std::string_view> methods(const account& a) {
    if (a.md5()) return {"ecsrp5", "md5"};
    return {"ecsrp5"};
}

account make_account(std::string_view name, std::string_view password, bool md5, const quota_limits& quotas,
                     entropy& rng, sys_ms now) {
    account a;
    a.name = std::string(name);
    auth::ec_srp5::salt_bytes salt{};
    rng.fill(salt);
    a.ecsrp5 = auth::ec_srp5::derive_record(name, password, salt);
    if (md5) a.md5_password = std::string(password);
    a.quotas = quotas;
    a.created = a.updated = now;
    return a;
}

account_status add_account(storage& db, const account& a) {
    if (user_name_problem(a.name)) return account_status::invalid_name;
    write_transaction tx(db);
    if (!db.insert_account(a)) return account_status::exists;
    db.bump_accounts_generation();
    tx.commit();
    return account_status::ok;
}

bool account_change::empty() const noexcept {
    if (password || md5) return false;
    for (const auto& row : quotas)
        for (const auto& q : row)
            if (q) return false;
    return true;
}

account_status change_account(storage& db, std::string_view name, const account_change& c, entropy& rng, sys_ms now) {
    if (user_name_problem(name)) return account_status::invalid_name;
    if (c.empty()) return account_status::nothing_to_change;
    write_transaction tx(db);
    auto found = db.find_account(name);
    if (!found) return account_status::not_found;
    account& a = *found;
    const bool md5 = c.md5.value_or(a.md5());
    if (md5 && !a.md5() && !c.password) return account_status::md5_needs_password;
    if (c.password) {
        auth::ec_srp5::salt_bytes salt{};
        rng.fill(salt);
        a.ecsrp5 = auth::ec_srp5::derive_record(name, *c.password, salt);
        // Replaced (not assigned into) in one step: the new password, or none.
        a.md5_password = md5 ? c.password : std::nullopt;
    } else if (!md5) {
        a.md5_password = std::nullopt;
    }
    for (auto w : all_windows)
        for (auto d : all_quota_dirs)
            if (const auto& q = c.quotas[static_cast<std::size_t>(w)][static_cast<std::size_t>(d)]) a.quotas.set(w, d, *q);
    a.updated = now;
    db.update_account(a);
    db.bump_accounts_generation();
    tx.commit();
    return account_status::ok;
}

account_status delete_account(storage& db, std::string_view name) {
    if (user_name_problem(name)) return account_status::not_found;
    write_transaction tx(db);
    if (!db.delete_account(name)) return account_status::not_found;
    db.bump_accounts_generation();
    tx.commit();
    return account_status::ok;
}

} // namespace btest::pro
