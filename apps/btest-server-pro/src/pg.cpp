#include "btest/pro/pg.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include <libpq-fe.h>
#include <poll.h>

namespace btest::pro::pg {

namespace {

using steady = std::chrono::steady_clock;

/// The storage_errc class of an SQLSTATE (https://www.postgresql.org/docs/15/errcodes-appendix.html).
storage_errc classify(std::string_view state) noexcept {
    if (state.size() != 5) return storage_errc::unavailable;  // no SQLSTATE: libpq lost the connection
    const std::string_view cls = state.substr(0, 2);
    if (cls == "08") return storage_errc::unavailable;                  // connection exception
    if (state == "57P01" || state == "57P02" || state == "57P03" || state == "57P05") return storage_errc::unavailable;
    if (state == "53300") return storage_errc::unavailable;             // too many connections
    if (state == "40001" || state == "40P01") return storage_errc::conflict;
    if (state == "55P03" || state == "57014") return storage_errc::busy;  // lock / statement timeout
    if (state == "42501" || state == "25006") return storage_errc::read_only;
    if (state == "XX001" || state == "XX002") return storage_errc::corrupt;
    return storage_errc::io;
}

std::string trimmed(const char* msg) {
    std::string s = msg ? msg : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    // libpq's multi-line messages read better on one log line.
    std::replace(s.begin(), s.end(), '\n', ' ');
    std::replace(s.begin(), s.end(), '\t', ' ');
    return s;
}

void no_notices(void*, const char*) {}

} // namespace

// --- params -----------------------------------------------------------------------------------

params& params::add(std::int64_t v) {
    values_.emplace_back(std::to_string(v));
    formats_.push_back(0);
    return *this;
}
params& params::add(std::uint64_t v) {
    if (v > static_cast<std::uint64_t>(INT64_MAX))
        throw storage_error(storage_errc::io, "a value does not fit in a PostgreSQL BIGINT");
    return add(static_cast<std::int64_t>(v));
}
params& params::add(std::string_view text) {
    values_.emplace_back(std::string(text));
    formats_.push_back(0);
    return *this;
}
params& params::add_bytes(std::span<const std::byte> bytes) {
    values_.emplace_back(std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    formats_.push_back(1);
    return *this;
}
params& params::add_null() {
    values_.emplace_back(std::nullopt);
    formats_.push_back(0);
    return *this;
}
std::vector<const char*> params::values() const {
    std::vector<const char*> v;
    for (const auto& x : values_) v.push_back(x ? x->data() : nullptr);
    return v;
}
std::vector<int> params::lengths() const {
    std::vector<int> v;
    for (const auto& x : values_) v.push_back(x ? static_cast<int>(x->size()) : 0);
    return v;
}
std::vector<int> params::formats() const { return formats_; }

// --- result -----------------------------------------------------------------------------------

result& result::operator=(result&& o) noexcept {
    if (this != &o) {
        if (r_) PQclear(r_);
        r_ = o.r_;
        o.r_ = nullptr;
    }
    return *this;
}
result::~result() {
    if (r_) PQclear(r_);
}
int result::rows() const noexcept { return r_ ? PQntuples(r_) : 0; }
std::int64_t result::affected() const noexcept {
    const char* n = r_ ? PQcmdTuples(r_) : "";
    std::int64_t v = 0;
    std::from_chars(n, n + std::strlen(n), v);
    return v;
}
bool result::is_null(int row, int col) const { return PQgetisnull(r_, row, col) != 0; }
std::string result::text(int row, int col) const {
    return std::string(PQgetvalue(r_, row, col), static_cast<std::size_t>(PQgetlength(r_, row, col)));
}
std::int64_t result::int64(int row, int col) const {
    const char* s = PQgetvalue(r_, row, col);
    const char* end = s + PQgetlength(r_, row, col);
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(s, end, v);
    // SUM() of BIGINT is NUMERIC; an integral NUMERIC may still print a fraction (".0").
    if (ec != std::errc{} || (p != end && *p != '.'))
        throw storage_error(storage_errc::corrupt, "PostgreSQL returned '" + std::string(s, end) + "' for an integer column");
    return v;
}
std::uint64_t result::uint64(int row, int col) const {
    const auto v = int64(row, col);
    return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}
std::optional<std::uint64_t> result::opt_uint64(int row, int col) const {
    if (is_null(row, col)) return std::nullopt;
    return uint64(row, col);
}
std::vector<std::byte> result::bytes(int row, int col) const {
    std::size_t n = 0;
    unsigned char* raw = PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(r_, row, col)), &n);
    if (!raw) throw storage_error(storage_errc::io, "out of memory decoding a bytea column");
    std::vector<std::byte> out(reinterpret_cast<std::byte*>(raw), reinterpret_cast<std::byte*>(raw) + n);
    PQfreemem(raw);
    return out;
}

// --- connection -------------------------------------------------------------------------------

connection::connection(const connect_options& opts) : opts_(opts) {
    char* parse_err = nullptr;
    if (PQconninfoOption* parsed = PQconninfoParse(opts.conninfo.c_str(), &parse_err)) {
        PQconninfoFree(parsed);
    } else {
        const std::string why = parse_err ? trimmed(parse_err) : "out of memory";
        if (parse_err) PQfreemem(parse_err);
        throw storage_error(storage_errc::bad_url, "bad PostgreSQL URL '" + redact_url(opts.conninfo) + "': " + why);
    }

    // Our defaults first: libpq keeps the last value of a repeated keyword, so whatever the
    // URL says (it is expanded from `dbname`, last) wins.
    const auto user_timeout = std::to_string(std::max<long long>(1000, opts.query_timeout.count()));
    const char* keys[] = {"application_name", "keepalives", "keepalives_idle", "keepalives_interval",
                          "keepalives_count", "tcp_user_timeout", "dbname", nullptr};
    const char* vals[] = {"btest-server-pro", "1", "15", "5", "3", user_timeout.c_str(), opts.conninfo.c_str(), nullptr};
    c_ = PQconnectStartParams(keys, vals, 1);
    if (!c_) throw storage_error(storage_errc::unavailable, "PostgreSQL: out of memory starting a connection");
    const auto deadline = steady::now() + opts.connect_timeout;
    auto fail = [&](const std::string& why) {
        const std::string msg = "cannot connect to PostgreSQL at " + redact_url(opts.conninfo) + ": " + why;
        PQfinish(c_);
        c_ = nullptr;
        throw storage_error(storage_errc::unavailable, msg);
    };
    if (PQstatus(c_) == CONNECTION_BAD) fail(trimmed(PQerrorMessage(c_)));
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK) break;
        if (st == PGRES_POLLING_FAILED) fail(trimmed(PQerrorMessage(c_)));
        const int fd = PQsocket(c_);
        if (fd < 0) fail("no socket");
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
        if (left <= 0) fail("no answer within " + std::to_string(opts.connect_timeout.count()) + " ms");
        pollfd p{fd, static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (n < 0 && errno != EINTR) fail(std::string("poll: ") + std::strerror(errno));
        if (n <= 0) continue;
        st = PQconnectPoll(c_);
    }
    PQsetNoticeProcessor(c_, no_notices, nullptr);
    if (PQsetnonblocking(c_, 1) != 0) fail("cannot make the connection non-blocking");
    // Session settings: the server cancels a statement (busy, connection kept) a little before
    // our own deadline would drop the connection; a transaction left open by a stopped client
    // cannot hold row locks for long.
    const auto ms = [](long long v) { return "'" + std::to_string(v) + "ms'"; };
    try {
        exec_script("SET TIME ZONE 'UTC'; SET client_min_messages = warning; SET lock_timeout = " +
                    ms(std::min(opts.lock_timeout.count(), opts.query_timeout.count() * 3 / 4)) +
                    "; SET statement_timeout = " + ms(std::max<long long>(1, opts.query_timeout.count() * 3 / 4)) +
                    "; SET idle_in_transaction_session_timeout = " +
                    ms(std::max<long long>(60'000, opts.query_timeout.count() * 6)));
    } catch (const storage_error& e) {
        fail(e.what());
    }
}

connection::~connection() {
    if (c_) PQfinish(c_);
}

bool connection::ok() const noexcept { return c_ && !broken_ && PQstatus(c_) == CONNECTION_OK; }

std::string connection::where() const {
    if (!c_) return "?";
    return std::string(PQhost(c_) ? PQhost(c_) : "?") + ":" + (PQport(c_) ? PQport(c_) : "?") + "/" +
           (PQdb(c_) ? PQdb(c_) : "?");
}

void connection::broken(const std::string& what) {
    broken_ = true;
    throw storage_error(storage_errc::unavailable, "PostgreSQL at " + where() + ": " + what);
}

bool connection::wait(bool write, steady::time_point deadline) {
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
        if (left <= 0) return false;
        pollfd p{PQsocket(c_), static_cast<short>(POLLIN | (write ? POLLOUT : 0)), 0};
        if (p.fd < 0) return true;  // let libpq report the broken connection
        const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return true;
    }
}

result connection::finish(steady::time_point deadline, std::string_view sql) {
    const auto timed_out = [&] {
        broken("no answer within " + std::to_string(opts_.query_timeout.count()) + " ms (connection dropped)");
    };
    // Send everything queued.
    for (;;) {
        const int f = PQflush(c_);
        if (f == 0) break;
        if (f < 0) broken(trimmed(PQerrorMessage(c_)));
        if (!wait(true, deadline)) timed_out();
        if (!PQconsumeInput(c_)) broken(trimmed(PQerrorMessage(c_)));
    }
    std::optional<result> first, error;
    for (;;) {
        while (PQisBusy(c_)) {
            if (!wait(false, deadline)) timed_out();
            if (!PQconsumeInput(c_)) broken(trimmed(PQerrorMessage(c_)));
        }
        PGresult* r = PQgetResult(c_);
        if (!r) break;
        const auto st = PQresultStatus(r);
        if (st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR) {
            if (!error) error.emplace(r);
            else PQclear(r);
        } else if (!first) {
            first.emplace(r);
        } else {
            PQclear(r);
        }
    }
    if (error) {
        const PGresult* raw = error->get();
        const char* state = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
        const std::string msg = trimmed(PQresultErrorMessage(raw));
        storage_errc code = classify(state ? state : "");
        if (PQstatus(c_) == CONNECTION_BAD) {
            broken_ = true;
            code = storage_errc::unavailable;
        }
        std::string head(sql.substr(0, 60));
        std::replace(head.begin(), head.end(), '\n', ' ');
        throw storage_error(code, "PostgreSQL at " + where() + ": " + msg + (state ? std::string(" [") + state + "]" : "") +
                                      " (in: " + head + (sql.size() > 60 ? "…" : "") + ")");
    }
    if (PQstatus(c_) == CONNECTION_BAD) broken(trimmed(PQerrorMessage(c_)));
    return first ? std::move(*first) : result{nullptr};
}

result connection::exec(std::string_view sql, const params& p) {
    if (!ok()) broken("the connection is closed");
    const auto deadline = steady::now() + opts_.query_timeout;
    const std::string text(sql);
    const auto values = p.values();
    const auto lengths = p.lengths();
    const auto formats = p.formats();
    if (!PQsendQueryParams(c_, text.c_str(), static_cast<int>(p.size()), nullptr, values.data(), lengths.data(),
                           formats.data(), 0))
        broken(trimmed(PQerrorMessage(c_)));
    return finish(deadline, sql);
}

void connection::exec_script(std::string_view sql) {
    if (!c_ || broken_) broken("the connection is closed");
    const auto deadline = steady::now() + opts_.query_timeout;
    const std::string text(sql);
    if (!PQsendQuery(c_, text.c_str())) broken(trimmed(PQerrorMessage(c_)));
    finish(deadline, sql);
}

// --- URLs -------------------------------------------------------------------------------------

bool is_postgresql_url(std::string_view url) noexcept {
    return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

std::string redact_url(std::string_view url) {
    std::string s(url);
    // user:PASSWORD@host — the userinfo ends at the first '@' before the path.
    if (const auto scheme = s.find("://"); scheme != std::string::npos) {
        const auto start = scheme + 3;
        const auto path = s.find_first_of("/?", start);
        const auto at = s.rfind('@', path == std::string::npos ? std::string::npos : path);
        if (at != std::string::npos && at >= start) {
            const auto colon = s.find(':', start);
            if (colon != std::string::npos && colon < at) s.replace(colon + 1, at - colon - 1, "***");
        }
    }
    // ?password=... or &password=... (and key=value strings: password=...)
    for (std::size_t pos = 0; (pos = s.find("password=", pos)) != std::string::npos;) {
        const bool key_start = pos == 0 || s[pos - 1] == '?' || s[pos - 1] == '&' || s[pos - 1] == ' ';
        pos += 9;
        if (!key_start) continue;
        const auto end = s.find_first_of("& ", pos);
        s.replace(pos, (end == std::string::npos ? s.size() : end) - pos, "***");
    }
    return s;
}

} // namespace btest::pro::pg
