// Where a server finds its users' secrets — PROTOCOL §6.1–§6.3.
//
// MD5 (§6.2) needs the password itself; EC-SRP5 (§6.3) needs only a validator_record (salt,
// x_γ, parity), which is not password-equivalent. An embedder implements credential_store over
// its account database; memory_credentials is the ready store for -a/-p style configuration.
#pragma once

#include <cassert>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <botan/mem_ops.h>

#include "btest/auth/ec_srp5.hpp"
#include "btest/core/entropy.hpp"
#include "btest/wire/md5.hpp"

namespace btest::auth {

/// The server's view of its accounts. Lookups are const and may be called from several
/// sessions; an implementation says which threads may call it at once.
class credential_store {
public:
    virtual ~credential_store() = default;
    /// The password, for MD5 (which needs it); nullopt: unknown user, or no MD5 for this user.
    /// `user` is the name as the MD5 reply carries it: at most 32 bytes, so a longer configured
    /// name arrives truncated to its first 32 bytes (PROTOCOL §2.4) and should match.
    virtual std::optional<std::string> md5_password(std::string_view user) const = 0;
    /// The EC-SRP5 record; nullopt: unknown user (answered with a decoy, ecsrp5_login_record).
    virtual std::optional<ec_srp5::validator_record> ecsrp5_record(std::string_view user) const = 0;
    /// The EC-SRP5 record with the server's per-user work done (ec_srp5::prepare), which is what
    /// a server session logs in from; nullopt: unknown user, or a record that does not decode
    /// (it could never authenticate: answered with a decoy either way). This default
    /// prepares ecsrp5_record() on every call, running a redp1 loop whose length depends on the
    /// validator; a store that can keep prepared records should override it. (A store that
    /// prepares on every call makes a known name's login slower than an unknown name's, which
    /// ecsrp5_login_record answers with a ready decoy: one prepare, ~30 µs, of difference.)
    virtual std::optional<ec_srp5::prepared_record> ecsrp5_prepared(std::string_view user) const {
        auto rec = ecsrp5_record(user);
        if (!rec) return std::nullopt;
        auto prepared = ec_srp5::prepare(*rec);
        if (!prepared) return std::nullopt;
        return *prepared;
    }
};

/// The record a server logs `user` in from over EC-SRP5 (§6.3.9 step 2): the store's prepared
/// record, or for a name the store does not know (or cannot decode) ec_srp5::decoy_record, which
/// fails at the proof step like a wrong password. The decoy is derived for every name, known or
/// not, so that both outcomes run the same steps and a login takes as long whether or not the
/// name exists (no user enumeration by timing); what remains is the store's own lookup, which
/// for memory_credentials costs the same either way. Thread safety: that of the store.
inline ec_srp5::prepared_record ecsrp5_login_record(const credential_store& store, std::string_view user,
                                                    std::span<const std::byte, 32> server_secret) {
    auto decoy = ec_srp5::decoy_record(user, server_secret);
    auto known = store.ecsrp5_prepared(user);
    return known ? std::move(*known) : std::move(decoy);
}

/// An in-memory store built from (user, password) pairs, as given by -a/-p: add() draws a fresh
/// random 16-byte salt per user from the entropy (so salts change at every server start) and
/// derives and prepares the EC-SRP5 record at once (one scalar multiplication and one redp1 per
/// user), so a login never pays for them. The passwords are kept for MD5 and wiped by the
/// destructor (best effort). Usernames and passwords are byte strings compared exactly.
///
/// Thread safety: add() needs exclusive access; once all users are added, the const lookups may
/// run from any number of threads at once.
class memory_credentials final : public credential_store {
public:
    /// `rng` supplies the salts; it must outlive every call to add() (a CSPRNG on a real server).
    explicit memory_credentials(entropy& rng) noexcept : rng_(&rng) {}
    memory_credentials(const memory_credentials&) = delete;
    memory_credentials& operator=(const memory_credentials&) = delete;
    memory_credentials(memory_credentials&&) noexcept = default;
    memory_credentials& operator=(memory_credentials&&) noexcept = default;
    ~memory_credentials() override {
        for (auto& [user, e] : users_) Botan::secure_scrub_memory(e.password.data(), e.password.size());
    }

    /// Adds `user`, or replaces its password (and salt) if it exists.
    void add(std::string_view user, std::string_view password) {
        ec_srp5::salt_bytes salt{};
        rng_->fill(salt);
        auto prepared = ec_srp5::prepare(ec_srp5::derive_record(user, password, salt));
        assert(prepared);  // a derived record always decodes
        entry e{std::string(password), std::move(*prepared)};
        auto it = users_.find(user);
        if (it == users_.end()) {
            users_.emplace(std::string(user), std::move(e));
        } else {
            Botan::secure_scrub_memory(it->second.password.data(), it->second.password.size());
            it->second = std::move(e);
        }
    }

    std::size_t size() const noexcept { return users_.size(); }
    bool contains(std::string_view user) const { return users_.find(user) != users_.end(); }

    std::optional<std::string> md5_password(std::string_view user) const override {
        auto it = users_.find(user);
        if (it != users_.end()) return it->second.password;
        if (user.size() == wire::md5_username_field) {
            // A longer configured name travels truncated to 32 bytes (§2.4).
            for (it = users_.lower_bound(user); it != users_.end() && it->first.starts_with(user); ++it)
                return it->second.password;
        }
        return std::nullopt;
    }
    std::optional<ec_srp5::validator_record> ecsrp5_record(std::string_view user) const override {
        auto it = users_.find(user);
        if (it == users_.end()) return std::nullopt;
        return it->second.prepared.record;
    }
    std::optional<ec_srp5::prepared_record> ecsrp5_prepared(std::string_view user) const override {
        auto it = users_.find(user);
        if (it == users_.end()) return std::nullopt;
        return it->second.prepared;
    }

private:
    struct entry {
        std::string password;
        ec_srp5::prepared_record prepared;
    };
    entropy* rng_;
    std::map<std::string, entry, std::less<>> users_;
};

} // namespace btest::auth
