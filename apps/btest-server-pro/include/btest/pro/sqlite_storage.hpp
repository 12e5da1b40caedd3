// The SQLite backend of the storage interface.
//
// Schema (version 2; created and migrated by open, see migrations below):
//   schema_version(version)                           one row
//   accounts(name PK, ecsrp5_salt, ecsrp5_x, ecsrp5_parity, md5_password NULL,
//            created_ms, updated_ms, quota_<window>_<dir> NULL ×9)
//   generations(name PK, value)                       'accounts': bumped by every account write
//   ip_quota(win, dir, limit_bytes, PK(win, dir))
//   usage(kind, subject, win, period_ms, used_in, used_out, PK(kind, subject, win, period_ms))
//   leases(session_id PK, holder, user, ip, opened_ms, updated_ms, expires_ms,
//          allowed_in/out/total NULL, spent_in, spent_out)
//   lease_items(session_id, kind, subject, win, period_ms, res_in, res_out, res_total)
//   sessions(id PK, start_ms, end_ms NULL, peer_ip, peer_port, user NULL, protocol, direction,
//            connections, tx_speed_requested, rx_speed_requested, tx_bytes, rx_bytes,
//            tx_bps, rx_bps, lost_packets, ended_by NULL, error NULL, refused)
//   session_intervals(session_id, seq, start_ms, end_ms, tx_bytes, rx_bytes, tx_bps, rx_bps,
//                     lost_packets, PK(session_id, seq))
// Windows are stored as 0 daily / 1 weekly / 2 monthly, directions 0 in / 1 out / 2 total,
// subject kinds 1 user / 2 ip, times as Unix milliseconds (UTC).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "btest/pro/sqlite.hpp"
#include "btest/pro/storage.hpp"

namespace btest::pro {

/// One step of the schema's history: what turns version `to - 1` into `to`.
struct sqlite_migration {
    int to;
    const char* what;
    std::function<void(sqlite::connection&)> apply;
};

/// Every step, oldest first; the last one's `to` is the version this build writes.
const std::vector<sqlite_migration>& sqlite_migrations();
int sqlite_latest_schema();

/// Opens the file at `path` and brings its schema to `target_version` (default: the latest),
/// all steps in one transaction. Errors as storage_error, also schema_too_new when the file's
/// version is above what this build knows. A lower `target_version` exists for the migration
/// tests (a file created at version 1, then opened normally).
std::unique_ptr<storage> open_sqlite(const std::string& path, const open_options& opts,
                                     int target_version = 0);

} // namespace btest::pro
