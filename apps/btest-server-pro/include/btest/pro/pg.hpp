// A thin RAII layer over libpq (PostgreSQL's C client library): one connection, parameterised
// queries, results read as text. Every call has a deadline: the connection is non-blocking and
// every wait is a poll() bounded by the call's remaining time, so a server that stops answering
// (a dead host, a partition) costs at most the deadline, never a hung thread. Past the deadline
// the connection is closed (the server rolls back what it was doing) and the call throws
// storage_error(unavailable).
//
// libpq directly rather than libpqxx: this layer needs the non-blocking API for its deadlines,
// SQLSTATE codes to sort errors into storage_errc classes, and nothing else; libpqxx 6.4
// (Debian 12) wraps the blocking calls only and would add a C++ dependency for a few hundred
// lines of SQL plumbing.
//
// Errors: storage_error, classified by SQLSTATE (see classify() in pg.cpp): lost or refused
// connections → unavailable, serialization failures and deadlocks → conflict, lock and
// statement timeouts → busy, missing privileges → read_only, the rest → io. Messages never
// contain the URL's password (libpq's own messages do not carry it).
//
// Thread safety: one thread at a time per connection.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "btest/pro/storage_error.hpp"

struct pg_conn;
struct pg_result;

namespace btest::pro::pg {

/// Query parameters, all sent as text except byte strings (sent binary, as bytea).
class params {
public:
    params& add(std::int64_t v);
    params& add(std::uint64_t v);  ///< must fit in a BIGINT (quotas and counters do)
    params& add(int v) { return add(std::int64_t{v}); }
    params& add(std::string_view text);
    params& add(const char* text) { return add(std::string_view(text)); }
    params& add(const std::string& text) { return add(std::string_view(text)); }
    params& add_bytes(std::span<const std::byte> bytes);
    params& add_null();
    template <class T>
    params& add(const std::optional<T>& v) {
        return v ? add(*v) : add_null();
    }

    std::size_t size() const noexcept { return values_.size(); }
    /// Pointers into this object for PQsendQueryParams (valid while it lives unchanged).
    std::vector<const char*> values() const;
    std::vector<int> lengths() const;
    std::vector<int> formats() const;

private:
    std::vector<std::optional<std::string>> values_;
    std::vector<int> formats_;
};

/// A query's rows (text format). Row and column numbers are 0-based.
class result {
public:
    explicit result(pg_result* r) noexcept : r_(r) {}
    result(result&& o) noexcept : r_(o.r_) { o.r_ = nullptr; }
    result& operator=(result&& o) noexcept;
    result(const result&) = delete;
    result& operator=(const result&) = delete;
    ~result();

    int rows() const noexcept;
    /// Rows an INSERT/UPDATE/DELETE changed.
    std::int64_t affected() const noexcept;

    bool is_null(int row, int col) const;
    std::string text(int row, int col) const;       ///< NULL reads as ""
    std::int64_t int64(int row, int col) const;     ///< also NUMERIC results of SUM()
    std::uint64_t uint64(int row, int col) const;   ///< negative values read as 0
    std::optional<std::uint64_t> opt_uint64(int row, int col) const;
    std::vector<std::byte> bytes(int row, int col) const;  ///< a bytea column
    pg_result* get() const noexcept { return r_; }

private:
    pg_result* r_ = nullptr;
};

struct connect_options {
    /// libpq's connection URI or key=value string (postgresql://user:pass@host:port/db?...).
    std::string conninfo;
    /// Budget of a connection attempt (every host of the URI together).
    std::chrono::milliseconds connect_timeout{5000};
    /// Budget of one query round trip, also the server-side lock_timeout's ceiling.
    std::chrono::milliseconds query_timeout{10000};
    /// Server-side lock_timeout: waiting this long for another transaction's row lock is busy.
    std::chrono::milliseconds lock_timeout{5000};
};

class connection {
public:
    /// Connects within the deadline and prepares the session (UTC, lock and idle timeouts,
    /// no notices on stderr). Throws storage_error: bad_url for a URI libpq cannot parse,
    /// unavailable for anything that might work later (refused, unreachable, authentication,
    /// no such database: the operator may be fixing it).
    explicit connection(const connect_options& opts);
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection();

    /// One statement with parameters ($1, $2, …).
    result exec(std::string_view sql, const params& p = {});
    /// Several statements without parameters (schema scripts), as one simple query.
    void exec_script(std::string_view sql);

    /// False once the connection broke (a lost server, a deadline): throw it away.
    bool ok() const noexcept;
    /// The server's address for messages: "127.0.0.1:5432/db" or "/run/postgresql:5432/db".
    std::string where() const;

private:
    /// Waits until the socket is readable (and writable if `write`), or the deadline.
    bool wait(bool write, std::chrono::steady_clock::time_point deadline);
    result finish(std::chrono::steady_clock::time_point deadline, std::string_view sql);
    [[noreturn]] void broken(const std::string& what);

    pg_conn* c_ = nullptr;
    connect_options opts_;
    bool broken_ = false;
};

/// Whether `url` is a PostgreSQL URL this build accepts (postgresql:// or postgres://).
bool is_postgresql_url(std::string_view url) noexcept;
/// `url` with its password (user:PASSWORD@ and ?password=) replaced by "***", for messages.
std::string redact_url(std::string_view url);

} // namespace btest::pro::pg
