#include "btest/pro/ledger.hpp"

#include <algorithm>
#include <array>
#include <limits>

#include "btest/pro/byte_size.hpp"
#include "btest/pro/cidr.hpp"

namespace btest::pro {

namespace {

constexpr std::uint64_t unlimited = std::numeric_limits<std::uint64_t>::max();

std::uint64_t sat_sub(std::uint64_t a, std::uint64_t b) noexcept { return a > b ? a - b : 0; }

std::size_t idx(quota_dir d) noexcept { return static_cast<std::size_t>(d); }

std::uint64_t pick(const usage_counts& u, quota_dir d) noexcept {
    return d == quota_dir::in ? u.in : d == quota_dir::out ? u.out : u.total();
}
std::uint64_t pick(const reserved_counts& r, quota_dir d) noexcept {
    return d == quota_dir::in ? r.in : d == quota_dir::out ? r.out : r.total;
}

std::optional<std::uint64_t>& allowed(lease& l, quota_dir d) noexcept {
    return d == quota_dir::in ? l.allowed_in : d == quota_dir::out ? l.allowed_out : l.allowed_total;
}
std::uint64_t spent(const lease& l, quota_dir d) noexcept {
    return d == quota_dir::in ? l.spent_in : d == quota_dir::out ? l.spent_out : l.spent_in + l.spent_out;
}

byte_budget budget_of(const lease& l) { return {l.allowed_in, l.allowed_out, l.allowed_total}; }

std::vector<subject> subjects_of(const lease& l) {
    std::vector<subject> s;
    if (!l.user.empty()) s.push_back({subject_kind::user, l.user});
    s.push_back({subject_kind::ip, l.ip});
    return s;
}

std::string describe(const subject& s) {
    return (s.kind == subject_kind::user ? "user " : "ip ") + s.key;
}

std::uint64_t average_bps(std::uint64_t bytes, sys_ms start, sys_ms end) {
    const auto ms = (end - start).count();
    if (ms <= 0) return 0;
    return static_cast<std::uint64_t>(static_cast<long double>(bytes) * 8000.0L / static_cast<long double>(ms));
}

} // namespace

ledger::grant_outcome ledger::grant(storage& db, lease& l, const test_request* req, sys_ms now) {
    std::vector<std::pair<subject, quota_limits>> subjects;
    if (!l.user.empty()) {
        // An account deleted since its login has no limits any more; its usage is still
        // recorded under its name (and the IP quota still applies).
        auto acc = db.find_account(l.user);
        subjects.emplace_back(subject{subject_kind::user, l.user}, acc ? acc->quotas : quota_limits{});
    }
    subjects.emplace_back(subject{subject_kind::ip, l.ip}, db.ip_quota());

    // Our own items out of the way, so that reserved() counts the other leases only.
    if (!l.items.empty()) {
        l.items.clear();
        db.replace_lease_items(l);
    }

    std::array<std::uint64_t, 3> left{unlimited, unlimited, unlimited};
    std::array<bool, 3> limited{};
    std::array<std::string, 3> tightest;
    std::vector<lease_item> items;
    for (const auto& [who, limits] : subjects) {
        for (auto w : all_windows) {
            if (!limits.any(w)) continue;
            const sys_ms period = period_start(w, now);
            db.lock_usage(who, w, period);
            const usage_counts used = db.usage(who, w, period);
            const reserved_counts res = db.reserved(who, w, period);
            lease_item item{who, w, period, false, false, false};
            for (auto d : all_quota_dirs) {
                const auto& lim = limits.get(w, d);
                if (!lim) continue;
                (d == quota_dir::in ? item.in : d == quota_dir::out ? item.out : item.total) = true;
                limited[idx(d)] = true;
                const std::uint64_t l_left = sat_sub(*lim, pick(used, d) + pick(res, d));
                if (l_left <= left[idx(d)]) {
                    left[idx(d)] = l_left;
                    tightest[idx(d)] = describe(who) + ": " + std::string(to_string(w)) + " " +
                                       std::string(to_string(d)) + " quota " + format_byte_size(*lim) + ", " +
                                       format_byte_size(pick(used, d)) + " used, " + format_byte_size(pick(res, d)) +
                                       " held by running tests";
                }
            }
            items.push_back(std::move(item));
        }
    }

    std::array<std::uint64_t, 3> granted{};
    for (auto d : all_quota_dirs) {
        auto& a = allowed(l, d);
        if (!limited[idx(d)]) {
            a.reset();
            continue;
        }
        const std::uint64_t own = a ? sat_sub(*a, spent(l, d)) : 0;
        const std::uint64_t base = a ? *a : spent(l, d);
        const std::uint64_t room = sat_sub(left[idx(d)], own);
        const std::uint64_t cap = sat_sub(2 * cfg_.slice_bytes, own);
        granted[idx(d)] = std::min({cfg_.slice_bytes, room, cap});
        a = base + granted[idx(d)];
    }
    l.items = std::move(items);

    if (req) {
        for (auto d : all_quota_dirs) {
            const bool used = d == quota_dir::total || (d == quota_dir::in && req->server_receives) ||
                              (d == quota_dir::out && req->server_sends);
            if (used && limited[idx(d)] && granted[idx(d)] < std::max<std::uint64_t>(1, req->min_grant))
                return {true, tightest[idx(d)]};
        }
    }
    return {};
}

void ledger::apply_usage(lease& l, usage_counts moved, sys_ms now, usage_batch& batch) const {
    const usage_counts delta{sat_sub(moved.in, l.spent_in), sat_sub(moved.out, l.spent_out)};
    if (delta.in != 0 || delta.out != 0)
        for (const auto& who : subjects_of(l))
            for (auto w : all_windows) {
                auto& u = batch[{static_cast<int>(who.kind), who.key, static_cast<int>(w),
                                 to_unix_ms(period_start(w, now))}];
                u.in += delta.in;
                u.out += delta.out;
            }
    l.spent_in = std::max(l.spent_in, moved.in);
    l.spent_out = std::max(l.spent_out, moved.out);
    l.updated = now;
    l.expires = now + cfg_.lease_ttl;
}

void ledger::write_usage(storage& db, const usage_batch& batch) {
    for (const auto& [key, delta] : batch) {
        const auto& [kind, who, win, period] = key;
        db.add_usage(subject{static_cast<subject_kind>(kind), who}, static_cast<window>(win), from_unix_ms(period), delta);
    }
}

std::size_t ledger::sweep_in_transaction(storage& db, sys_ms now) {
    const auto ids = db.expired_leases(now);
    std::size_t swept = 0;
    for (const auto id : ids) {
        auto l = db.find_lease(id);
        // Read again under the lease's lock: its owner may have renewed it meanwhile (another
        // server's flush committing between our list and our lock).
        if (!l || l->expires > now) continue;
        ++swept;
        auto s = db.find_session(id);
        if (s && !s->end) {
            s->end = l->updated;
            s->tx_bytes = l->spent_out;
            s->rx_bytes = l->spent_in;
            s->tx_bits_per_second = average_bps(s->tx_bytes, s->start, *s->end);
            s->rx_bits_per_second = average_bps(s->rx_bytes, s->start, *s->end);
            s->ended_by = std::string(ended_by::server_lost);
            db.update_session(*s);
        }
        db.delete_lease(id);
    }
    return swept;
}

std::size_t ledger::sweep(storage& db, sys_ms now) {
    write_transaction tx(db);
    const auto n = sweep_in_transaction(db, now);
    tx.commit();
    return n;
}

open_result ledger::open_test(storage& db, const test_request& req, sys_ms now) {
    write_transaction tx(db);
    sweep_in_transaction(db, now);

    session_row row;
    row.start = now;
    row.peer_ip = canonical(req.peer_ip);
    row.peer_port = req.peer_port;
    row.user = req.user;
    row.protocol = req.protocol;
    row.direction = req.direction;
    row.connections = req.connections;
    row.tx_speed_requested = req.tx_speed_requested;
    row.rx_speed_requested = req.rx_speed_requested;
    row.id = db.insert_session(row);

    lease l;
    l.session_id = row.id;
    l.holder = cfg_.holder;
    l.user = req.user;
    l.ip = row.peer_ip.to_string();
    l.opened = l.updated = now;
    l.expires = now + cfg_.lease_ttl;
    const auto g = grant(db, l, &req, now);
    if (g.refused) {
        row.end = now;
        row.ended_by = std::string(ended_by::quota_exhausted);
        row.refused = true;
        db.update_session(row);
        tx.commit();
        return {false, row.id, {}, {}, g.detail};
    }
    db.insert_lease(l);
    tx.commit();
    return {true, row.id, budget_of(l), l.expires, {}};
}

extend_result ledger::extend(storage& db, std::int64_t session_id, usage_counts moved, sys_ms now) {
    write_transaction tx(db);
    sweep_in_transaction(db, now);
    auto l = db.find_lease(session_id);
    if (!l) {
        tx.commit();
        return {};
    }
    usage_batch batch;
    apply_usage(*l, moved, now, batch);
    write_usage(db, batch);
    grant(db, *l, nullptr, now);
    db.update_lease(*l);
    db.replace_lease_items(*l);
    tx.commit();
    return {true, budget_of(*l), l->expires};
}

std::vector<std::int64_t> ledger::record_usage(storage& db, std::span<const usage_report> reports, sys_ms now) {
    std::vector<std::int64_t> lost;
    write_transaction tx(db);
    usage_batch batch;
    std::vector<lease> touched;
    for (const auto& r : reports) {
        auto l = db.find_lease(r.session_id);
        if (!l) {
            lost.push_back(r.session_id);
            continue;
        }
        apply_usage(*l, r.moved, now, batch);
        touched.push_back(std::move(*l));
    }
    // Usage rows first, in key order (see usage_batch), then the leases in id order.
    write_usage(db, batch);
    for (auto& l : touched) {
        db.update_lease(l);
        // A window rolled over: the unspent reservation now counts against the new period.
        bool moved_period = false;
        for (auto& it : l.items) {
            const sys_ms p = period_start(it.win, now);
            if (it.period != p) {
                // Held like a reservation: the new period's row is locked while its reserved
                // total grows, so no grant on it reads the total half-way.
                db.lock_usage(it.who, it.win, p);
                it.period = p;
                moved_period = true;
            }
        }
        if (moved_period) db.replace_lease_items(l);
    }
    tx.commit();
    return lost;
}

void ledger::close_test(storage& db, std::int64_t session_id, const test_result& result,
                        std::span<const interval_row> intervals, sys_ms now) {
    write_transaction tx(db);
    auto s = db.find_session(session_id);
    const usage_counts final_counts{result.rx_bytes, result.tx_bytes};
    usage_batch batch;
    if (auto l = db.find_lease(session_id)) {
        apply_usage(*l, final_counts, now, batch);
        write_usage(db, batch);
        db.delete_lease(session_id);
    } else if (s) {
        // Swept while it ran (its renewals failed): the sweep recorded what the lease had
        // spent, which the row holds; add the rest now.
        lease ghost;
        ghost.user = s->user;
        ghost.ip = s->peer_ip.to_string();
        ghost.spent_in = s->rx_bytes;
        ghost.spent_out = s->tx_bytes;
        apply_usage(ghost, final_counts, now, batch);
        write_usage(db, batch);
    }
    if (s) {
        s->end = now;
        s->tx_bytes = result.tx_bytes;
        s->rx_bytes = result.rx_bytes;
        s->tx_bits_per_second = result.tx_bits_per_second;
        s->rx_bits_per_second = result.rx_bits_per_second;
        s->lost_packets = result.lost_packets;
        s->ended_by = result.ended_by;
        s->error = result.error;
        db.update_session(*s);
        db.insert_intervals(session_id, intervals);
    }
    tx.commit();
}

std::int64_t ledger::record_refused(storage& db, const test_request& req, std::string_view reason, sys_ms now) {
    session_row row;
    row.start = now;
    row.end = now;
    row.peer_ip = canonical(req.peer_ip);
    row.peer_port = req.peer_port;
    row.user = req.user;
    row.protocol = req.protocol;
    row.direction = req.direction;
    row.connections = req.connections;
    row.tx_speed_requested = req.tx_speed_requested;
    row.rx_speed_requested = req.rx_speed_requested;
    row.ended_by = std::string(reason);
    row.refused = true;
    write_transaction tx(db);
    const auto id = db.insert_session(row);
    tx.commit();
    return id;
}

prune_result ledger::prune(storage& db, sys_ms now, std::chrono::days keep) {
    write_transaction tx(db);
    prune_result r;
    r.sessions = db.prune_sessions(now - keep);
    // A period is at most 31 days long: one that started this long before the cutoff has ended.
    r.usage_rows = db.prune_usage(now - keep - std::chrono::days{31});
    tx.commit();
    return r;
}

std::optional<std::vector<quota_line>> ledger::quota_report(storage& db, const subject& who, sys_ms now) {
    quota_limits limits;
    if (who.kind == subject_kind::user) {
        auto acc = db.find_account(who.key);
        if (!acc) return std::nullopt;
        limits = acc->quotas;
    } else {
        limits = db.ip_quota();
    }
    std::vector<quota_line> out;
    for (auto w : all_windows) {
        const sys_ms p = period_start(w, now);
        const usage_counts used = db.usage(who, w, p);
        const reserved_counts res = db.reserved(who, w, p);
        for (auto d : all_quota_dirs) {
            quota_line line;
            line.win = w;
            line.dir = d;
            line.period_start = p;
            line.period_end = period_end(w, now);
            line.limit = limits.get(w, d);
            line.used = pick(used, d);
            line.reserved = pick(res, d);
            if (line.limit) line.remaining = sat_sub(*line.limit, line.used + line.reserved);
            out.push_back(line);
        }
    }
    return out;
}

} // namespace btest::pro
