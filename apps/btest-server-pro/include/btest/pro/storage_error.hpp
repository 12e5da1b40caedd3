// The one exception type of the storage layer. Storage code (backends, accounts, the ledger)
// throws it; the edges catch it: the CLI turns it into a message and exit status 2, the
// service (service.hpp) into an error value in the completion. Business outcomes ("no such
// user", "quota exhausted") are values, never exceptions.
#pragma once

#include <stdexcept>
#include <string>

namespace btest::pro {

enum class storage_errc {
    bad_url,          ///< --db is not a URL this build understands
    not_supported,    ///< a backend this build does not have
    not_found,        ///< the database does not exist (and the caller did not ask to create it)
    cannot_open,      ///< the file or directory cannot be opened or created
    read_only,        ///< the database cannot be written (file or directory permissions)
    corrupt,          ///< not a database, or a damaged one
    schema_too_new,   ///< written by a newer btest-server-pro: refuse rather than misread it
    busy,             ///< another connection held a lock past the busy timeout
    io,               ///< any other failure of the database engine
    /// The database server cannot be reached now (down, restarting, unreachable, out of
    /// connections, or a call past its deadline): a server backend reconnects by itself with
    /// backoff. `serve` turns it into quota_unavailable and refused tests, not a crash.
    unavailable,
    /// The transaction lost a race with another connection (PostgreSQL: serialization failure
    /// or deadlock) and was rolled back: running it again is safe (service.hpp does).
    conflict,
};

const char* to_string(storage_errc e) noexcept;

class storage_error : public std::runtime_error {
public:
    storage_error(storage_errc code, const std::string& what) : std::runtime_error(what), code_(code) {}
    storage_errc code() const noexcept { return code_; }

private:
    storage_errc code_;
};

} // namespace btest::pro
