// A thin RAII layer over libsqlite3: a connection, cached prepared statements, transactions.
// Every failure throws storage_error with the SQLite message and the database path.
//
// Thread safety: one thread at a time per connection (SQLITE_OPEN_NOMUTEX).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "btest/pro/storage_error.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace btest::pro::sqlite {

class connection;

/// A prepared statement. Parameters are 1-based, columns 0-based (as in SQLite).
class statement {
public:
    statement(connection& db, std::string_view sql);
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    ~statement();

    statement& bind(int i, std::int64_t v);
    statement& bind(int i, std::uint64_t v);  ///< must fit in int64 (quotas and counters do)
    statement& bind(int i, int v) { return bind(i, std::int64_t{v}); }
    statement& bind(int i, std::string_view text);
    statement& bind(int i, const char* text) { return bind(i, std::string_view(text)); }
    statement& bind(int i, const std::string& text) { return bind(i, std::string_view(text)); }
    statement& bind_blob(int i, std::span<const std::byte> blob);
    statement& bind_null(int i);
    template <class T>
    statement& bind(int i, const std::optional<T>& v) {
        return v ? bind(i, *v) : bind_null(i);
    }

    /// Runs one step: true when a row is available, false when done.
    bool step();
    /// step() that must finish without a row (INSERT/UPDATE/DELETE).
    void run();
    void reset() noexcept;  ///< reset and clear bindings

    bool is_null(int col) const;
    std::int64_t int64_at(int col) const;
    std::uint64_t uint64_at(int col) const;  ///< negative values read as 0
    std::optional<std::uint64_t> opt_uint64_at(int col) const;
    std::string text_at(int col) const;
    std::vector<std::byte> blob_at(int col) const;

private:
    connection* db_;
    sqlite3_stmt* s_ = nullptr;
};

/// A cached statement borrowed for one use; resets it when it goes out of scope.
class query {
public:
    explicit query(statement& s) noexcept : s_(&s) {}
    query(const query&) = delete;
    query& operator=(const query&) = delete;
    ~query() { s_->reset(); }
    statement* operator->() const noexcept { return s_; }
    statement& operator*() const noexcept { return *s_; }

private:
    statement* s_;
};

class connection {
public:
    struct options {
        bool create = true;
        int busy_timeout_ms = 5000;
    };
    /// Opens (or creates, mode 0600) the database file at `path`, in WAL mode with the busy
    /// timeout, and checks that it is writable and really an SQLite database. Errors: not_found (create =
    /// false and no file), cannot_open, read_only, corrupt, io.
    connection(const std::string& path, const options& opts);
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection();

    /// Runs one or more statements without results.
    void exec(const char* sql);
    /// The statement for `sql`, prepared once per connection and reused.
    query prepare(const char* sql);

    std::int64_t last_insert_rowid() const;
    int changes() const;
    sqlite3* handle() const noexcept { return db_; }
    const std::string& path() const noexcept { return path_; }

    /// Throws the storage_error for SQLite result `rc` (uses the connection's message).
    [[noreturn]] void raise(int rc, std::string_view doing) const;

private:
    sqlite3* db_ = nullptr;
    std::string path_;
    std::unordered_map<const char*, std::unique_ptr<statement>> cache_;
};

/// BEGIN IMMEDIATE … COMMIT, rolled back unless committed. IMMEDIATE takes the write lock at
/// once (waiting up to the busy timeout), so a transaction never fails half-way on a lock
/// upgrade.
class transaction {
public:
    explicit transaction(connection& db);
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction();
    void commit();

private:
    connection* db_;
};

} // namespace btest::pro::sqlite
