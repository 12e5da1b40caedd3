// The PostgreSQL backend of the storage interface: one database shared by a fleet of servers.
//
// Schema: the same tables, columns and versioned steps as the SQLite backend
// (sqlite_storage.hpp), in PostgreSQL types (BIGINT, BYTEA, an identity column for session
// ids). Creating or migrating takes a transaction-scoped advisory lock, so servers starting
// together on an empty database create it once. The tables live in the connection's current
// schema (search_path): a database shared with other applications can give btest-server-pro
// its own schema with `?options=-csearch_path%3Dbtest` in the URL.
//
// Concurrency (several servers, several connections each), at READ COMMITTED:
//   - lock_usage() upserts the (subject, window, period) usage row, which locks it until
//     commit. Every reservation locks the rows of every quota it reserves from before reading
//     `used` and `reserved`, and every write that changes either (usage, a lease's spent or
//     allowance) holds the same row, so reservations against one quota are serialised across
//     the fleet and never see a stale total.
//   - find_lease() inside a transaction locks the lease row (SELECT … FOR UPDATE): a flush and
//     an extend of one test, or an expiry sweep racing its owner, take turns.
//   - The ledger takes row locks in one order (leases by id, then usage rows in key order), so
//     deadlocks are rare; PostgreSQL detects the rest and aborts one side with 40P01, which is
//     storage_errc::conflict and retried by the service.
//
// Losing the server: every call has a deadline (pg.hpp). When the connection breaks, the call
// throws unavailable, and the next call reconnects: at once the first time (a restarted
// server is found again without delay), then after a backoff that doubles from
// open_options::reconnect_min to reconnect_max; calls before the next attempt fail at once
// with unavailable, without touching the network. reconnect() lets an idle owner retry on
// its own. Every transition (lost, each failed attempt, back) is one line to open_options::log.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "btest/pro/pg.hpp"
#include "btest/pro/storage.hpp"

namespace btest::pro {

/// One step of the PostgreSQL schema's history (the same versions as sqlite_migrations()).
struct pg_migration {
    int to;
    const char* what;
    const char* sql;
};

const std::vector<pg_migration>& pg_migrations();
int pg_latest_schema();

/// Connects to `url` (postgresql:// or postgres://, any libpq URI) and brings the schema to
/// `target_version` (default: the latest). Errors as storage_error: bad_url, unavailable (the
/// server cannot be reached or refuses the login), not_found (opts.create is false and the
/// database has no btest-server-pro schema yet), schema_too_new, corrupt (other tables).
std::unique_ptr<storage> open_postgresql(const std::string& url, const open_options& opts, int target_version = 0);

} // namespace btest::pro
