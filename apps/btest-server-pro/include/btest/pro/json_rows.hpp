// The JSON objects btest-server-pro shows its data as: one writer per row type, shared by the
// management commands' --json lines and the HTTP API, so the two cannot drift apart. Field
// names follow `btest --json` where one exists (tx_bytes, bits_per_second, lost_packets, ...).
#pragma once

#include "btest/pro/accounts.hpp"
#include "btest/pro/json_writer.hpp"
#include "btest/pro/ledger.hpp"
#include "btest/pro/quota.hpp"
#include "btest/pro/storage.hpp"

namespace btest::pro {

/// {daily|weekly|monthly: {in, out, total}} in bytes, null where there is no limit.
void write_limits(json_writer& j, const quota_limits& q);
/// A `user list --json` row: name, methods, quotas, created, updated.
void write_account(json_writer& j, const account& acc);
/// A `quota show --json` row of `who` (an "ip" or "user" field first).
void write_quota_line(json_writer& j, const subject& who, const quota_line& q);
/// A `sessions --json` row's fields; the object is left open (the API adds intervals).
void write_session_fields(json_writer& j, const session_row& r);

} // namespace btest::pro
