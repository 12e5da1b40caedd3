// Shared pieces of the whole-session targets: the invariants every session must keep whatever
// it is fed (checked after every call), services that check their own contracts, the accounts
// the servers know, and readers for the configuration parts of an input.
//
// Invariants (each an abort when broken):
//   - write_to() returns 0 and next_datagram() nullopt once finished(); write_to() never
//     returns more than the buffer, a datagram never exceeds it;
//   - the summary's counters never decrease (rx.lost_packets excepted: a late datagram takes one
//     back, PROTOCOL §8.5); started, reason and error never change once set; per-connection
//     counters never decrease and `opaque` stays set;
//   - after on_timer(now), next_deadline() is empty or strictly later than now; after any other
//     call at `now`, a deadline earlier than `now` is one that was already there before the call
//     (a driver may run late, the session must not schedule into the past);
//   - at most one session_closed; no event at all after it, and none once finished() was seen
//     with the queue drained; a session that finished emitted session_closed;
//   - finished() never goes back to false; error() is sticky;
//   - requests: none from a finished session; each kind at most once (a budget refill at most
//     once per answer); a UDP port block of at least one port, a client bind of the ports
//     P+256… of the server's P; every block the harness acquired for a session is released
//     exactly once, when that session is over.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <btest/auth/credentials.hpp>
#include <btest/core/entropy.hpp>
#include <btest/core/time.hpp>
#include <btest/session/client_session.hpp>
#include <btest/session/request.hpp>
#include <btest/session/server_session.hpp>

#include "fuzz/support.hpp"

namespace fuzz {

using btest::time_point;

// ---- accounts ------------------------------------------------------------------------------

inline constexpr std::string_view user_admin = "admin";
inline constexpr std::string_view password_admin = "test";
/// A 40-byte name: an MD5 reply carries only its first 32 bytes (PROTOCOL §2.4).
inline constexpr std::string_view user_long = "a-user-name-longer-than-thirty-two-bytes";
inline constexpr std::string_view password_long = "long";
inline constexpr std::string_view user_empty_password = "root";

/// The accounts every fuzzed server knows. Built once per process (a derivation costs a scalar
/// multiplication) and read-only afterwards, so every run sees the same store.
inline const btest::auth::memory_credentials& credentials() {
    static btest::seeded_entropy salts{0xf022};
    static const btest::auth::memory_credentials store = [] {
        btest::auth::memory_credentials c{salts};
        c.add(user_admin, password_admin);
        c.add(user_long, password_long);
        c.add(user_empty_password, "");
        return c;
    }();
    return store;
}

/// A user name and password for a client (or for a hand-made MD5/EC-SRP5 answer): known and
/// right, known and wrong, unknown, the long name, the empty password, a name EC-SRP5 cannot
/// carry (222 bytes), a name with a NUL inside, or none.
struct login {
    std::string user;
    std::string password;
};
inline login read_login(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: return {std::string(user_admin), std::string(password_admin)};
    case 1: return {std::string(user_admin), "wrong"};
    case 2: return {"nobody", "x"};
    case 3: return {std::string(user_long), std::string(password_long)};
    case 4: return {std::string(user_empty_password), ""};
    case 5: return {std::string(222, 'u'), "p"};
    case 6: return {std::string("ad\0min", 6), std::string(password_admin)};
    default: return {};
    }
}

// ---- configuration readers ---------------------------------------------------------------

inline btest::duration read_ms(FuzzedDataProvider& in, std::uint32_t max_ms) {
    return std::chrono::milliseconds(in.ConsumeIntegralInRange<std::uint32_t>(0, max_ms));
}

/// A rate in bit/s: unlimited, tiny, typical or huge.
inline std::uint64_t read_rate(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: return 0;
    case 1: return in.ConsumeIntegralInRange<std::uint64_t>(1, 10'000);
    case 2: return in.ConsumeIntegralInRange<std::uint64_t>(10'000, 2'000'000'000);
    case 3: return 0xffffffffULL;
    default: return in.ConsumeIntegral<std::uint64_t>();
    }
}

inline btest::timeouts read_timeouts(FuzzedDataProvider& in) {
    btest::timeouts t;
    if (in.ConsumeBool()) return t;  // the defaults
    t.handshake = read_ms(in, 20'000);
    t.join = read_ms(in, 20'000);
    t.idle = read_ms(in, 20'000);
    t.max_test = in.ConsumeBool() ? btest::duration::zero() : read_ms(in, 60'000);
    t.linger = read_ms(in, 5'000);
    return t;
}

inline btest::udp_send_config read_udp_send(FuzzedDataProvider& in) {
    btest::udp_send_config u;
    if (in.ConsumeBool()) return u;
    u.adapt = in.ConsumeBool();
    if (in.ConsumeBool()) {
        u.initial.kind = btest::pacing::initial_rate::mode::fixed;
        u.initial.fixed_bits_per_second = read_rate(in);
    }
    u.burst_max = in.ConsumeIntegralInRange<std::uint32_t>(0, 200);
    return u;
}

inline btest::duration read_report_interval(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: return std::chrono::seconds(1);
    case 1: return btest::duration::zero();  // the session falls back to 1 s
    default: return read_ms(in, 5'000);
    }
}

inline btest::server_config read_server_config(FuzzedDataProvider& in) {
    btest::server_config c;
    c.auth = static_cast<btest::auth_method>(in.ConsumeIntegralInRange<int>(0, 2));
    c.max_conn_count = in.ConsumeBool() ? 255 : in.ConsumeIntegralInRange<std::uint32_t>(0, 300);
    c.report_interval = read_report_interval(in);
    c.udp_single_destination = in.ConsumeBool();
    c.udp_reply_to_source = in.ConsumeBool();
    c.max_tx_rate = in.ConsumeBool() ? 0 : read_rate(in);
    c.udp = read_udp_send(in);
    c.limits = read_timeouts(in);
    c.ask_admission = in.ConsumeIntegralInRange<int>(0, 3) == 0;
    return c;
}

inline btest::client_config read_client_config(FuzzedDataProvider& in) {
    btest::client_config c;
    c.proto = in.ConsumeBool() ? btest::protocol::tcp : btest::protocol::udp;
    c.dir = static_cast<btest::direction>(in.ConsumeIntegralInRange<int>(1, 3));
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: c.connection_count = 1; break;
    case 1: c.connection_count = in.ConsumeIntegralInRange<std::uint32_t>(2, 4); break;
    case 2: c.connection_count = in.ConsumeIntegralInRange<std::uint32_t>(0, 300); break;
    default: c.connection_count = in.ConsumeIntegral<std::uint32_t>(); break;
    }
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: c.tx_size = 0; break;
    case 1: c.tx_size = in.ConsumeIntegralInRange<std::uint16_t>(1, 64); break;
    case 2: c.tx_size = in.ConsumeIntegralInRange<std::uint16_t>(28, 2000); break;
    default: c.tx_size = in.ConsumeIntegral<std::uint16_t>(); break;
    }
    c.local_udp_tx_size = in.ConsumeBool() ? 1500 : in.ConsumeIntegral<std::uint16_t>();
    c.remote_tx_speed = read_rate(in);
    c.local_tx_speed = read_rate(in);
    c.random_data = in.ConsumeBool();
    auto l = read_login(in);
    c.user = std::move(l.user);
    c.password = std::move(l.password);
    c.test_duration = in.ConsumeBool() ? btest::duration::zero() : read_ms(in, 30'000);
    c.report_interval = read_report_interval(in);
    c.nat_probe = in.ConsumeBool();
    c.udp = read_udp_send(in);
    c.limits = read_timeouts(in);
    return c;
}

/// Clock steps: mostly small, sometimes seconds (timeouts), rarely a long silence.
inline btest::duration read_step(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: return std::chrono::microseconds(in.ConsumeIntegralInRange<std::uint32_t>(0, 2'000));
    case 1: return std::chrono::microseconds(in.ConsumeIntegralInRange<std::uint32_t>(0, 3'000'000));
    case 2: return std::chrono::milliseconds(in.ConsumeIntegralInRange<std::uint32_t>(0, 15'000));
    default: return std::chrono::seconds(in.ConsumeIntegralInRange<std::uint32_t>(0, 100));
    }
}

/// Buffer sizes offered to write_to()/next_datagram(): nothing, a few bytes, a typical socket
/// buffer, or the documented minimum for any chunk.
inline std::size_t read_out_size(FuzzedDataProvider& in) {
    switch (in.ConsumeIntegralInRange<int>(0, 4)) {
    case 0: return 0;
    case 1: return in.ConsumeIntegralInRange<std::size_t>(1, 64);
    case 2: return in.ConsumeIntegralInRange<std::size_t>(65, 4096);
    case 3: return btest::max_datagram_payload;
    default: return btest::min_write_buffer;
    }
}

// ---- output buffers ----------------------------------------------------------------------

/// The buffer handed to write_to()/next_datagram(): exactly `n` bytes usable, so that a write past
/// its end is an overflow AddressSanitizer reports. A poisoned_block: a fresh 64 KiB heap block
/// per call cost the session targets a third of their speed in page faults and zeroing.
class out_buffer {
public:
    std::span<std::byte> get(std::size_t n) {
        if (n == 0) {  // (no storage: the kit must not touch data())
            block_.hide();
            return {};
        }
        return block_.expose(n);
    }

private:
    poisoned_block block_;
};

// ---- the transport's part, checking the requests it answers -----------------------------------

/// A UDP port pool that hands out ascending ports (or refuses, as the input decides) and
/// checks that every block acquired is released exactly once. The harness answers a
/// server session's udp_port_request from it and releases the block when the session is over.
class checking_pool {
public:
    explicit checking_pool(FuzzedDataProvider& in) : in_(in) {}

    std::optional<std::uint16_t> acquire(std::uint16_t count) {
        FUZZ_CHECK(count >= 1);
        if (in_.ConsumeIntegralInRange<int>(0, 7) == 0) return std::nullopt;  // nothing free
        const std::uint32_t k = std::max<std::uint16_t>(count, 1);
        if (next_ + 256u + k - 1u > 65535u) next_ = 2001;
        const auto p = static_cast<std::uint16_t>(next_);
        next_ += k;
        for (auto a : active_) FUZZ_CHECK(a != p);
        active_.push_back(p);
        return p;
    }
    void release(std::uint16_t first) {
        auto it = std::find(active_.begin(), active_.end(), first);
        FUZZ_CHECK(it != active_.end());  // released twice, or never acquired
        active_.erase(it);
    }
    /// Once every session is gone.
    void check_all_released() const { FUZZ_CHECK(active_.empty()); }

private:
    FuzzedDataProvider& in_;
    std::uint32_t next_ = 2001;
    std::vector<std::uint16_t> active_;
};

/// A client's UDP sockets: a bind succeeds or fails as the input decides; a request must name
/// the ports P+256… of the server's P, and come once.
class checking_binder {
public:
    explicit checking_binder(FuzzedDataProvider& in) : in_(in) {}

    bool bind(const btest::udp_bind_request& r) {
        FUZZ_CHECK(!asked_);
        asked_ = true;
        FUZZ_CHECK(r.count >= 1);
        FUZZ_CHECK(std::uint32_t(r.first) + r.count - 1u <= 65535u);
        FUZZ_CHECK(std::uint32_t(r.first) == std::uint32_t(r.server_port) + 256u);
        if (in_.ConsumeIntegralInRange<int>(0, 7) == 0) return false;
        bound_ = true;
        first_ = r.first;
        count_ = r.count;
        return true;
    }
    bool bound() const noexcept { return bound_; }
    std::uint16_t first() const noexcept { return first_; }
    std::uint16_t count() const noexcept { return count_; }

private:
    FuzzedDataProvider& in_;
    bool asked_ = false;
    bool bound_ = false;
    std::uint16_t first_ = 0, count_ = 0;
};

/// The answer to a server's admission_request, as the input decides: admit with no budget,
/// admit with a budget (small or large, a refill mark, how it ends), or refuse.
inline void answer_admission(FuzzedDataProvider& in, btest::server_session& s, time_point now) {
    switch (in.ConsumeIntegralInRange<int>(0, 3)) {
    case 0: s.admit(now); return;
    case 1: s.refuse(now, make_error_code(btest::errc::quota_exhausted)); return;
    default: {
        auto amount = [&]() -> std::optional<std::uint64_t> {
            switch (in.ConsumeIntegralInRange<int>(0, 3)) {
            case 0: return std::nullopt;
            case 1: return in.ConsumeIntegralInRange<std::uint64_t>(0, 100'000);
            case 2: return in.ConsumeIntegralInRange<std::uint64_t>(0, 100'000'000);
            default: return in.ConsumeIntegral<std::uint64_t>();
            }
        };
        btest::byte_budget b{amount(), amount(), amount()};
        const auto refill = in.ConsumeBool() ? 0 : in.ConsumeIntegralInRange<std::uint64_t>(0, 1'000'000);
        s.admit(now, b, refill, in.ConsumeBool() ? btest::budget_end::quota_exhausted : btest::budget_end::quota_unavailable);
        return;
    }
    }
}

// ---- the invariant checker ---------------------------------------------------------------

/// How a session took part in the call just made: called with on_timer(now), called with
/// another input at `now`, or touched only indirectly (a JOIN attached a connection to it from
/// inside another session's feed) or not at all.
enum class call { timer, input, none };

/// Watches one session. Call before() and after() around every call into it, and after() with
/// call::none for the sessions not called (after() drains the events, handing each to
/// `on_event`).
template <class Session>
class checker {
public:
    explicit checker(Session& s) : s_(s) {}

    void before() { pre_deadline_ = s_.next_deadline(); }

    /// `now`: the time of the call. Requests go to `on_request` (which answers them, now or
    /// later); the events they cause are drained too.
    template <class OnEvent, class OnRequest>
    void after(time_point now, call kind, OnEvent&& on_event, OnRequest&& on_request) {
        for (bool more = true; more;) {
            more = false;
            drain_events(on_event);
            while (auto rq = s_.poll_request()) {
                FUZZ_CHECK(!finished_seen_ && !closed_);  // a finished session needs nothing
                check_request(*rq);
                on_request(*rq);
                more = true;
            }
        }
        if (kind != call::none) check_deadline(now, kind == call::timer);
        check_state();
    }
    template <class OnEvent>
    void after(time_point now, call kind, OnEvent&& on_event) {
        after(now, kind, std::forward<OnEvent>(on_event), [](const btest::request&) {});
    }
    void after(time_point now, call kind) {
        after(now, kind, [](const btest::event&) {});
    }

private:
    template <class OnEvent>
    void drain_events(OnEvent& on_event) {
        while (auto ev = s_.poll_event()) {
            FUZZ_CHECK(!finished_seen_);  // nothing new once finished and drained
            FUZZ_CHECK(!closed_);         // nothing after session_closed
            if (std::holds_alternative<btest::session_closed>(*ev)) {
                closed_ = true;
                const auto& c = std::get<btest::session_closed>(*ev);
                FUZZ_CHECK((c.reason == btest::end_reason::failure) == bool(c.error));
            }
            on_event(*ev);
        }
    }

    /// Each kind of request comes at most once per session (a budget refill once per answer).
    void check_request(const btest::request& rq) {
        if (std::holds_alternative<btest::budget_request>(rq)) {
            FUZZ_CHECK(!refill_asked_);
            refill_asked_ = true;
            return;
        }
        FUZZ_CHECK(!(asked_ & (1u << rq.index())));
        asked_ |= 1u << rq.index();
        if (auto* p = std::get_if<btest::udp_port_request>(&rq)) FUZZ_CHECK(p->count >= 1);
    }

public:
    /// A refill was answered: another may be asked for.
    void refilled() noexcept { refill_asked_ = false; }

    /// Checks a write_to() result; `was_finished` is finished() before the call.
    void wrote(std::size_t n, std::size_t capacity, bool was_finished) const {
        FUZZ_CHECK(n <= capacity);
        if (was_finished) FUZZ_CHECK(n == 0);
    }
    void datagram(const std::optional<btest::datagram>& d, std::size_t capacity, bool was_finished) const {
        if (was_finished) FUZZ_CHECK(!d);
        if (d) FUZZ_CHECK(d->size <= capacity);
    }

    bool closed() const noexcept { return closed_; }

    /// At the end of a run.
    void final_check() const {
        if (s_.finished()) FUZZ_CHECK(closed_);
        if (closed_) FUZZ_CHECK(s_.summary().reason.has_value());
    }

private:
    void check_deadline(time_point now, bool timer) const {
        const auto d = s_.next_deadline();
        if (s_.finished()) FUZZ_CHECK(!d);
        if (!d) return;
        if (timer) {
            FUZZ_CHECK(*d > now);
            return;
        }
        if (*d < now) FUZZ_CHECK(pre_deadline_ && *d >= *pre_deadline_);
    }

    void check_state() {
        if (finished_was_) FUZZ_CHECK(s_.finished());
        if (s_.finished()) FUZZ_CHECK(!s_.running());
        if (error_) FUZZ_CHECK(s_.error() == error_);
        error_ = s_.error();
        const auto sum = s_.summary();
        FUZZ_CHECK(sum.error == s_.error());
        if (have_) {
            FUZZ_CHECK(sum.tx.bytes >= last_.tx.bytes);
            FUZZ_CHECK(sum.tx.packets >= last_.tx.packets);
            FUZZ_CHECK(sum.rx.bytes >= last_.rx.bytes);
            FUZZ_CHECK(sum.rx.packets >= last_.rx.packets);
            FUZZ_CHECK(sum.status_sent >= last_.status_sent);
            FUZZ_CHECK(sum.status_received >= last_.status_received);
            FUZZ_CHECK(sum.status_bytes_sent >= last_.status_bytes_sent);
            FUZZ_CHECK(sum.status_bytes_received >= last_.status_bytes_received);
            FUZZ_CHECK(sum.elapsed >= last_.elapsed);
            if (last_.started) FUZZ_CHECK(sum.started);
            if (last_.reason) FUZZ_CHECK(sum.reason == last_.reason);
            if (last_.error) FUZZ_CHECK(sum.error == last_.error);
        }
        FUZZ_CHECK(sum.elapsed >= btest::duration::zero());
        if (closed_) FUZZ_CHECK(sum.reason.has_value());
        last_ = sum;
        have_ = true;
        const auto n = s_.connection_count();
        FUZZ_CHECK(n >= conns_.size());
        for (std::size_t i = 0; i < n; ++i) {
            const auto& c = s_.conn_stats(static_cast<std::uint32_t>(i));
            if (i < conns_.size()) {
                const auto& p = conns_[i];
                FUZZ_CHECK(c.tx_bytes >= p.tx_bytes);
                FUZZ_CHECK(c.rx_bytes >= p.rx_bytes);
                FUZZ_CHECK(c.status_sent >= p.status_sent);
                FUZZ_CHECK(c.status_received >= p.status_received);
                if (p.opaque) FUZZ_CHECK(c.opaque);
                conns_[i] = c;
            } else {
                conns_.push_back(c);
            }
        }
        if (s_.finished()) {
            finished_was_ = true;
            finished_seen_ = true;
        }
    }

    Session& s_;
    std::optional<time_point> pre_deadline_;
    bool closed_ = false;
    unsigned asked_ = 0;
    bool refill_asked_ = false;
    bool finished_seen_ = false;
    bool finished_was_ = false;
    bool have_ = false;
    btest::test_summary last_{};
    std::vector<btest::connection_stats> conns_;
    std::error_code error_;
};

} // namespace fuzz
