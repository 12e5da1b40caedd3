#include "btest/pro/sqlite_storage.hpp"

#include "btest/pro/cidr.hpp"
#include "btest/pro/pg_storage.hpp"

#include <algorithm>
#include <cstring>

#include <sqlite3.h>

namespace btest::pro {

namespace {

using sqlite::connection;
using sqlite::statement;

// --- schema history -------------------------------------------------------------------------

// Version 1: accounts only (the first layout; kept so that the migration path stays tested).
void schema_v1(connection& db) {
    db.exec(R"sql(
        CREATE TABLE accounts (
            name          TEXT PRIMARY KEY NOT NULL,
            ecsrp5_salt   BLOB NOT NULL,
            ecsrp5_x      BLOB NOT NULL,
            ecsrp5_parity INTEGER NOT NULL,
            md5_password  BLOB,
            created_ms    INTEGER NOT NULL,
            updated_ms    INTEGER NOT NULL
        );
        CREATE TABLE generations (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
        INSERT INTO generations (name, value) VALUES ('accounts', 0);
    )sql");
}

// Version 2: quotas on accounts and per IP, the usage ledger with its leases, session history.
void schema_v2(connection& db) {
    db.exec(R"sql(
        ALTER TABLE accounts ADD COLUMN quota_daily_in INTEGER;
        ALTER TABLE accounts ADD COLUMN quota_daily_out INTEGER;
        ALTER TABLE accounts ADD COLUMN quota_daily_total INTEGER;
        ALTER TABLE accounts ADD COLUMN quota_weekly_in INTEGER;
        ALTER TABLE accounts ADD COLUMN quota_weekly_out INTEGER;
        ALTER TABLE accounts ADD COLUMN quota_weekly_total INTEGER;
        ALTER TABLE accounts ADD COLUMN quota_monthly_in INTEGER;
        ALTER TABLE accounts ADD COLUMN quota_monthly_out INTEGER;
        ALTER TABLE accounts ADD COLUMN quota_monthly_total INTEGER;
        UPDATE generations SET value = value + 1 WHERE name = 'accounts';

        CREATE TABLE ip_quota (
            win         INTEGER NOT NULL,
            dir         INTEGER NOT NULL,
            limit_bytes INTEGER NOT NULL,
            PRIMARY KEY (win, dir)
        );
        CREATE TABLE usage (
            kind      INTEGER NOT NULL,
            subject   TEXT NOT NULL,
            win       INTEGER NOT NULL,
            period_ms INTEGER NOT NULL,
            used_in   INTEGER NOT NULL DEFAULT 0,
            used_out  INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (kind, subject, win, period_ms)
        ) WITHOUT ROWID;

        CREATE TABLE sessions (
            id                 INTEGER PRIMARY KEY AUTOINCREMENT,
            start_ms           INTEGER NOT NULL,
            end_ms             INTEGER,
            peer_ip            TEXT NOT NULL,
            peer_port          INTEGER NOT NULL,
            user_name          TEXT,
            protocol           TEXT NOT NULL,
            direction          TEXT NOT NULL,
            connections        INTEGER NOT NULL,
            tx_speed_requested INTEGER NOT NULL,
            rx_speed_requested INTEGER NOT NULL,
            tx_bytes           INTEGER NOT NULL DEFAULT 0,
            rx_bytes           INTEGER NOT NULL DEFAULT 0,
            tx_bps             INTEGER NOT NULL DEFAULT 0,
            rx_bps             INTEGER NOT NULL DEFAULT 0,
            lost_packets       INTEGER NOT NULL DEFAULT 0,
            ended_by           TEXT,
            error              TEXT,
            refused            INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX sessions_by_start ON sessions (start_ms);
        CREATE INDEX sessions_by_ip ON sessions (peer_ip, start_ms);
        CREATE INDEX sessions_by_user ON sessions (user_name, start_ms);
        CREATE TABLE session_intervals (
            session_id   INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
            seq          INTEGER NOT NULL,
            start_ms     INTEGER NOT NULL,
            end_ms       INTEGER NOT NULL,
            tx_bytes     INTEGER NOT NULL,
            rx_bytes     INTEGER NOT NULL,
            tx_bps       INTEGER NOT NULL,
            rx_bps       INTEGER NOT NULL,
            lost_packets INTEGER NOT NULL,
            PRIMARY KEY (session_id, seq)
        ) WITHOUT ROWID;

        CREATE TABLE leases (
            session_id    INTEGER PRIMARY KEY NOT NULL,
            holder        TEXT NOT NULL,
            user_name     TEXT,
            ip            TEXT NOT NULL,
            opened_ms     INTEGER NOT NULL,
            updated_ms    INTEGER NOT NULL,
            expires_ms    INTEGER NOT NULL,
            allowed_in    INTEGER,
            allowed_out   INTEGER,
            allowed_total INTEGER,
            spent_in      INTEGER NOT NULL DEFAULT 0,
            spent_out     INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX leases_by_expiry ON leases (expires_ms);
        CREATE TABLE lease_items (
            session_id INTEGER NOT NULL REFERENCES leases (session_id) ON DELETE CASCADE,
            kind       INTEGER NOT NULL,
            subject    TEXT NOT NULL,
            win        INTEGER NOT NULL,
            period_ms  INTEGER NOT NULL,
            res_in     INTEGER NOT NULL,
            res_out    INTEGER NOT NULL,
            res_total  INTEGER NOT NULL,
            PRIMARY KEY (session_id, kind, win)
        ) WITHOUT ROWID;
        CREATE INDEX lease_items_by_subject ON lease_items (kind, subject, win, period_ms);
    )sql");
}

// --- value conversions ------------------------------------------------------------------------

std::int64_t ms(sys_ms t) { return to_unix_ms(t); }

std::span<const std::byte> as_blob(std::string_view s) { return std::as_bytes(std::span{s.data(), s.size()}); }

int win_code(window w) { return static_cast<int>(w); }
window win_from(std::int64_t v) {
    if (v < 0 || v > 2) throw storage_error(storage_errc::corrupt, "database holds an unknown quota window");
    return static_cast<window>(v);
}
int kind_code(subject_kind k) { return static_cast<int>(k); }
subject_kind kind_from(std::int64_t v) {
    if (v != 1 && v != 2) throw storage_error(storage_errc::corrupt, "database holds an unknown subject kind");
    return static_cast<subject_kind>(v);
}

ip_address ip_from_text(const std::string& text) {
    auto a = parse_ip(text);
    if (!a) throw storage_error(storage_errc::corrupt, "database holds a malformed IP address '" + text + "'");
    return *a;
}

#define BTEST_ACCOUNT_COLUMNS                                                                        \
    "name, ecsrp5_salt, ecsrp5_x, ecsrp5_parity, md5_password, created_ms, updated_ms, "             \
    "quota_daily_in, quota_daily_out, quota_daily_total, quota_weekly_in, quota_weekly_out, "        \
    "quota_weekly_total, quota_monthly_in, quota_monthly_out, quota_monthly_total"

account read_account(const statement& s) {
    account a;
    a.name = s.text_at(0);
    const auto salt = s.blob_at(1);
    const auto x = s.blob_at(2);
    if (salt.size() != a.ecsrp5.salt.size() || x.size() != a.ecsrp5.validator.u.size())
        throw storage_error(storage_errc::corrupt, "account '" + a.name + "' has a malformed EC-SRP5 record");
    std::copy(salt.begin(), salt.end(), a.ecsrp5.salt.begin());
    std::copy(x.begin(), x.end(), a.ecsrp5.validator.u.begin());
    a.ecsrp5.validator.parity = static_cast<std::uint8_t>(s.int64_at(3) & 1);
    if (!s.is_null(4)) {
        const auto pw = s.blob_at(4);
        a.md5_password = std::string(reinterpret_cast<const char*>(pw.data()), pw.size());
    }
    a.created = from_unix_ms(s.int64_at(5));
    a.updated = from_unix_ms(s.int64_at(6));
    int col = 7;
    for (auto w : all_windows)
        for (auto d : all_quota_dirs) a.quotas.set(w, d, s.opt_uint64_at(col++));
    return a;
}

void bind_account(statement& s, const account& a) {
    s.bind(1, a.name);
    s.bind_blob(2, a.ecsrp5.salt);
    s.bind_blob(3, a.ecsrp5.validator.u);
    s.bind(4, std::int64_t{a.ecsrp5.validator.parity});
    if (a.md5_password)
        s.bind_blob(5, as_blob(*a.md5_password));
    else
        s.bind_null(5);
    s.bind(6, ms(a.created));
    s.bind(7, ms(a.updated));
    int p = 8;
    for (auto w : all_windows)
        for (auto d : all_quota_dirs) s.bind(p++, a.quotas.get(w, d));
}

#define BTEST_SESSION_COLUMNS                                                                        \
    "id, start_ms, end_ms, peer_ip, peer_port, user_name, protocol, direction, connections, "        \
    "tx_speed_requested, rx_speed_requested, tx_bytes, rx_bytes, tx_bps, rx_bps, lost_packets, "     \
    "ended_by, error, refused"

session_row read_session(const statement& s) {
    session_row r;
    r.id = s.int64_at(0);
    r.start = from_unix_ms(s.int64_at(1));
    if (!s.is_null(2)) r.end = from_unix_ms(s.int64_at(2));
    r.peer_ip = ip_from_text(s.text_at(3));
    r.peer_port = static_cast<std::uint16_t>(s.int64_at(4));
    r.user = s.text_at(5);
    r.protocol = s.text_at(6);
    r.direction = s.text_at(7);
    r.connections = static_cast<std::uint32_t>(s.int64_at(8));
    r.tx_speed_requested = s.uint64_at(9);
    r.rx_speed_requested = s.uint64_at(10);
    r.tx_bytes = s.uint64_at(11);
    r.rx_bytes = s.uint64_at(12);
    r.tx_bits_per_second = s.uint64_at(13);
    r.rx_bits_per_second = s.uint64_at(14);
    r.lost_packets = s.uint64_at(15);
    r.ended_by = s.text_at(16);
    r.error = s.text_at(17);
    r.refused = s.int64_at(18) != 0;
    return r;
}

// Binds parameters 1..18 (everything but the id).
void bind_session(statement& s, const session_row& r) {
    s.bind(1, ms(r.start));
    if (r.end) s.bind(2, ms(*r.end)); else s.bind_null(2);
    s.bind(3, r.peer_ip.to_string());
    s.bind(4, std::int64_t{r.peer_port});
    if (r.user.empty()) s.bind_null(5); else s.bind(5, r.user);
    s.bind(6, r.protocol);
    s.bind(7, r.direction);
    s.bind(8, std::int64_t{r.connections});
    s.bind(9, r.tx_speed_requested);
    s.bind(10, r.rx_speed_requested);
    s.bind(11, r.tx_bytes);
    s.bind(12, r.rx_bytes);
    s.bind(13, r.tx_bits_per_second);
    s.bind(14, r.rx_bits_per_second);
    s.bind(15, r.lost_packets);
    if (r.ended_by.empty()) s.bind_null(16); else s.bind(16, r.ended_by);
    if (r.error.empty()) s.bind_null(17); else s.bind(17, r.error);
    s.bind(18, std::int64_t{r.refused ? 1 : 0});
}

// --- the backend ------------------------------------------------------------------------------

class sqlite_storage final : public storage {
public:
    sqlite_storage(const std::string& path, const open_options& opts, int target)
        : db_(path, sqlite::connection::options{opts.create, opts.busy_timeout_ms}) {
        if (opts.verify) verify();
        migrate(target == 0 ? sqlite_latest_schema() : target);
    }

    std::string describe() const override { return "sqlite:" + db_.path(); }

    int schema_version() override {
        auto q = db_.prepare("SELECT version FROM schema_version");
        return q->step() ? static_cast<int>(q->int64_at(0)) : 0;
    }

    // Depth 1 is the transaction (BEGIN IMMEDIATE: the write lock now); deeper ones are
    // savepoints, so that the service can run several jobs in one commit (service.cpp).
    void begin() override {
        db_.exec((depth_ == 0 ? std::string("BEGIN IMMEDIATE") : "SAVEPOINT s" + std::to_string(depth_)).c_str());
        ++depth_;
    }
    void commit() override {
        if (depth_ == 0) return;
        db_.exec((depth_ == 1 ? std::string("COMMIT") : "RELEASE s" + std::to_string(depth_ - 1)).c_str());
        --depth_;  // (a COMMIT that failed leaves the transaction to rollback())
    }
    void rollback() noexcept override {
        if (depth_ == 0) return;
        --depth_;
        if (depth_ == 0) {
            if (!sqlite3_get_autocommit(db_.handle())) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
            return;
        }
        const auto sp = "s" + std::to_string(depth_);
        sqlite3_exec(db_.handle(), ("ROLLBACK TO " + sp + "; RELEASE " + sp).c_str(), nullptr, nullptr, nullptr);
    }
    bool nested_transactions() const noexcept override { return true; }

    // --- accounts ---
    bool insert_account(const account& a) override {
        auto q = db_.prepare("INSERT OR IGNORE INTO accounts (" BTEST_ACCOUNT_COLUMNS
                             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)");
        bind_account(*q, a);
        q->run();
        return db_.changes() == 1;
    }
    bool update_account(const account& a) override {
        auto q = db_.prepare(
            "UPDATE accounts SET ecsrp5_salt = ?2, ecsrp5_x = ?3, ecsrp5_parity = ?4, md5_password = ?5, "
            "created_ms = ?6, updated_ms = ?7, quota_daily_in = ?8, quota_daily_out = ?9, quota_daily_total = ?10, "
            "quota_weekly_in = ?11, quota_weekly_out = ?12, quota_weekly_total = ?13, quota_monthly_in = ?14, "
            "quota_monthly_out = ?15, quota_monthly_total = ?16 WHERE name = ?1");
        bind_account(*q, a);
        q->run();
        return db_.changes() == 1;
    }
    bool delete_account(std::string_view name) override {
        auto q = db_.prepare("DELETE FROM accounts WHERE name = ?1");
        q->bind(1, name);
        q->run();
        return db_.changes() == 1;
    }
    std::optional<account> find_account(std::string_view name) override {
        auto q = db_.prepare("SELECT " BTEST_ACCOUNT_COLUMNS " FROM accounts WHERE name = ?1");
        q->bind(1, name);
        if (!q->step()) return std::nullopt;
        return read_account(*q);
    }
    std::vector<account> list_accounts() override {
        auto q = db_.prepare("SELECT " BTEST_ACCOUNT_COLUMNS " FROM accounts ORDER BY name");
        std::vector<account> out;
        while (q->step()) out.push_back(read_account(*q));
        return out;
    }
    std::int64_t accounts_generation() override {
        auto q = db_.prepare("SELECT value FROM generations WHERE name = 'accounts'");
        return q->step() ? q->int64_at(0) : 0;
    }
    void bump_accounts_generation() override {
        db_.prepare("UPDATE generations SET value = value + 1 WHERE name = 'accounts'")->run();
    }

    // --- ip quota ---
    quota_limits ip_quota() override {
        quota_limits q;
        auto s = db_.prepare("SELECT win, dir, limit_bytes FROM ip_quota");
        while (s->step()) {
            const auto d = s->int64_at(1);
            if (d < 0 || d > 2) throw storage_error(storage_errc::corrupt, "database holds an unknown quota direction");
            q.set(win_from(s->int64_at(0)), static_cast<quota_dir>(d), s->uint64_at(2));
        }
        return q;
    }
    void set_ip_quota(const quota_limits& q) override {
        db_.prepare("DELETE FROM ip_quota")->run();
        for (auto w : all_windows)
            for (auto d : all_quota_dirs)
                if (auto v = q.get(w, d)) {
                    auto s = db_.prepare("INSERT INTO ip_quota (win, dir, limit_bytes) VALUES (?1, ?2, ?3)");
                    s->bind(1, win_code(w)).bind(2, static_cast<int>(d)).bind(3, *v);
                    s->run();
                }
    }

    // --- usage ---
    void lock_usage(const subject&, window, sys_ms) override {
        // BEGIN IMMEDIATE already holds the database's write lock: nothing else can change it.
    }
    usage_counts usage(const subject& s, window w, sys_ms period) override {
        auto q = db_.prepare(
            "SELECT used_in, used_out FROM usage WHERE kind = ?1 AND subject = ?2 AND win = ?3 AND period_ms = ?4");
        q->bind(1, kind_code(s.kind)).bind(2, s.key).bind(3, win_code(w)).bind(4, ms(period));
        if (!q->step()) return {};
        return {q->uint64_at(0), q->uint64_at(1)};
    }
    void add_usage(const subject& s, window w, sys_ms period, usage_counts delta) override {
        if (delta.in == 0 && delta.out == 0) return;
        auto q = db_.prepare(
            "INSERT INTO usage (kind, subject, win, period_ms, used_in, used_out) VALUES (?1, ?2, ?3, ?4, ?5, ?6) "
            "ON CONFLICT (kind, subject, win, period_ms) DO UPDATE SET used_in = used_in + excluded.used_in, "
            "used_out = used_out + excluded.used_out");
        q->bind(1, kind_code(s.kind)).bind(2, s.key).bind(3, win_code(w)).bind(4, ms(period));
        q->bind(5, delta.in).bind(6, delta.out);
        q->run();
    }
    reserved_counts reserved(const subject& s, window w, sys_ms period) override {
        auto q = db_.prepare(R"sql(
            SELECT
              COALESCE(SUM(CASE WHEN i.res_in AND l.allowed_in IS NOT NULL
                                THEN MAX(l.allowed_in - l.spent_in, 0) ELSE 0 END), 0),
              COALESCE(SUM(CASE WHEN i.res_out AND l.allowed_out IS NOT NULL
                                THEN MAX(l.allowed_out - l.spent_out, 0) ELSE 0 END), 0),
              COALESCE(SUM(CASE WHEN i.res_total AND l.allowed_total IS NOT NULL
                                THEN MAX(l.allowed_total - l.spent_in - l.spent_out, 0) ELSE 0 END), 0)
            FROM lease_items i JOIN leases l ON l.session_id = i.session_id
            WHERE i.kind = ?1 AND i.subject = ?2 AND i.win = ?3 AND i.period_ms = ?4)sql");
        q->bind(1, kind_code(s.kind)).bind(2, s.key).bind(3, win_code(w)).bind(4, ms(period));
        if (!q->step()) return {};
        return {q->uint64_at(0), q->uint64_at(1), q->uint64_at(2)};
    }

    // --- leases ---
    void insert_lease(const lease& l) override {
        auto q = db_.prepare(
            "INSERT INTO leases (session_id, holder, user_name, ip, opened_ms, updated_ms, expires_ms, allowed_in, "
            "allowed_out, allowed_total, spent_in, spent_out) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
        q->bind(1, l.session_id).bind(2, l.holder);
        if (l.user.empty()) q->bind_null(3); else q->bind(3, l.user);
        q->bind(4, l.ip).bind(5, ms(l.opened)).bind(6, ms(l.updated)).bind(7, ms(l.expires));
        q->bind(8, l.allowed_in).bind(9, l.allowed_out).bind(10, l.allowed_total);
        q->bind(11, l.spent_in).bind(12, l.spent_out);
        q->run();
        write_items(l);
    }
    void update_lease(const lease& l) override {
        auto q = db_.prepare(
            "UPDATE leases SET updated_ms = ?2, expires_ms = ?3, allowed_in = ?4, allowed_out = ?5, allowed_total = ?6, "
            "spent_in = ?7, spent_out = ?8 WHERE session_id = ?1");
        q->bind(1, l.session_id).bind(2, ms(l.updated)).bind(3, ms(l.expires));
        q->bind(4, l.allowed_in).bind(5, l.allowed_out).bind(6, l.allowed_total);
        q->bind(7, l.spent_in).bind(8, l.spent_out);
        q->run();
    }
    void replace_lease_items(const lease& l) override {
        auto d = db_.prepare("DELETE FROM lease_items WHERE session_id = ?1");
        d->bind(1, l.session_id);
        d->run();
        write_items(l);
    }
    std::optional<lease> find_lease(std::int64_t id) override {
        lease l;
        {
            auto q = db_.prepare(
                "SELECT session_id, holder, user_name, ip, opened_ms, updated_ms, expires_ms, allowed_in, allowed_out, "
                "allowed_total, spent_in, spent_out FROM leases WHERE session_id = ?1");
            q->bind(1, id);
            if (!q->step()) return std::nullopt;
            l.session_id = q->int64_at(0);
            l.holder = q->text_at(1);
            l.user = q->text_at(2);
            l.ip = q->text_at(3);
            l.opened = from_unix_ms(q->int64_at(4));
            l.updated = from_unix_ms(q->int64_at(5));
            l.expires = from_unix_ms(q->int64_at(6));
            l.allowed_in = q->opt_uint64_at(7);
            l.allowed_out = q->opt_uint64_at(8);
            l.allowed_total = q->opt_uint64_at(9);
            l.spent_in = q->uint64_at(10);
            l.spent_out = q->uint64_at(11);
        }
        auto q = db_.prepare(
            "SELECT kind, subject, win, period_ms, res_in, res_out, res_total FROM lease_items WHERE session_id = ?1 "
            "ORDER BY kind, win");
        q->bind(1, id);
        while (q->step()) {
            lease_item it;
            it.who = {kind_from(q->int64_at(0)), q->text_at(1)};
            it.win = win_from(q->int64_at(2));
            it.period = from_unix_ms(q->int64_at(3));
            it.in = q->int64_at(4) != 0;
            it.out = q->int64_at(5) != 0;
            it.total = q->int64_at(6) != 0;
            l.items.push_back(std::move(it));
        }
        return l;
    }
    void delete_lease(std::int64_t id) override {
        auto q = db_.prepare("DELETE FROM leases WHERE session_id = ?1");
        q->bind(1, id);
        q->run();
    }
    std::vector<std::int64_t> expired_leases(sys_ms now) override {
        auto q = db_.prepare("SELECT session_id FROM leases WHERE expires_ms <= ?1 ORDER BY session_id");
        q->bind(1, ms(now));
        std::vector<std::int64_t> out;
        while (q->step()) out.push_back(q->int64_at(0));
        return out;
    }

    // --- sessions ---
    std::int64_t insert_session(const session_row& r) override {
        auto q = db_.prepare("INSERT INTO sessions (start_ms, end_ms, peer_ip, peer_port, user_name, protocol, direction, "
                             "connections, tx_speed_requested, rx_speed_requested, tx_bytes, rx_bytes, tx_bps, rx_bps, "
                             "lost_packets, ended_by, error, refused) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                             "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)");
        bind_session(*q, r);
        q->run();
        return db_.last_insert_rowid();
    }
    void update_session(const session_row& r) override {
        auto q = db_.prepare("UPDATE sessions SET start_ms = ?1, end_ms = ?2, peer_ip = ?3, peer_port = ?4, "
                             "user_name = ?5, protocol = ?6, direction = ?7, connections = ?8, tx_speed_requested = ?9, "
                             "rx_speed_requested = ?10, tx_bytes = ?11, rx_bytes = ?12, tx_bps = ?13, rx_bps = ?14, "
                             "lost_packets = ?15, ended_by = ?16, error = ?17, refused = ?18 WHERE id = ?19");
        bind_session(*q, r);
        q->bind(19, r.id);
        q->run();
    }
    void insert_intervals(std::int64_t id, std::span<const interval_row> rows) override {
        std::int64_t seq = 0;
        {
            auto q = db_.prepare("SELECT COALESCE(MAX(seq) + 1, 0) FROM session_intervals WHERE session_id = ?1");
            q->bind(1, id);
            if (q->step()) seq = q->int64_at(0);
        }
        for (const auto& r : rows) {
            auto q = db_.prepare("INSERT INTO session_intervals (session_id, seq, start_ms, end_ms, tx_bytes, rx_bytes, "
                                 "tx_bps, rx_bps, lost_packets) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
            q->bind(1, id).bind(2, seq++).bind(3, r.start_ms).bind(4, r.end_ms);
            q->bind(5, r.tx_bytes).bind(6, r.rx_bytes).bind(7, r.tx_bits_per_second).bind(8, r.rx_bits_per_second);
            q->bind(9, r.lost_packets);
            q->run();
        }
    }
    std::optional<session_row> find_session(std::int64_t id) override {
        auto q = db_.prepare("SELECT " BTEST_SESSION_COLUMNS " FROM sessions WHERE id = ?1");
        q->bind(1, id);
        if (!q->step()) return std::nullopt;
        return read_session(*q);
    }
    std::vector<session_row> list_sessions(const session_filter& f) override {
        // Built per call so that SQLite can use the index that fits the filter.
        std::string sql = "SELECT " BTEST_SESSION_COLUMNS " FROM sessions WHERE 1";
        if (f.ip) sql += " AND peer_ip = ?1";
        if (f.user) sql += " AND user_name = ?2";
        if (f.since) sql += " AND start_ms >= ?3";
        sql += " ORDER BY start_ms DESC, id DESC LIMIT ?4 OFFSET ?5";
        statement s(db_, sql);
        if (f.ip) s.bind(1, f.ip->to_string());
        if (f.user) s.bind(2, *f.user);
        if (f.since) s.bind(3, ms(*f.since));
        s.bind(4, f.limit == 0 ? std::int64_t{-1} : static_cast<std::int64_t>(f.limit));
        s.bind(5, static_cast<std::int64_t>(f.offset));
        std::vector<session_row> out;
        while (s.step()) out.push_back(read_session(s));
        return out;
    }
    std::vector<interval_row> intervals(std::int64_t id) override {
        auto q = db_.prepare("SELECT start_ms, end_ms, tx_bytes, rx_bytes, tx_bps, rx_bps, lost_packets "
                             "FROM session_intervals WHERE session_id = ?1 ORDER BY seq");
        q->bind(1, id);
        std::vector<interval_row> out;
        while (q->step())
            out.push_back({q->int64_at(0), q->int64_at(1), q->uint64_at(2), q->uint64_at(3), q->uint64_at(4),
                           q->uint64_at(5), q->uint64_at(6)});
        return out;
    }
    std::size_t prune_sessions(sys_ms before) override {
        auto q = db_.prepare("DELETE FROM sessions WHERE start_ms < ?1 AND end_ms IS NOT NULL");
        q->bind(1, ms(before));
        q->run();
        return static_cast<std::size_t>(db_.changes());
    }
    std::size_t prune_usage(sys_ms before) override {
        auto q = db_.prepare("DELETE FROM usage WHERE period_ms < ?1");
        q->bind(1, ms(before));
        q->run();
        return static_cast<std::size_t>(db_.changes());
    }

private:
    void write_items(const lease& l) {
        for (const auto& it : l.items) {
            auto q = db_.prepare("INSERT INTO lease_items (session_id, kind, subject, win, period_ms, res_in, res_out, "
                                 "res_total) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
            q->bind(1, l.session_id).bind(2, kind_code(it.who.kind)).bind(3, it.who.key).bind(4, win_code(it.win));
            q->bind(5, ms(it.period)).bind(6, int{it.in}).bind(7, int{it.out}).bind(8, int{it.total});
            q->run();
        }
    }

    void verify() {
        auto q = db_.prepare("PRAGMA quick_check");
        std::string first;
        if (q->step()) first = q->text_at(0);
        if (first != "ok")
            throw storage_error(storage_errc::corrupt, "database " + db_.path() + " is damaged: " + first);
    }

    /// (tables in the file, whether schema_version is one of them)
    std::pair<int, bool> inspect() {
        int tables = 0;
        bool have_version_table = false;
        auto q = db_.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'");
        while (q->step()) {
            ++tables;
            if (q->text_at(0) == "schema_version") have_version_table = true;
        }
        return {tables, have_version_table};
    }

    void check_not_newer(int current, int latest) const {
        if (current > latest)
            throw storage_error(storage_errc::schema_too_new,
                                "database " + db_.path() + " has schema version " + std::to_string(current) +
                                    ", newer than this btest-server-pro understands (" + std::to_string(latest) +
                                    "): upgrade btest-server-pro, or use the database with the version that wrote it");
    }

    void migrate(int target) {
        const int latest = sqlite_latest_schema();
        // The common case reads only and takes no write lock, so opening never waits for a
        // running server's transaction.
        if (auto [tables, have] = inspect(); have) {
            const int current = schema_version();
            check_not_newer(current, latest);
            if (current >= target) return;
        }
        // Create or upgrade under the write lock; check again, since another process may have
        // done it meanwhile.
        sqlite::transaction tx(db_);
        const auto [tables, have_version_table] = inspect();
        if (!have_version_table) {
            if (tables != 0)
                throw storage_error(storage_errc::corrupt,
                                    "database " + db_.path() + " is not a btest-server-pro database (it has other tables)");
            db_.exec("CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version VALUES (0);");
        }
        const int current = schema_version();
        check_not_newer(current, latest);
        if (current >= target) {
            tx.commit();
            return;
        }
        for (const auto& m : sqlite_migrations()) {
            if (m.to <= current || m.to > target) continue;
            m.apply(db_);
        }
        auto q = db_.prepare("UPDATE schema_version SET version = ?1");
        q->bind(1, target);
        q->run();
        tx.commit();
    }

    sqlite::connection db_;
    int depth_ = 0;  ///< 0: no transaction; 1: in one; more: in savepoints
};

} // namespace

const std::vector<sqlite_migration>& sqlite_migrations() {
    static const std::vector<sqlite_migration> steps{
        {1, "accounts with EC-SRP5 validator records and optional MD5 passwords", schema_v1},
        {2, "quotas, usage ledger with leases, session history", schema_v2},
    };
    return steps;
}

int sqlite_latest_schema() { return sqlite_migrations().back().to; }

std::unique_ptr<storage> open_sqlite(const std::string& path, const open_options& opts, int target_version) {
    return std::make_unique<sqlite_storage>(path, opts, target_version);
}

std::unique_ptr<storage> open_storage(std::string_view url, const open_options& opts) {
    constexpr std::string_view sqlite_prefix = "sqlite:";
    if (url.starts_with(sqlite_prefix)) {
        std::string_view path = url.substr(sqlite_prefix.size());
        // sqlite:///abs/path and sqlite://rel are common spellings from other tools; accept the
        // first (an absolute path) and refuse the ambiguous host form.
        if (path.starts_with("///")) path.remove_prefix(2);
        else if (path.starts_with("//"))
            throw storage_error(storage_errc::bad_url, "bad database URL '" + std::string(url) +
                                                           "': write sqlite:PATH or sqlite:///ABSOLUTE/PATH");
        if (path.empty())
            throw storage_error(storage_errc::bad_url, "bad database URL '" + std::string(url) + "': the path is empty");
        return open_sqlite(std::string(path), opts);
    }
    if (pg::is_postgresql_url(url)) return open_postgresql(std::string(url), opts);
    throw storage_error(storage_errc::bad_url, "bad database URL '" + pg::redact_url(url) +
                                                   "': expected sqlite:PATH or postgresql://USER:PASSWORD@HOST:PORT/DBNAME");
}

const char* to_string(storage_errc e) noexcept {
    switch (e) {
    case storage_errc::bad_url: return "bad_url";
    case storage_errc::not_supported: return "not_supported";
    case storage_errc::not_found: return "not_found";
    case storage_errc::cannot_open: return "cannot_open";
    case storage_errc::read_only: return "read_only";
    case storage_errc::corrupt: return "corrupt";
    case storage_errc::schema_too_new: return "schema_too_new";
    case storage_errc::busy: return "busy";
    case storage_errc::io: return "io";
    case storage_errc::unavailable: return "unavailable";
    case storage_errc::conflict: return "conflict";
    }
    return "?";
}

} // namespace btest::pro
