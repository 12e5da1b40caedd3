// The accounts database as the kit's credential_store, for `serve`.
//
// Logins read an in-memory snapshot: every account with its EC-SRP5 record already prepared
// (ec_srp5::prepare: V lifted, redp1 done, as memory_credentials does), and the MD5 password
// for MD5 accounts. A lookup copies the shared_ptr to the current immutable snapshot under a
// shared lock held for that copy only (a refresh holds it exclusively for a pointer swap), then
// searches the map: no database round trip, nothing that can block an io thread for longer
// than a pointer copy. (std::atomic<std::shared_ptr> would do the same without the lock, but
// libstdc++ 12's implementation is opaque to ThreadSanitizer.)
//
// A background thread asks the service every refresh interval whether the accounts
// generation (bumped by every account write, in the same transaction) changed; if so it
// loads the accounts on the worker, prepares the new or changed records on its own thread
// (unchanged ones are reused from the old snapshot) and swaps the snapshot in. So `user
// add/set/del` take effect at the next login after at most one refresh interval (plus the
// preparation time), without a restart. A failed refresh keeps the old snapshot and is retried.
//
// Unknown users: the lookups return nullopt and the kit answers with its fake record
// (PROTOCOL §6.3.9), like a wrong password.
//
// Thread safety: the credential_store lookups may run from any number of threads at once,
// also while a refresh swaps the snapshot. refresh_now() may be called from any thread except
// the service's worker (it waits for it).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <optional>
#include <string>
#include <thread>

#include "btest/auth/credentials.hpp"
#include "btest/pro/service.hpp"

namespace btest::pro {

class db_credentials final : public auth::credential_store {
public:
    struct options {
        /// How often the generation is checked. 0: never in the background (refresh_now only).
        std::chrono::milliseconds refresh_interval{1000};
        /// Told when a refresh fails (the old snapshot stays in use).
        std::function<void(const storage_failure&)> on_error;
    };

    /// Loads the first snapshot before returning (throws storage_error if that fails: a
    /// server should not start without its accounts), then starts the refresher. `svc` must
    /// outlive this object.
    db_credentials(service& svc, options opts);
    db_credentials(const db_credentials&) = delete;
    db_credentials& operator=(const db_credentials&) = delete;
    ~db_credentials() override;

    /// Checks the generation now and reloads if it changed; returns when the snapshot is
    /// current. Throws storage_error when the database cannot be read.
    void refresh_now();

    /// The generation of the snapshot in use, and its number of accounts.
    std::int64_t generation() const;
    std::size_t size() const;

    std::optional<std::string> md5_password(std::string_view user) const override;
    std::optional<auth::ec_srp5::validator_record> ecsrp5_record(std::string_view user) const override;
    std::optional<auth::ec_srp5::prepared_record> ecsrp5_prepared(std::string_view user) const override;

private:
    struct entry {
        std::optional<std::string> md5_password;
        auth::ec_srp5::prepared_record prepared;
        entry() = default;
        entry(const entry&) = delete;
        entry& operator=(const entry&) = delete;
        ~entry();
    };
    struct snapshot {
        std::int64_t generation = -1;
        /// shared_ptr entries: an unchanged account is shared between snapshots, so a
        /// refresh prepares only what changed.
        std::map<std::string, std::shared_ptr<const entry>, std::less<>> users;
    };

    std::shared_ptr<const snapshot> current() const {
        std::shared_lock lock(snap_mu_);
        return snap_;
    }
    void install(std::shared_ptr<const snapshot> next) {
        std::unique_lock lock(snap_mu_);
        snap_.swap(next);
        // The old snapshot is released after the unlock (the destructor of `next`).
        lock.unlock();
    }
    const entry* find(const snapshot& s, std::string_view user) const;
    void refresher();

    service& svc_;
    options opts_;
    mutable std::shared_mutex snap_mu_;
    std::shared_ptr<const snapshot> snap_;  ///< guarded by snap_mu_
    std::mutex refresh_mu_;  ///< one refresh at a time

    std::mutex stop_mu_;
    std::condition_variable stop_cv_;
    bool stop_ = false;
    std::thread thread_;
};

} // namespace btest::pro
