#include "btest/pro/json_rows.hpp"

#include "btest/pro/cidr.hpp"
#include "btest/pro/utc_time.hpp"

namespace btest::pro {

void write_limits(json_writer& j, const quota_limits& q) {
    j.begin_object();
    for (auto w : all_windows) {
        j.key(to_string(w)).begin_object();
        for (auto d : all_quota_dirs) j.key(to_string(d)).optional(q.get(w, d));
        j.end_object();
    }
    j.end_object();
}

void write_account(json_writer& j, const account& acc) {
    j.begin_object().field("name", acc.name).key("methods").begin_array();
    for (auto m : methods(acc)) j.string(m);
    j.end_array().key("quotas");
    write_limits(j, acc.quotas);
    j.field("created", format_utc(acc.created)).field("updated", format_utc(acc.updated));
    j.end_object();
}

void write_quota_line(json_writer& j, const subject& who, const quota_line& q) {
    j.begin_object()
        .field(who.kind == subject_kind::ip ? "ip" : "user", who.key)
        .field("window", to_string(q.win))
        .field("direction", to_string(q.dir))
        .field("limit_bytes", q.limit)
        .field("used_bytes", q.used)
        .field("reserved_bytes", q.reserved)
        .field("remaining_bytes", q.remaining)
        .field("period_start", format_utc(q.period_start))
        .field("period_end", format_utc(q.period_end))
        .end_object();
}

void write_session_fields(json_writer& j, const session_row& r) {
    j.begin_object().field("id", r.id).field("start", format_utc(r.start)).key("end");
    if (r.end) j.string(format_utc(*r.end)); else j.null();
    j.key("duration_s");
    if (r.end) j.number(static_cast<double>((*r.end - r.start).count()) / 1000.0); else j.null();
    j.field("peer", format_endpoint(r.peer_ip, r.peer_port)).key("user");
    if (r.user.empty()) j.null(); else j.string(r.user);
    j.field("protocol", r.protocol)
        .field("direction", r.direction)
        .field("connections", r.connections)
        .field("tx_speed_requested", r.tx_speed_requested)
        .field("rx_speed_requested", r.rx_speed_requested)
        .field("tx_bytes", r.tx_bytes)
        .field("rx_bytes", r.rx_bytes)
        .field("tx_bits_per_second", r.tx_bits_per_second)
        .field("rx_bits_per_second", r.rx_bits_per_second)
        .field("lost_packets", r.lost_packets)
        .key("ended_by");
    if (r.ended_by.empty()) j.null(); else j.string(r.ended_by);
    j.key("error");
    if (r.error.empty()) j.null(); else j.string(r.error);
    j.field("refused", r.refused);
}

} // namespace btest::pro
