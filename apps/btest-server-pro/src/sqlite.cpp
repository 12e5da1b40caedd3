#include "btest/pro/sqlite.hpp"

#include <limits>

#include <sqlite3.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace btest::pro::sqlite {

namespace {

storage_errc classify(int rc) noexcept {
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return storage_errc::busy;
    case SQLITE_READONLY:
    case SQLITE_PERM: return storage_errc::read_only;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return storage_errc::corrupt;
    case SQLITE_CANTOPEN: return storage_errc::cannot_open;
    default: return storage_errc::io;
    }
}

} // namespace

// --- statement --------------------------------------------------------------------------------

statement::statement(connection& db, std::string_view sql) : db_(&db) {
    const int rc = sqlite3_prepare_v3(db.handle(), sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                      &s_, nullptr);
    if (rc != SQLITE_OK) db.raise(rc, "preparing a statement");
}

statement::~statement() { sqlite3_finalize(s_); }

statement& statement::bind(int i, std::int64_t v) {
    if (const int rc = sqlite3_bind_int64(s_, i, v); rc != SQLITE_OK) db_->raise(rc, "binding a value");
    return *this;
}
statement& statement::bind(int i, std::uint64_t v) {
    if (v > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        throw storage_error(storage_errc::io, "a counter exceeds the database's 63-bit range");
    return bind(i, static_cast<std::int64_t>(v));
}
statement& statement::bind(int i, std::string_view text) {
    const int rc = sqlite3_bind_text64(s_, i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    if (rc != SQLITE_OK) db_->raise(rc, "binding a value");
    return *this;
}
statement& statement::bind_blob(int i, std::span<const std::byte> blob) {
    // A zero-length blob still binds as a blob (not NULL): an empty MD5 password is legal.
    static const std::byte empty{};
    const void* p = blob.empty() ? &empty : static_cast<const void*>(blob.data());
    if (const int rc = sqlite3_bind_blob64(s_, i, p, blob.size(), SQLITE_TRANSIENT); rc != SQLITE_OK)
        db_->raise(rc, "binding a value");
    return *this;
}
statement& statement::bind_null(int i) {
    if (const int rc = sqlite3_bind_null(s_, i); rc != SQLITE_OK) db_->raise(rc, "binding a value");
    return *this;
}

bool statement::step() {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    db_->raise(rc, "running a statement");
}

void statement::run() {
    if (step()) throw storage_error(storage_errc::io, "internal error: a statement returned an unexpected row");
}

void statement::reset() noexcept {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
}

bool statement::is_null(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
std::int64_t statement::int64_at(int col) const { return sqlite3_column_int64(s_, col); }
std::uint64_t statement::uint64_at(int col) const {
    const std::int64_t v = sqlite3_column_int64(s_, col);
    return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}
std::optional<std::uint64_t> statement::opt_uint64_at(int col) const {
    if (is_null(col)) return std::nullopt;
    return uint64_at(col);
}
std::string statement::text_at(int col) const {
    const auto* p = sqlite3_column_text(s_, col);
    const int n = sqlite3_column_bytes(s_, col);
    if (!p) return {};
    return std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n));
}
std::vector<std::byte> statement::blob_at(int col) const {
    const auto* p = static_cast<const std::byte*>(sqlite3_column_blob(s_, col));
    const int n = sqlite3_column_bytes(s_, col);
    if (!p || n <= 0) return {};
    return std::vector<std::byte>(p, p + n);
}

// --- connection -------------------------------------------------------------------------------

connection::connection(const std::string& path, const options& opts) : path_(path) {
    struct stat st{};
    const bool exists = ::stat(path.c_str(), &st) == 0;
    if (!exists && !opts.create)
        throw storage_error(storage_errc::not_found, "no database at " + path);
    if (exists && !S_ISREG(st.st_mode))
        throw storage_error(storage_errc::cannot_open, "cannot open database " + path + ": not a regular file");

    if (!exists) {
        // Created owner-only: the file holds validator records, and the passwords of MD5
        // accounts. SQLite gives its -wal and -shm files the same permissions. An empty file
        // is a valid empty database.
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            throw storage_error(errno == EACCES || errno == EROFS ? storage_errc::read_only : storage_errc::cannot_open,
                                "cannot create database " + path + ": " + std::strerror(errno));
        if (fd >= 0) ::close(fd);
    }
    const int flags = SQLITE_OPEN_READWRITE | (opts.create ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_NOMUTEX |
                      SQLITE_OPEN_EXRESCODE;
    const int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw storage_error(classify(rc), "cannot open database " + path + ": " + msg);
    }
    try {
        // SQLite opens a write-protected file read-only without failing; say so now rather
        // than at the first write.
        if (sqlite3_db_readonly(db_, "main") == 1)
            throw storage_error(storage_errc::read_only,
                                "database " + path + " is read-only (check the file's owner and permissions)");
        sqlite3_busy_timeout(db_, opts.busy_timeout_ms);
        sqlite3_extended_result_codes(db_, 1);
        // The first read of the file: a file that is not a database fails here (SQLITE_NOTADB).
        exec("PRAGMA foreign_keys = ON");
        {
            auto q = prepare("PRAGMA journal_mode = WAL");
            if (!q->step() || q->text_at(0) != "wal")
                throw storage_error(storage_errc::io, "cannot switch database " + path + " to WAL mode");
        }
        // WAL with synchronous = NORMAL: a committed transaction survives a crash of the
        // process (it is in the WAL file); a power loss may lose the last few commits.
        exec("PRAGMA synchronous = NORMAL");
    } catch (...) {
        cache_.clear();
        sqlite3_close_v2(db_);
        db_ = nullptr;
        throw;
    }
}

connection::~connection() {
    cache_.clear();  // finalize every statement before closing
    sqlite3_close_v2(db_);
}

void connection::raise(int rc, std::string_view doing) const {
    std::string msg = "database " + path_ + ": " + std::string(doing) + " failed: ";
    msg += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    throw storage_error(classify(rc), msg);
}

void connection::exec(const char* sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = "database " + path_ + ": " + (err ? err : sqlite3_errstr(rc));
        sqlite3_free(err);
        throw storage_error(classify(rc), msg);
    }
}

query connection::prepare(const char* sql) {
    auto& slot = cache_[sql];
    if (!slot) slot = std::make_unique<statement>(*this, sql);
    return query(*slot);
}

std::int64_t connection::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int connection::changes() const { return sqlite3_changes(db_); }

// --- transaction ------------------------------------------------------------------------------

transaction::transaction(connection& db) : db_(&db) { db.exec("BEGIN IMMEDIATE"); }

transaction::~transaction() {
    if (db_ && !sqlite3_get_autocommit(db_->handle())) sqlite3_exec(db_->handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void transaction::commit() {
    db_->exec("COMMIT");
    db_ = nullptr;
}

} // namespace btest::pro::sqlite
